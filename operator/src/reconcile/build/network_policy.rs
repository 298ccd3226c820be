//! From outside the tenant's namespace only the runtime's HTTP port is reachable, and never
//! from another tenant's namespace.

use k8s_openapi::api::networking::v1::NetworkPolicy;
use serde_json::{Value, json};

use super::{BuildError, BuildInput, HTTP_PORT, TENANT_LABEL, metadata, object};
use crate::config::OperatorConfig;

pub fn build(input: &BuildInput, config: &OperatorConfig) -> Result<NetworkPolicy, BuildError> {
    object(
        "NetworkPolicy",
        &input.tenant,
        json!({
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": metadata(input, config, "tenant-isolation"),
            "spec": { "podSelector": {}, "policyTypes": ["Ingress"], "ingress": ingress_rules(config) },
        }),
    )
}

/// Who may reach a namespace that serves shoppers (a dedicated tenant's, or the pool's): its
/// own pods; namespaces that belong to no tenant (ingress controllers, monitoring), on the
/// runtime's HTTP port only; and the load balancer's VPC addresses, on that port. Other tenants'
/// namespaces carry the tenant label and match nothing.
pub fn ingress_rules(config: &OperatorConfig) -> Vec<Value> {
    let http_port = json!([{ "protocol": "TCP", "port": HTTP_PORT }]);
    let mut rules = vec![
        json!({ "from": [{ "podSelector": {} }] }),
        json!({
            "from": [{ "namespaceSelector": { "matchExpressions": [
                { "key": TENANT_LABEL, "operator": "DoesNotExist" },
            ] } }],
            "ports": http_port,
        }),
    ];
    // ALB `target-type: ip` traffic arrives from the load balancer's VPC addresses, not pods.
    if !config.load_balancer_cidrs.is_empty() {
        let blocks: Vec<Value> = config
            .load_balancer_cidrs
            .iter()
            .map(|cidr| json!({ "ipBlock": { "cidr": cidr } }))
            .collect();
        rules.push(json!({ "from": blocks, "ports": http_port }));
    }
    rules
}
