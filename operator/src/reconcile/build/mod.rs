//! Build: pure functions from a validated tenant to the Kubernetes objects it needs, one file
//! per kind. No client, no clock, no I/O: everything variable arrives in [`BuildInput`].

mod config_secret;
mod deployment;
mod hpa;
mod ingress;
mod limit_range;
mod namespace;
mod network_policy;
mod pdb;
pub mod pool;
mod rbac;
mod resource_quota;
mod service;
mod service_account;

use std::collections::BTreeMap;

use emporium_tenant_config::TenantConfig;
use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        autoscaling::v2::HorizontalPodAutoscaler,
        core::v1::{LimitRange, Namespace, ResourceQuota, Secret, Service, ServiceAccount},
        networking::v1::{Ingress, NetworkPolicy},
        policy::v1::PodDisruptionBudget,
        rbac::v1::{Role, RoleBinding},
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use serde_json::Value;

use crate::{
    config::OperatorConfig,
    crd::{Hostname, PlanResources, StorefrontPlanSpec, Tier},
};

/// Label naming the tenant on everything the operator makes for it (orphans are found by it).
pub use emporium_tenant_config::TENANT_LABEL;
/// `app.kubernetes.io/managed-by` value on everything the operator makes.
pub const MANAGED_BY: &str = "emporium-operator";
/// Name of the dedicated tenant's workload objects inside its namespace.
pub const WORKLOAD_NAME: &str = "storefront";
/// Port the storefront runtime listens on.
pub const HTTP_PORT: i32 = 8080;

/// A child object could not be built; always a bug in a builder, never a user error.
#[derive(Debug, thiserror::Error)]
#[error(
    "building the {kind} for tenant `{tenant}` produced an invalid object ({source}); this is an operator bug, please report it"
)]
pub struct BuildError {
    kind: &'static str,
    tenant: String,
    source: serde_json::Error,
}

/// Everything the builders read, already validated and resolved by earlier steps.
#[derive(Debug, Clone)]
pub struct BuildInput {
    /// The tenant id: the Storefront's name.
    pub tenant: String,
    pub tier: Tier,
    pub plan_name: String,
    pub plan: StorefrontPlanSpec,
    /// Owner reference to the Storefront (controller = true).
    pub owner: OwnerReference,
    /// Domains routed to this tenant (claimed ones held by older tenants removed).
    pub routed_domains: Vec<Hostname>,
    /// The ALB ingress group the tenant is assigned to; `None` when it has nothing to route.
    pub ingress_group: Option<String>,
    /// The runtime's tenant config, written to the config Secret.
    pub tenant_config: TenantConfig,
}

impl BuildInput {
    /// Namespace holding the tenant's objects: `store-<name>` or the pool's.
    pub fn namespace(&self, config: &OperatorConfig) -> String {
        tenant_namespace(&self.tenant, self.tier, config)
    }
}

/// Namespace holding a tenant's objects.
pub fn tenant_namespace(tenant: &str, tier: Tier, config: &OperatorConfig) -> String {
    match tier {
        Tier::Dedicated => format!("store-{tenant}"),
        Tier::Pooled => config.pool_namespace.clone(),
    }
}

/// Name of the tenant config Secret in the tenant's namespace.
pub fn config_secret_name(tenant: &str) -> String {
    format!("tenant-{tenant}")
}

/// Every object a tenant has. [`super::apply`] destructures this without `..`, so a kind that
/// is built but never applied does not compile.
#[derive(Debug, Clone, Default)]
pub struct TenantResources {
    pub namespace: Option<Namespace>,
    pub service_account: Option<ServiceAccount>,
    pub role: Option<Role>,
    pub role_binding: Option<RoleBinding>,
    pub resource_quota: Option<ResourceQuota>,
    pub limit_range: Option<LimitRange>,
    pub network_policy: Option<NetworkPolicy>,
    pub config_secret: Option<Secret>,
    pub deployment: Option<Deployment>,
    pub service: Option<Service>,
    pub autoscaler: Option<HorizontalPodAutoscaler>,
    pub disruption_budget: Option<PodDisruptionBudget>,
    pub ingress: Option<Ingress>,
}

/// Builds every object the tenant needs for its tier.
pub fn tenant_resources(
    input: &BuildInput,
    config: &OperatorConfig,
) -> Result<TenantResources, BuildError> {
    let ingress = ingress::build(input, config)?;
    let config_secret = Some(config_secret::build(input, config)?);
    Ok(match input.tier {
        Tier::Pooled => TenantResources {
            config_secret,
            ingress,
            ..TenantResources::default()
        },
        Tier::Dedicated => TenantResources {
            namespace: Some(namespace::build(input, config)?),
            service_account: Some(service_account::build(input, config)?),
            role: Some(rbac::build_role(input, config)?),
            role_binding: Some(rbac::build_role_binding(input, config)?),
            resource_quota: resource_quota::build(input, config)?,
            limit_range: Some(limit_range::build(input, config)?),
            network_policy: Some(network_policy::build(input, config)?),
            config_secret,
            deployment: Some(deployment::build(input, config)?),
            service: Some(service::build(input, config)?),
            autoscaler: Some(hpa::build(input, config)?),
            disruption_budget: Some(pdb::build(input, config)?),
            ingress,
        },
    })
}

/// Labels on every object made for `tenant`.
pub fn tenant_labels(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TENANT_LABEL.to_owned(), tenant.to_owned()),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            MANAGED_BY.to_owned(),
        ),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "emporium".to_owned(),
        ),
    ])
}

/// Labels selecting a tenant's runtime pods.
pub fn pod_selector(tenant: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "storefront".to_owned()),
        (TENANT_LABEL.to_owned(), tenant.to_owned()),
    ])
}

/// Metadata shared by the tenant's namespaced objects.
fn metadata(input: &BuildInput, config: &OperatorConfig, name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "namespace": input.namespace(config),
        "labels": tenant_labels(&input.tenant),
        "ownerReferences": [input.owner],
    })
}

/// The runtime's pod template, shared by dedicated Deployments and the pool: non-root,
/// read-only root filesystem, no capabilities (Pod Security `restricted`), probes, resources and
/// spread over zones.
fn runtime_pod_template(
    selector: &BTreeMap<String, String>,
    service_account: &str,
    resources: &PlanResources,
    config: &OperatorConfig,
) -> Value {
    let mut template = serde_json::json!({
        "metadata": { "labels": selector },
        "spec": {
            "serviceAccountName": service_account,
            "terminationGracePeriodSeconds": 30,
            "securityContext": {
                "runAsNonRoot": true,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "fsGroup": 10001,
                "seccompProfile": { "type": "RuntimeDefault" },
            },
            "topologySpreadConstraints": [
                {
                    "maxSkew": 1,
                    "topologyKey": "topology.kubernetes.io/zone",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": { "matchLabels": selector },
                },
                {
                    "maxSkew": 1,
                    "topologyKey": "kubernetes.io/hostname",
                    "whenUnsatisfiable": "ScheduleAnyway",
                    "labelSelector": { "matchLabels": selector },
                },
            ],
            "containers": [{
                "name": "storefront",
                "image": config.runtime_image,
                "ports": [{ "name": "http", "containerPort": HTTP_PORT, "protocol": "TCP" }],
                "env": [
                    { "name": "EMPORIUM_LISTEN", "value": format!("0.0.0.0:{HTTP_PORT}") },
                    { "name": "EMPORIUM_WATCH_SECRETS", "value": "true" },
                    { "name": "EMPORIUM_LOG_FORMAT", "value": "json" },
                    { "name": "POD_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
                    // The tenant's (or the pool's) Role grants Secrets in its own namespace only.
                    { "name": "EMPORIUM_WATCH_NAMESPACE", "valueFrom": { "fieldRef": { "fieldPath": "metadata.namespace" } } },
                ],
                "resources": {
                    "requests": { "cpu": resources.requests.cpu, "memory": resources.requests.memory },
                    "limits": { "cpu": resources.limits.cpu, "memory": resources.limits.memory },
                },
                "startupProbe": {
                    "httpGet": { "path": "/healthz", "port": "http" },
                    "periodSeconds": 2,
                    "failureThreshold": 30,
                },
                "livenessProbe": {
                    "httpGet": { "path": "/healthz", "port": "http" },
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                },
                "readinessProbe": {
                    "httpGet": { "path": "/readyz", "port": "http" },
                    "periodSeconds": 5,
                    "failureThreshold": 2,
                },
                "securityContext": {
                    "allowPrivilegeEscalation": false,
                    "readOnlyRootFilesystem": true,
                    "runAsNonRoot": true,
                    "capabilities": { "drop": ["ALL"] },
                },
                "volumeMounts": [{ "name": "tmp", "mountPath": "/tmp" }],
            }],
            "volumes": [{ "name": "tmp", "emptyDir": { "sizeLimit": "64Mi" } }],
        },
    });
    if !config.runtime_node_selector.is_empty() {
        template["spec"]["nodeSelector"] = serde_json::json!(config.runtime_node_selector);
        // Nodes set aside for the runtime carry a NoSchedule taint of the same key and value
        // (the local real node does), which keeps every other pod off them.
        template["spec"]["tolerations"] = config
            .runtime_node_selector
            .iter()
            .map(|(key, value)| {
                serde_json::json!({ "key": key, "operator": "Equal", "value": value, "effect": "NoSchedule" })
            })
            .collect();
    }
    if let Some(env) = template["spec"]["containers"][0]["env"].as_array_mut() {
        env.extend(
            config
                .runtime_env
                .iter()
                .map(|(name, value)| serde_json::json!({ "name": name, "value": value })),
        );
    }
    template
}

/// An `autoscaling/v2` spec scaling the Deployment `target` on CPU, with scale-down
/// stabilisation.
fn autoscaler_spec(
    target: &str,
    min: i32,
    max: i32,
    cpu_percent: i32,
    scale_down_seconds: i32,
) -> Value {
    serde_json::json!({
        "scaleTargetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": target },
        "minReplicas": min,
        "maxReplicas": max,
        "metrics": [{ "type": "Resource", "resource": {
            "name": "cpu",
            "target": { "type": "Utilization", "averageUtilization": cpu_percent },
        } }],
        "behavior": {
            "scaleDown": {
                "stabilizationWindowSeconds": scale_down_seconds,
                "policies": [{ "type": "Percent", "value": 50, "periodSeconds": 60 }],
            },
        },
    })
}

/// Turns a JSON manifest into the typed object; a mismatch is a builder bug.
fn object<T: serde::de::DeserializeOwned>(
    kind: &'static str,
    tenant: &str,
    value: Value,
) -> Result<T, BuildError> {
    serde_json::from_value(value).map_err(|source| BuildError {
        kind,
        tenant: tenant.to_owned(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod tests;
