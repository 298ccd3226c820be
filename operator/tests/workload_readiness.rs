//! Truthful readiness: `WorkloadReady` (and so `Ready`) follows the Deployment's `Available`
//! condition. On kwok, pods that can be scheduled turn Ready; pods asking for more CPU than any
//! node has never do.

mod common;

use std::time::Duration;

use common::{plan, spawn_operator, storefront, test_config};
use emporium_integration_tests::{Stack, apply, eventually, install_crds, unique};
use emporium_operator::crd::{Phase, Storefront, StorefrontPlan};
use kube::{Api, api::DeleteParams};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);

fn workload(sf: &Storefront) -> Option<(String, String)> {
    sf.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == "WorkloadReady")
        .map(|c| (c.status.clone(), c.reason.clone()))
}

#[tokio::test]
async fn ready_stays_false_while_the_deployment_is_unavailable() -> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("avail-");
    let plans: Api<StorefrontPlan> = Api::all(client.clone());
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let config = emporium_operator::config::OperatorConfig {
        readiness_gate: emporium_operator::config::ReadinessGate::DeploymentAvailable,
        ..test_config(&run)
    };
    let operator = spawn_operator(&client, config, Default::default());

    // A plan whose pods no node can hold (and the quota refuses): the Deployment is applied
    // and rolled out, but never Available.
    let mut greedy = plan(&run, "dedicated", 2);
    greedy["spec"]["resources"] = json!({
        "requests": { "cpu": "500", "memory": "128Mi" },
        "limits": { "cpu": "500", "memory": "256Mi" },
    });
    greedy["spec"]["quota"] = json!({ "cpu": "1000", "memory": "8Gi", "pods": 20 });
    apply(&plans, &run, greedy).await?;
    let name = run.clone();
    apply(
        &storefronts,
        &name,
        storefront(&name, &run, &run, &[&format!("{name}.example.com")]),
    )
    .await?;
    eventually("WorkloadReady=False Unavailable", WAIT, || async {
        let sf = storefronts.get(&name).await?;
        Ok((workload(&sf) == Some(("False".into(), "Unavailable".into()))).then_some(()))
    })
    .await?;
    // It stays so: not Ready while no replica can run.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let sf = storefronts.get(&name).await?;
    let status = sf.status.clone().unwrap_or_default();
    assert_ne!(status.phase, Some(Phase::Ready), "{status:?}");
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False"),
        "{status:?}"
    );

    // Pods that fit: the Deployment turns Available, and the tenant Ready. (The quota stays
    // large: the old pending pod counts against it until the new one is available.)
    let mut fitting = plan(&run, "dedicated", 2);
    fitting["spec"]["quota"] = json!({ "cpu": "1000", "memory": "8Gi", "pods": 20 });
    apply(&plans, &run, fitting).await?;
    eventually("Ready once the Deployment is Available", WAIT, || async {
        let sf = storefronts.get(&name).await?;
        let ready = sf.status.as_ref().and_then(|s| s.phase) == Some(Phase::Ready);
        Ok((ready && workload(&sf) == Some(("True".into(), "Available".into()))).then_some(()))
    })
    .await?;

    storefronts.delete(&name, &DeleteParams::default()).await?;
    eventually("Storefront gone", WAIT, || async {
        Ok(storefronts.get_opt(&name).await?.is_none().then_some(()))
    })
    .await?;
    plans.delete(&run, &DeleteParams::default()).await?;
    operator.abort();
    Ok(())
}
