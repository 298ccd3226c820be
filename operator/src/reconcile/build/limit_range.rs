//! Defaults for containers in the dedicated namespace that name no resources, so the quota
//! never blocks a pod for lack of requests.

use k8s_openapi::api::core::v1::LimitRange;
use serde_json::json;

use super::{BuildError, BuildInput, metadata, object};
use crate::config::OperatorConfig;

pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<LimitRange, BuildError> {
    let resources = &input.plan.resources;
    object(
        "LimitRange",
        &input.tenant,
        json!({
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": metadata(input, config, "tenant-defaults"),
            "spec": { "limits": [{
                "type": "Container",
                "defaultRequest": { "cpu": resources.requests.cpu, "memory": resources.requests.memory },
                "default": { "cpu": resources.limits.cpu, "memory": resources.limits.memory },
            }] },
        }),
    )
}
