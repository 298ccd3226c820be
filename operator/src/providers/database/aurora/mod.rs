//! `aurora`: Aurora PostgreSQL through RDS. A dedicated tenant gets its own cluster with one
//! serverless v2 writer; pooled tenants share the pool cluster. Master credentials are an
//! RDS-managed secret (ManageMasterUserPassword): the operator reads it only to create the
//! tenant's own login role and schema (`login`), whose credentials the tenant's DSN carries,
//! and never logs it.
//!
//! This file holds the configuration, the client and the names and tags of a request; the
//! steps are one file each: `state` (what an RDS status means), `describe` (observing),
//! `ensure` (cluster and writer lifecycle), `connection` (the master secret and the tenant's
//! DSN), `login` (the tenant's role) and `delete` (retain, snapshot or delete).

mod connection;
mod delete;
mod describe;
mod ensure;
mod login;
mod state;

use std::sync::atomic::AtomicBool;

use aws_config::SdkConfig;
use aws_sdk_rds::{
    Client,
    types::{ServerlessV2ScalingConfiguration, Tag},
};
use tokio::sync::Mutex;

pub use self::{
    login::login_role,
    state::{ClusterState, cluster_state, instance_state},
};
use super::{Capacity, DatabaseConnection, DatabaseProvider, TenantDatabase};
use crate::providers::{
    BoxFuture, Deletion, DeletionPolicy, Outcome, ProviderError, SecretString, Tier,
    aws::{AwsApi, DEFAULT_MAX_ATTEMPTS, retry_config},
    names, tags,
};

const ENGINE: &str = "aurora-postgresql";
const WRITER_CLASS: &str = "db.serverless";

/// Operator-level settings of the `aurora` provider (flags/env of the operator).
#[derive(Debug, Clone, PartialEq)]
pub struct AuroraConfig {
    /// Prefix of every identifier (`emporium` → cluster `emporium-<tenant>`).
    pub prefix: String,
    /// The DB subnet group clusters are placed in.
    pub subnet_group: String,
    /// When set, the operator creates [`AuroraConfig::subnet_group`] from these subnets if it
    /// does not exist; when empty, the group must exist already.
    pub subnet_ids: Vec<String>,
    /// VPC security groups for every cluster (empty: the VPC's default group).
    pub security_group_ids: Vec<String>,
    /// KMS key for storage and the master secret (`None`: the AWS managed keys).
    pub kms_key_id: Option<String>,
    /// Identifier of the shared cluster that pooled tenants use.
    pub pool_cluster: String,
    /// Serverless v2 capacity of the pool cluster.
    pub pool_capacity: Capacity,
    /// Engine version of the pool cluster (`None`: the AWS default).
    pub pool_engine_version: Option<String>,
    /// Master user name of clusters the operator creates.
    pub master_username: String,
    /// Database created in each cluster, which the DSN names.
    pub database_name: String,
    /// SDK attempts per call (throttling and 5xx are retried with jitter).
    pub max_attempts: u32,
    /// Key the tenants' login-role passwords are derived from (`None`: the cluster's master
    /// password, so they change when RDS rotates it).
    pub password_key: Option<SecretString>,
    /// Query string of the tenants' DSNs.
    pub dsn_query: String,
    /// Test only: run the SQL part (login roles) on this PostgreSQL, as the user of this URL,
    /// instead of the cluster endpoint and master secret RDS reports (moto reports endpoints
    /// with no server behind them). The tenants' DSNs then name this server.
    pub sql_override: Option<SecretString>,
}

impl AuroraConfig {
    /// Defaults for everything but the subnet group.
    pub fn new(subnet_group: impl Into<String>) -> Self {
        Self {
            prefix: names::DEFAULT_PREFIX.to_owned(),
            subnet_group: subnet_group.into(),
            subnet_ids: Vec::new(),
            security_group_ids: Vec::new(),
            kms_key_id: None,
            pool_cluster: format!("{}-pool", names::DEFAULT_PREFIX),
            pool_capacity: Capacity {
                min_acu: 0.5,
                max_acu: 16.0,
            },
            pool_engine_version: None,
            master_username: "emporium_admin".to_owned(),
            database_name: "emporium".to_owned(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            password_key: None,
            dsn_query: "sslmode=require".to_owned(),
            sql_override: None,
        }
    }
}

/// The `aurora` [`DatabaseProvider`].
pub struct AuroraProvider {
    rds: Client,
    secrets: aws_sdk_secretsmanager::Client,
    rds_api: AwsApi,
    secrets_api: AwsApi,
    config: AuroraConfig,
    /// Whether the subnet group was seen (or made) since the process started or AWS last
    /// said it is missing.
    subnet_group_ready: AtomicBool,
    subnet_group_lock: Mutex<()>,
    /// Held from the second describe to the create of a cluster or writer, so concurrent
    /// reconciles in this process (the pooled tenants all ask for the pool cluster at once)
    /// send one create, not one each.
    create_lock: Mutex<()>,
    /// The login roles this process made or checked, by password fingerprint.
    logins: login::LoginCache,
    /// Held while role statements run: concurrent `GRANT`s on one database fail with "tuple
    /// concurrently updated", and these statements are rare (see `logins`).
    login_lock: Mutex<()>,
}

/// Which cluster a request is about and how the operator relates to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dedicated,
    Pool,
    Adopted,
}

impl AuroraProvider {
    /// A provider using `sdk` (its region, credentials and endpoint, e.g. `AWS_ENDPOINT_URL`)
    /// with the retry policy of `config.max_attempts`.
    pub fn new(sdk: &SdkConfig, config: AuroraConfig) -> Self {
        let retry = retry_config(config.max_attempts);
        let rds = Client::from_conf(
            aws_sdk_rds::config::Builder::from(sdk)
                .retry_config(retry.clone())
                .build(),
        );
        let secrets = aws_sdk_secretsmanager::Client::from_conf(
            aws_sdk_secretsmanager::config::Builder::from(sdk)
                .retry_config(retry)
                .build(),
        );
        Self {
            rds,
            secrets,
            rds_api: AwsApi::new(sdk, "RDS", "RDS"),
            secrets_api: AwsApi::new(sdk, "Secrets Manager", "SECRETS_MANAGER"),
            config,
            subnet_group_ready: AtomicBool::new(false),
            subnet_group_lock: Mutex::new(()),
            create_lock: Mutex::new(()),
            logins: login::LoginCache::default(),
            login_lock: Mutex::new(()),
        }
    }

    pub fn config(&self) -> &AuroraConfig {
        &self.config
    }

    /// The cluster a request is about.
    fn target(&self, db: &TenantDatabase) -> (String, Role) {
        match (db.tier, &db.adopt) {
            (Tier::Pooled, _) => (self.config.pool_cluster.clone(), Role::Pool),
            (Tier::Dedicated, Some(adopt)) => (adopt.to_ascii_lowercase(), Role::Adopted),
            (Tier::Dedicated, None) => (
                names::cluster_identifier(&self.config.prefix, &db.tenant),
                Role::Dedicated,
            ),
        }
    }

    fn tags(&self, db: &TenantDatabase, role: Role) -> Vec<Tag> {
        let tag = |k: &str, v: &str| Tag::builder().key(k).value(v).build();
        let mut tags = vec![tag(tags::MANAGED_BY, tags::MANAGED_BY_VALUE)];
        match role {
            Role::Pool => tags.push(tag(tags::POOL, "true")),
            Role::Dedicated => tags.push(tag(tags::TENANT, &db.tenant)),
            Role::Adopted => {
                tags.push(tag(tags::TENANT, &db.tenant));
                tags.push(tag(tags::ADOPTED, "true"));
            }
        }
        tags
    }

    fn desired_capacity(&self, db: &TenantDatabase, role: Role) -> Capacity {
        if role == Role::Pool {
            self.config.pool_capacity
        } else {
            db.capacity
        }
    }

    /// Deletion protection: on for the pool (other tenants' data) and for `Retain`.
    fn desired_protection(db: &TenantDatabase, role: Role) -> bool {
        role == Role::Pool || db.deletion_policy == DeletionPolicy::Retain
    }
}

impl DatabaseProvider for AuroraProvider {
    fn kind(&self) -> &'static str {
        "aurora"
    }

    fn ensure<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Outcome<DatabaseConnection>, ProviderError>> {
        Box::pin(self.ensure_database(db))
    }

    fn delete<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Outcome<Deletion>, ProviderError>> {
        Box::pin(self.delete_database(db))
    }

    fn capacity<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Option<Capacity>, ProviderError>> {
        Box::pin(async move {
            let (id, _) = self.target(db);
            Ok(self.describe_cluster(&id).await?.and_then(|cluster| {
                let scaling = cluster.serverless_v2_scaling_configuration()?;
                Some(Capacity {
                    min_acu: scaling.min_capacity()?,
                    max_acu: scaling.max_capacity()?,
                })
            }))
        })
    }
}

fn scaling(capacity: Capacity) -> ServerlessV2ScalingConfiguration {
    ServerlessV2ScalingConfiguration::builder()
        .min_capacity(capacity.min_acu)
        .max_capacity(capacity.max_acu)
        .build()
}

fn has_tag(tags: &[Tag], key: &str) -> bool {
    tags.iter().any(|t| t.key() == Some(key))
}
