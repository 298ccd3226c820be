//! The dedicated tenant's Service: the ALB's `target-type: ip` targets are its endpoints.

use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use super::{BuildError, BuildInput, HTTP_PORT, WORKLOAD_NAME, metadata, object, pod_selector};
use crate::config::OperatorConfig;

pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<Service, BuildError> {
    object(
        "Service",
        &input.tenant,
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(input, config, WORKLOAD_NAME),
            "spec": {
                "type": "ClusterIP",
                "selector": pod_selector(&input.tenant),
                "ports": [{ "name": "http", "protocol": "TCP", "port": 80, "targetPort": HTTP_PORT }],
            },
        }),
    )
}
