//! The runtime may read the tenant config Secrets in its own namespace, and nothing else.

use emporium_tenant_config::TENANT_SECRET_LABEL;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use serde_json::json;

use super::{BuildError, BuildInput, WORKLOAD_NAME, metadata, object};
use crate::config::OperatorConfig;

const ROLE_NAME: &str = "storefront-tenant-config-reader";

pub fn build_role(input: &BuildInput, config: &OperatorConfig) -> Result<Role, BuildError> {
    let mut meta = metadata(input, config, ROLE_NAME);
    meta["annotations"] =
        json!({ "emporium.dev/reads": format!("Secrets labelled {TENANT_SECRET_LABEL}=true") });
    object(
        "Role",
        &input.tenant,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"] }],
        }),
    )
}

pub fn build_role_binding(
    input: &BuildInput,
    config: &OperatorConfig,
) -> Result<RoleBinding, BuildError> {
    object(
        "RoleBinding",
        &input.tenant,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(input, config, ROLE_NAME),
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": ROLE_NAME },
            "subjects": [{ "kind": "ServiceAccount", "name": WORKLOAD_NAME, "namespace": input.namespace(config) }],
        }),
    )
}
