//! Snapshot tests of the builders: each tier's full object set is compared, as YAML, with its
//! insta snapshot under `snapshots/`. Accept a deliberate change with `cargo insta review` (or
//! `INSTA_UPDATE=always`) and commit the `.snap` file.

use emporium_tenant_config::{PaymentProvider, Payments, TenantConfig};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::*;
use crate::crd::{
    CpuMemory, DatabaseSizing, PlanQuota, ReplicaRange, Storefront, StorefrontPlan, StorefrontSpec,
};

pub fn sample_plan(name: &str, tier: Tier) -> StorefrontPlan {
    StorefrontPlan::new(
        name,
        StorefrontPlanSpec {
            tier,
            replicas: ReplicaRange { min: 2, max: 6 },
            target_cpu_utilization_percent: 70,
            scale_down_stabilization_seconds: 300,
            resources: PlanResources {
                requests: CpuMemory {
                    cpu: "250m".into(),
                    memory: "256Mi".into(),
                },
                limits: CpuMemory {
                    cpu: "1".into(),
                    memory: "512Mi".into(),
                },
            },
            quota: Some(PlanQuota {
                cpu: "8".into(),
                memory: "16Gi".into(),
                pods: 30,
            }),
            database: DatabaseSizing {
                min_capacity: 0.5,
                max_capacity: 4.0,
            },
            tables: Default::default(),
            expected_usage: None,
        },
    )
}

pub fn sample_storefront(name: &str, plan: &str) -> Storefront {
    let mut storefront = Storefront::new(
        name,
        StorefrontSpec {
            display_name: "Acme Outfitters".into(),
            domains: vec![Hostname(format!("{name}.example.com"))],
            plan: plan.into(),
            theme_color: Some("#0f766e".into()),
            database: Default::default(),
            catalog: Default::default(),
            payments: Default::default(),
            owner: None,
            paused: false,
        },
    );
    storefront.metadata.uid = Some("0b9e6c1e-5f1a-4a53-9d7e-acme00000001".into());
    storefront
}

fn input(tier: Tier) -> BuildInput {
    let storefront = sample_storefront("acme", "premium");
    BuildInput {
        tenant: "acme".into(),
        tier,
        plan_name: "premium".into(),
        plan: sample_plan("premium", tier).spec,
        owner: OwnerReference {
            api_version: "emporium.dev/v1alpha1".into(),
            kind: "Storefront".into(),
            name: "acme".into(),
            uid: "0b9e6c1e-5f1a-4a53-9d7e-acme00000001".into(),
            controller: Some(true),
            block_owner_deletion: None,
        },
        routed_domains: storefront.spec.domains.clone(),
        ingress_group: Some("emporium-0".into()),
        tenant_config: TenantConfig {
            tenant_id: "0b9e6c1e-5f1a-4a53-9d7e-acme00000001".into(),
            name: Some("acme".into()),
            display_name: "Acme Outfitters".into(),
            domains: vec!["acme.example.com".into()],
            tier: tier.into(),
            theme_color: None,
            database_url: String::new(),
            tables: crate::reconcile::tenant_data::table_names("acme", tier),
            admin_key: "sk_admin_test".into(),
            payments: Payments {
                provider: PaymentProvider::Manual,
                secret_key: None,
                webhook_secret: None,
                api_base: None,
            },
            owner_email: None,
            order_events_queue_url: None,
        },
    }
}

fn config() -> OperatorConfig {
    OperatorConfig {
        runtime_image: "registry.example.com/emporium/storefront:1.0.0".into(),
        tenant_role_arn: "arn:aws:iam::123456789012:role/emporium-tenant-{tenant}".into(),
        certificate_arn: "arn:aws:acm:eu-west-1:123456789012:certificate/abc".into(),
        waf_acl_arn: "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/emporium/def".into(),
        load_balancer_cidrs: vec!["10.0.0.0/16".into()],
        ..OperatorConfig::default()
    }
}

/// Every object of `resources` in apply order, as YAML values (field order kept).
fn documents(resources: &TenantResources) -> Vec<serde_yaml::Value> {
    let TenantResources {
        namespace,
        service_account,
        role,
        role_binding,
        resource_quota,
        limit_range,
        network_policy,
        config_secret,
        deployment,
        service,
        autoscaler,
        disruption_budget,
        ingress,
    } = resources;
    let docs: Vec<Option<serde_yaml::Value>> = vec![
        namespace.as_ref().map(yaml),
        service_account.as_ref().map(yaml),
        role.as_ref().map(yaml),
        role_binding.as_ref().map(yaml),
        resource_quota.as_ref().map(yaml),
        limit_range.as_ref().map(yaml),
        network_policy.as_ref().map(yaml),
        // The Secret's bytes are base64 JSON; snapshot the decoded config instead.
        config_secret.as_ref().map(|secret| {
            let mut shown = secret.clone();
            shown.data = None;
            yaml(&shown)
        }),
        deployment.as_ref().map(yaml),
        service.as_ref().map(yaml),
        autoscaler.as_ref().map(yaml),
        disruption_budget.as_ref().map(yaml),
        ingress.as_ref().map(yaml),
    ];
    docs.into_iter().flatten().collect()
}

fn yaml<T: serde::Serialize>(object: &T) -> serde_yaml::Value {
    serde_yaml::to_value(object).expect("objects serialise")
}

#[test]
fn dedicated_tenant_objects_match_the_snapshot() {
    let resources = tenant_resources(&input(Tier::Dedicated), &config()).expect("builds");
    insta::assert_yaml_snapshot!("dedicated", documents(&resources));
}

#[test]
fn pooled_tenant_objects_match_the_snapshot() {
    let resources = tenant_resources(&input(Tier::Pooled), &config()).expect("builds");
    insta::assert_yaml_snapshot!("pooled", documents(&resources));
}

#[test]
fn pool_objects_match_the_snapshot() {
    let pool::PoolResources {
        namespace,
        service_account,
        role,
        role_binding,
        deployment,
        service,
        autoscaler,
        disruption_budget,
        network_policy,
    } = pool::build(&config()).expect("builds");
    let docs = vec![
        yaml(&namespace),
        yaml(&service_account),
        yaml(&role),
        yaml(&role_binding),
        yaml(&deployment),
        yaml(&service),
        yaml(&autoscaler),
        yaml(&disruption_budget),
        yaml(&network_policy),
    ];
    insta::assert_yaml_snapshot!("pool", docs);
}

#[test]
fn dedicated_namespace_enforces_the_restricted_pod_security_standard() {
    let resources = tenant_resources(&input(Tier::Dedicated), &config()).expect("builds");
    let labels = resources
        .namespace
        .expect("a namespace")
        .metadata
        .labels
        .expect("labels");
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
}

#[test]
fn every_dedicated_child_is_owned_by_the_storefront_and_labelled_with_the_tenant() {
    let resources = tenant_resources(&input(Tier::Dedicated), &config()).expect("builds");
    let metas = [
        resources.service_account.map(|o| o.metadata),
        resources.config_secret.map(|o| o.metadata),
        resources.deployment.map(|o| o.metadata),
        resources.service.map(|o| o.metadata),
        resources.autoscaler.map(|o| o.metadata),
        resources.disruption_budget.map(|o| o.metadata),
        resources.ingress.map(|o| o.metadata),
    ];
    for meta in metas.into_iter().map(|m| m.expect("built")) {
        assert_eq!(meta.namespace.as_deref(), Some("store-acme"));
        assert_eq!(
            meta.owner_references.unwrap_or_default()[0].uid,
            "0b9e6c1e-5f1a-4a53-9d7e-acme00000001"
        );
        assert_eq!(
            meta.labels
                .unwrap_or_default()
                .get(TENANT_LABEL)
                .map(String::as_str),
            Some("acme")
        );
    }
}

#[test]
fn the_deployment_leaves_replicas_to_the_autoscaler() {
    let resources = tenant_resources(&input(Tier::Dedicated), &config()).expect("builds");
    let spec = resources.deployment.expect("a deployment").spec;
    assert_eq!(spec.replicas, None);
    let hpa = resources.autoscaler.expect("an hpa").spec;
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 6));
}

#[test]
fn the_config_secret_carries_the_tenant_config_for_the_runtime() {
    let resources = tenant_resources(&input(Tier::Pooled), &config()).expect("builds");
    let secret = resources.config_secret.expect("a secret");
    assert_eq!(secret.metadata.namespace.as_deref(), Some("emporium-pool"));
    let bytes = secret
        .data
        .expect("data")
        .get(emporium_tenant_config::TENANT_CONFIG_KEY)
        .cloned()
        .expect("tenant.json");
    let parsed = TenantConfig::from_secret_data(Some(&bytes.0)).expect("parses");
    assert_eq!(parsed.tables.catalog, "emporium_pool-catalog");
}

#[test]
fn a_tenant_without_routed_domains_gets_no_ingress() {
    let mut input = input(Tier::Dedicated);
    input.routed_domains.clear();
    input.ingress_group = None;
    assert!(
        tenant_resources(&input, &config())
            .expect("builds")
            .ingress
            .is_none()
    );
}

#[test]
fn runtime_pods_go_where_the_node_selector_says_with_the_extra_environment() {
    let placed = OperatorConfig {
        runtime_node_selector: BTreeMap::from([("emporium.dev/node".into(), "real".into())]),
        runtime_env: vec![("REDIS_URL".into(), "redis://10.245.0.1:6379/".into())],
        ..config()
    };
    let resources = tenant_resources(&input(Tier::Dedicated), &placed).expect("builds");
    let pod = resources
        .deployment
        .expect("a deployment")
        .spec
        .template
        .spec
        .expect("a pod spec");
    assert_eq!(
        pod.node_selector,
        Some(BTreeMap::from([(
            "emporium.dev/node".into(),
            "real".into()
        )]))
    );
    let tolerated: Vec<_> = pod
        .tolerations
        .iter()
        .flatten()
        .map(|t| (t.key.as_deref(), t.value.as_deref(), t.effect.as_deref()))
        .collect();
    assert_eq!(
        tolerated,
        vec![(Some("emporium.dev/node"), Some("real"), Some("NoSchedule"))]
    );
    let env: Vec<(String, Option<String>)> = pod.containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    assert!(env.contains(&("REDIS_URL".into(), Some("redis://10.245.0.1:6379/".into()))));
    // The runtime watches the Secrets of its own namespace, the only ones its Role lets it read.
    assert!(
        env.iter()
            .any(|(name, _)| name == "EMPORIUM_WATCH_NAMESPACE")
    );

    let plain = tenant_resources(&input(Tier::Dedicated), &config()).expect("builds");
    let pod = plain.deployment.expect("a deployment").spec.template.spec;
    assert_eq!(pod.expect("a pod spec").node_selector, None);
}
