//! The operator against the real local API server: schema validation refuses bad input with
//! human messages, and a dedicated Storefront goes from apply to Ready to offboarded.
//!
//! Each test runs its own controller in-process, restricted by a label selector to the
//! Storefronts it created, with unique names: tests share one cluster.

mod common;

use std::time::Duration;

use common::{plan, start_operator, storefront};
use emporium_integration_tests::{Stack, apply, eventually, install_crds, unique};
use emporium_operator::crd::{Phase, Storefront, StorefrontPlan};
use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{Namespace, Secret, Service},
    networking::v1::Ingress,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

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
    let run = unique("invalid-");

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
    let run = unique("ded-");
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

    // Ready (database and tables disabled, workload gate `applied`).
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
    // The data key is the Storefront's UID (never reused), the name is for logs.
    assert_eq!(config.tenant_id, uid);
    assert_eq!(config.name.as_deref(), Some(name.as_str()));

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
