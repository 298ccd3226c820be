//! Test support for the operator's integration tests: plans and Storefronts for a test run, a
//! controller started in-process, and driving a provider until it settles. Shared helpers (the
//! stack, unique names, processes, kubectl) are in `emporium_integration_tests`.
#![allow(dead_code)]

use std::{future::Future, sync::Arc};

use emporium_operator::{
    config::{DataProviderChoice, OperatorConfig, ReadinessGate},
    crd::StorefrontStatus,
    metrics::Metrics,
    providers::{Deletion, Outcome},
    reconcile::{self, tenant_data::DataProviders},
};
use kube::Client;
use serde_json::{Value, json};

/// A StorefrontPlan `name` of `tier` for up to `max` replicas.
pub fn plan(name: &str, tier: &str, max: i32) -> Value {
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

/// A Storefront `name` on `plan`, labelled `emporium.dev/test-run=<run>` (what the test's
/// controller selects).
pub fn storefront(name: &str, plan: &str, run: &str, domains: &[&str]) -> Value {
    json!({
        "apiVersion": "emporium.dev/v1alpha1",
        "kind": "Storefront",
        "metadata": { "name": name, "labels": { "emporium.dev/test-run": run } },
        "spec": { "displayName": "Test Store", "plan": plan, "domains": domains },
    })
}

/// The configuration of a controller for the Storefronts labelled
/// `emporium.dev/test-run=<run>`, with a pool namespace and ingress groups of the run's own and
/// no data providers.
pub fn test_config(run: &str) -> OperatorConfig {
    OperatorConfig {
        runtime_image: "registry.invalid/emporium/storefront:test".into(),
        pool_namespace: format!("pool-{run}"),
        ingress_group_prefix: format!("emporium-{run}"),
        database_provider: DataProviderChoice::None,
        tables_provider: DataProviderChoice::None,
        queues_provider: DataProviderChoice::None,
        // `applied`, not `deployment-available`: on this shared 2-core machine kwok's node
        // heartbeats sometimes lapse under load, the node controller marks the pods NotReady
        // and kwok never turns them Ready again, so a Deployment can stay unavailable for good.
        // `workload_readiness.rs` tests the Available gate itself.
        readiness_gate: ReadinessGate::Applied,
        storefront_selector: format!("emporium.dev/test-run={run}"),
        concurrency: 4,
        ..OperatorConfig::default()
    }
}

/// Runs a controller with `config` and `providers` in this process until the handle is aborted.
pub fn spawn_operator(
    client: &Client,
    config: OperatorConfig,
    providers: DataProviders,
) -> tokio::task::JoinHandle<()> {
    let client = client.clone();
    tokio::spawn(async move {
        let _ = reconcile::run(
            client,
            config,
            providers,
            Arc::new(Metrics::new()),
            None,
            std::future::pending(),
        )
        .await;
    })
}

/// Starts a controller for the Storefronts labelled `emporium.dev/test-run=<run>`, without
/// data providers ([`test_config`]).
pub fn start_operator(client: &Client, run: &str) -> tokio::task::JoinHandle<()> {
    spawn_operator(client, test_config(run), DataProviders::default())
}

/// Whether condition `type_` is `True` in `status`.
pub fn condition_is_true(status: &StorefrontStatus, type_: &str) -> bool {
    status
        .conditions
        .iter()
        .any(|c| c.type_ == type_ && c.status == "True")
}

/// One `Progressing` answer of a provider.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub reason: &'static str,
    pub message: String,
}

/// Calls `ensure` (a provider's `ensure` for one request) until it stops answering
/// `Progressing`; returns the progress seen on the way and the settled outcome.
pub async fn ensure_until_settled<T, E, F, Fut>(mut ensure: F) -> (Vec<Progress>, Outcome<T>)
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome<T>, E>>,
{
    let mut seen = Vec::new();
    for _ in 0..10 {
        match ensure().await.expect("ensure") {
            Outcome::Progressing { reason, message } => seen.push(Progress { reason, message }),
            settled => return (seen, settled),
        }
    }
    panic!("still progressing after 10 calls: {seen:?}");
}

/// Calls `delete` (a provider's `delete` for one request) until it is done.
pub async fn delete_until_done<E, F, Fut>(mut delete: F) -> Deletion
where
    E: std::fmt::Debug,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome<Deletion>, E>>,
{
    for _ in 0..10 {
        match delete().await.expect("delete") {
            Outcome::Ready(done) => return done,
            Outcome::Progressing { .. } => {}
            terminal => panic!("deletion failed: {terminal:?}"),
        }
    }
    panic!("deletion still progressing after 10 calls");
}

/// The value of a `Ready` outcome; fails the test on any other.
pub fn ready<T: std::fmt::Debug>(outcome: Outcome<T>) -> T {
    match outcome {
        Outcome::Ready(value) => value,
        other => panic!("expected Ready, got {other:?}"),
    }
}
