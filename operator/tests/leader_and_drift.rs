//! The real operator binary against the real local API server: a Deployment edited by hand is
//! put back; a full resync of a Ready tenant (a fresh process reconciling everything) sends no
//! write while a hand-edited Secret and a deleted NetworkPolicy are still repaired; and of two
//! operator processes sharing a Lease only the holder reconciles, the other taking over when the
//! holder is killed.
//!
//! Each test starts its own operator process(es), restricted by a label selector to the
//! Storefronts it created, with unique names: tests share one cluster.

mod common;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use common::{plan, storefront};
use emporium_integration_tests::{
    Process, Stack, apply, create_namespace, eventually, free_port, install_crds, unique,
};
use emporium_operator::crd::{Phase, Storefront, StorefrontPlan};
use k8s_openapi::{
    ByteString,
    api::{
        apps::v1::Deployment,
        autoscaling::v2::HorizontalPodAutoscaler,
        coordination::v1::Lease,
        core::v1::{LimitRange, Namespace, ResourceQuota, Secret, Service, ServiceAccount},
        networking::v1::{Ingress, NetworkPolicy},
        policy::v1::PodDisruptionBudget,
        rbac::v1::{Role, RoleBinding},
    },
};
use kube::{
    Api, Client, Resource, ResourceExt as _,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);
// Short, so a takeover is quick; the holder renews every third of it, which leaves slack on a
// loaded machine.
const LEASE_SECONDS: u64 = 6;

/// The test's plan (named after its run) and its Storefront on it.
async fn apply_tenant(client: &Client, run: &str) -> anyhow::Result<()> {
    apply(
        &Api::<StorefrontPlan>::all(client.clone()),
        run,
        plan(run, "dedicated", 3),
    )
    .await?;
    let domain = format!("{run}.example.com");
    apply(
        &Api::<Storefront>::all(client.clone()),
        run,
        storefront(run, run, run, &[&domain]),
    )
    .await?;
    Ok(())
}

/// One `emporium-operator` process, stopped when dropped. Its output goes to a log file under
/// cargo's temporary directory for integration tests.
struct Operator {
    process: Process,
    identity: String,
    http: String,
}

impl Operator {
    /// Starts the binary with the flags every test here needs plus `extra`, as `identity`
    /// (its `POD_NAME`, which is its Lease holder identity).
    fn start(identity: &str, run: &str, extra: &[String]) -> anyhow::Result<Self> {
        let http = format!("127.0.0.1:{}", free_port());
        let log = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{identity}.log"));
        let mut args = vec![
            format!("--http-addr={http}"),
            "--log-format=json".to_owned(),
            "--database-provider=none".to_owned(),
            "--tables-provider=none".to_owned(),
            "--queues-provider=none".to_owned(),
            // No nodes or load balancer controller here.
            "--readiness-gate=applied".to_owned(),
            format!("--storefront-selector=emporium.dev/test-run={run}"),
            format!("--pool-namespace=pool-{run}"),
            format!("--ingress-group-prefix=emporium-{run}"),
        ];
        args.extend_from_slice(extra);
        let env = [
            (
                "KUBECONFIG".to_owned(),
                Stack::get().var("KUBECONFIG")?.to_owned(),
            ),
            ("POD_NAME".to_owned(), identity.to_owned()),
        ];
        Ok(Self {
            process: Process::start("emporium-operator", &args, &log, &env),
            identity: identity.to_owned(),
            http,
        })
    }

    fn log(&self) -> String {
        self.process.log()
    }

    /// Fails when the process has exited, with the end of its log.
    fn ensure_running(&self) -> anyhow::Result<()> {
        self.process
            .check_running()
            .map_err(|e| e.context(format!("operator {}", self.identity)))
    }

    /// SIGKILL: no chance to release the Lease (a crashed pod, a lost node).
    fn kill_hard(&self) {
        self.process.kill_hard();
    }

    /// Its /metrics page.
    async fn metrics(&self) -> anyhow::Result<String> {
        Ok(reqwest::get(format!("http://{}/metrics", self.http))
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// `emporium_operator_<name>` from its /metrics, e.g. `reconciles_total` or `leader`.
    async fn metric(&self, name: &str) -> anyhow::Result<f64> {
        let text = self.metrics().await?;
        let full = format!("emporium_operator_{name}");
        text.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(' ')?;
                (key == full).then(|| value.trim().parse::<f64>().ok())?
            })
            .ok_or_else(|| anyhow::anyhow!("{full} not in {}'s /metrics", self.identity))
    }

    /// The sum of `emporium_operator_<name>` over all its label sets, and the label sets with
    /// a non-zero value.
    async fn metric_sum(&self, name: &str) -> anyhow::Result<(f64, Vec<String>)> {
        let text = self.metrics().await?;
        let full = format!("emporium_operator_{name}");
        let mut sum = 0.0;
        let mut nonzero = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.rsplit_once(' ') else {
                continue;
            };
            if key == full || key.starts_with(&format!("{full}{{")) {
                let value: f64 = value.trim().parse()?;
                sum += value;
                if value != 0.0 {
                    nonzero.push(format!("{key} {value}"));
                }
            }
        }
        Ok((sum, nonzero))
    }

    /// Waits until its /metrics answers.
    async fn serving(&self) -> anyhow::Result<()> {
        eventually("operator serving /metrics", WAIT, || async {
            Ok(self.metric("leader").await.ok().map(|_| ()))
        })
        .await?;
        self.ensure_running()
    }
}

async fn wait_ready(storefronts: &Api<Storefront>, name: &str) -> anyhow::Result<()> {
    eventually("Storefront Ready", WAIT, || async {
        let sf = storefronts.get(name).await?;
        let phase = sf.status.and_then(|s| s.phase);
        Ok((phase == Some(Phase::Ready)).then_some(()))
    })
    .await
}

/// Offboards the test's Storefront through the operator while one still runs; if none does
/// (or it does not finish), removes the finalizer and the tenant namespace directly. Then
/// deletes the plan. `true` when the operator offboarded it.
async fn clean_up(client: &Client, name: &str) -> bool {
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let _ = storefronts.delete(name, &DeleteParams::default()).await;
    let gone = eventually("Storefront gone", Duration::from_secs(20), || async {
        Ok(storefronts.get_opt(name).await?.is_none().then_some(()))
    })
    .await;
    let offboarded = gone.is_ok();
    if !offboarded {
        let _ = storefronts
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "metadata": { "finalizers": null } })),
            )
            .await;
    }
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&format!("store-{name}"), &DeleteParams::background())
        .await;
    let _ = Api::<StorefrontPlan>::all(client.clone())
        .delete(name, &DeleteParams::default())
        .await;
    offboarded
}

/// The test's outcome, and a failure if it passed but the operator did not offboard its
/// Storefront.
fn with_offboarding(result: anyhow::Result<()>, offboarded: bool) -> anyhow::Result<()> {
    result?;
    anyhow::ensure!(
        offboarded,
        "the operator did not offboard the Storefront within 20 s"
    );
    Ok(())
}

#[tokio::test]
async fn a_hand_edited_deployment_image_is_put_back() -> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("drift-");
    let runtime_image = format!("registry.invalid/emporium/storefront:{run}");
    let mut operator = Operator::start(
        &format!("{run}-op"),
        &run,
        &[format!("--runtime-image={runtime_image}")],
    )?;
    let result = drift(&client, &run, &runtime_image, &mut operator).await;
    let offboarded = clean_up(&client, &run).await;
    drop(operator);
    with_offboarding(result, offboarded)
}

async fn drift(
    client: &Client,
    run: &str,
    runtime_image: &str,
    operator: &mut Operator,
) -> anyhow::Result<()> {
    let storefronts: Api<Storefront> = Api::all(client.clone());
    apply_tenant(client, run).await?;
    wait_ready(&storefronts, run).await?;
    operator.ensure_running()?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &format!("store-{run}"));
    // Through JSON: which fields are optional differs between Kubernetes API versions.
    let image = |deployment: &Deployment| {
        serde_json::to_value(deployment)
            .ok()
            .and_then(|d| {
                d.pointer("/spec/template/spec/containers")?
                    .as_array()?
                    .iter()
                    .find(|c| c["name"] == "storefront")?["image"]
                    .as_str()
                    .map(str::to_owned)
            })
            .unwrap_or_default()
    };
    let before = deployments.get("storefront").await?;
    anyhow::ensure!(
        image(&before) == runtime_image,
        "the Deployment runs {}, not the operator's --runtime-image {runtime_image}",
        image(&before)
    );

    // A person edits the image by hand (what `kubectl edit` / `kubectl set image` send).
    let hand_edited = "registry.invalid/someone/else:hand-edited";
    let edited = deployments
        .patch(
            "storefront",
            &PatchParams {
                field_manager: Some("someone".to_owned()),
                ..PatchParams::default()
            },
            &Patch::Strategic(json!({
                "spec": { "template": { "spec": { "containers": [
                    { "name": "storefront", "image": hand_edited },
                ] } } },
            })),
        )
        .await?;
    anyhow::ensure!(image(&edited) == hand_edited, "the hand edit did not land");
    let edited_generation = edited.metadata.generation.unwrap_or_default();

    // The operator's forced server-side apply takes the field back.
    let restored = eventually("image put back", WAIT, || async {
        let deployment = deployments.get("storefront").await?;
        Ok((image(&deployment) == runtime_image).then_some(deployment))
    })
    .await?;
    anyhow::ensure!(
        restored.metadata.generation.unwrap_or_default() > edited_generation,
        "the image changed back without a new generation"
    );
    // And owns it again: the hand editor manages no image any more.
    let someone_owns_image = restored
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter(|m| m.manager.as_deref() == Some("someone"))
        .any(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.to_string().contains("\"f:image\""))
        });
    anyhow::ensure!(
        !someone_owns_image,
        "the hand editor still manages the image"
    );
    operator.ensure_running()?;
    Ok(())
}

#[tokio::test]
async fn only_the_lease_holder_reconciles_and_a_standby_takes_over_when_it_dies()
-> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("leader-");
    // The Lease lives in a namespace of this test's own.
    let lease_namespace = run.clone();
    create_namespace(&client, &lease_namespace).await?;
    let lease_flags = [
        "--leader-election".to_owned(),
        format!("--lease-namespace={lease_namespace}"),
        format!("--lease-name=operator-{run}"),
        format!("--lease-seconds={LEASE_SECONDS}"),
    ];
    let a = Operator::start(&format!("{run}-a"), &run, &lease_flags);
    let b = Operator::start(&format!("{run}-b"), &run, &lease_flags);
    let result = match (a, b) {
        (Ok(a), Ok(b)) => {
            let mut operators = [a, b];
            let result = leader(&client, &run, &lease_namespace, &mut operators).await;
            // Offboarded by the new holder, still running.
            let offboarded = clean_up(&client, &run).await;
            drop(operators);
            with_offboarding(result, offboarded)
        }
        (a, b) => a.and(b).map(|_| ()),
    };
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&lease_namespace, &DeleteParams::background())
        .await;
    result
}

async fn leader(
    client: &Client,
    run: &str,
    lease_namespace: &str,
    operators: &mut [Operator; 2],
) -> anyhow::Result<()> {
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), lease_namespace);
    let lease_name = format!("operator-{run}");
    let holder = || async {
        let lease = leases.get_opt(&lease_name).await?;
        anyhow::Ok(
            lease
                .and_then(|l| l.spec)
                .and_then(|s| s.holder_identity)
                .filter(|h| !h.is_empty()),
        )
    };
    for operator in operators.iter_mut() {
        operator.serving().await?;
    }

    // Exactly one of the two holds the Lease, and only it reconciles.
    let first = eventually("a Lease holder", WAIT, holder).await?;
    let (leader_index, standby_index) = match operators.iter().position(|o| o.identity == first) {
        Some(0) => (0, 1),
        Some(_) => (1, 0),
        None => anyhow::bail!("the Lease is held by {first}, neither of the test's operators"),
    };
    apply_tenant(client, run).await?;
    wait_ready(&storefronts, run).await?;
    // A few renewals later, the holder is unchanged and the standby has still done nothing.
    tokio::time::sleep(Duration::from_secs(LEASE_SECONDS)).await;
    for operator in operators.iter_mut() {
        operator.ensure_running()?;
    }
    let (leader, standby) = (&operators[leader_index], &operators[standby_index]);
    anyhow::ensure!(
        holder().await?.as_deref() == Some(leader.identity.as_str()),
        "the Lease changed hands while both operators ran"
    );
    anyhow::ensure!(leader.metric("leader").await? == 1.0, "holder: leader != 1");
    anyhow::ensure!(
        leader.metric("reconciles_total").await? > 0.0,
        "the holder never reconciled"
    );
    anyhow::ensure!(
        standby.metric("leader").await? == 0.0,
        "standby: leader != 0"
    );
    anyhow::ensure!(
        standby.metric("reconciles_total").await? == 0.0,
        "the standby reconciled while the holder ran"
    );
    anyhow::ensure!(
        leader.log().contains("became leader") && !standby.log().contains("became leader"),
        "logs: holder {:?}, standby {:?}",
        leader.log(),
        standby.log()
    );

    // The holder dies without releasing the Lease: the standby takes it once it expires.
    operators[leader_index].kill_hard();
    let killed = Instant::now();
    let standby_identity = operators[standby_index].identity.clone();
    eventually(
        "the standby holds the Lease",
        Duration::from_secs(3 * LEASE_SECONDS),
        || async {
            Ok((holder().await?.as_deref() == Some(standby_identity.as_str())).then_some(()))
        },
    )
    .await?;
    let took_over = killed.elapsed();
    operators[standby_index].ensure_running()?;
    let standby = &operators[standby_index];
    eventually("the new holder reports leader", WAIT, || async {
        Ok((standby.metric("leader").await? == 1.0).then_some(()))
    })
    .await?;

    // And it reconciles: a deleted child comes back, with only it running.
    let services: Api<Service> = Api::namespaced(client.clone(), &format!("store-{run}"));
    let old_uid = services.get("storefront").await?.metadata.uid;
    services
        .delete("storefront", &DeleteParams::default())
        .await?;
    eventually("Service recreated by the new holder", WAIT, || async {
        let service = services.get_opt("storefront").await?;
        Ok(service
            .filter(|s| s.metadata.uid != old_uid && s.metadata.deletion_timestamp.is_none())
            .map(|_| ()))
    })
    .await?;
    anyhow::ensure!(
        standby.metric("reconciles_total").await? > 0.0,
        "the new holder has not reconciled"
    );
    operators[standby_index].ensure_running()?;
    eprintln!(
        "took over {took_over:?} after the holder was killed (lease {LEASE_SECONDS} s); logs in {}",
        env!("CARGO_TARGET_TMPDIR")
    );
    Ok(())
}

/// What only a write by the operator changes on an object: its generation and the operator's
/// managed-fields entries (their time moves on every change it makes). Status updates by
/// kube-controller-manager change the resourceVersion, so that is not compared.
fn operator_footprint<K: Resource>(object: &K) -> String {
    let entries: Vec<String> = object
        .meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some("emporium-operator"))
        .map(|m| {
            format!(
                "{:?} {:?} {:?} {}",
                m.operation,
                m.subresource,
                m.time.as_ref().map(|t| t.0.to_string()),
                m.fields_v1
                    .as_ref()
                    .map(|f| f.0.to_string())
                    .unwrap_or_default()
            )
        })
        .collect();
    format!(
        "generation {:?}; {}",
        object.meta().generation,
        entries.join(" | ")
    )
}

/// `kind/name` → footprint of every child of tenant `run` in its namespace, and the Storefront.
async fn footprints(client: &Client, run: &str) -> anyhow::Result<Vec<(String, String)>> {
    async fn of<K>(client: &Client, ns: &str, run: &str) -> anyhow::Result<Vec<(String, String)>>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        let list = Api::<K>::namespaced(client.clone(), ns)
            .list(&ListParams::default().labels(&format!("emporium.dev/tenant={run}")))
            .await?;
        Ok(list
            .items
            .iter()
            .map(|o| {
                (
                    format!("{}/{}", K::kind(&()), o.name_any()),
                    operator_footprint(o),
                )
            })
            .collect())
    }
    let ns = format!("store-{run}");
    let mut all = Vec::new();
    all.extend(of::<ServiceAccount>(client, &ns, run).await?);
    all.extend(of::<Role>(client, &ns, run).await?);
    all.extend(of::<RoleBinding>(client, &ns, run).await?);
    all.extend(of::<ResourceQuota>(client, &ns, run).await?);
    all.extend(of::<LimitRange>(client, &ns, run).await?);
    all.extend(of::<NetworkPolicy>(client, &ns, run).await?);
    all.extend(of::<Secret>(client, &ns, run).await?);
    all.extend(of::<Deployment>(client, &ns, run).await?);
    all.extend(of::<Service>(client, &ns, run).await?);
    all.extend(of::<HorizontalPodAutoscaler>(client, &ns, run).await?);
    all.extend(of::<PodDisruptionBudget>(client, &ns, run).await?);
    all.extend(of::<Ingress>(client, &ns, run).await?);
    let namespace = Api::<Namespace>::all(client.clone()).get(&ns).await?;
    all.push((format!("Namespace/{ns}"), operator_footprint(&namespace)));
    let storefront = Api::<Storefront>::all(client.clone()).get(run).await?;
    all.push((format!("Storefront/{run}"), operator_footprint(&storefront)));
    Ok(all)
}

#[tokio::test]
async fn a_resync_of_a_ready_tenant_writes_nothing_and_drift_is_still_repaired()
-> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("resync-");
    let mut operator = None;
    let result = resync(&client, &run, &mut operator).await;
    // Offboarded by the operator still running, or by one of its own.
    let operator = match operator {
        Some(operator) => operator,
        None => Operator::start(&format!("{run}-cleanup"), &run, &[])?,
    };
    let offboarded = clean_up(&client, &run).await;
    drop(operator);
    with_offboarding(result, offboarded)
}

async fn resync(client: &Client, run: &str, running: &mut Option<Operator>) -> anyhow::Result<()> {
    let storefronts: Api<Storefront> = Api::all(client.clone());
    apply_tenant(client, run).await?;
    {
        let first = Operator::start(&format!("{run}-first"), run, &[])?;
        wait_ready(&storefronts, run).await?;
        first.ensure_running()?;
        // Dropped: stopped with SIGTERM.
    }
    let before = footprints(client, run).await?;
    anyhow::ensure!(
        before.len() == 14,
        "expected 12 children, the Namespace and the Storefront, found {}: {before:?}",
        before.len()
    );

    // A fresh process reconciles every Storefront it watches once it has listed them: the
    // same pass the periodic resync makes.
    let second = running.insert(Operator::start(&format!("{run}-second"), run, &[])?);
    second.serving().await?;
    eventually("the resync pass finished a reconcile", WAIT, || async {
        Ok((second.metric("reconcile_duration_seconds_count").await? >= 1.0).then_some(()))
    })
    .await?;
    second.ensure_running()?;
    let (writes, which) = second.metric_sum("api_writes_total").await?;
    anyhow::ensure!(
        writes == 0.0,
        "the resync of a Ready tenant sent writes: {which:?}"
    );
    let (skipped, _) = second.metric_sum("applies_skipped_total").await?;
    anyhow::ensure!(
        skipped >= 13.0,
        "expected every child compared with the cache and left alone, {skipped} were"
    );
    let after = footprints(client, run).await?;
    let changed: Vec<String> = before
        .iter()
        .filter(|entry| !after.contains(entry))
        .map(|(key, _)| key.clone())
        .collect();
    anyhow::ensure!(
        changed.is_empty(),
        "the operator changed {changed:?} during the resync"
    );

    // Drift without a new generation: the config Secret's data edited by hand (a valid config
    // with another display name, so the admin key in it is kept when it is put back).
    let ns = format!("store-{run}");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let secret_name = format!("tenant-{run}");
    let original = secrets.get(&secret_name).await?.data.unwrap_or_default();
    let mut edited: serde_json::Value = serde_json::from_slice(
        &original
            .get("tenant.json")
            .ok_or_else(|| anyhow::anyhow!("the config Secret has no tenant.json"))?
            .0,
    )?;
    edited["displayName"] = json!("Edited By Hand");
    secrets
        .patch(
            &secret_name,
            &PatchParams {
                field_manager: Some("someone".to_owned()),
                ..PatchParams::default()
            },
            &Patch::Merge(
                json!({ "data": { "tenant.json": ByteString(serde_json::to_vec(&edited)?) } }),
            ),
        )
        .await?;
    eventually("config Secret put back", WAIT, || async {
        let data = secrets.get(&secret_name).await?.data.unwrap_or_default();
        Ok((data == original).then_some(()))
    })
    .await?;

    // And a deleted child comes back.
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns);
    let names: Vec<String> = policies
        .list(&ListParams::default().labels(&format!("emporium.dev/tenant={run}")))
        .await?
        .items
        .iter()
        .map(|p| p.name_any())
        .collect();
    let policy = names
        .first()
        .ok_or_else(|| anyhow::anyhow!("the tenant has no NetworkPolicy"))?
        .clone();
    let old_uid = policies.get(&policy).await?.metadata.uid;
    policies.delete(&policy, &DeleteParams::default()).await?;
    eventually("NetworkPolicy recreated", WAIT, || async {
        let recreated = policies.get_opt(&policy).await?;
        Ok(recreated.filter(|p| p.metadata.uid != old_uid).map(|_| ()))
    })
    .await?;
    second.ensure_running()?;
    // Only what drifted was written again.
    let (_, which) = second.metric_sum("api_writes_total").await?;
    anyhow::ensure!(
        which
            .iter()
            .all(|w| w.contains("kind=\"Secret\"") || w.contains("kind=\"NetworkPolicy\"")),
        "repairing two objects wrote more: {which:?}"
    );
    Ok(())
}
