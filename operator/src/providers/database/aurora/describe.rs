//! Observing RDS: a cluster, an instance's status, whether a snapshot exists. Not-found is an
//! answer (`None`/`false`), not an error.

use aws_sdk_rds::types::DbCluster;

use super::AuroraProvider;
use crate::providers::{ProviderError, aws::sdk_error};

impl AuroraProvider {
    pub(super) async fn describe_cluster(
        &self,
        id: &str,
    ) -> Result<Option<DbCluster>, ProviderError> {
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
    pub(super) async fn instance_status(&self, id: &str) -> Result<Option<String>, ProviderError> {
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

    pub(super) async fn snapshot_exists(&self, id: &str) -> Result<bool, ProviderError> {
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
}
