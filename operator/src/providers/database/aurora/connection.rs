//! The tenant's connection: the writer endpoint and the RDS-managed master secret give the
//! operator a master login ([`MasterLogin`]), with which it makes the tenant's own role
//! (`login`); the DSN carries that role, and only ever leaves as a [`SecretString`].

use aws_sdk_rds::types::DbCluster;

use super::{
    AuroraProvider,
    login::{MasterLogin, login_role},
};
use crate::providers::{
    Outcome, ProviderError, SecretString,
    aws::sdk_error,
    database::{DatabaseConnection, TenantDatabase, postgres_url},
};

impl AuroraProvider {
    /// Reads the managed master secret, makes sure the tenant's login role exists, and builds
    /// the tenant's connection with it.
    pub(super) async fn connection(
        &self,
        cluster: &DbCluster,
        id: &str,
        db: &TenantDatabase,
    ) -> Result<Outcome<DatabaseConnection>, ProviderError> {
        let master = match self.master_login(cluster, id).await? {
            Outcome::Ready(master) => master,
            Outcome::Progressing { reason, message } => {
                return Ok(Outcome::Progressing { reason, message });
            }
            Outcome::Terminal { reason, message } => {
                return Ok(Outcome::Terminal { reason, message });
            }
        };
        let role = login_role(&self.config.prefix, &db.tenant, &db.tenant_id);
        let password = self.login_password(&master, id, &role, db)?;
        self.ensure_login(&master, &role, &password, db).await?;
        let query = if self.config.sql_override.is_some() {
            ""
        } else {
            self.config.dsn_query.as_str()
        };
        let dsn = postgres_url(
            &role,
            &password,
            &master.host,
            master.port,
            &master.database,
            query,
        );
        Ok(Outcome::Ready(DatabaseConnection {
            identifier: id.to_owned(),
            host: master.host,
            port: master.port,
            database: master.database,
            username: role,
            dsn: SecretString::new(dsn),
            master_secret_arn: cluster
                .master_user_secret()
                .and_then(|s| s.secret_arn())
                .map(str::to_owned),
        }))
    }

    /// The master login of `cluster`: its writer endpoint and managed master secret (or the
    /// test-only SQL override).
    pub(super) async fn master_login(
        &self,
        cluster: &DbCluster,
        id: &str,
    ) -> Result<Outcome<MasterLogin>, ProviderError> {
        let Some(arn) = cluster.master_user_secret().and_then(|s| s.secret_arn()) else {
            return Ok(Outcome::terminal(
                "AdoptionFailed",
                format!(
                    "cluster {id} has no RDS-managed master user secret; enable it with `aws rds modify-db-cluster --db-cluster-identifier {id} --manage-master-user-password --apply-immediately` (this replaces the current master password)"
                ),
            ));
        };
        if let Some(url) = &self.config.sql_override {
            return sql_override(url).map(Outcome::Ready);
        }
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
        Ok(Outcome::Ready(MasterLogin {
            host: host.to_owned(),
            port: u16::try_from(port).unwrap_or(5432),
            database: cluster.database_name().unwrap_or("postgres").to_owned(),
            username: credentials.username,
            password: SecretString::new(credentials.password),
        }))
    }
}

/// The master login the test-only `--aurora-sql-override` URL names.
fn sql_override(url: &SecretString) -> Result<MasterLogin, ProviderError> {
    let config: tokio_postgres::Config = url.expose().parse().map_err(|_| {
        ProviderError::Config("--aurora-sql-override is not a PostgreSQL URL".into())
    })?;
    let host = config
        .get_hosts()
        .iter()
        .find_map(|h| match h {
            tokio_postgres::config::Host::Tcp(host) => Some(host.clone()),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(_) => None,
        })
        .ok_or_else(|| ProviderError::Config("--aurora-sql-override names no TCP host".into()))?;
    Ok(MasterLogin {
        host,
        port: config.get_ports().first().copied().unwrap_or(5432),
        database: config.get_dbname().unwrap_or("postgres").to_owned(),
        username: config.get_user().unwrap_or("postgres").to_owned(),
        password: SecretString::new(
            config
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default(),
        ),
    })
}

/// What RDS stores in the managed master user secret.
#[derive(serde::Deserialize)]
struct MasterCredentials {
    username: String,
    password: String,
}
