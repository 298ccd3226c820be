//! The runtime's ServiceAccount, annotated with the tenant's IAM role (IRSA) when configured.

use k8s_openapi::api::core::v1::ServiceAccount;
use serde_json::json;

use super::{BuildError, BuildInput, WORKLOAD_NAME, metadata, object};
use crate::config::OperatorConfig;

pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<ServiceAccount, BuildError> {
    let mut meta = metadata(input, config, WORKLOAD_NAME);
    if !config.tenant_role_arn.is_empty() {
        meta["annotations"] = json!({ "eks.amazonaws.com/role-arn": config.tenant_role_arn.replace("{tenant}", &input.tenant) });
    }
    object(
        "ServiceAccount",
        &input.tenant,
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": meta,
            "automountServiceAccountToken": true,
        }),
    )
}
