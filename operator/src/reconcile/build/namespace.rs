//! The dedicated tenant's Namespace, enforcing the Pod Security Standard `restricted` so the
//! API server itself refuses a non-compliant pod.

use k8s_openapi::api::core::v1::Namespace;
use serde_json::json;

use super::{BuildError, BuildInput, object, tenant_labels};
use crate::config::OperatorConfig;

pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<Namespace, BuildError> {
    let mut labels = tenant_labels(&input.tenant);
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".to_owned(),
        );
        labels.insert(
            format!("pod-security.kubernetes.io/{mode}-version"),
            "latest".to_owned(),
        );
    }
    object(
        "Namespace",
        &input.tenant,
        json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": input.namespace(config),
                "labels": labels,
                "ownerReferences": [input.owner],
            },
        }),
    )
}
