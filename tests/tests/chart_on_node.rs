//! The chart installed for real (issue 13, item 3): `helm install` of `charts/emporium` on the
//! real node (docs/real-node.md). The operator runs as two pods from the image `make images`
//! built, with the chart's ServiceAccount and RBAC, in a namespace enforcing `restricted` Pod
//! Security; it reaches the API server in-cluster (the `kubernetes` Service), PostgreSQL and moto
//! at the node's address, and elects a leader through a Lease. It provisions a dedicated tenant
//! whose runtime pod starts from the runtime image, passes its probes and serves a shopper, and a
//! pooled tenant served by the pool Deployment's pod. Traefik, the node's ingress controller
//! (class `emporium-local`, chart value `alb.ingressClass`), routes each tenant's host to its
//! pods the way the ALB does on EKS, and a shopper's whole browser journey runs through it
//! against the pooled store. When the leader's pod is deleted another replica takes the Lease and
//! reconciles the next change.
//!
//! Runs when the node is up (`.state/node/env`); with `EMPORIUM_REAL_NODE=1` a missing node fails.

use std::time::Duration;

use emporium_integration_tests::{
    RealNode, Stack, StoreClient, assert_serves_shopper, ensure_browser, eventually, helm,
    install_storefront_api, kubectl, kubectl_output, pod_ready, real_node, remove_storefronts,
    run_journey, seed_journey_shop, storefront_manifest, unique, workspace_root, write_manifests,
};
use emporium_tenant_config::{TENANT_CONFIG_KEY, TENANT_SECRET_SELECTOR, TenantConfig};
use k8s_openapi::api::{
    coordination::v1::Lease,
    core::v1::{Namespace, Pod, Secret, Service},
};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const READY_TIMEOUT: &str = "300s";
const WAIT: Duration = Duration::from_secs(90);
const OPERATOR_PODS: &str = "app.kubernetes.io/name=emporium-operator";

/// Takes everything of the test away, pass or fail: the Storefront (while the operator still
/// runs, so its finalizer cleans up), the release, its namespace and the plan.
struct Cleanup {
    release: String,
    namespace: String,
    selector: String,
    plans: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = kubectl_output(&[
            "delete",
            "storefronts",
            "-l",
            &self.selector,
            "--timeout=90s",
        ]);
        remove_storefronts(&self.selector);
        let _ = helm(&[
            "uninstall",
            &self.release,
            "-n",
            &self.namespace,
            "--wait",
            "--timeout=60s",
        ]);
        let _ = kubectl_output(&["delete", "namespace", &self.namespace, "--wait=false"]);
        for plan in &self.plans {
            let _ = kubectl_output(&[
                "delete",
                "storefrontplan",
                plan,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

/// What went wrong, for a failure message: the operator pods, their logs, the tenant's pods.
fn diagnostics(namespace: &str, tenant_namespace: &str) -> String {
    let (_, pods, _) = kubectl_output(&["-n", namespace, "get", "pods,lease", "-o", "wide"]);
    let (_, described, _) = kubectl_output(&["-n", namespace, "describe", "pods"]);
    let (_, logs, _) = kubectl_output(&[
        "-n",
        namespace,
        "logs",
        "-l",
        OPERATOR_PODS,
        "--prefix",
        "--tail=40",
    ]);
    let (_, tenant, _) = kubectl_output(&["-n", tenant_namespace, "describe", "pods"]);
    format!("operator pods:\n{pods}\n{described}\noperator logs:\n{logs}\ntenant pods:\n{tenant}")
}

/// The tenant config the operator wrote for Storefront `name` (its admin key, for seeding).
async fn tenant_config(client: &kube::Client, name: &str) -> TenantConfig {
    let secrets: Api<Secret> = Api::all(client.clone());
    let selector = format!("{TENANT_SECRET_SELECTOR},emporium.dev/tenant={name}");
    let secret = eventually("the tenant config Secret", WAIT, || async {
        let list = secrets
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(list.items.into_iter().next())
    })
    .await
    .expect("the operator writes the tenant config Secret");
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TENANT_CONFIG_KEY))
        .map(|b| b.0.clone());
    TenantConfig::from_secret_data(data.as_deref()).expect("a valid tenant config")
}

/// Waits until Storefront `name` is Ready, or fails with its conditions and `diagnostics`.
fn wait_ready(name: &str, diagnostics: impl Fn() -> String) {
    let waited = kubectl_output(&[
        "wait",
        "--for=condition=Ready",
        &format!("storefront/{name}"),
        &format!("--timeout={READY_TIMEOUT}"),
    ]);
    if !waited.0 {
        let (_, status, _) = kubectl_output(&[
            "get",
            "storefront",
            name,
            "-o",
            "jsonpath={.status.conditions}",
        ]);
        panic!(
            "storefront/{name} not Ready within {READY_TIMEOUT}: {} {}\nconditions: {status}\n{}",
            waited.1,
            waited.2,
            diagnostics()
        );
    }
}

/// The operator pods that are Ready, by name.
async fn ready_operator_pods(pods: &Api<Pod>) -> anyhow::Result<Vec<Pod>> {
    let listed = pods
        .list(&ListParams::default().labels(OPERATOR_PODS))
        .await?;
    Ok(listed
        .items
        .into_iter()
        .filter(|p| pod_ready(p) && p.metadata.deletion_timestamp.is_none())
        .collect())
}

fn pod_name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// The Lease's holder, when it has one.
async fn lease_holder(leases: &Api<Lease>) -> anyhow::Result<Option<String>> {
    let lease = leases.get_opt("emporium-operator").await?;
    Ok(lease
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_runs_the_operator_as_pods_that_serve_tenants_through_the_ingress() {
    let Some(node) = real_node() else { return };
    let stack = Stack::get();
    let client = stack.kube().await.expect("kube client");
    let run = unique("");
    let artifacts = workspace_root().join("tests/artifacts/chart-on-node");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");
    let namespace = format!("emporium-{run}");
    let release = format!("em-{run}");
    let plan = format!("chart-node-{run}");
    let pooled_plan = format!("chart-node-pooled-{run}");
    let label = "emporium.dev/chart-run";
    let selector = format!("{label}={run}");
    let name = format!("cn-outfitters-{run}");
    let pooled = format!("cn-corner-{run}");
    let tenant_namespace = format!("store-{name}");
    let pool_namespace = format!("cn-pool-{run}");
    let _cleanup = Cleanup {
        release: release.clone(),
        namespace: namespace.clone(),
        selector: selector.clone(),
        plans: vec![plan.clone(), pooled_plan.clone()],
    };

    // The Storefront API (CRDs, so helm leaves its crds/ copy alone) and the release namespace,
    // enforcing `restricted` like a tenant's: the chart's pods must pass it too.
    install_storefront_api();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {
                    "name": namespace,
                    "labels": {
                        "emporium.dev/test": "true",
                        "pod-security.kubernetes.io/enforce": "restricted",
                    },
                },
            }))
            .expect("a namespace"),
        )
        .await
        .expect("create the release namespace");

    // The Secrets the chart names (never values): the postgres provider's admin URL and
    // password key, and AWS credentials for moto (where EKS would use IRSA). Addresses are the
    // node's: the operator is a pod now, and 127.0.0.1 is its own.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    for (secret, data) in [
        (
            "emporium-postgres",
            json!({
                "adminUrl": node.var("NODE_DATABASE_URL"),
                "passwordKey": uuid::Uuid::new_v4().simple().to_string(),
            }),
        ),
        (
            "emporium-aws",
            json!({
                "AWS_ACCESS_KEY_ID": stack.var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID"),
                "AWS_SECRET_ACCESS_KEY": stack.var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY"),
            }),
        ),
    ] {
        secrets
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({
                    "metadata": { "name": secret },
                    "stringData": data,
                }))
                .expect("a secret"),
            )
            .await
            .unwrap_or_else(|e| panic!("create Secret {secret}: {e}"));
    }

    let operator_image = RealNode::image("operator");
    let runtime_image = RealNode::image("storefront");
    let (repository, tag) = operator_image
        .rsplit_once(':')
        .expect("an image reference with a tag");
    let aws_region = stack.var("AWS_REGION").expect("AWS_REGION");
    let real_node_toleration = json!([{
        "key": "emporium.dev/node", "operator": "Equal", "value": "real", "effect": "NoSchedule",
    }]);
    let values: Value = json!({
        "image": { "repository": repository, "tag": tag, "pullPolicy": "IfNotPresent" },
        "replicas": 2,
        "nodeSelector": { "emporium.dev/node": "real" },
        "tolerations": real_node_toleration,
        "leaderElection": { "leaseSeconds": 6 },
        "storefrontSelector": selector,
        "runtimeImage": runtime_image,
        "runtimeNodeSelector": { "emporium.dev/node": "real" },
        // moto's dummy credentials; a real cluster gives the runtime an IRSA role instead.
        "runtimeEnv": {
            "REDIS_URL": node.var("NODE_REDIS_URL"),
            "AWS_ENDPOINT_URL": node.var("NODE_AWS_ENDPOINT_URL"),
            "AWS_REGION": aws_region,
            "AWS_ACCESS_KEY_ID": stack.var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID"),
            "AWS_SECRET_ACCESS_KEY": stack.var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY"),
        },
        "aws": { "region": aws_region, "credentialsSecret": "emporium-aws" },
        "pool": { "namespace": pool_namespace, "minReplicas": 1, "maxReplicas": 2 },
        // The node's ingress controller instead of the AWS Load Balancer Controller; the
        // Ingresses keep their ALB annotations, which Traefik ignores.
        "alb": { "ingressClass": node.var("NODE_INGRESS_CLASS") },
        "providers": {
            "database": "postgres",
            "tables": "dynamodb",
            "queues": "sqs",
            "namePrefix": format!("cn{run}"),
            "awsEndpointUrl": node.var("NODE_AWS_ENDPOINT_URL"),
            "postgres": {
                "secretName": "emporium-postgres",
                "tenantHost": node.var("NODE_PGHOST"),
                "tenantPort": node.var("NODE_PGPORT"),
            },
        },
        // No load balancer controller here: Ready waits for the Deployment to be Available.
        "readinessGate": "deployment-available",
        "resources": {
            "requests": { "cpu": "50m", "memory": "64Mi" },
            "limits": { "cpu": "1", "memory": "256Mi" },
        },
    });
    let values_file = artifacts.join(format!("values-{run}.yaml"));
    std::fs::write(
        &values_file,
        serde_yaml::to_string(&values).expect("values as YAML"),
    )
    .expect("write the values file");

    // helm install, waiting until both operator pods are Ready.
    let started = std::time::Instant::now();
    let (installed, out, err) = helm(&[
        "install",
        &release,
        "charts/emporium",
        "-n",
        &namespace,
        "-f",
        values_file.to_str().unwrap_or_default(),
        "--wait",
        "--timeout=240s",
    ]);
    assert!(
        installed,
        "helm install: {out}{err}\n{}",
        diagnostics(&namespace, &tenant_namespace)
    );
    eprintln!("helm install --wait: {:?}", started.elapsed());

    // Two operator pods on the real node, from the image built here, as the chart's ServiceAccount.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let operators = ready_operator_pods(&pods).await.expect("operator pods");
    assert_eq!(
        operators.len(),
        2,
        "two Ready operator pods\n{}",
        diagnostics(&namespace, &tenant_namespace)
    );
    for pod in &operators {
        let spec = pod.spec.as_ref().expect("a pod spec");
        assert_eq!(
            spec.node_name.as_deref(),
            Some(node.name()),
            "on the real node"
        );
        assert_eq!(
            spec.service_account_name.as_deref(),
            Some("emporium-operator")
        );
        assert_eq!(
            spec.containers[0].image.as_deref(),
            Some(operator_image.as_str())
        );
    }

    // One of them holds the Lease.
    let leases: Api<Lease> = Api::namespaced(client.clone(), &namespace);
    let names: Vec<String> = operators.iter().map(pod_name).collect();
    let leader = eventually("an operator pod holds the Lease", WAIT, || async {
        Ok(lease_holder(&leases)
            .await?
            .filter(|holder| names.contains(holder)))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics(&namespace, &tenant_namespace)));

    // A dedicated and a pooled tenant, reconciled by the operator pods.
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
            json!({
                "apiVersion": "emporium.dev/v1alpha1",
                "kind": "StorefrontPlan",
                "metadata": { "name": pooled_plan },
                "spec": {
                    "tier": "pooled",
                    "replicas": { "min": 1, "max": 1 },
                    "resources": {
                        "requests": { "cpu": "50m", "memory": "64Mi" },
                        "limits": { "cpu": "500m", "memory": "256Mi" },
                    },
                    "database": { "minCapacity": 0.5, "maxCapacity": 2 },
                },
            }),
            storefront_manifest(&name, label, &run, &plan, "Delete"),
            storefront_manifest(&pooled, label, &run, &pooled_plan, "Delete"),
        ],
    );
    kubectl(&[
        "apply",
        "-f",
        artifacts
            .join(format!("storefront-{run}.yaml"))
            .to_str()
            .unwrap_or_default(),
    ]);
    wait_ready(&name, || diagnostics(&namespace, &tenant_namespace));
    wait_ready(&pooled, || diagnostics(&namespace, &pool_namespace));

    // Its runtime pod runs from the runtime image on the node and serves a shopper, through
    // its ClusterIP, with what it read from its tenant Secret.
    let tenant_pods: Api<Pod> = Api::namespaced(client.clone(), &tenant_namespace);
    let listed = tenant_pods
        .list(&ListParams::default().labels(&format!("emporium.dev/tenant={name}")))
        .await
        .expect("the tenant's pods");
    let runtime = listed
        .items
        .iter()
        .find(|p| pod_ready(p))
        .unwrap_or_else(|| panic!("no Ready runtime pod among {}", listed.items.len()));
    let spec = runtime.spec.as_ref().expect("a pod spec");
    assert_eq!(spec.node_name.as_deref(), Some(node.name()));
    assert_eq!(
        spec.containers[0].image.as_deref(),
        Some(runtime_image.as_str())
    );
    let services: Api<Service> = Api::namespaced(client.clone(), &tenant_namespace);
    let cluster_ip = services
        .get("storefront")
        .await
        .expect("the tenant's Service")
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    eventually("the tenant's ClusterIP answers /readyz", WAIT, || async {
        let res = http.get(format!("http://{cluster_ip}/readyz")).send().await;
        Ok(res.ok().filter(|r| r.status() == StatusCode::OK))
    })
    .await
    .expect("the Service answers");
    assert_serves_shopper(
        &format!("http://{cluster_ip}"),
        &format!("{name}.localhost"),
        "bea@example.com",
    )
    .await;

    // Real routing: Traefik on the node serves the operator's Ingresses (their class is the one
    // the chart was given) and sends each host to its own pods: the dedicated tenant's, and the
    // pool Deployment's for the pooled one.
    let ingress = node.var("NODE_INGRESS_URL").to_owned();
    for store in [&name, &pooled] {
        let (_, classes, _) = kubectl_output(&[
            "get",
            "ingress",
            "-A",
            "-l",
            &format!("emporium.dev/tenant={store}"),
            "-o",
            "jsonpath={.items[*].spec.ingressClassName}",
        ]);
        assert_eq!(
            classes.trim(),
            node.var("NODE_INGRESS_CLASS"),
            "{store}'s Ingress has the chart's class"
        );
    }
    let pool_pods: Api<Pod> = Api::namespaced(client.clone(), &pool_namespace);
    let pool = pool_pods
        .list(&ListParams::default().labels("emporium.dev/pool=true"))
        .await
        .expect("the pool's pods");
    let pool_pod = pool
        .items
        .iter()
        .find(|p| pod_ready(p))
        .unwrap_or_else(|| panic!("no Ready pool pod among {}", pool.items.len()));
    assert_eq!(
        pool_pod.spec.as_ref().and_then(|s| s.node_name.as_deref()),
        Some(node.name()),
        "the pool runs on the real node"
    );
    for (store, shopper) in [(&name, "ingrid@example.com"), (&pooled, "pia@example.com")] {
        let host = format!("{store}.localhost");
        eventually(&format!("the ingress routes {host}"), WAIT, || async {
            let res = http
                .get(format!("{ingress}/readyz"))
                .header("Host", &host)
                .send()
                .await;
            Ok(res.ok().filter(|r| r.status() == StatusCode::OK))
        })
        .await
        .unwrap_or_else(|e| {
            let log =
                std::fs::read_to_string(workspace_root().join(".state/node/logs/ingress.log"))
                    .unwrap_or_default();
            panic!("{e:#}\ningress log:\n{log}")
        });
        assert_serves_shopper(&ingress, &host, shopper).await;
        let home = http
            .get(format!("{ingress}/"))
            .header("Host", &host)
            .send()
            .await
            .expect("the home page");
        assert_eq!(home.status(), StatusCode::OK, "{host}'s home page");
        let page = home.text().await.expect("the home page's body");
        let other = if store == &name { &pooled } else { &name };
        assert!(
            page.contains(&format!("Store {store}")) && !page.contains(other.as_str()),
            "{host} is served by its own store"
        );
    }

    // A shopper's whole journey in Chromium, through the ingress to the pool's pod: search,
    // product with live stock, cart, checkout with shipping and VAT, account, keyboard, phone.
    ensure_browser();
    let config = tenant_config(&client, &pooled).await;
    let port = ingress.rsplit(':').next().expect("the ingress port");
    let shop = StoreClient {
        http: http.clone(),
        base: ingress.clone(),
        host: format!("{pooled}.localhost"),
        admin_key: config.admin_key.clone(),
    };
    let sku = seed_journey_shop(&shop).await;
    let journey = artifacts.join(format!("journey-{run}"));
    std::fs::create_dir_all(&journey).expect("the journey's artifacts directory");
    let (status, output) = run_journey(
        "journey.mjs",
        &[
            "--base",
            &format!("http://{pooled}.localhost:{port}"),
            "--search",
            "ceramik",
            "--product",
            "Ceramic Mug",
            "--sku",
            &sku,
            "--store",
            &format!("Store {pooled}"),
            "--admin-key",
            &config.admin_key,
        ],
        &journey,
        Duration::from_secs(300),
    )
    .await;
    assert!(
        status.success(),
        "the browser journey through the ingress failed ({status}):\n{output}\nscreenshots: {}",
        journey.display()
    );

    // The leader's pod goes: another replica takes the Lease, the Deployment replaces the pod, and
    // the new leader reconciles the next change.
    kubectl(&["-n", &namespace, "delete", "pod", &leader, "--wait=false"]);
    // Another live replica (the standby, or the Deployment's replacement if it was quicker)
    // takes the Lease from the dead leader.
    eventually("a live replica takes the Lease", WAIT, || async {
        let live: Vec<String> = ready_operator_pods(&pods)
            .await?
            .iter()
            .map(pod_name)
            .collect();
        Ok(lease_holder(&leases)
            .await?
            .filter(|holder| *holder != leader && live.contains(holder)))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics(&namespace, &tenant_namespace)));
    kubectl(&[
        "patch",
        "storefront",
        &name,
        "--type=merge",
        "-p",
        r#"{"spec":{"displayName":"Outfitters, after a failover"}}"#,
    ]);
    eventually("the new leader observes the change", WAIT, || async {
        let (_, out, _) = kubectl_output(&[
            "get",
            "storefront",
            &name,
            "-o",
            "jsonpath={.metadata.generation} {.status.observedGeneration}",
        ]);
        let numbers: Vec<i64> = out
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        Ok(matches!(numbers[..], [generation, observed] if generation >= 2 && observed == generation)
            .then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics(&namespace, &tenant_namespace)));
    eventually("two operator pods Ready again", WAIT, || async {
        let ready = ready_operator_pods(&pods).await?;
        Ok((ready.len() == 2 && !ready.iter().any(|p| pod_name(p) == leader)).then_some(()))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", diagnostics(&namespace, &tenant_namespace)));

    // Offboarding through the operator pods: the tenant's namespace and pods go.
    kubectl(&["delete", "storefront", &name, &pooled, "--timeout=120s"]);
    eventually("the tenant's namespace is gone", WAIT, || async {
        Ok(namespaces
            .get_opt(&tenant_namespace)
            .await?
            .is_none()
            .then_some(()))
    })
    .await
    .expect("the tenant namespace goes with the Storefront");
    let (uninstalled, out, err) = helm(&[
        "uninstall",
        &release,
        "-n",
        &namespace,
        "--wait",
        "--timeout=60s",
    ]);
    assert!(uninstalled, "helm uninstall: {out}{err}");
}
