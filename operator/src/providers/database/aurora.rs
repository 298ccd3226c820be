//! `aurora`: Aurora PostgreSQL through RDS. A dedicated tenant gets its own cluster with one
//! serverless v2 writer; pooled tenants share the pool cluster. Master credentials are an
//! RDS-managed secret (ManageMasterUserPassword): the operator reads it to build the tenant's
//! DSN and never logs it.

use aws_config::SdkConfig;
use aws_sdk_rds::{
    Client,
    types::{DbCluster, ServerlessV2ScalingConfiguration, Tag},
};
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;
use tracing::{debug, info};

use super::{Capacity, DatabaseConnection, DatabaseProvider, TenantDatabase, postgres_url};
use crate::providers::{
    BoxFuture, Deletion, DeletionPolicy, Outcome, ProviderError, SecretString, Tier,
    aws::{AwsApi, DEFAULT_MAX_ATTEMPTS, retry_config, sdk_error},
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
}

/// Which cluster a request is about and how the operator relates to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Dedicated,
    Pool,
    Adopted,
}

/// What an RDS cluster or instance status means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// Usable.
    Available,
    /// AWS is working on it; `reason` is the condition reason to show.
    Busy { reason: &'static str },
    /// Someone stopped it; the operator does not start it on its own.
    Stopped,
    /// Being deleted.
    Deleting,
    /// A state AWS does not leave without a person (reason `Terminal`).
    Failed,
}

/// Maps an RDS DB cluster status (`DescribeDBClusters` `Status`) to a [`ClusterState`].
/// Unknown statuses count as busy: waiting is always safe, acting on a guess is not.
pub fn cluster_state(status: &str) -> ClusterState {
    match status {
        "available" => ClusterState::Available,
        "creating" => ClusterState::Busy { reason: "Creating" },
        "modifying"
        | "scaling-compute"
        | "scaling-capacity"
        | "renaming"
        | "resetting-master-credentials"
        | "update-iops"
        | "storage-optimization"
        | "configuring-iam-database-auth"
        | "configuring-activity-stream" => ClusterState::Busy {
            reason: "Modifying",
        },
        "backing-up" | "backtracking" => ClusterState::Busy {
            reason: "BackingUp",
        },
        "upgrading" | "maintenance" => ClusterState::Busy {
            reason: "Upgrading",
        },
        "starting"
        | "stopping"
        | "rebooting"
        | "failing-over"
        | "promoting"
        | "migrating"
        | "preparing-data-migration" => ClusterState::Busy { reason: "Busy" },
        "stopped" => ClusterState::Stopped,
        "deleting" => ClusterState::Deleting,
        "failed"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "incompatible-parameters"
        | "incompatible-restore"
        | "incompatible-network"
        | "migration-failed"
        | "cloning-failed"
        | "restore-error" => ClusterState::Failed,
        _ => ClusterState::Busy { reason: "Busy" },
    }
}

/// Maps an RDS DB instance status (`DBInstanceStatus`) to a [`ClusterState`].
pub fn instance_state(status: &str) -> ClusterState {
    match status {
        "available" => ClusterState::Available,
        "creating" => ClusterState::Busy {
            reason: "CreatingWriter",
        },
        "modifying"
        | "configuring-enhanced-monitoring"
        | "configuring-log-exports"
        | "configuring-iam-database-auth"
        | "renaming"
        | "resetting-master-credentials"
        | "storage-optimization" => ClusterState::Busy {
            reason: "Modifying",
        },
        "backing-up" => ClusterState::Busy {
            reason: "BackingUp",
        },
        "upgrading" | "maintenance" => ClusterState::Busy {
            reason: "Upgrading",
        },
        "stopped" => ClusterState::Stopped,
        "deleting" => ClusterState::Deleting,
        "failed"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "incompatible-network"
        | "incompatible-option-group"
        | "incompatible-parameters"
        | "incompatible-restore"
        | "insufficient-capacity"
        | "restore-error"
        | "storage-full" => ClusterState::Failed,
        _ => ClusterState::Busy { reason: "Busy" },
    }
}

/// The outcome for a cluster (or instance) that is not [`ClusterState::Available`].
fn not_available<T>(what: &str, status: &str, state: ClusterState) -> Option<Outcome<T>> {
    match state {
        ClusterState::Available => None,
        ClusterState::Busy { reason } => {
            Some(Outcome::progressing(reason, format!("{what} is {status}")))
        }
        ClusterState::Deleting => Some(Outcome::progressing(
            "Deleting",
            format!("{what} is being deleted; it is recreated once AWS has removed it"),
        )),
        ClusterState::Stopped => Some(Outcome::progressing(
            "Stopped",
            format!(
                "{what} is stopped; start it (aws rds start-db-cluster) — the operator does not start clusters it did not stop"
            ),
        )),
        ClusterState::Failed => Some(Outcome::terminal(
            "Terminal",
            format!("AWS reports {what} as '{status}'; it needs a person"),
        )),
    }
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

    async fn describe_cluster(&self, id: &str) -> Result<Option<DbCluster>, ProviderError> {
        match self
            .rds
            .describe_db_clusters()
            .db_cluster_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_clusters()
                .iter()
                .find(|c| {
                    c.db_cluster_identifier()
                        .is_some_and(|c| c.eq_ignore_ascii_case(id))
                })
                .cloned()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_db_cluster_not_found_fault()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&self.rds_api, "DescribeDBClusters", id, e)),
        }
    }

    /// The status of an instance, `None` when it does not exist.
    async fn instance_status(&self, id: &str) -> Result<Option<String>, ProviderError> {
        match self
            .rds
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_instances()
                .iter()
                .find(|i| {
                    i.db_instance_identifier()
                        .is_some_and(|i| i.eq_ignore_ascii_case(id))
                })
                .map(|i| i.db_instance_status().unwrap_or("unknown").to_owned())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_db_instance_not_found_fault()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&self.rds_api, "DescribeDBInstances", id, e)),
        }
    }

    async fn snapshot_exists(&self, id: &str) -> Result<bool, ProviderError> {
        match self
            .rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out.db_cluster_snapshots().iter().any(|s| {
                s.db_cluster_snapshot_identifier()
                    .is_some_and(|s| s.eq_ignore_ascii_case(id))
            })),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_db_cluster_snapshot_not_found_fault()) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error(
                &self.rds_api,
                "DescribeDBClusterSnapshots",
                id,
                e,
            )),
        }
    }

    /// Makes sure the configured DB subnet group exists. Checked once per process, and again
    /// after AWS said it is gone ([`AuroraProvider::create_cluster`] resets the check).
    async fn ensure_subnet_group(&self) -> Result<(), ProviderError> {
        let _checking = self.subnet_group_lock.lock().await;
        if self.subnet_group_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let name = &self.config.subnet_group;
        match self
            .rds
            .describe_db_subnet_groups()
            .db_subnet_group_name(name)
            .send()
            .await
        {
            Ok(_) => {
                self.subnet_group_ready.store(true, Ordering::Release);
                return Ok(());
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_db_subnet_group_not_found_fault()) => {}
            Err(e) => return Err(sdk_error(&self.rds_api, "DescribeDBSubnetGroups", name, e)),
        }
        if self.config.subnet_ids.is_empty() {
            return Err(ProviderError::Config(format!(
                "the DB subnet group {name} does not exist; create it, or give the operator subnet ids (--aurora-subnet-ids) so it creates the group itself"
            )));
        }
        info!(subnet_group = %name, "creating the DB subnet group");
        let tag = Tag::builder()
            .key(tags::MANAGED_BY)
            .value(tags::MANAGED_BY_VALUE)
            .build();
        match self
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(name)
            .db_subnet_group_description("Emporium tenant databases")
            .set_subnet_ids(Some(self.config.subnet_ids.clone()))
            .tags(tag)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_db_subnet_group_already_exists_fault()) => {}
            Err(e) => return Err(sdk_error(&self.rds_api, "CreateDBSubnetGroup", name, e)),
        }
        self.subnet_group_ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn create_cluster(
        &self,
        id: &str,
        db: &TenantDatabase,
        role: Role,
    ) -> Result<(), ProviderError> {
        let capacity = self.desired_capacity(db, role);
        let engine_version = if role == Role::Pool {
            self.config.pool_engine_version.clone()
        } else {
            db.engine_version.clone()
        };
        let security_groups = (!self.config.security_group_ids.is_empty())
            .then(|| self.config.security_group_ids.clone());
        let mut subnet_group_checked_again = false;
        loop {
            self.ensure_subnet_group().await?;
            info!(cluster = %id, tenant = %db.tenant, min_acu = capacity.min_acu, max_acu = capacity.max_acu, "creating Aurora cluster");
            let result = self
                .rds
                .create_db_cluster()
                .db_cluster_identifier(id)
                .engine(ENGINE)
                .set_engine_version(engine_version.clone())
                .master_username(&self.config.master_username)
                .manage_master_user_password(true)
                .set_master_user_secret_kms_key_id(self.config.kms_key_id.clone())
                .storage_encrypted(true)
                .set_kms_key_id(self.config.kms_key_id.clone())
                .deletion_protection(Self::desired_protection(db, role))
                .db_subnet_group_name(&self.config.subnet_group)
                .set_vpc_security_group_ids(security_groups.clone())
                .database_name(&self.config.database_name)
                .copy_tags_to_snapshot(true)
                .serverless_v2_scaling_configuration(scaling(capacity))
                .set_tags(Some(self.tags(db, role)))
                .send()
                .await;
            let error = match result {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            // The subnet group went away since it was checked (deleted out of band, or an
            // endpoint that lost its state): check again, which recreates it when the operator
            // has subnet ids, then try once more.
            if !subnet_group_checked_again
                && error
                    .as_service_error()
                    .is_some_and(|e| e.is_db_subnet_group_not_found_fault())
            {
                info!(subnet_group = %self.config.subnet_group, "the DB subnet group is gone; checking it again");
                self.subnet_group_ready.store(false, Ordering::Release);
                subnet_group_checked_again = true;
                continue;
            }
            let error = sdk_error(&self.rds_api, "CreateDBCluster", id, error);
            // Whatever AWS answered (another replica won a race, an earlier attempt of ours
            // that timed out went through after all, or moto's wrong code for a duplicate):
            // if the cluster exists now, the create is done. Decided by describing, never by
            // the error code.
            if !matches!(error, ProviderError::Unreachable { .. })
                && self.describe_cluster(id).await?.is_some()
            {
                debug!(cluster = %id, %error, "CreateDBCluster failed but the cluster exists");
                return Ok(());
            }
            return Err(error);
        }
    }

    /// `None` when the cluster has an available writer; otherwise the step taken.
    async fn ensure_writer(
        &self,
        cluster: &DbCluster,
        id: &str,
        db: &TenantDatabase,
        role: Role,
    ) -> Result<Option<Outcome<DatabaseConnection>>, ProviderError> {
        let writer = cluster
            .db_cluster_members()
            .iter()
            .find(|m| m.is_cluster_writer() == Some(true))
            .and_then(|m| m.db_instance_identifier())
            .map(str::to_owned);
        let writer_id = writer.unwrap_or_else(|| names::writer_instance_identifier(id));
        match self.instance_status(&writer_id).await? {
            Some(status) => Ok(not_available(
                &format!("writer instance {writer_id}"),
                &status,
                instance_state(&status),
            )),
            None if role == Role::Adopted && !cluster.db_cluster_members().is_empty() => Ok(None),
            None => {
                let _creating = self.create_lock.lock().await;
                if let Some(status) = self.instance_status(&writer_id).await? {
                    // Another reconcile in this process created it while this one waited.
                    return Ok(not_available(
                        &format!("writer instance {writer_id}"),
                        &status,
                        instance_state(&status),
                    ));
                }
                info!(instance = %writer_id, cluster = %id, "creating the serverless v2 writer");
                let result = self
                    .rds
                    .create_db_instance()
                    .db_instance_identifier(&writer_id)
                    .db_cluster_identifier(id)
                    .engine(ENGINE)
                    .db_instance_class(WRITER_CLASS)
                    .set_tags(Some(self.tags(db, role)))
                    .send()
                    .await;
                match result {
                    Ok(_) => {}
                    Err(e)
                        if e.as_service_error()
                            .is_some_and(|e| e.is_db_instance_already_exists_fault()) => {}
                    Err(e) => {
                        let error = sdk_error(&self.rds_api, "CreateDBInstance", &writer_id, e);
                        // As for the cluster: an instance that exists now means the create
                        // is done, whatever the error said.
                        if matches!(error, ProviderError::Unreachable { .. })
                            || self.instance_status(&writer_id).await?.is_none()
                        {
                            return Err(error);
                        }
                        debug!(instance = %writer_id, %error, "CreateDBInstance failed but the instance exists");
                    }
                }
                Ok(Some(Outcome::progressing(
                    "CreatingWriter",
                    format!("creating the serverless v2 writer {writer_id} of cluster {id}"),
                )))
            }
        }
    }

    /// Reads the managed master secret and builds the connection.
    async fn connection(
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
            })
            .and_then(|s| {
                serde_json::from_str(s).map_err(|e| ProviderError::MasterSecret {
                    cluster: id.to_owned(),
                    // serde_json's message names the position, never the content.
                    message: format!("it is not the JSON RDS writes ({e})"),
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

    async fn ensure_database(
        &self,
        db: &TenantDatabase,
    ) -> Result<Outcome<DatabaseConnection>, ProviderError> {
        let (id, role) = self.target(db);
        if role == Role::Dedicated && id == self.config.pool_cluster {
            return Ok(Outcome::terminal(
                "NameConflict",
                format!(
                    "tenant {} would get cluster {id}, which is the pool cluster; rename the tenant",
                    db.tenant
                ),
            ));
        }
        let Some(cluster) = self.describe_cluster(&id).await? else {
            if role == Role::Adopted {
                return Ok(Outcome::terminal(
                    "AdoptionFailed",
                    format!(
                        "cluster {id} named for adoption does not exist in this account and region"
                    ),
                ));
            }
            let recorded = db
                .recorded
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(&id));
            if recorded && role == Role::Dedicated && db.deletion_policy == DeletionPolicy::Retain {
                return Ok(Outcome::terminal(
                    "Missing",
                    format!(
                        "cluster {id} recorded in status no longer exists in AWS; with deletionPolicy Retain the operator does not create an empty one in its place. Restore it from a snapshot under the same identifier, or set deletionPolicy to Snapshot or Delete to get a new empty cluster"
                    ),
                ));
            }
            {
                let _creating = self.create_lock.lock().await;
                if self.describe_cluster(&id).await?.is_none() {
                    self.create_cluster(&id, db, role).await?;
                }
            }
            let (reason, verb) = if recorded {
                ("Recreating", "recreating")
            } else {
                ("Creating", "creating")
            };
            return Ok(Outcome::progressing(
                reason,
                format!("{verb} Aurora cluster {id}"),
            ));
        };
        let status = cluster.status().unwrap_or("unknown");
        if role == Role::Adopted && cluster.engine() != Some(ENGINE) {
            return Ok(Outcome::terminal(
                "AdoptionFailed",
                format!(
                    "cluster {id} runs engine {}, not {ENGINE}",
                    cluster.engine().unwrap_or("unknown")
                ),
            ));
        }
        if let Some(outcome) =
            not_available(&format!("cluster {id}"), status, cluster_state(status))
        {
            return Ok(outcome);
        }
        if role == Role::Adopted && !has_tag(cluster.tag_list(), tags::MANAGED_BY) {
            let arn = cluster.db_cluster_arn().unwrap_or(id.as_str()).to_owned();
            self.rds
                .add_tags_to_resource()
                .resource_name(&arn)
                .set_tags(Some(self.tags(db, role)))
                .send()
                .await
                .map_err(|e| sdk_error(&self.rds_api, "AddTagsToResource", &arn, e))?;
            info!(cluster = %id, tenant = %db.tenant, "adopted Aurora cluster");
        }
        // Drift: capacity from the plan, deletion protection from the policy.
        let want_capacity = self.desired_capacity(db, role);
        let have_capacity = cluster
            .serverless_v2_scaling_configuration()
            .map(|s| Capacity {
                min_acu: s.min_capacity().unwrap_or(-1.0),
                max_acu: s.max_capacity().unwrap_or(-1.0),
            });
        let want_protection = Self::desired_protection(db, role);
        let capacity_drift = have_capacity != Some(want_capacity);
        let protection_drift = cluster.deletion_protection() != Some(want_protection);
        if capacity_drift || protection_drift {
            debug!(cluster = %id, ?have_capacity, ?want_capacity, want_protection, "modifying Aurora cluster");
            let mut modify = self
                .rds
                .modify_db_cluster()
                .db_cluster_identifier(&id)
                .apply_immediately(true);
            if capacity_drift {
                modify = modify.serverless_v2_scaling_configuration(scaling(want_capacity));
            }
            if protection_drift {
                modify = modify.deletion_protection(want_protection);
            }
            modify
                .send()
                .await
                .map_err(|e| sdk_error(&self.rds_api, "ModifyDBCluster", &id, e))?;
            let what = match (capacity_drift, protection_drift) {
                (true, true) => format!(
                    "capacity to {}–{} ACU and deletion protection to {want_protection}",
                    want_capacity.min_acu, want_capacity.max_acu
                ),
                (true, false) => format!(
                    "capacity to {}–{} ACU",
                    want_capacity.min_acu, want_capacity.max_acu
                ),
                _ => format!("deletion protection to {want_protection}"),
            };
            return Ok(Outcome::progressing(
                "Modifying",
                format!("modifying cluster {id}: {what}"),
            ));
        }
        if let Some(outcome) = self.ensure_writer(&cluster, &id, db, role).await? {
            return Ok(outcome);
        }
        self.connection(&cluster, &id).await
    }

    async fn delete_database(
        &self,
        db: &TenantDatabase,
    ) -> Result<Outcome<Deletion>, ProviderError> {
        let (id, role) = self.target(db);
        if role == Role::Pool {
            return Ok(Outcome::Ready(Deletion::new(format!(
                "pooled tenant: the shared cluster {id} stays; the tenant's rows are the runtime's to remove"
            ))));
        }
        let snapshot = names::final_snapshot_identifier(&id);
        let Some(cluster) = self.describe_cluster(&id).await? else {
            let summary = match db.deletion_policy {
                DeletionPolicy::Retain => {
                    format!("cluster {id} no longer exists; nothing to retain")
                }
                DeletionPolicy::Delete => format!("cluster {id} deleted"),
                DeletionPolicy::Snapshot if self.snapshot_exists(&snapshot).await? => {
                    format!("cluster {id} deleted after final snapshot {snapshot}")
                }
                DeletionPolicy::Snapshot => {
                    format!(
                        "cluster {id} is gone, but no final snapshot {snapshot} exists (deleted outside the operator?)"
                    )
                }
            };
            return Ok(Outcome::Ready(Deletion::new(summary)));
        };
        let status = cluster.status().unwrap_or("unknown");
        if db.deletion_policy == DeletionPolicy::Retain {
            if !has_tag(cluster.tag_list(), tags::ORPHANED) {
                let arn = cluster.db_cluster_arn().unwrap_or(id.as_str()).to_owned();
                let tag = Tag::builder().key(tags::ORPHANED).value("true").build();
                self.rds
                    .add_tags_to_resource()
                    .resource_name(&arn)
                    .tags(tag)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.rds_api, "AddTagsToResource", &arn, e))?;
            }
            info!(cluster = %id, tenant = %db.tenant, "retained Aurora cluster, tagged orphaned");
            return Ok(Outcome::Ready(Deletion::new(format!(
                "cluster {id} retained and tagged {}=true",
                tags::ORPHANED
            ))));
        }
        match cluster_state(status) {
            ClusterState::Deleting => {
                return Ok(Outcome::progressing(
                    "Deleting",
                    format!("cluster {id} is being deleted"),
                ));
            }
            ClusterState::Busy { reason } => {
                return Ok(Outcome::progressing(
                    reason,
                    format!("waiting for cluster {id} ({status}) before deleting it"),
                ));
            }
            ClusterState::Available | ClusterState::Stopped | ClusterState::Failed => {}
        }
        if cluster.deletion_protection() == Some(true) {
            self.rds
                .modify_db_cluster()
                .db_cluster_identifier(&id)
                .deletion_protection(false)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| sdk_error(&self.rds_api, "ModifyDBCluster", &id, e))?;
            return Ok(Outcome::progressing(
                "Modifying",
                format!("turning off deletion protection of cluster {id} before deleting it"),
            ));
        }
        let members: Vec<String> = cluster
            .db_cluster_members()
            .iter()
            .filter_map(|m| m.db_instance_identifier())
            .map(str::to_owned)
            .collect();
        if !members.is_empty() {
            for instance in &members {
                if self
                    .instance_status(instance)
                    .await?
                    .as_deref()
                    .is_some_and(|s| s != "deleting")
                {
                    info!(instance = %instance, cluster = %id, "deleting DB instance");
                    match self
                        .rds
                        .delete_db_instance()
                        .db_instance_identifier(instance)
                        .skip_final_snapshot(true)
                        .send()
                        .await
                    {
                        Ok(_) => {}
                        Err(e)
                            if e.as_service_error()
                                .is_some_and(|e| e.is_db_instance_not_found_fault()) => {}
                        Err(e) => {
                            return Err(sdk_error(&self.rds_api, "DeleteDBInstance", instance, e));
                        }
                    }
                }
            }
            return Ok(Outcome::progressing(
                "Deleting",
                format!(
                    "deleting the instances of cluster {id}: {}",
                    members.join(", ")
                ),
            ));
        }
        let mut request = self.rds.delete_db_cluster().db_cluster_identifier(&id);
        if db.deletion_policy == DeletionPolicy::Snapshot {
            if self.snapshot_exists(&snapshot).await? {
                return Ok(Outcome::terminal(
                    "SnapshotExists",
                    format!(
                        "the final snapshot {snapshot} already exists (from an earlier cluster of this tenant?); rename or delete it and the deletion of cluster {id} continues"
                    ),
                ));
            }
            request = request.final_db_snapshot_identifier(&snapshot);
        } else {
            request = request.skip_final_snapshot(true);
        }
        info!(cluster = %id, tenant = %db.tenant, policy = ?db.deletion_policy, "deleting Aurora cluster");
        match request.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_db_cluster_not_found_fault()) => {}
            Err(e) => return Err(sdk_error(&self.rds_api, "DeleteDBCluster", &id, e)),
        }
        let message = match db.deletion_policy {
            DeletionPolicy::Snapshot => {
                format!("deleting cluster {id} after final snapshot {snapshot}")
            }
            _ => format!("deleting cluster {id}"),
        };
        Ok(Outcome::progressing("Deleting", message))
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
}

/// What RDS stores in the managed master user secret.
#[derive(serde::Deserialize)]
struct MasterCredentials {
    username: String,
    password: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_running_states_requeue() {
        for status in [
            "creating",
            "modifying",
            "backing-up",
            "upgrading",
            "scaling-compute",
            "some-new-state",
        ] {
            let outcome: Option<Outcome<()>> =
                not_available("cluster c", status, cluster_state(status));
            assert!(
                matches!(outcome, Some(Outcome::Progressing { .. })),
                "{status}: {outcome:?}"
            );
        }
        assert_eq!(
            cluster_state("backing-up"),
            ClusterState::Busy {
                reason: "BackingUp"
            }
        );
        assert_eq!(
            cluster_state("creating"),
            ClusterState::Busy { reason: "Creating" }
        );
    }

    #[test]
    fn failed_states_are_terminal_with_the_aws_status() {
        for status in [
            "failed",
            "inaccessible-encryption-credentials",
            "incompatible-parameters",
            "migration-failed",
        ] {
            match not_available::<()>("cluster c", status, cluster_state(status)) {
                Some(Outcome::Terminal { reason, message }) => {
                    assert_eq!(reason, "Terminal");
                    assert!(message.contains(status), "{message}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(instance_state("storage-full"), ClusterState::Failed);
    }

    #[test]
    fn available_is_the_only_ready_state() {
        assert!(
            not_available::<()>("cluster c", "available", cluster_state("available")).is_none()
        );
        assert!(not_available::<()>("cluster c", "stopped", cluster_state("stopped")).is_some());
        assert!(not_available::<()>("cluster c", "deleting", cluster_state("deleting")).is_some());
    }
}
