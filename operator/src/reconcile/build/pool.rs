//! The shared pool that serves every pooled tenant: one Deployment, Service, HPA, PDB and
//! NetworkPolicy in the pool namespace, owned by the operator itself (no Storefront owns them).
//! Pooled tenants add only their config Secret and Ingress beside it.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{Namespace, Service, ServiceAccount},
    networking::v1::NetworkPolicy,
    policy::v1::PodDisruptionBudget,
    rbac::v1::{Role, RoleBinding},
};
use serde_json::{Value, json};

use super::{BuildError, HTTP_PORT, MANAGED_BY, autoscaler_spec, object, runtime_pod_template};
use crate::{
    config::OperatorConfig,
    crd::{CpuMemory, PlanResources},
};

/// Name of the pool's Deployment, Service, HPA, PDB and ServiceAccount.
pub const POOL_NAME: &str = "storefront-pool";
/// Label marking the pool's objects (they carry no tenant label).
pub const POOL_LABEL: &str = "emporium.dev/pool";

/// The pool's objects; applied in this order.
#[derive(Debug, Clone)]
pub struct PoolResources {
    pub namespace: Namespace,
    pub service_account: ServiceAccount,
    pub role: Role,
    pub role_binding: RoleBinding,
    pub deployment: Deployment,
    pub service: Service,
    pub autoscaler: HorizontalPodAutoscaler,
    pub disruption_budget: PodDisruptionBudget,
    pub network_policy: NetworkPolicy,
}

fn pool_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        (POOL_LABEL.to_owned(), "true".to_owned()),
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

fn pool_selector() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "storefront".to_owned()),
        (POOL_LABEL.to_owned(), "true".to_owned()),
    ])
}

fn meta(config: &OperatorConfig, name: &str) -> Value {
    json!({ "name": name, "namespace": config.pool_namespace, "labels": pool_labels() })
}

/// The pool's resources per replica: sized for many small tenants.
pub(crate) fn pool_resources() -> PlanResources {
    PlanResources {
        requests: CpuMemory {
            cpu: "500m".to_owned(),
            memory: "512Mi".to_owned(),
        },
        limits: CpuMemory {
            cpu: "2".to_owned(),
            memory: "1Gi".to_owned(),
        },
    }
}

pub fn build(config: &OperatorConfig) -> Result<PoolResources, BuildError> {
    let mut namespace_labels = pool_labels();
    for mode in ["enforce", "audit", "warn"] {
        namespace_labels.insert(
            format!("pod-security.kubernetes.io/{mode}"),
            "restricted".to_owned(),
        );
    }
    let selector = pool_selector();
    let role_name = "storefront-tenant-config-reader";
    Ok(PoolResources {
        namespace: object(
            "Namespace",
            "pool",
            json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": { "name": config.pool_namespace, "labels": namespace_labels },
            }),
        )?,
        service_account: object(
            "ServiceAccount",
            "pool",
            json!({ "apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(config, POOL_NAME) }),
        )?,
        role: object(
            "Role",
            "pool",
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": meta(config, role_name),
                "rules": [{ "apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"] }],
            }),
        )?,
        role_binding: object(
            "RoleBinding",
            "pool",
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": meta(config, role_name),
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name },
                "subjects": [{ "kind": "ServiceAccount", "name": POOL_NAME, "namespace": config.pool_namespace }],
            }),
        )?,
        deployment: object(
            "Deployment",
            "pool",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": meta(config, POOL_NAME),
                "spec": {
                    "selector": { "matchLabels": selector },
                    "revisionHistoryLimit": 3,
                    "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxUnavailable": 0, "maxSurge": 1 } },
                    "template": runtime_pod_template(&selector, POOL_NAME, &pool_resources(), config),
                },
            }),
        )?,
        service: object(
            "Service",
            "pool",
            json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": meta(config, POOL_NAME),
                "spec": {
                    "type": "ClusterIP",
                    "selector": selector,
                    "ports": [{ "name": "http", "protocol": "TCP", "port": 80, "targetPort": HTTP_PORT }],
                },
            }),
        )?,
        autoscaler: object(
            "HorizontalPodAutoscaler",
            "pool",
            json!({
                "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                "metadata": meta(config, POOL_NAME),
                "spec": autoscaler_spec(POOL_NAME, config.pool_min_replicas, config.pool_max_replicas, 70, 300),
            }),
        )?,
        disruption_budget: object(
            "PodDisruptionBudget",
            "pool",
            json!({
                "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                "metadata": meta(config, POOL_NAME),
                "spec": { "maxUnavailable": 1, "selector": { "matchLabels": selector } },
            }),
        )?,
        network_policy: object(
            "NetworkPolicy",
            "pool",
            json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": meta(config, "pool-isolation"),
                "spec": {
                    "podSelector": {},
                    "policyTypes": ["Ingress"],
                    "ingress": super::network_policy::ingress_rules(config),
                },
            }),
        )?,
    })
}
