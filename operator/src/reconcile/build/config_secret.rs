//! The runtime's tenant config Secret (format: `emporium-tenant-config`), in the tenant's
//! namespace (dedicated) or the pool's (pooled), labelled so the runtime finds it.

use emporium_tenant_config::{TENANT_CONFIG_KEY, TENANT_SECRET_LABEL};
use k8s_openapi::{ByteString, api::core::v1::Secret};
use serde_json::json;

use super::{BuildError, BuildInput, config_secret_name, metadata, object};
use crate::config::OperatorConfig;

pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<Secret, BuildError> {
    let mut meta = metadata(input, config, &config_secret_name(&input.tenant));
    meta["labels"][TENANT_SECRET_LABEL] = json!("true");
    let mut secret: Secret = object(
        "Secret",
        &input.tenant,
        json!({ "apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque" }),
    )?;
    secret.data = Some(
        [(
            TENANT_CONFIG_KEY.to_owned(),
            ByteString(input.tenant_config.to_secret_data()),
        )]
        .into(),
    );
    Ok(secret)
}
