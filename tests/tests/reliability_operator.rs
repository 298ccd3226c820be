//! Fault injection on the real operator binary: 20 dedicated Storefronts (PostgreSQL database
//! and role, three DynamoDB tables on moto, a namespace each) are applied while the operator is
//! SIGKILLed every ~2 s and restarted, for ~20 s; then it is left to run. Every tenant must
//! reach Ready with nothing created twice (exactly one database, one role, three tables and one
//! namespace per tenant), and after `kubectl delete` (deletionPolicy Delete) nothing is left.
//!
//! The run is isolated from everything else on the shared stack by a label selector
//! (`--storefront-selector`) and a data prefix of its own (`--name-prefix`).
//!
//! A second test crashes the Kubernetes control plane itself (API server and etcd, SIGKILL)
//! while the operator provisions, on a private control plane so no other test loses its API.

use std::{collections::BTreeMap, time::Duration};

use emporium_integration_tests::{
    Process, Stack, child_env, databases_like, eventually, eventually_while_running, free_port,
    install_storefront_api, install_storefront_api_with, kubectl, kubectl_output, operator_args,
    postgres_admin, remove_storefronts, roles_like, storefront_manifest, unique, workspace_root,
    write_manifests,
};
use serde_json::Value;

/// Tenants per run; `EMPORIUM_RELIABILITY_TENANTS` overrides it (`make reliability` runs 50).
const TENANTS: usize = 20;
/// SIGKILL every 1.5–2.5 s (varied so the kills land in different reconcile phases).
const KILL_EVERY_MS: u64 = 1500;
const KILL_FOR: Duration = Duration::from_secs(20);
const READY_WITHIN: Duration = Duration::from_secs(90);
const GONE_WITHIN: Duration = Duration::from_secs(90);
/// The operator is also SIGKILLed this many times while the tenants are being deleted.
const KILLS_DURING_DELETION: usize = 3;

fn tenants() -> usize {
    std::env::var("EMPORIUM_RELIABILITY_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(TENANTS)
}

fn kill_interval(i: usize) -> Duration {
    Duration::from_millis(KILL_EVERY_MS + (i as u64 * 379) % 1000)
}

/// Writes the run's Storefronts (`premium`, deletionPolicy Delete, labelled `label: run`) to
/// one manifest in `artifacts`; returns its path.
fn storefronts_manifest(
    artifacts: &std::path::Path,
    names: &[String],
    label: &str,
    run: &str,
) -> std::path::PathBuf {
    let manifest = artifacts.join(format!("storefronts-{run}.yaml"));
    let storefronts: Vec<_> = names
        .iter()
        .map(|n| storefront_manifest(n, label, run, "premium", "Delete"))
        .collect();
    write_manifests(&manifest, &storefronts);
    manifest
}

/// Storefronts of this run by name → whether their Ready condition is True.
fn readiness(selector: &str) -> BTreeMap<String, bool> {
    readiness_in(&[], selector)
}

/// As [`readiness`], with extra kubectl flags first (`--kubeconfig` of another control plane).
fn readiness_in(flags: &[&str], selector: &str) -> BTreeMap<String, bool> {
    let args = [flags, &["get", "storefronts", "-l", selector, "-o", "json"]].concat();
    let json = kubectl(&args);
    let list: Value = serde_json::from_str(&json).expect("storefront list JSON");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|sf| {
            let name = sf["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let ready = sf["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            (name, ready)
        })
        .collect()
}

/// Waits until all `tenants` Storefronts of `selector` are Ready, failing the test as soon as
/// the operator exits or with the operator logs' location after [`READY_WITHIN`].
async fn wait_all_ready(flags: &[&str], selector: &str, tenants: usize, operator: &Process) {
    eventually_while_running("every Storefront Ready", READY_WITHIN, operator, || async {
        let states = readiness_in(flags, selector);
        let ready = states.values().filter(|r| **r).count();
        if ready == tenants && states.len() == tenants {
            Ok(Some(()))
        } else {
            let waiting: Vec<&String> = states
                .iter()
                .filter(|(_, r)| !**r)
                .map(|(n, _)| n)
                .collect();
            Err(anyhow::anyhow!(
                "{ready}/{tenants} Ready; waiting for {waiting:?}"
            ))
        }
    })
    .await;
}

/// What exists under this run's data prefix: (databases, roles, tables, namespaces).
async fn inventory(
    pg: &tokio_postgres::Client,
    prefix: &str,
    namespace_prefix: &str,
) -> anyhow::Result<(Vec<String>, Vec<String>, Vec<String>, Vec<String>)> {
    let like = format!("{prefix}-%");
    let databases = databases_like(pg, &like).await?;
    let roles = roles_like(pg, &like).await?;
    let dynamodb = Stack::get().dynamodb().await?;
    let mut tables = Vec::new();
    let mut pages = dynamodb.list_tables().into_paginator().items().send();
    while let Some(table) = pages.next().await {
        let table = table?;
        if table.starts_with(&format!("{prefix}-")) {
            tables.push(table);
        }
    }
    let (_, out, _) = kubectl_output(&["get", "namespaces", "-o", "name"]);
    let namespaces = out
        .lines()
        .filter_map(|l| l.strip_prefix("namespace/"))
        .filter(|n| n.starts_with(namespace_prefix))
        .map(str::to_owned)
        .collect();
    Ok((databases, roles, tables, namespaces))
}

/// One database and one role per tenant (`<prefix>-<name>`), and three tables each.
fn assert_data_made_once(
    names: &[String],
    prefix: &str,
    databases: &[String],
    roles: &[String],
    tables: &[String],
) {
    let expected: Vec<String> = names.iter().map(|n| format!("{prefix}-{n}")).collect();
    assert_eq!(databases, expected, "one database per tenant");
    assert_eq!(roles, expected, "one role per tenant");
    assert_eq!(
        tables.len(),
        3 * names.len(),
        "three tables per tenant: {tables:?}"
    );
}

/// Deletes this run's Storefronts when the test fails midway; with the operator already gone
/// their finalizers are dropped so they do not linger on the shared API server (their data
/// under the run's own prefix is left behind, which no other test sees).
struct Cleanup {
    selector: String,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        remove_storefronts(&self.selector);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_sigkilled_every_two_seconds_creates_nothing_twice() {
    let started = std::time::Instant::now();
    let tenants = tenants();
    let root = workspace_root();
    let run = unique("");
    let label = "emporium.dev/reliability";
    let selector = format!("{label}={run}");
    let prefix = format!("rel{run}");
    let artifacts = root.join("tests/artifacts/reliability-operator");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");

    install_storefront_api();
    let env = child_env();
    let password_key = uuid::Uuid::new_v4().simple().to_string();
    let pool_namespace = format!("rel-pool-{run}");
    let args = |port: u16| operator_args(port, &selector, &prefix, &pool_namespace, &password_key);
    let start_operator = |generation: usize| {
        Process::start(
            "emporium-operator",
            &args(free_port()),
            &artifacts.join(format!("operator-{run}-{generation}.log")),
            &env,
        )
    };

    let names: Vec<String> = (0..tenants).map(|i| format!("rel-{run}-{i:02}")).collect();
    let manifest = storefronts_manifest(&artifacts, &names, label, &run);
    let mut cleanup = Cleanup {
        selector: selector.clone(),
        armed: true,
    };

    // Provision under fire: the operator is SIGKILLed every ~2 s and started again at once.
    let mut operator = start_operator(0);
    kubectl(&["apply", "-f", manifest.to_str().unwrap_or_default()]);
    let mut kills = 0;
    let chaos_until = std::time::Instant::now() + KILL_FOR;
    while std::time::Instant::now() < chaos_until {
        tokio::time::sleep(kill_interval(kills)).await;
        operator.assert_running();
        operator.kill_hard();
        kills += 1;
        operator = start_operator(kills);
    }
    let ready_during_chaos = readiness(&selector).values().filter(|r| **r).count();
    println!("{kills} SIGKILLs; {ready_during_chaos}/{tenants} Ready when the killing stopped");

    // Then left alone, it converges.
    let calm = std::time::Instant::now();
    wait_all_ready(&[], &selector, tenants, &operator).await;
    println!(
        "all {tenants} Ready {:.1}s after the last SIGKILL",
        calm.elapsed().as_secs_f64()
    );

    // Nothing twice.
    let pg = postgres_admin().await;
    let namespace_prefix = format!("store-rel-{run}-");
    let (databases, roles, tables, namespaces) = inventory(&pg, &prefix, &namespace_prefix)
        .await
        .expect("list what the operator made");
    println!(
        "made: {} databases, {} roles, {} tables, {} namespaces",
        databases.len(),
        roles.len(),
        tables.len(),
        namespaces.len()
    );
    assert_data_made_once(&names, &prefix, &databases, &roles, &tables);
    for name in &names {
        let own = tables
            .iter()
            .filter(|t| t.starts_with(&format!("{prefix}-{name}-")))
            .count();
        assert_eq!(own, 3, "{name} has three tables: {tables:?}");
    }
    let expected_namespaces: Vec<String> = names.iter().map(|n| format!("store-{n}")).collect();
    assert_eq!(namespaces, expected_namespaces, "one namespace per tenant");
    for ns in &expected_namespaces {
        let (_, own, _) = kubectl_output(&["get", "deployments", "-n", ns, "-o", "name"]);
        assert_eq!(own.lines().count(), 1, "{ns} has one Deployment: {own}");
    }

    // Offboard all of them, again under fire: deletionPolicy Delete leaves no data behind.
    kubectl(&["delete", "storefronts", "-l", &selector, "--wait=false"]);
    for i in 0..KILLS_DURING_DELETION {
        tokio::time::sleep(kill_interval(i)).await;
        operator.assert_running();
        operator.kill_hard();
        kills += 1;
        operator = start_operator(kills);
    }
    println!("{KILLS_DURING_DELETION} more SIGKILLs while deleting");
    let deleting = std::time::Instant::now();
    eventually_while_running(
        "every Storefront and its data gone",
        GONE_WITHIN,
        &operator,
        || async {
            let left = readiness(&selector).len();
            let (d, r, t, n) = inventory(&pg, &prefix, &namespace_prefix).await?;
            if left + d.len() + r.len() + t.len() + n.len() == 0 {
                Ok(Some(()))
            } else {
                Err(anyhow::anyhow!(
                    "left: {left} storefronts, {} databases, {} roles, {} tables, {} namespaces",
                    d.len(),
                    r.len(),
                    t.len(),
                    n.len()
                ))
            }
        },
    )
    .await;
    cleanup.armed = false;
    println!(
        "all data gone {:.1}s after the last SIGKILL",
        deleting.elapsed().as_secs_f64()
    );
    println!("whole run {:.1}s", started.elapsed().as_secs_f64());
}

/// A private control plane (`controlplane up`: etcd, kube-apiserver, kube-controller-manager)
/// in its own process group, so it can be crashed as a whole and started again on the same port
/// and data, like an API server pod restarting.
struct PrivateControlPlane {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

impl PrivateControlPlane {
    fn start(dir: std::path::PathBuf, port: u16) -> Self {
        let mut cp = Self {
            dir,
            port,
            child: None,
        };
        cp.up(false);
        cp
    }

    fn up(&mut self, keep_data: bool) {
        use std::os::unix::process::CommandExt as _;
        let bin = workspace_root().join(".bin/controlplane");
        let log = std::fs::File::create(self.dir.join(format!("up-{keep_data}.log"))).unwrap();
        let mut cmd = std::process::Command::new(&bin);
        cmd.args([
            "up",
            "--kwok=false",
            "--port",
            &self.port.to_string(),
            "--dir",
        ])
        .arg(&self.dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
        if keep_data {
            cmd.arg("--keep-data");
        }
        let ready = self.dir.join("ready");
        let _ = std::fs::remove_file(&ready);
        self.child = Some(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("{}: {e}", bin.display())),
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !ready.exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "the private control plane did not start; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// SIGKILL to every process of the control plane at once: no graceful shutdown.
    fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let group = format!("-{}", child.id());
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &group])
                .status();
            let _ = child.wait();
        }
    }

    fn kubeconfig(&self) -> String {
        self.dir.join("kubeconfig").to_string_lossy().into_owned()
    }
}

impl Drop for PrivateControlPlane {
    fn drop(&mut self) {
        self.crash();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_rides_out_an_api_server_crash_while_provisioning() {
    const CRASH_TENANTS: usize = 8;
    let started = std::time::Instant::now();
    let root = workspace_root();
    let run = unique("");
    let artifacts = root.join("tests/artifacts/reliability-apiserver");
    let dir = artifacts.join(format!("controlplane-{run}"));
    std::fs::create_dir_all(&dir).expect("artifacts directory");
    let mut cp = PrivateControlPlane::start(dir.clone(), free_port());
    let kubeconfig = cp.kubeconfig();
    let kc = ["--kubeconfig", kubeconfig.as_str()];
    install_storefront_api_with(&kc);

    // The operator as the chart runs it (leader election on), against the private API server;
    // databases and tables on the shared stack under this run's own prefix.
    let label = "emporium.dev/reliability";
    let selector = format!("{label}={run}");
    let prefix = format!("rak{run}");
    let password_key = uuid::Uuid::new_v4().simple().to_string();
    let mut args = operator_args(
        free_port(),
        &selector,
        &prefix,
        &format!("rak-pool-{run}"),
        &password_key,
    );
    // A lease longer than the outage: past it, the operator stops by design (a standby may
    // lead by then) and Kubernetes would restart it; here it must ride the outage out.
    args.extend([
        "--leader-election".into(),
        "--lease-namespace=default".into(),
        "--lease-seconds=60".into(),
    ]);
    let env: Vec<(String, String)> = child_env()
        .into_iter()
        .map(|(k, v)| {
            if k == "KUBECONFIG" {
                (k, kubeconfig.clone())
            } else {
                (k, v)
            }
        })
        .collect();
    let operator = Process::start(
        "emporium-operator",
        &args,
        &artifacts.join(format!("operator-{run}.log")),
        &env,
    );

    let names: Vec<String> = (0..CRASH_TENANTS)
        .map(|i| format!("rak-{run}-{i:02}"))
        .collect();
    let manifest = storefronts_manifest(&artifacts, &names, label, &run);
    kubectl(
        &[
            &kc[..],
            &["apply", "-f", manifest.to_str().unwrap_or_default()],
        ]
        .concat(),
    );

    // Crash the control plane once provisioning is under way, then start it again on the same
    // port and etcd data.
    eventually("a first tenant Ready", Duration::from_secs(90), || async {
        let ready = readiness_in(&kc, &selector)
            .values()
            .filter(|r| **r)
            .count();
        Ok((ready >= 1).then_some(ready))
    })
    .await
    .expect("provisioning starts");
    let before = readiness_in(&kc, &selector)
        .values()
        .filter(|r| **r)
        .count();
    let down = std::time::Instant::now();
    cp.crash();
    tokio::time::sleep(Duration::from_secs(3)).await;
    cp.up(true);
    let outage = down.elapsed();
    println!(
        "control plane crashed with {before}/{CRASH_TENANTS} Ready; API back after {:.1}s",
        outage.as_secs_f64()
    );

    let calm = std::time::Instant::now();
    wait_all_ready(&kc, &selector, CRASH_TENANTS, &operator).await;
    println!(
        "all {CRASH_TENANTS} Ready {:.1}s after the API server came back, without restarting the operator",
        calm.elapsed().as_secs_f64()
    );

    // Nothing twice: one database, role and namespace, three tables per tenant.
    let pg = postgres_admin().await;
    let (databases, roles, tables, _) = inventory(&pg, &prefix, "-")
        .await
        .expect("list what the operator made");
    assert_data_made_once(&names, &prefix, &databases, &roles, &tables);
    for n in &names {
        let ns = format!("store-{n}");
        let own = kubectl(&[&kc[..], &["get", "deployments", "-n", &ns, "-o", "name"]].concat());
        assert_eq!(
            own.lines().count(),
            1,
            "store-{n} has one Deployment: {own}"
        );
    }

    // Offboard: deletionPolicy Delete leaves nothing on the shared stack. This needs the
    // operator's watches to work again after the crash (they did not, before the watchdog).
    kubectl(
        &[
            &kc[..],
            &["delete", "storefronts", "-l", &selector, "--wait=false"],
        ]
        .concat(),
    );
    eventually_while_running(
        "every tenant's data gone",
        GONE_WITHIN,
        &operator,
        || async {
            let (d, r, t, _) = inventory(&pg, &prefix, "-").await?;
            let left = readiness_in(&kc, &selector).len();
            if left + d.len() + r.len() + t.len() == 0 {
                Ok(Some(()))
            } else {
                Err(anyhow::anyhow!(
                    "left: {left} storefronts, {} databases, {} roles, {} tables",
                    d.len(),
                    r.len(),
                    t.len()
                ))
            }
        },
    )
    .await;
    println!("whole run {:.1}s", started.elapsed().as_secs_f64());
}
