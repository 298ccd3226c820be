//! Real readiness, recovery, disruption budgets and autoscaling on the real node (issue 13,
//! item 5; docs/real-node.md). One dedicated tenant whose pods run from the runtime image:
//!
//! - `Ready` (WorkloadReady) means its Deployment is Available: pods passed their probes;
//! - a deleted runtime pod is replaced by the Deployment, and the tenant is Ready again;
//! - `kubectl drain` of the node evicts one of its two pods and is refused for the second by the
//!   PodDisruptionBudget (`maxUnavailable: 1`) while the first has nowhere to go;
//! - under a bounded load from the host (through the tenant's ClusterIP on the node's bridge,
//!   stopping by itself) its HorizontalPodAutoscaler scales out on real CPU metrics
//!   (metrics-server), and back in after the plan's shortened stabilisation window.
//!
//! One test in its own binary: the drain cordons the node, which no other test may see. Runs
//! when the node is up; with `EMPORIUM_REAL_NODE=1` a missing node fails.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use emporium_integration_tests::{
    Process, RealNode, Stack, child_env, eventually, free_port, install_storefront_api, kubectl,
    kubectl_output, operator_args, pod_ready, real_node, remove_storefronts, storefront_manifest,
    unique, workspace_root, write_manifests,
};
use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{Pod, Service},
};
use kube::{Api, api::ListParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
/// The longest the load runs, whatever the autoscaler does.
const LOAD_LIMIT: Duration = Duration::from_secs(150);
/// Concurrent requests of the load (each waits for its answer before the next).
const LOAD_CONNECTIONS: usize = 4;

/// Uncordons the node and takes the test's Storefront and plan away, pass or fail.
struct Cleanup {
    node: String,
    selector: String,
    plan: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = kubectl_output(&["uncordon", &self.node]);
        remove_storefronts(&self.selector);
        let _ = kubectl_output(&[
            "delete",
            "storefrontplan",
            &self.plan,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

fn plan(name: &str, min: i32, max: i32) -> Value {
    json!({
        "apiVersion": "emporium.dev/v1alpha1",
        "kind": "StorefrontPlan",
        "metadata": { "name": name },
        "spec": {
            "tier": "dedicated",
            "replicas": { "min": min, "max": max },
            // A small request, so a modest load is many times the target; not so small that
            // an idle runtime's own work (the outbox relay, the order-event consumer, the
            // import runner's polls: about 6m CPU measured) holds it at the target. With 20m
            // that idle use was 30 %, and the HPA never scaled in.
            "targetCpuUtilizationPercent": 30,
            // Shortened from the default 300 s so the test sees the scale-in.
            "scaleDownStabilizationSeconds": 20,
            "resources": {
                "requests": { "cpu": "50m", "memory": "64Mi" },
                "limits": { "cpu": "500m", "memory": "512Mi" },
            },
            "quota": { "cpu": "4", "memory": "4Gi", "pods": 10 },
            "database": { "minCapacity": 0.5, "maxCapacity": 2 },
        },
    })
}

/// The tenant's pods, Ready or not, without those being deleted.
async fn live_pods(pods: &Api<Pod>, tenant: &str) -> anyhow::Result<Vec<Pod>> {
    Ok(pods
        .list(&ListParams::default().labels(&format!("emporium.dev/tenant={tenant}")))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

fn names(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect()
}

fn storefront_ready(name: &str) -> bool {
    let (_, out, _) = kubectl_output(&[
        "get",
        "storefront",
        name,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ]);
    out.trim() == "True"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_pods_recover_hold_their_budget_and_autoscale_on_real_cpu() {
    let Some(node) = real_node() else { return };
    let stack = Stack::get();
    let client = stack.kube().await.expect("kube client");
    let run = unique("");
    let artifacts = workspace_root().join("tests/artifacts/node-workload");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");
    let plan_name = format!("node-wl-{run}");
    let label = "emporium.dev/node-workload";
    let selector = format!("{label}={run}");
    let name = format!("nw-outfitters-{run}");
    let namespace = format!("store-{name}");
    let _cleanup = Cleanup {
        node: node.name().to_owned(),
        selector: selector.clone(),
        plan: plan_name.clone(),
    };
    install_storefront_api();

    // The operator (a host process here; chart_on_node.rs runs it as pods) with readiness that
    // waits for the Deployment to be Available.
    let mut args: Vec<String> = operator_args(
        free_port(),
        &selector,
        &format!("nw{run}"),
        &format!("nw-pool-{run}"),
        &uuid::Uuid::new_v4().simple().to_string(),
    )
    .into_iter()
    .filter(|a| !a.starts_with("--readiness-gate=") && !a.starts_with("--postgres-tenant-"))
    .collect();
    args.extend([
        "--readiness-gate=deployment-available".to_owned(),
        format!("--postgres-tenant-host={}", node.var("NODE_PGHOST")),
        format!("--postgres-tenant-port={}", node.var("NODE_PGPORT")),
        format!("--runtime-image={}", RealNode::image("storefront")),
        "--runtime-node-selector=emporium.dev/node=real".to_owned(),
        format!("--runtime-env=REDIS_URL={}", node.var("NODE_REDIS_URL")),
        format!(
            "--runtime-env=AWS_ENDPOINT_URL={}",
            node.var("NODE_AWS_ENDPOINT_URL")
        ),
    ]);
    for var in ["AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        args.push(format!(
            "--runtime-env={var}={}",
            stack.var(var).expect(var)
        ));
    }
    let operator = Process::start(
        "emporium-operator",
        &args,
        &artifacts.join(format!("operator-{run}.log")),
        &child_env(),
    );

    // Two replicas first (the drain story needs a budget to hold).
    let manifest = artifacts.join(format!("storefront-{run}.yaml"));
    write_manifests(
        &manifest,
        &[
            plan(&plan_name, 2, 2),
            storefront_manifest(&name, label, &run, &plan_name, "Delete"),
        ],
    );
    kubectl(&["apply", "-f", manifest.to_str().unwrap_or_default()]);
    let diagnostics = || {
        let (_, pods, _) = kubectl_output(&["-n", &namespace, "get", "pods,hpa,pdb", "-o", "wide"]);
        let (_, status, _) = kubectl_output(&[
            "get",
            "storefront",
            &name,
            "-o",
            "jsonpath={.status.conditions}",
        ]);
        format!(
            "conditions: {status}\n{pods}\noperator log: {}",
            operator.log_dir().display()
        )
    };
    let waited = kubectl_output(&[
        "wait",
        "--for=condition=Ready",
        &format!("storefront/{name}"),
        "--timeout=300s",
    ]);
    assert!(
        waited.0,
        "not Ready: {}{}\n{}",
        waited.1,
        waited.2,
        diagnostics()
    );

    // Ready means the Deployment is Available: its pods passed their readiness probes.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &namespace);
    let deployment = deployments.get("storefront").await.expect("the Deployment");
    let available = deployment
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .iter()
        .any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True"));
    assert!(available, "Ready while the Deployment is not Available");
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let before = live_pods(&pods, &name).await.expect("pods");
    assert_eq!(before.iter().filter(|p| pod_ready(p)).count(), 2);

    // A killed pod is replaced and the tenant is Ready again.
    let victim = names(&before)[0].clone();
    kubectl(&[
        "-n",
        &namespace,
        "delete",
        "pod",
        &victim,
        "--grace-period=1",
        "--wait=false",
    ]);
    eventually("the killed pod is replaced", WAIT, || async {
        let now = live_pods(&pods, &name).await?;
        let ready = now.iter().filter(|p| pod_ready(p)).count();
        Ok((ready == 2 && !names(&now).contains(&victim)).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics()));
    eventually("Ready again", WAIT, || async {
        Ok(storefront_ready(&name).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics()));

    // Drain: the first pod is evicted (its replacement has nowhere to run: the node is
    // cordoned), the second eviction is refused by the budget until the drain gives up.
    let started = Instant::now();
    let (drained, out, err) = kubectl_output(&[
        "drain",
        node.name(),
        &format!("--pod-selector=emporium.dev/tenant={name}"),
        "--ignore-daemonsets",
        "--delete-emptydir-data",
        "--timeout=25s",
    ]);
    eprintln!("drain refused after {:?}", started.elapsed());
    assert!(!drained, "the drain went past the PDB: {out}{err}");
    assert!(
        format!("{out}{err}").contains("disruption budget"),
        "the drain was not stopped by the disruption budget: {out}{err}"
    );
    let during = live_pods(&pods, &name).await.expect("pods");
    let running: Vec<&Pod> = during
        .iter()
        .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node.name()))
        .collect();
    assert_eq!(
        running.len(),
        1,
        "one pod evicted, one held by the budget: {:?}",
        names(&during)
    );
    kubectl(&["uncordon", node.name()]);
    eventually("two Ready pods after the uncordon", WAIT, || async {
        let now = live_pods(&pods, &name).await?;
        Ok((now.iter().filter(|p| pod_ready(p)).count() == 2).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics()));

    // Autoscaling: the plan now allows 1 to 2 replicas. At rest the HPA scales in to 1.
    write_manifests(&manifest, &[plan(&plan_name, 1, 2)]);
    kubectl(&["apply", "-f", manifest.to_str().unwrap_or_default()]);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &namespace);
    let replicas = || async {
        let d = deployments.get("storefront").await?;
        Ok::<_, anyhow::Error>(d.spec.replicas.unwrap_or_default())
    };
    let current_cpu = || async {
        let hpa = hpas.get("storefront").await?;
        Ok::<_, anyhow::Error>(
            hpa.status
                .and_then(|s| s.current_metrics)
                .unwrap_or_default()
                .iter()
                .find_map(|m| m.resource.as_ref())
                .and_then(|r| r.current.average_utilization),
        )
    };
    let started = Instant::now();
    eventually(
        "the HPA reads CPU and scales in to 1 at rest",
        WAIT * 2,
        || async {
            let cpu = current_cpu().await?;
            Ok((cpu.is_some() && replicas().await? == 1).then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics()));
    eprintln!("scaled in to 1 at rest after {:?}", started.elapsed());

    // A bounded load through the ClusterIP (the node's bridge, nowhere else): LOAD_CONNECTIONS
    // sequential request loops, stopped when the HPA scaled out or after LOAD_LIMIT.
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let cluster_ip = services
        .get("storefront")
        .await
        .expect("the Service")
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP");
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("http client");
    let load_started = Instant::now();
    let workers: Vec<_> = (0..LOAD_CONNECTIONS)
        .map(|_| {
            let (stop, sent, http) = (stop.clone(), sent.clone(), http.clone());
            let url = format!("http://{cluster_ip}/api/v1/products?limit=50");
            let host = format!("{name}.localhost");
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) && load_started.elapsed() < LOAD_LIMIT {
                    let _ = http.get(&url).header("Host", &host).send().await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let scaled_out = eventually("the HPA scales out under load", LOAD_LIMIT, || async {
        Ok((replicas().await? == 2).then_some(()))
    })
    .await;
    let peak = current_cpu().await.ok().flatten();
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.await;
    }
    let load_time = load_started.elapsed();
    eprintln!(
        "load: {} requests in {load_time:?}, CPU {peak:?}% of requests when it stopped",
        sent.load(Ordering::Relaxed)
    );
    scaled_out.unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics()));
    eventually("the new replica is Ready", WAIT, || async {
        let now = live_pods(&pods, &name).await?;
        Ok((now.iter().filter(|p| pod_ready(p)).count() == 2).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics()));

    // Load gone: back to 1 after the stabilisation window.
    let idle = Instant::now();
    eventually("the HPA scales back in", WAIT * 2, || async {
        Ok((replicas().await? == 1).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics()));
    eprintln!("scaled back in {:?} after the load stopped", idle.elapsed());
    operator.assert_running();

    kubectl(&["delete", "storefront", &name, "--timeout=120s"]);
}
