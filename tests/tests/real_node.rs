//! On the real node (docs/real-node.md), a dedicated tenant runs for real: the operator (a host
//! process here) provisions a Storefront whose Deployment starts the runtime from the image
//! `make images` built, under `restricted` Pod Security, on the node `emporium-node`. The pod
//! reads its tenant config Secret through the API server (the `kubernetes` Service), reaches
//! PostgreSQL, Redis and moto at the node's address, passes its probes, the Deployment becomes
//! Available (so `Ready` means pods serve: no `--readiness-gate=applied`), and the host reaches
//! it at its pod IP and its ClusterIP.
//!
//! Runs when the node is up (`.state/node/env`, written by `scripts/node.sh start`); with
//! `EMPORIUM_REAL_NODE=1` (what `make test` sets when it starts the node) a missing node fails.

use std::time::Duration;

use emporium_integration_tests::{
    Process, RealNode, Stack, assert_serves_shopper, child_env, eventually, free_port,
    install_storefront_api, kubectl, kubectl_output, operator_args, pod_ready, real_node,
    remove_storefronts, storefront_manifest, unique, workspace_root, write_manifests,
};
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use kube::{Api, api::ListParams};
use reqwest::StatusCode;
use serde_json::json;

const READY_TIMEOUT: &str = "300s";
const WAIT: Duration = Duration::from_secs(60);

/// Takes the test's Storefronts and plan away, pass or fail.
struct Cleanup {
    selector: String,
    plan: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dedicated_tenant_runs_from_the_image_on_the_real_node() {
    let Some(node) = real_node() else { return };
    let stack = Stack::get();
    let run = unique("");
    let artifacts = workspace_root().join("tests/artifacts/real-node");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");
    let image = RealNode::image("storefront");

    install_storefront_api();
    // One small replica: the node shares 2 cores with everything else.
    let plan = format!("real-node-{run}");
    let selector = format!("emporium.dev/real-node={run}");
    let _cleanup = Cleanup {
        selector: selector.clone(),
        plan: plan.clone(),
    };
    let name = format!("rn-outfitters-{run}");
    write_manifests(
        &artifacts.join(format!("storefront-{run}.yaml")),
        &[
            json!({
                "apiVersion": "emporium.dev/v1alpha1",
                "kind": "StorefrontPlan",
                "metadata": { "name": plan },
                "spec": {
                    "tier": "dedicated",
                    "replicas": { "min": 1, "max": 1 },
                    "resources": {
                        "requests": { "cpu": "50m", "memory": "64Mi" },
                        "limits": { "cpu": "1", "memory": "512Mi" },
                    },
                    "quota": { "cpu": "4", "memory": "4Gi", "pods": 10 },
                    "database": { "minCapacity": 0.5, "maxCapacity": 2 },
                },
            }),
            storefront_manifest(&name, "emporium.dev/real-node", &run, &plan, "Delete"),
        ],
    );

    // The operator: tenants' DSNs and the runtime's Redis and AWS endpoints at the node's
    // address, the runtime image built here, pods on the real node, and readiness that waits
    // for the Deployment to be Available.
    let password_key = uuid::Uuid::new_v4().simple().to_string();
    let mut args: Vec<String> = operator_args(
        free_port(),
        &selector,
        &format!("rn{run}"),
        &format!("rn-pool-{run}"),
        &password_key,
    )
    .into_iter()
    .filter(|a| !a.starts_with("--readiness-gate=") && !a.starts_with("--postgres-tenant-"))
    .collect();
    args.extend([
        "--readiness-gate=deployment-available".to_owned(),
        format!("--postgres-tenant-host={}", node.var("NODE_PGHOST")),
        format!("--postgres-tenant-port={}", node.var("NODE_PGPORT")),
        format!("--runtime-image={image}"),
        "--runtime-node-selector=emporium.dev/node=real".to_owned(),
        format!("--runtime-env=REDIS_URL={}", node.var("NODE_REDIS_URL")),
        format!(
            "--runtime-env=AWS_ENDPOINT_URL={}",
            node.var("NODE_AWS_ENDPOINT_URL")
        ),
        format!(
            "--runtime-env=AWS_REGION={}",
            stack.var("AWS_REGION").expect("AWS_REGION")
        ),
        format!(
            "--runtime-env=AWS_ACCESS_KEY_ID={}",
            stack.var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID")
        ),
        format!(
            "--runtime-env=AWS_SECRET_ACCESS_KEY={}",
            stack
                .var("AWS_SECRET_ACCESS_KEY")
                .expect("AWS_SECRET_ACCESS_KEY")
        ),
    ]);
    let operator = Process::start(
        "emporium-operator",
        &args,
        &artifacts.join(format!("operator-{run}.log")),
        &child_env(),
    );
    kubectl(&[
        "apply",
        "-f",
        artifacts
            .join(format!("storefront-{run}.yaml"))
            .to_str()
            .unwrap_or_default(),
    ]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    operator.assert_running();

    // Ready now means the runtime pod passed its readiness probe on the node.
    let namespace = format!("store-{name}");
    let waited = kubectl_output(&[
        "wait",
        "--for=condition=Ready",
        &format!("storefront/{name}"),
        &format!("--timeout={READY_TIMEOUT}"),
    ]);
    if !waited.0 {
        let (_, pods, _) = kubectl_output(&["-n", &namespace, "describe", "pods"]);
        let (_, logs, _) = kubectl_output(&[
            "-n",
            &namespace,
            "logs",
            "deployment/storefront",
            "--tail=40",
        ]);
        let (_, status, _) = kubectl_output(&[
            "get",
            "storefront",
            &name,
            "-o",
            "jsonpath={.status.conditions}",
        ]);
        panic!(
            "storefront/{name} not Ready within {READY_TIMEOUT}: {} {}\nconditions: {status}\npods:\n{pods}\nlogs:\n{logs}",
            waited.1, waited.2
        );
    }
    operator.assert_running();

    let client = stack.kube().await.expect("kube client");
    let labels: Api<Namespace> = Api::all(client.clone());
    let ns = labels.get(&namespace).await.expect("the tenant namespace");
    assert_eq!(
        ns.metadata
            .labels
            .unwrap_or_default()
            .get("pod-security.kubernetes.io/enforce")
            .map(String::as_str),
        Some("restricted"),
        "the tenant namespace enforces restricted Pod Security"
    );
    // And the API server holds to it: a pod that runs as root with a writable root filesystem,
    // privilege escalation and no seccomp profile is refused, saying which rules it breaks.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let intruder: Pod = serde_json::from_value(json!({
        "metadata": { "name": "not-restricted" },
        "spec": {
            "nodeSelector": { "emporium.dev/node": "real" },
            "tolerations": [{ "key": "emporium.dev/node", "operator": "Exists" }],
            "containers": [{
                "name": "root",
                "image": RealNode::image("storefront"),
                "securityContext": { "runAsUser": 0, "allowPrivilegeEscalation": true },
            }],
        },
    }))
    .expect("a pod");
    match pods.create(&Default::default(), &intruder).await {
        Err(kube::Error::Api(refusal)) => {
            assert_eq!(refusal.code, 403, "refused as Forbidden: {refusal:?}");
            for rule in ["restricted", "allowPrivilegeEscalation", "runAsNonRoot"] {
                assert!(
                    refusal.message.contains(rule),
                    "the refusal names {rule}: {}",
                    refusal.message
                );
            }
        }
        other => panic!("a pod breaking `restricted` was not refused: {other:?}"),
    }

    let listed = pods
        .list(&ListParams::default().labels(&format!("emporium.dev/tenant={name}")))
        .await
        .expect("the tenant's pods");
    let pod = listed
        .items
        .iter()
        .find(|p| pod_ready(p))
        .unwrap_or_else(|| panic!("no Ready pod among {} listed", listed.items.len()));
    let spec = pod.spec.as_ref().expect("a pod spec");
    assert_eq!(
        spec.node_name.as_deref(),
        Some(node.name()),
        "the runtime pod runs on the real node"
    );
    let container = &spec.containers[0];
    assert_eq!(container.image.as_deref(), Some(image.as_str()));
    let security = container
        .security_context
        .as_ref()
        .expect("a securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    let pod_ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("a pod IP");
    assert!(
        pod_ip.starts_with("10.245.0."),
        "pod IP {pod_ip} is on the node's bridge"
    );

    // The host reaches the pod at its IP and through its ClusterIP Service (kube-proxy).
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let readyz = http
        .get(format!("http://{pod_ip}:8080/readyz"))
        .send()
        .await
        .expect("the pod answers at its IP");
    assert_eq!(readyz.status(), StatusCode::OK, "/readyz at the pod IP");
    let services: Api<Service> = Api::namespaced(client.clone(), &namespace);
    let cluster_ip = services
        .get("storefront")
        .await
        .expect("the tenant's Service")
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP");
    let through_service = eventually("the ClusterIP answers /readyz", WAIT, || async {
        let res = http.get(format!("http://{cluster_ip}/readyz")).send().await;
        Ok(res.ok().filter(|r| r.status() == StatusCode::OK))
    })
    .await;
    assert!(through_service.is_ok(), "{through_service:?}");

    // The pod serves the tenant it read from its Secret: its catalog (DynamoDB on moto) and a
    // shopper's registration (PostgreSQL), both reached at the node's address.
    assert_serves_shopper(
        &format!("http://{cluster_ip}"),
        &format!("{name}.localhost"),
        "ann@example.com",
    )
    .await;

    // Offboarding removes the pod from the node.
    kubectl(&["delete", "storefront", &name, "--timeout=120s"]);
    eventually("the tenant's pods are gone", WAIT, || async {
        let left = pods.list(&ListParams::default()).await?;
        Ok(left.items.is_empty().then_some(()))
    })
    .await
    .expect("the pods go with the Storefront");
    operator.assert_running();
}
