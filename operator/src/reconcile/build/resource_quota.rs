//! The dedicated namespace's ResourceQuota, from the plan's `quota` (none when the plan has
//! none).

use k8s_openapi::api::core::v1::ResourceQuota;
use serde_json::json;

use super::{BuildError, BuildInput, metadata, object};
use crate::config::OperatorConfig;

pub fn build(
    input: &BuildInput,
    config: &OperatorConfig,
) -> Result<Option<ResourceQuota>, BuildError> {
    let Some(quota) = &input.plan.quota else {
        return Ok(None);
    };
    object(
        "ResourceQuota",
        &input.tenant,
        json!({
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": metadata(input, config, "tenant-quota"),
            "spec": { "hard": {
                "requests.cpu": quota.cpu,
                "requests.memory": quota.memory,
                "limits.cpu": quota.cpu,
                "limits.memory": quota.memory,
                "pods": quota.pods.to_string(),
            } },
        }),
    )
    .map(Some)
}
