//! The cluster lifecycle towards a request: the subnet group, the cluster (created once, even
//! under concurrent reconciles), drift of capacity and deletion protection, adoption tags and
//! the serverless v2 writer.

use std::sync::atomic::Ordering;

use aws_sdk_rds::types::{DbCluster, Tag};
use tracing::{debug, info};

use super::{
    AuroraProvider, ENGINE, Role, WRITER_CLASS, has_tag, scaling,
    state::{cluster_state, instance_state, not_available},
};
use crate::providers::{
    DeletionPolicy, Outcome, ProviderError,
    aws::sdk_error,
    database::{Capacity, DatabaseConnection, TenantDatabase},
    names, tags,
};

impl AuroraProvider {
    pub(super) async fn ensure_database(
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
        if role == Role::Adopted
            && let Some(owner) = foreign_owner(cluster.tag_list(), &db.tenant)
        {
            return Ok(Outcome::terminal(
                "AdoptionRefused",
                format!(
                    "cluster {id} named in spec.database.existingClusterIdentifier belongs to {owner}; a cluster is adopted only when no other Storefront owns it"
                ),
            ));
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
        if role == Role::Dedicated
            && let Some(outcome) = self.ensure_engine_version(&cluster, &id, db).await?
        {
            return Ok(outcome);
        }
        if let Some(outcome) = self.ensure_writer(&cluster, &id, db, role).await? {
            return Ok(outcome);
        }
        self.connection(&cluster, &id, db).await
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
}

/// The owner a cluster's tags name when it is not `tenant` (the pool, or another live
/// Storefront); `None` when untagged, retained (orphaned) or already `tenant`'s.
fn foreign_owner(tags: &[aws_sdk_rds::types::Tag], tenant: &str) -> Option<String> {
    let value = |key: &str| {
        tags.iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
    };
    if value(tags::POOL).is_some() {
        return Some("the shared pool".to_owned());
    }
    if value(tags::MANAGED_BY).is_none() || value(tags::ORPHANED).is_some() {
        return None;
    }
    match value(tags::TENANT) {
        Some(owner) if owner != tenant => Some(format!("Storefront `{owner}`")),
        _ => None,
    }
}

impl AuroraProvider {
    /// Moves a dedicated cluster to the requested engine version through `ModifyDBCluster`:
    /// minor versions in place, a major one only when the spec allows it, never down.
    /// `None` when the cluster already runs what was asked for.
    async fn ensure_engine_version(
        &self,
        cluster: &DbCluster,
        id: &str,
        db: &TenantDatabase,
    ) -> Result<Option<Outcome<DatabaseConnection>>, ProviderError> {
        let (Some(wanted), Some(running)) =
            (db.engine_version.as_deref(), cluster.engine_version())
        else {
            return Ok(None);
        };
        let step = match engine_step(running, wanted) {
            EngineStep::None => return Ok(None),
            EngineStep::Downgrade => {
                return Ok(Some(Outcome::terminal(
                    "DowngradeNotSupported",
                    format!(
                        "cluster {id} runs PostgreSQL {running}; database.engineVersion {wanted} is older and Aurora cannot downgrade in place. Set engineVersion to {running} or later"
                    ),
                )));
            }
            EngineStep::Major if !db.allow_major_version_upgrade => {
                return Ok(Some(Outcome::terminal(
                    "MajorUpgradeNotAllowed",
                    format!(
                        "cluster {id} runs PostgreSQL {running}; database.engineVersion {wanted} is another major version. Set database.allowMajorVersionUpgrade: true to upgrade it in place (with downtime), or set engineVersion back to {running}"
                    ),
                )));
            }
            step => step,
        };
        info!(cluster = %id, from = %running, to = %wanted, "upgrading the Aurora engine");
        self.rds
            .modify_db_cluster()
            .db_cluster_identifier(id)
            .engine_version(wanted)
            .allow_major_version_upgrade(step == EngineStep::Major)
            .apply_immediately(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.rds_api, "ModifyDBCluster", id, e))?;
        Ok(Some(Outcome::progressing(
            "Upgrading",
            format!("upgrading cluster {id} from PostgreSQL {running} to {wanted}"),
        )))
    }
}

/// What it takes to go from the running engine version to the wanted one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EngineStep {
    None,
    Minor,
    Major,
    Downgrade,
}

/// `wanted` may name a major version alone (`16`), which any `16.x` satisfies.
fn engine_step(running: &str, wanted: &str) -> EngineStep {
    let parse = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (have, want) = (parse(running), parse(wanted));
    if have.iter().zip(&want).all(|(h, w)| h == w) && want.len() <= have.len() {
        return EngineStep::None;
    }
    match want.cmp(&have) {
        std::cmp::Ordering::Less => EngineStep::Downgrade,
        _ if want.first() != have.first() => EngineStep::Major,
        _ => EngineStep::Minor,
    }
}

#[cfg(test)]
mod engine_tests {
    use super::*;

    #[test]
    fn engine_steps() {
        assert_eq!(engine_step("16.4", "16.4"), EngineStep::None);
        assert_eq!(engine_step("16.4", "16"), EngineStep::None);
        assert_eq!(engine_step("16.4", "16.6"), EngineStep::Minor);
        assert_eq!(engine_step("16.4", "17.2"), EngineStep::Major);
        assert_eq!(engine_step("16.4", "17"), EngineStep::Major);
        assert_eq!(engine_step("16.4", "16.1"), EngineStep::Downgrade);
        assert_eq!(engine_step("16.4", "15.8"), EngineStep::Downgrade);
    }
}
