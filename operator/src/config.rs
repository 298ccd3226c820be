//! Operator-wide settings: what the builders need besides the Storefront and its plan.
//! Filled from command-line flags in `main.rs` (and Helm values), or directly by tests.

use std::collections::BTreeMap;

use clap::ValueEnum;

use crate::providers::{
    AuroraConfig, Capacity, PostgresConfig, ProviderError, SecretString, SnapshotSettings,
    TableSettings,
};

/// Which provider serves a data slot (the database, the tables or the order-event queue).
///
/// `--database-provider` takes `postgres` or `aurora`, `--tables-provider` takes `dynamodb`,
/// `--queues-provider` takes `sqs`; `unconfigured` and `none` are valid for all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataProviderChoice {
    /// A provider is expected but none is configured: the condition is `False` with reason
    /// `ProviderNotConfigured`, and `Ready` stays `False`. The safe default.
    Unconfigured,
    /// Deliberately no provider (workload-only clusters, end-to-end tests of the Kubernetes
    /// side): the condition is `False` with reason `ProviderDisabled` and `Ready` ignores it.
    None,
    /// Database: an existing PostgreSQL server (development, tests); see `--postgres-*`.
    Postgres,
    /// Database: Aurora PostgreSQL through RDS; see `--aurora-*`.
    Aurora,
    /// Tables: DynamoDB (or any compatible endpoint through `AWS_ENDPOINT_URL`).
    Dynamodb,
    /// Order-event queue: SQS (or any compatible endpoint through `AWS_ENDPOINT_URL`), a queue
    /// and a dead-letter queue per tenant.
    Sqs,
}

impl DataProviderChoice {
    /// Whether this choice needs AWS credentials and an SDK configuration.
    pub fn uses_aws(self) -> bool {
        matches!(
            self,
            DataProviderChoice::Aurora | DataProviderChoice::Dynamodb | DataProviderChoice::Sqs
        )
    }
}

/// Never fails: any text is a secret (clap wants a fallible parser).
fn parse_secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::new(value))
}

/// Settings of the database and table providers: command-line flags with environment
/// fallbacks (flattened into the operator's flags), or filled directly by tests.
///
/// Secrets (`--postgres-admin-url`, `--postgres-password-key`) are [`SecretString`]s: their
/// `Debug` is redacted and `--help` never shows their environment values.
#[derive(Debug, Clone, clap::Args)]
pub struct DataSettings {
    /// Prefix of every database, role, cluster and table name the providers derive
    /// (`<prefix>-<tenant>`, pool: `<prefix>_pool` / `<prefix>-pool`). Never change it for a
    /// running installation: the operator finds what it made by these names.
    #[arg(long, env = "EMPORIUM_NAME_PREFIX", default_value = "emporium")]
    pub name_prefix: String,
    /// How many times one AWS call is tried (throttling, 5xx and network errors are retried
    /// with exponential backoff and jitter).
    #[arg(long, env = "EMPORIUM_AWS_MAX_ATTEMPTS", default_value_t = crate::providers::aws::DEFAULT_MAX_ATTEMPTS)]
    pub aws_max_attempts: u32,
    /// Seconds to establish a connection to an AWS endpoint.
    #[arg(
        long,
        env = "EMPORIUM_AWS_CONNECT_TIMEOUT_SECONDS",
        default_value_t = 3.0
    )]
    pub aws_connect_timeout_seconds: f64,
    /// Seconds one attempt of an AWS call may take (request sent to response read); an
    /// endpoint that accepts connections but does not answer fails the attempt after this.
    #[arg(
        long,
        env = "EMPORIUM_AWS_ATTEMPT_TIMEOUT_SECONDS",
        default_value_t = 10.0
    )]
    pub aws_attempt_timeout_seconds: f64,
    /// Seconds one AWS call may take in all, retries included. The tenant's condition names
    /// the outage at the latest this long after a call started.
    #[arg(
        long,
        env = "EMPORIUM_AWS_OPERATION_TIMEOUT_SECONDS",
        default_value_t = 30.0
    )]
    pub aws_operation_timeout_seconds: f64,

    /// `postgres` provider: connection URL of a role with CREATEDB and CREATEROLE (or a
    /// superuser), e.g. `postgres://admin:...@db:5432/postgres`. A secret: pass it through the
    /// environment from a Kubernetes Secret.
    #[arg(long, env = "EMPORIUM_POSTGRES_ADMIN_URL", hide_env_values = true, value_parser = parse_secret)]
    pub postgres_admin_url: Option<SecretString>,
    /// `postgres` provider: key (at least 16 characters of random data) that tenant role
    /// passwords are derived from (HMAC-SHA256). A secret; changing it changes every password.
    #[arg(long, env = "EMPORIUM_POSTGRES_PASSWORD_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub postgres_password_key: Option<SecretString>,
    /// `postgres` provider: host the tenants' DSNs name (e.g. a Service DNS name); default:
    /// the admin URL's host.
    #[arg(long, env = "EMPORIUM_POSTGRES_TENANT_HOST")]
    pub postgres_tenant_host: Option<String>,
    /// `postgres` provider: port the tenants' DSNs name; default: the admin URL's port.
    #[arg(long, env = "EMPORIUM_POSTGRES_TENANT_PORT")]
    pub postgres_tenant_port: Option<u16>,
    /// `postgres` provider: query string appended to tenants' DSNs, e.g. `sslmode=require`.
    #[arg(long, env = "EMPORIUM_POSTGRES_DSN_QUERY", default_value = "")]
    pub postgres_dsn_query: String,

    /// `aurora` provider: the DB subnet group clusters are placed in (required).
    #[arg(long, env = "EMPORIUM_AURORA_SUBNET_GROUP")]
    pub aurora_subnet_group: Option<String>,
    /// `aurora` provider: subnets to create the subnet group from if it does not exist
    /// (comma-separated; empty: the group must exist).
    #[arg(long, env = "EMPORIUM_AURORA_SUBNET_IDS", value_delimiter = ',')]
    pub aurora_subnet_ids: Vec<String>,
    /// `aurora` provider: VPC security groups of every cluster (comma-separated; empty: the
    /// VPC's default group).
    #[arg(
        long,
        env = "EMPORIUM_AURORA_SECURITY_GROUP_IDS",
        value_delimiter = ','
    )]
    pub aurora_security_group_ids: Vec<String>,
    /// `aurora` provider: KMS key for storage encryption and the master secret (empty: the
    /// AWS managed keys).
    #[arg(long, env = "EMPORIUM_AURORA_KMS_KEY_ID")]
    pub aurora_kms_key_id: Option<String>,
    /// `aurora` provider: identifier of the shared cluster pooled tenants use (default:
    /// `<name-prefix>-pool`).
    #[arg(long, env = "EMPORIUM_AURORA_POOL_CLUSTER")]
    pub aurora_pool_cluster: Option<String>,
    /// `aurora` provider: serverless v2 minimum capacity (ACUs) of the pool cluster.
    #[arg(long, env = "EMPORIUM_AURORA_POOL_MIN_ACU", default_value_t = 0.5)]
    pub aurora_pool_min_acu: f64,
    /// `aurora` provider: serverless v2 maximum capacity (ACUs) of the pool cluster.
    #[arg(long, env = "EMPORIUM_AURORA_POOL_MAX_ACU", default_value_t = 16.0)]
    pub aurora_pool_max_acu: f64,
    /// `aurora` provider: engine version of the pool cluster (empty: the AWS default).
    #[arg(long, env = "EMPORIUM_AURORA_POOL_ENGINE_VERSION")]
    pub aurora_pool_engine_version: Option<String>,
    /// `aurora` provider: master user name of the clusters the operator creates (its
    /// password is an RDS-managed secret).
    #[arg(
        long,
        env = "EMPORIUM_AURORA_MASTER_USERNAME",
        default_value = "emporium_admin"
    )]
    pub aurora_master_username: String,
    /// `aurora` provider: key (at least 16 characters of random data) the tenants' login-role
    /// passwords are derived from. Unset: each cluster's master password, so the tenants'
    /// passwords change whenever RDS rotates it. The master credentials are used only to
    /// create and rotate those roles; no tenant gets them.
    #[arg(long, env = "EMPORIUM_AURORA_PASSWORD_KEY", value_parser = parse_secret, hide_env_values = true)]
    pub aurora_password_key: Option<SecretString>,
    /// `aurora` provider: query string of the tenants' DSNs.
    #[arg(
        long,
        env = "EMPORIUM_AURORA_DSN_QUERY",
        default_value = "sslmode=require"
    )]
    pub aurora_dsn_query: String,
    /// `aurora` provider, TESTS ONLY: a PostgreSQL URL to run the tenants' login-role SQL on
    /// (and for their DSNs to name) instead of the cluster endpoint and master secret RDS
    /// reports; for AWS emulators whose clusters have no server behind them.
    #[arg(long, env = "EMPORIUM_AURORA_SQL_OVERRIDE", value_parser = parse_secret, hide_env_values = true)]
    pub aurora_sql_override: Option<SecretString>,
    /// `aurora` provider: database created in each cluster, which the DSN names.
    #[arg(
        long,
        env = "EMPORIUM_AURORA_DATABASE_NAME",
        default_value = "emporium"
    )]
    pub aurora_database_name: String,

    /// `dynamodb` provider: point-in-time recovery on the shared pool tables.
    #[arg(long, env = "EMPORIUM_POOL_TABLES_PITR", default_value_t = true, action = clap::ArgAction::Set)]
    pub pool_tables_pitr: bool,

    /// S3 bucket (existing) that a pooled tenant's rows and items are exported to when it is
    /// deleted with `deletionPolicy: Snapshot`. Without it such a tenant's data is retained
    /// under its identity instead (never deleted unexported).
    #[arg(long, env = "EMPORIUM_SNAPSHOT_BUCKET")]
    pub snapshot_bucket: Option<String>,
    /// Key prefix of those exports: `<prefix>/<storefront>/<tenant id>/...`.
    #[arg(
        long,
        env = "EMPORIUM_SNAPSHOT_PREFIX",
        default_value = "tenant-snapshots"
    )]
    pub snapshot_prefix: String,
}

impl Default for DataSettings {
    fn default() -> Self {
        Self {
            name_prefix: crate::providers::names::DEFAULT_PREFIX.to_owned(),
            aws_max_attempts: crate::providers::aws::DEFAULT_MAX_ATTEMPTS,
            aws_connect_timeout_seconds: 3.0,
            aws_attempt_timeout_seconds: 10.0,
            aws_operation_timeout_seconds: 30.0,
            postgres_admin_url: None,
            postgres_password_key: None,
            postgres_tenant_host: None,
            postgres_tenant_port: None,
            postgres_dsn_query: String::new(),
            aurora_subnet_group: None,
            aurora_subnet_ids: Vec::new(),
            aurora_security_group_ids: Vec::new(),
            aurora_kms_key_id: None,
            aurora_pool_cluster: None,
            aurora_pool_min_acu: 0.5,
            aurora_pool_max_acu: 16.0,
            aurora_pool_engine_version: None,
            aurora_master_username: "emporium_admin".to_owned(),
            aurora_password_key: None,
            aurora_dsn_query: "sslmode=require".to_owned(),
            aurora_sql_override: None,
            aurora_database_name: "emporium".to_owned(),
            pool_tables_pitr: true,
            snapshot_bucket: None,
            snapshot_prefix: "tenant-snapshots".to_owned(),
        }
    }
}

impl DataSettings {
    /// The timeouts of every AWS call (non-positive or non-finite values: the defaults).
    pub fn aws_timeouts(&self) -> crate::providers::aws::AwsTimeouts {
        let defaults = crate::providers::aws::AwsTimeouts::default();
        let secs = |value: f64, default: std::time::Duration| {
            std::time::Duration::try_from_secs_f64(value)
                .ok()
                .filter(|d| !d.is_zero())
                .unwrap_or(default)
        };
        crate::providers::aws::AwsTimeouts {
            connect: secs(self.aws_connect_timeout_seconds, defaults.connect),
            attempt: secs(self.aws_attempt_timeout_seconds, defaults.attempt),
            operation: secs(self.aws_operation_timeout_seconds, defaults.operation),
        }
    }

    /// The `postgres` provider's configuration, or what is missing.
    pub fn postgres(&self) -> Result<PostgresConfig, ProviderError> {
        let admin_url = self.postgres_admin_url.clone().ok_or_else(|| {
            ProviderError::Config(
                "--database-provider postgres needs --postgres-admin-url (EMPORIUM_POSTGRES_ADMIN_URL)".into(),
            )
        })?;
        let password_key = self.postgres_password_key.clone().ok_or_else(|| {
            ProviderError::Config(
                "--database-provider postgres needs --postgres-password-key (EMPORIUM_POSTGRES_PASSWORD_KEY)".into(),
            )
        })?;
        let mut config = PostgresConfig::new(admin_url, password_key);
        config.prefix = self.name_prefix.clone();
        config.tenant_host = self.postgres_tenant_host.clone().filter(|h| !h.is_empty());
        config.tenant_port = self.postgres_tenant_port;
        config.dsn_query = self.postgres_dsn_query.clone();
        Ok(config)
    }

    /// The `aurora` provider's configuration, or what is missing.
    pub fn aurora(&self) -> Result<AuroraConfig, ProviderError> {
        let subnet_group = self
            .aurora_subnet_group
            .clone()
            .filter(|g| !g.is_empty())
            .ok_or_else(|| {
                ProviderError::Config(
                    "--database-provider aurora needs --aurora-subnet-group (EMPORIUM_AURORA_SUBNET_GROUP)".into(),
                )
            })?;
        let mut config = AuroraConfig::new(subnet_group);
        config.prefix = self.name_prefix.clone();
        config.subnet_ids = non_empty(&self.aurora_subnet_ids);
        config.security_group_ids = non_empty(&self.aurora_security_group_ids);
        config.kms_key_id = self.aurora_kms_key_id.clone().filter(|k| !k.is_empty());
        config.pool_cluster = self
            .aurora_pool_cluster
            .clone()
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| format!("{}-pool", self.name_prefix));
        config.pool_capacity = Capacity {
            min_acu: self.aurora_pool_min_acu,
            max_acu: self.aurora_pool_max_acu,
        };
        config.pool_engine_version = self
            .aurora_pool_engine_version
            .clone()
            .filter(|v| !v.is_empty());
        config.master_username = self.aurora_master_username.clone();
        if let Some(key) = &self.aurora_password_key
            && key.expose().len() < 16
        {
            return Err(ProviderError::Config(
                "--aurora-password-key must be at least 16 characters of random data".into(),
            ));
        }
        config.password_key = self.aurora_password_key.clone();
        config.dsn_query = self.aurora_dsn_query.clone();
        config.sql_override = self.aurora_sql_override.clone();
        config.database_name = self.aurora_database_name.clone();
        config.max_attempts = self.aws_max_attempts;
        Ok(config)
    }

    /// The DynamoDB provisioner's settings.
    pub fn tables(&self) -> TableSettings {
        TableSettings {
            prefix: self.name_prefix.clone(),
            pool_point_in_time_recovery: self.pool_tables_pitr,
            max_attempts: self.aws_max_attempts,
        }
    }

    /// Settings of the snapshot store, when a bucket is configured.
    pub fn snapshots(&self) -> Option<SnapshotSettings> {
        let bucket = self.snapshot_bucket.as_deref().map(str::trim)?;
        (!bucket.is_empty()).then(|| SnapshotSettings {
            bucket: bucket.to_owned(),
            prefix: self.snapshot_prefix.clone(),
            max_attempts: self.aws_max_attempts,
        })
    }
}

fn non_empty(values: &[String]) -> Vec<String> {
    values
        .iter()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect()
}

/// What `WorkloadReady` (and `RoutingReady`) wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadinessGate {
    /// Production: the Deployment (the pool's, for pooled tenants) reports the condition
    /// `Available=True` and the Ingress has a load balancer address.
    Available,
    /// Clusters with nodes (real or kwok) but no load balancer controller (the local stack,
    /// `make dev`): the Deployment is `Available` as above; the Ingress only needs applying.
    DeploymentAvailable,
    /// Scale tests on kwok only: every child is applied and the Deployment controller has
    /// observed the current template; pods are not waited for.
    Applied,
}

impl ReadinessGate {
    /// Whether the Deployment's `Available` condition is a readiness input.
    pub fn waits_for_availability(self) -> bool {
        self != ReadinessGate::Applied
    }
}

/// Everything the reconcile pipeline needs besides the Storefront and its plan.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// The storefront runtime image every tenant runs.
    pub runtime_image: String,
    /// Node labels the runtime's pods must match (the pod's `nodeSelector`), each also
    /// tolerated as a `NoSchedule` taint of the same key and value; empty: any node.
    pub runtime_node_selector: BTreeMap<String, String>,
    /// Extra environment of the runtime's containers (e.g. `REDIS_URL`, `AWS_ENDPOINT_URL`),
    /// after the variables the operator itself sets, which it may not name.
    pub runtime_env: Vec<(String, String)>,
    /// Namespace of the shared pool (pooled tenants' config Secrets, Ingresses, the pool
    /// Deployment).
    pub pool_namespace: String,
    /// Replica range of the shared pool.
    pub pool_min_replicas: i32,
    pub pool_max_replicas: i32,
    /// IRSA role ARN for tenant ServiceAccounts; `{tenant}` is replaced by the tenant name.
    /// Empty: no `eks.amazonaws.com/role-arn` annotation.
    pub tenant_role_arn: String,
    /// IngressClass of the AWS Load Balancer Controller.
    pub ingress_class: String,
    /// ALB scheme: `internet-facing` or `internal`.
    pub alb_scheme: String,
    /// ACM certificate ARN for HTTPS listeners (empty: HTTP only).
    pub certificate_arn: String,
    /// WAFv2 web ACL ARN (empty: none).
    pub waf_acl_arn: String,
    /// VPC CIDRs the load balancer sends traffic from (ALB `target-type: ip`), allowed to the
    /// runtime's HTTP port by each dedicated tenant's NetworkPolicy.
    pub load_balancer_cidrs: Vec<String>,
    /// Prefix of ALB ingress group names; groups are `<prefix>-<n>`.
    pub ingress_group_prefix: String,
    pub database_provider: DataProviderChoice,
    pub tables_provider: DataProviderChoice,
    pub queues_provider: DataProviderChoice,
    /// Settings of the providers chosen above.
    pub data: DataSettings,
    pub readiness_gate: ReadinessGate,
    /// Only reconcile Storefronts matching this label selector (empty: all). Lets several
    /// operators (or tests) share one cluster.
    pub storefront_selector: String,
    /// Maximum Storefronts reconciled at once.
    pub concurrency: u16,
    /// Unit prices and refresh period of the tenants' cost estimates (`status.cost`).
    pub cost: crate::cost::CostSettings,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            runtime_image: "ghcr.io/emporium/storefront:latest".to_owned(),
            runtime_node_selector: BTreeMap::new(),
            runtime_env: Vec::new(),
            pool_namespace: "emporium-pool".to_owned(),
            pool_min_replicas: 2,
            pool_max_replicas: 20,
            tenant_role_arn: String::new(),
            ingress_class: "alb".to_owned(),
            alb_scheme: "internet-facing".to_owned(),
            certificate_arn: String::new(),
            waf_acl_arn: String::new(),
            load_balancer_cidrs: Vec::new(),
            ingress_group_prefix: "emporium".to_owned(),
            database_provider: DataProviderChoice::Unconfigured,
            tables_provider: DataProviderChoice::Unconfigured,
            queues_provider: DataProviderChoice::Unconfigured,
            data: DataSettings::default(),
            readiness_gate: ReadinessGate::Available,
            storefront_selector: String::new(),
            concurrency: 8,
            cost: crate::cost::CostSettings::default(),
        }
    }
}

/// Environment variables the operator sets on every runtime container itself
/// (`runtime_pod_template`); `--runtime-env` may not name them.
pub const RUNTIME_ENV_RESERVED: [&str; 5] = [
    "EMPORIUM_LISTEN",
    "EMPORIUM_WATCH_SECRETS",
    "EMPORIUM_WATCH_NAMESPACE",
    "EMPORIUM_LOG_FORMAT",
    "POD_NAMESPACE",
];

/// Parses `KEY=VALUE` (a `--runtime-env` or `--runtime-node-selector` entry).
pub fn parse_key_value(entry: &str) -> Result<(String, String), String> {
    match entry.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("`{entry}` is not KEY=VALUE")),
    }
}
