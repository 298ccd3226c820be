//! What a test hands a real operator process: its flags for the local stack, and the
//! Storefronts it is to reconcile.

use serde_json::{Value, json};

use crate::Stack;

/// Flags for a real operator on the local stack: databases on its PostgreSQL, tables on moto,
/// reconciling only Storefronts matching `selector`, naming everything with `prefix`.
pub fn operator_args(
    port: u16,
    selector: &str,
    prefix: &str,
    pool_namespace: &str,
    password_key: &str,
) -> Vec<String> {
    let stack = Stack::get();
    vec![
        format!("--http-addr=127.0.0.1:{port}"),
        "--log-format=json".into(),
        "--database-provider=postgres".into(),
        "--tables-provider=dynamodb".into(),
        "--queues-provider=sqs".into(),
        format!(
            "--postgres-admin-url={}",
            stack.var("DATABASE_URL").expect("DATABASE_URL")
        ),
        format!("--postgres-password-key={password_key}"),
        "--postgres-tenant-host=127.0.0.1".into(),
        format!(
            "--postgres-tenant-port={}",
            stack.var("PGPORT").expect("PGPORT")
        ),
        // No load balancer controller here: routing is ready once the Ingress is applied.
        "--readiness-gate=applied".into(),
        format!("--storefront-selector={selector}"),
        format!("--name-prefix={prefix}"),
        format!("--pool-namespace={pool_namespace}"),
    ]
}

/// A Storefront as a merchant is onboarded with: store `name` on `plan`, labelled
/// `label: run` (the operator's selector), served on `<name>.localhost`, manual payments, its
/// data deleted or kept by `deletion_policy`.
pub fn storefront_manifest(
    name: &str,
    label: &str,
    run: &str,
    plan: &str,
    deletion_policy: &str,
) -> Value {
    json!({
        "apiVersion": "emporium.dev/v1alpha1",
        "kind": "Storefront",
        "metadata": { "name": name, "labels": { label: run } },
        "spec": {
            "displayName": format!("Store {name}"),
            "plan": plan,
            "domains": [format!("{name}.localhost")],
            "database": { "deletionPolicy": deletion_policy },
            "payments": { "provider": "manual" },
        },
    })
}

/// Writes `objects` to `path` as one multi-document YAML file for `kubectl apply -f`.
pub fn write_manifests(path: &std::path::Path, objects: &[Value]) {
    let docs: Vec<String> = objects
        .iter()
        .map(|o| serde_yaml::to_string(o).expect("a manifest as YAML"))
        .collect();
    std::fs::write(path, docs.join("---\n"))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
