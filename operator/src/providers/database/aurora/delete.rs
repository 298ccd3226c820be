//! Releasing a tenant's cluster per its deletion policy: retain (tagged orphaned), or delete
//! its instances and then the cluster, with a final snapshot under a deterministic name.

use aws_sdk_rds::types::Tag;
use tracing::info;

use super::{
    AuroraProvider, Role, has_tag,
    state::{ClusterState, cluster_state},
};
use crate::providers::{
    Deletion, DeletionPolicy, Outcome, ProviderError, aws::sdk_error, database::TenantDatabase,
    names, tags,
};

impl AuroraProvider {
    /// A pooled tenant: the shared cluster stays; its login role and schema go (Delete,
    /// Snapshot: the rows were exported or purged before) or stay (Retain).
    async fn delete_pooled_login(
        &self,
        id: &str,
        db: &TenantDatabase,
    ) -> Result<Outcome<Deletion>, ProviderError> {
        let Some(cluster) = self.describe_cluster(id).await? else {
            return Ok(Outcome::Ready(Deletion::new(format!(
                "pool cluster {id} no longer exists; no login role to remove"
            ))));
        };
        let master = match self.master_login(&cluster, id).await? {
            Outcome::Ready(master) => master,
            Outcome::Progressing { reason, message } => {
                return Ok(Outcome::Progressing { reason, message });
            }
            Outcome::Terminal { reason, message } => {
                return Ok(Outcome::Terminal { reason, message });
            }
        };
        let role = super::login_role(&self.config.prefix, &db.tenant, &db.tenant_id);
        let summary = self.drop_login(&master, &role, db).await?;
        Ok(Outcome::Ready(Deletion::new(format!(
            "pooled tenant on the shared cluster {id}: {summary}"
        ))))
    }

    pub(super) async fn delete_database(
        &self,
        db: &TenantDatabase,
    ) -> Result<Outcome<Deletion>, ProviderError> {
        let (id, role) = self.target(db);
        if role == Role::Pool {
            return self.delete_pooled_login(&id, db).await;
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
