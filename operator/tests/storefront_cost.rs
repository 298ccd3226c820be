//! `status.cost` end to end: the in-process controller reconciles a dedicated and a pooled
//! Storefront on the real API server with Aurora, DynamoDB and SQS on moto, and each gets a
//! monthly estimate whose lines add up, with the Aurora capacity read from DescribeDBClusters
//! and the plan's declared usage priced; `kubectl get sf -o wide` shows it; a later reconcile
//! within the refresh period does not make it again.

mod common;

use std::time::Duration;

use common::{spawn_operator, test_config};
use emporium_integration_tests::{
    Stack, apply, eventually, install_crds, kubectl_output, moto_subnets, scratch_database, unique,
};
use emporium_operator::{
    config::{DataProviderChoice, DataSettings},
    crd::{CostStatus, Storefront, StorefrontPlan},
    providers::SecretString,
    reconcile::tenant_data::DataProviders,
};
use kube::{
    Api,
    api::{DeleteParams, Patch, PatchParams},
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(120);

fn plan(name: &str, tier: &str) -> serde_json::Value {
    json!({
        "apiVersion": "emporium.dev/v1alpha1",
        "kind": "StorefrontPlan",
        "metadata": { "name": name },
        "spec": {
            "tier": tier,
            "replicas": { "min": 2, "max": 4 },
            "resources": {
                "requests": { "cpu": "250m", "memory": "512Mi" },
                "limits": { "cpu": "500m", "memory": "512Mi" },
            },
            "database": { "minCapacity": 0.5, "maxCapacity": 2 },
            "expectedUsage": {
                "databaseStorageGb": 10, "databaseIoMillions": 5,
                "dynamodbReadMillions": 20, "dynamodbWriteMillions": 2,
                "sqsRequestMillions": 1,
            },
        },
    })
}

fn line<'a>(cost: &'a CostStatus, component: &str) -> &'a emporium_operator::crd::CostLine {
    cost.breakdown
        .iter()
        .find(|l| l.component == component)
        .unwrap_or_else(|| panic!("no {component} line in {cost:#?}"))
}

fn cents(amount: &str) -> i64 {
    let (whole, cents) = amount.split_once('.').expect("a decimal string");
    assert_eq!(cents.len(), 2, "whole cents: {amount}");
    whole.parse::<i64>().expect("dollars") * 100 + cents.parse::<i64>().expect("cents")
}

/// The final (not provisional) estimate of `name`, once it is Ready.
async fn final_estimate(api: &Api<Storefront>, name: &str) -> anyhow::Result<CostStatus> {
    eventually(
        &format!("{name} Ready with a final cost estimate"),
        WAIT,
        || async {
            let status = api.get(name).await?.status.unwrap_or_default();
            let ready = common::condition_is_true(&status, "Ready");
            Ok(status.cost.filter(|c| ready && !c.provisional))
        },
    )
    .await
}

#[tokio::test]
async fn dedicated_and_pooled_tenants_get_a_monthly_estimate_in_status_and_in_kubectl()
-> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("cost");
    let prefix = unique("c");
    let plans: Api<StorefrontPlan> = Api::all(client.clone());
    let (dedicated_plan, pooled_plan) = (format!("{run}-dedicated"), format!("{run}-pooled"));
    apply(&plans, &dedicated_plan, plan(&dedicated_plan, "dedicated")).await?;
    apply(&plans, &pooled_plan, plan(&pooled_plan, "pooled")).await?;

    let mut config = test_config(&run);
    config.database_provider = DataProviderChoice::Aurora;
    config.tables_provider = DataProviderChoice::Dynamodb;
    config.queues_provider = DataProviderChoice::Sqs;
    config.data = DataSettings {
        name_prefix: prefix.clone(),
        aws_max_attempts: 3,
        aurora_subnet_group: Some(format!("{prefix}-subnets")),
        aurora_subnet_ids: moto_subnets(Stack::get().var("AWS_ENDPOINT_URL")?).await?,
        // moto's clusters have no PostgreSQL: the login-role SQL goes to a scratch database.
        aurora_sql_override: Some(SecretString::new(scratch_database("cost_aurora").await)),
        ..DataSettings::default()
    };
    let sdk = Stack::get().aws().await?;
    let providers = DataProviders::from_config(&config, Some(&sdk)).await?;
    let operator = spawn_operator(&client, config, providers);

    let api: Api<Storefront> = Api::all(client.clone());
    let (dedicated, pooled) = (format!("{run}-d"), format!("{run}-p"));
    for (name, plan) in [(&dedicated, &dedicated_plan), (&pooled, &pooled_plan)] {
        let sf = json!({
            "apiVersion": "emporium.dev/v1alpha1",
            "kind": "Storefront",
            "metadata": { "name": name, "labels": { "emporium.dev/test-run": run } },
            "spec": {
                "displayName": "Cost Store",
                "plan": plan,
                "domains": [format!("{name}.shop.example")],
                "database": { "deletionPolicy": "Delete" },
            },
        });
        apply(&api, name, sf).await?;
    }

    for name in [&dedicated, &pooled] {
        let cost = final_estimate(&api, name).await?;
        assert_eq!(cost.currency, "USD");
        assert_eq!(cost.price_book, "us-east-1 list prices of 2026-12-07");
        assert_eq!(cost.breakdown.len(), 9, "every component: {cost:#?}");
        let sum: i64 = cost.breakdown.iter().map(|l| cents(&l.monthly)).sum();
        assert_eq!(
            sum,
            cents(&cost.monthly_estimate),
            "the lines add up: {cost:#?}"
        );

        // The cluster's minimum, read from RDS (the dedicated cluster, or the pool cluster
        // with this run's single pooled tenant): 0.5 ACU × 730 h × $0.12.
        let aurora = line(&cost, "aurora-capacity");
        assert_eq!(
            (aurora.monthly.as_str(), aurora.source.as_str()),
            ("43.80", "Observed"),
            "{aurora:?}"
        );
        assert!(
            aurora.basis.contains("DescribeDBClusters"),
            "{}",
            aurora.basis
        );
        // The plan's declared usage, priced.
        assert_eq!(line(&cost, "aurora-storage").monthly, "1.00");
        assert_eq!(line(&cost, "aurora-io").monthly, "1.00");
        assert_eq!(line(&cost, "dynamodb-requests").monthly, "3.75");
        assert_eq!(line(&cost, "sqs-requests").monthly, "0.40");
        // DescribeTable answered (moto reports the tables' sizes).
        assert_eq!(line(&cost, "dynamodb-storage").source, "Observed");
        let alb = line(&cost, "load-balancer");
        assert!(alb.basis.contains("LCU assumed"), "{}", alb.basis);
        assert_ne!(alb.monthly, "0.00");
        assert_eq!(line(&cost, "s3-storage").source, "NotUsed");
    }

    // The dedicated tenant's pods: 2 replicas (observed or the plan's minimum) × (0.25 vCPU
    // × $0.04048 + 0.5 GiB × $0.004445) × 730 h = $18.02.
    let cost = final_estimate(&api, &dedicated).await?;
    assert_eq!(line(&cost, "compute").monthly, "18.02", "{cost:#?}");
    eprintln!("{dedicated}: {}", serde_json::to_string_pretty(&cost)?);

    // `kubectl get sf -o wide` has the column, with the estimate in it.
    let (ok, out, err) = kubectl_output(&["get", "sf", &dedicated, &pooled, "-o", "wide"]);
    assert!(ok, "{err}");
    eprintln!("kubectl get sf -o wide:\n{out}");
    let header = out.lines().next().unwrap_or_default();
    assert!(header.contains("USD/MONTH"), "{out}");
    for name in [&dedicated, &pooled] {
        let estimate = final_estimate(&api, name).await?.monthly_estimate;
        let row = out
            .lines()
            .find(|l| l.starts_with(name.as_str()))
            .unwrap_or_else(|| panic!("no row for {name} in {out}"));
        assert!(row.split_whitespace().any(|cell| cell == estimate), "{row}");
    }
    let (_, narrow, _) = kubectl_output(&["get", "sf", &dedicated]);
    assert!(
        !narrow.contains("USD/MONTH"),
        "a wide-only column: {narrow}"
    );

    // A reconcile within the refresh period (a spec edit) keeps the estimate as it was.
    let before = final_estimate(&api, &dedicated).await?;
    let generation = api.get(&dedicated).await?.metadata.generation;
    api.patch(
        &dedicated,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "displayName": "Cost Store, renamed" } })),
    )
    .await?;
    eventually("the edit reconciled", WAIT, || async {
        let sf = api.get(&dedicated).await?;
        let observed = sf.status.and_then(|s| s.observed_generation);
        Ok((observed.is_some() && observed != generation).then_some(()))
    })
    .await?;
    let after = api.get(&dedicated).await?.status.and_then(|s| s.cost);
    assert_eq!(
        after.as_ref(),
        Some(&before),
        "not recomputed within the hour"
    );

    for name in [&dedicated, &pooled] {
        api.delete(name, &DeleteParams::default()).await?;
    }
    for name in [&dedicated, &pooled] {
        eventually(&format!("{name} gone"), WAIT, || async {
            Ok(api.get_opt(name).await?.is_none().then_some(()))
        })
        .await?;
    }
    operator.abort();
    for plan in [&dedicated_plan, &pooled_plan] {
        let _ = plans.delete(plan, &DeleteParams::default()).await;
    }
    Ok(())
}
