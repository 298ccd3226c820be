//! The tenant's connection: the writer endpoint and the RDS-managed master secret, turned into
//! a DSN that only ever leaves as a [`SecretString`].

use aws_sdk_rds::types::DbCluster;

use super::AuroraProvider;
use crate::providers::{
    Outcome, ProviderError, SecretString,
    aws::sdk_error,
    database::{DatabaseConnection, postgres_url},
};

impl AuroraProvider {
    /// Reads the managed master secret and builds the connection.
    pub(super) async fn connection(
        &self,
        cluster: &DbCluster,
        id: &str,
    ) -> Result<Outcome<DatabaseConnection>, ProviderError> {
        let Some(arn) = cluster.master_user_secret().and_then(|s| s.secret_arn()) else {
            return Ok(Outcome::terminal(
                "AdoptionFailed",
                format!(
                    "cluster {id} has no RDS-managed master user secret; enable it with `aws rds modify-db-cluster --db-cluster-identifier {id} --manage-master-user-password --apply-immediately` (this replaces the current master password)"
                ),
            ));
        };
        let (Some(host), Some(port)) = (cluster.endpoint(), cluster.port()) else {
            return Ok(Outcome::progressing(
                "Creating",
                format!("cluster {id} has no writer endpoint yet"),
            ));
        };
        let secret = self
            .secrets
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| sdk_error(&self.secrets_api, "GetSecretValue", arn, e))?;
        let credentials: MasterCredentials = secret
            .secret_string()
            .ok_or_else(|| ProviderError::MasterSecret {
                cluster: id.to_owned(),
                message: "it has no SecretString".into(),
                source: None,
            })
            .and_then(|s| {
                serde_json::from_str(s).map_err(|e| ProviderError::MasterSecret {
                    cluster: id.to_owned(),
                    // serde_json's message names the position, never the content.
                    message: format!("it is not the JSON RDS writes ({e})"),
                    source: Some(e),
                })
            })?;
        let database = cluster.database_name().unwrap_or("postgres").to_owned();
        let port = u16::try_from(port).unwrap_or(5432);
        let dsn = postgres_url(
            &credentials.username,
            &credentials.password,
            host,
            port,
            &database,
            "sslmode=require",
        );
        Ok(Outcome::Ready(DatabaseConnection {
            identifier: id.to_owned(),
            host: host.to_owned(),
            port,
            database,
            username: credentials.username,
            dsn: SecretString::new(dsn),
            master_secret_arn: Some(arn.to_owned()),
        }))
    }
}

/// What RDS stores in the managed master user secret.
#[derive(serde::Deserialize)]
struct MasterCredentials {
    username: String,
    password: String,
}
