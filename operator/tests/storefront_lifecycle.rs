//! The operator against the real local API server: schema validation refuses bad input with
//! human messages, and a dedicated Storefront goes from apply to Ready to offboarded.
//!
//! Each test runs its own controller in-process, restricted by a label selector to the
//! Storefronts it created, with unique names: tests share one cluster.

use std::{sync::Arc, time::Duration};

use emporium_integration_tests::{Stack, eventually, install_crds};
use emporium_operator::{
    config::{DataProviderChoice, OperatorConfig, ReadinessGate},
    crd::{Phase, Storefront, StorefrontPlan},
    metrics::Metrics,
    reconcile,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{Namespace, Secret, Service},
    networking::v1::Ingress,
};
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid_like()[..8])
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:016x}",
        nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u128::from(std::process::id())
    )
}

fn plan(name: &str, tier: &str, max: i32) -> serde_json::Value {
    json!({
        "apiVersion": "emporium.dev/v1alpha1",
        "kind": "StorefrontPlan",
        "metadata": { "name": name },
        "spec": {
            "tier": tier,
            "replicas": { "min": 1, "max": max },
            "resources": {
                "requests": { "cpu": "100m", "memory": "128Mi" },
                "limits": { "cpu": "500m", "memory": "256Mi" },
            },
            "quota": { "cpu": "4", "memory": "8Gi", "pods": 20 },
            "database": { "minCapacity": 0.5, "maxCapacity": 2 },
        },
    })
}

fn storefront(name: &str, plan: &str, run: &str, domains: &[&str]) -> serde_json::Value {
    json!({
        "apiVersion": "emporium.dev/v1alpha1",
        "kind": "Storefront",
        "metadata": { "name": name, "labels": { "emporium.dev/test-run": run } },
        "spec": { "displayName": "Test Store", "plan": plan, "domains": domains },
    })
}

async fn apply<K>(api: &Api<K>, name: &str, value: serde_json::Value) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply("emporium-tests").force(),
        &Patch::Apply(&value),
    )
    .await
}

/// Starts a controller for the Storefronts labelled `emporium.dev/test-run=<run>`.
fn start_operator(client: &Client, run: &str) -> tokio::task::JoinHandle<()> {
    let config = OperatorConfig {
        runtime_image: "registry.invalid/emporium/storefront:test".into(),
        pool_namespace: format!("pool-{run}"),
        ingress_group_prefix: format!("emporium-{run}"),
        database_provider: DataProviderChoice::None,
        tables_provider: DataProviderChoice::None,
        readiness_gate: ReadinessGate::Applied,
        storefront_selector: format!("emporium.dev/test-run={run}"),
        concurrency: 4,
        ..OperatorConfig::default()
    };
    let client = client.clone();
    tokio::spawn(async move {
        let _ = reconcile::run(
            client,
            config,
            reconcile::tenant_data::DataProviders::default(),
            Arc::new(Metrics::new()),
            None,
            std::future::pending(),
        )
        .await;
    })
}

fn api_message(result: Result<impl std::fmt::Debug, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("expected the API server to refuse, got {other:?}"),
    }
}

#[tokio::test]
async fn the_api_server_refuses_invalid_storefronts_and_plans_with_human_messages()
-> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let plans: Api<StorefrontPlan> = Api::all(client.clone());
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let run = unique("invalid");

    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "bad hostname",
            storefront(&run, "basic", &run, &["Shop_Example"]),
            "must be a lowercase DNS hostname",
        ),
        (
            "repeated hostname",
            storefront(&run, "basic", &run, &["a.example.com", "a.example.com"]),
            "domains must not list the same hostname twice",
        ),
        (
            "no domains",
            storefront(&run, "basic", &run, &[]),
            "spec.domains",
        ),
        (
            "bad plan name",
            storefront(&run, "Basic Plan", &run, &["a.example.com"]),
            "plan must be the name of a StorefrontPlan",
        ),
        (
            "stripe without keys",
            {
                let mut sf = storefront(&run, "basic", &run, &["a.example.com"]);
                sf["spec"]["payments"] = json!({ "provider": "stripe" });
                sf
            },
            "payments.secretRef is required when payments.provider is stripe",
        ),
        (
            "bad colour",
            {
                let mut sf = storefront(&run, "basic", &run, &["a.example.com"]);
                sf["spec"]["themeColor"] = json!("teal");
                sf
            },
            "themeColor must be a hex colour",
        ),
        (
            "bad engine",
            {
                let mut sf = storefront(&run, "basic", &run, &["a.example.com"]);
                sf["spec"]["database"] = json!({ "engineVersion": "9.6" });
                sf
            },
            "database.engineVersion must be a PostgreSQL version",
        ),
        (
            "bad deletion policy",
            {
                let mut sf = storefront(&run, "basic", &run, &["a.example.com"]);
                sf["spec"]["database"] = json!({ "deletionPolicy": "Shred" });
                sf
            },
            "Unsupported value: \"Shred\"",
        ),
    ];
    for (what, object, expected) in cases {
        let message = api_message(apply(&storefronts, &run, object).await);
        assert!(
            message.contains(expected),
            "{what}: `{message}` does not contain `{expected}`"
        );
    }

    let message = api_message(apply(&plans, &run, plan(&run, "dedicated", 0)).await);
    assert!(message.contains("spec.replicas.max"), "{message}");
    let mut inverted = plan(&run, "dedicated", 2);
    inverted["spec"]["replicas"]["min"] = json!(5);
    let message = api_message(apply(&plans, &run, inverted).await);
    assert!(
        message.contains("replicas.min must not be greater than replicas.max"),
        "{message}"
    );
    let mut limits_below_requests = plan(&run, "dedicated", 2);
    limits_below_requests["spec"]["resources"]["limits"]["memory"] = json!("64Mi");
    let message = api_message(apply(&plans, &run, limits_below_requests).await);
    assert!(
        message.contains("resources.limits must be at least resources.requests"),
        "{message}"
    );

    // A plan's tier is fixed once created.
    apply(&plans, &run, plan(&run, "dedicated", 2)).await?;
    let message = api_message(apply(&plans, &run, plan(&run, "pooled", 2)).await);
    assert!(message.contains("a plan's tier cannot change"), "{message}");
    plans.delete(&run, &DeleteParams::default()).await?;
    Ok(())
}

#[tokio::test]
async fn a_dedicated_storefront_is_provisioned_kept_steady_updated_and_offboarded()
-> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("ded");
    let plans: Api<StorefrontPlan> = Api::all(client.clone());
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let operator = start_operator(&client, &run);

    apply(&plans, &run, plan(&run, "dedicated", 3)).await?;
    let name = run.clone();
    apply(
        &storefronts,
        &name,
        storefront(&name, &run, &run, &[&format!("{name}.example.com")]),
    )
    .await?;

    // Ready (database and tables disabled, workload gate `applied`: no nodes here).
    let ready = eventually("Storefront Ready", WAIT, || async {
        let sf = storefronts.get(&name).await?;
        let status = sf.status.clone().unwrap_or_default();
        Ok((status.phase == Some(Phase::Ready)).then_some(status))
    })
    .await?;
    assert_eq!(
        ready.url.as_deref(),
        Some(format!("https://{name}.example.com").as_str())
    );
    assert_eq!(
        ready.namespace.as_deref(),
        Some(format!("store-{name}").as_str())
    );
    let database = ready
        .conditions
        .iter()
        .find(|c| c.type_ == "DatabaseReady")
        .expect("DatabaseReady");
    assert_eq!(
        (database.status.as_str(), database.reason.as_str()),
        ("False", "ProviderDisabled")
    );

    // The namespace and its children exist, owned by the Storefront.
    let namespace = format!("store-{name}");
    let ns = Api::<Namespace>::all(client.clone())
        .get(&namespace)
        .await?;
    let labels = ns.metadata.labels.unwrap_or_default();
    assert_eq!(
        labels
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted")
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &namespace);
    let deployment = deployments.get("storefront").await?;
    let uid = storefronts
        .get(&name)
        .await?
        .metadata
        .uid
        .unwrap_or_default();
    assert!(
        deployment
            .metadata
            .owner_references
            .unwrap_or_default()
            .iter()
            .any(|o| o.uid == uid)
    );
    let ingress = ingresses.get("storefront").await?;
    let annotations = ingress.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations
            .get("alb.ingress.kubernetes.io/group.name")
            .map(String::as_str),
        Some(format!("emporium-{run}-0").as_str())
    );
    let secret = secrets.get(&format!("tenant-{name}")).await?;
    let config = emporium_tenant_config::TenantConfig::from_secret_data(
        secret
            .data
            .as_ref()
            .and_then(|d| d.get("tenant.json"))
            .map(|b| b.0.as_slice()),
    )?;
    assert_eq!(config.tenant_id, name);

    // Steady state: a resync (triggered here by a metadata-only edit) writes nothing. The
    // Deployment and HPA are compared by generation: their controllers write status (which
    // bumps resourceVersion) on their own schedule.
    let versions = || async {
        anyhow::Ok(vec![
            deployments
                .get("storefront")
                .await?
                .metadata
                .generation
                .map(|g| g.to_string()),
            services.get("storefront").await?.metadata.resource_version,
            hpas.get("storefront")
                .await?
                .metadata
                .generation
                .map(|g| g.to_string()),
            secrets
                .get(&format!("tenant-{name}"))
                .await?
                .metadata
                .resource_version,
            ingresses.get("storefront").await?.metadata.resource_version,
        ])
    };
    // Steady state first: controllers (deployment, HPA) and the operator's own follow-up
    // reconciles settle within a few seconds of Ready.
    let mut before = versions().await?;
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = versions().await?;
        if now == before {
            break;
        }
        before = now;
    }
    let settled = storefronts.get(&name).await?;
    let sf_before = settled.metadata.resource_version;
    let conditions_before = settled.status.unwrap_or_default().conditions;
    storefronts
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "test/poke": "1" } } })),
        )
        .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        versions().await?,
        before,
        "a resync wrote to the tenant's objects"
    );
    let sf_after = storefronts.get(&name).await?;
    assert_ne!(
        sf_after.metadata.resource_version, sf_before,
        "the poke itself changed the Storefront"
    );
    let status_after = sf_after.status.unwrap_or_default();
    assert_eq!(
        status_after.conditions, conditions_before,
        "a resync rewrote the conditions"
    );

    // Drift: a deleted Service comes back.
    services
        .delete("storefront", &DeleteParams::default())
        .await?;
    eventually("Service recreated", WAIT, || async {
        Ok(services.get_opt("storefront").await?)
    })
    .await?;

    // A plan change reaches the tenant.
    apply(&plans, &run, plan(&run, "dedicated", 7)).await?;
    eventually("HPA follows the plan", WAIT, || async {
        Ok((hpas.get("storefront").await?.spec.max_replicas == 7).then_some(()))
    })
    .await?;

    // Offboarding removes the namespace and everything in it.
    storefronts.delete(&name, &DeleteParams::default()).await?;
    eventually("Storefront gone", WAIT, || async {
        Ok(storefronts.get_opt(&name).await?.is_none().then_some(()))
    })
    .await?;
    eventually("tenant namespace deleted", WAIT, || async {
        let ns = Api::<Namespace>::all(client.clone())
            .get_opt(&namespace)
            .await?;
        Ok(ns
            .is_none_or(|ns| ns.metadata.deletion_timestamp.is_some())
            .then_some(()))
    })
    .await?;

    plans.delete(&run, &DeleteParams::default()).await?;
    operator.abort();
    Ok(())
}
