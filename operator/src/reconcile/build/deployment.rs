//! The dedicated tenant's runtime Deployment. Replicas are left to the autoscaler (the field is
//! never applied), so correcting drift never fights the HPA.

use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;

use super::{
    BuildError, BuildInput, WORKLOAD_NAME, metadata, object, pod_selector, runtime_pod_template,
};
use crate::config::OperatorConfig;

pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<Deployment, BuildError> {
    let selector = pod_selector(&input.tenant);
    object(
        "Deployment",
        &input.tenant,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": metadata(input, config, WORKLOAD_NAME),
            "spec": {
                "selector": { "matchLabels": selector },
                "revisionHistoryLimit": 3,
                "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
                "template": runtime_pod_template(&selector, WORKLOAD_NAME, &input.plan.resources, config),
            },
        }),
    )
}
