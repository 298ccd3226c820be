//! The dedicated tenant's PodDisruptionBudget: node drains take one replica at a time.

use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use serde_json::json;

use super::{BuildError, BuildInput, WORKLOAD_NAME, metadata, object, pod_selector};
use crate::config::OperatorConfig;

pub fn build(
    input: &BuildInput,
    config: &OperatorConfig,
) -> Result<PodDisruptionBudget, BuildError> {
    object(
        "PodDisruptionBudget",
        &input.tenant,
        json!({
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": metadata(input, config, WORKLOAD_NAME),
            "spec": { "maxUnavailable": 1, "selector": { "matchLabels": pod_selector(&input.tenant) } },
        }),
    )
}
