//! Reads what [`super::view`] shows from the API server: the Storefront, the Deployment and
//! pods serving it, its autoscaler, its Events, and the runtime's `/readyz` through the API
//! server's pod proxy. Read-only, apart from [`set_paused`].

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        autoscaling::v2::HorizontalPodAutoscaler,
        core::v1::{Event, Pod},
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, ResourceExt as _,
    api::{ListParams, Patch, PatchParams},
};
use serde_json::json;

use super::{
    PluginError,
    view::{
        ConditionView, EventView, FleetRow, PodView, RuntimeHealth, TenantView, WorkloadView,
        version_of,
    },
};
use crate::{
    crd::{Storefront, Tier},
    reconcile::build::{
        HTTP_PORT, MANAGED_BY, TENANT_LABEL, WORKLOAD_NAME,
        pool::{POOL_LABEL, POOL_NAME},
    },
};

/// How long the runtime's `/readyz` may take through the proxy.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Events shown by `status`.
const EVENTS_SHOWN: usize = 10;

fn seconds_since(ts: Option<Timestamp>, now: Timestamp) -> Option<i64> {
    ts.map(|t| now.as_second() - t.as_second())
}

async fn storefront(client: &Client, name: &str) -> Result<Storefront, PluginError> {
    let api: Api<Storefront> = Api::all(client.clone());
    match api.get_opt(name).await {
        Ok(Some(sf)) => Ok(sf),
        Ok(None) => Err(PluginError::NotFound(name.to_owned())),
        Err(source) => Err(PluginError::Api {
            what: format!("read Storefront {name}"),
            source,
        }),
    }
}

fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> PluginError {
    let what = what.into();
    move |source| PluginError::Api { what, source }
}

/// Everything `status NAME` shows. `probe`: ask the runtime's `/readyz`.
pub async fn tenant(client: &Client, name: &str, probe: bool) -> Result<TenantView, PluginError> {
    let now = Timestamp::now();
    let sf = storefront(client, name).await?;
    let status = sf.status.clone().unwrap_or_default();
    let tier = status.tier;
    let mut view = TenantView {
        name: sf.name_any(),
        display_name: sf.spec.display_name.clone(),
        plan: sf.spec.plan.clone(),
        tier: tier.map(|t| tier_name(t).to_owned()),
        phase: status.phase.map(|p| p.as_str().to_owned()),
        paused: sf.spec.paused,
        tenant_id: status.tenant_id.clone(),
        url: status.url.clone(),
        domains: sf.spec.domains.iter().map(|d| d.to_string()).collect(),
        namespace: status.namespace.clone(),
        ingress_group: status.ingress_group.clone(),
        database_id: status.database_id.clone(),
        tables: status.tables.clone(),
        cost: status.cost.clone(),
        conditions: status
            .conditions
            .iter()
            .map(|c| ConditionView {
                type_: c.type_.clone(),
                status: c.status.clone(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                age_seconds: c
                    .last_transition_time
                    .parse::<Timestamp>()
                    .ok()
                    .map(|t| now.as_second() - t.as_second()),
            })
            .collect(),
        age_seconds: seconds_since(sf.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        runtime: if probe {
            RuntimeHealth::NoPod
        } else {
            RuntimeHealth::NotAsked
        },
        ..TenantView::default()
    };

    if let (Some(namespace), Some(tier)) = (status.namespace.as_deref(), tier) {
        let (deployment, selector, shared) = match tier {
            Tier::Dedicated => (
                WORKLOAD_NAME,
                format!("app.kubernetes.io/name=storefront,{TENANT_LABEL}={name}"),
                false,
            ),
            Tier::Pooled => (
                POOL_NAME,
                format!("app.kubernetes.io/name=storefront,{POOL_LABEL}=true"),
                true,
            ),
        };
        view.workload = workload(client, namespace, deployment, shared).await?;
        view.pods = pods(client, namespace, &selector, now).await?;
        if probe {
            view.runtime = runtime_health(client, namespace, &view.pods).await;
        }
        if tier == Tier::Dedicated {
            view.events
                .extend(namespace_warnings(client, namespace, now).await?);
        }
    }
    view.events
        .extend(storefront_events(client, name, now).await?);
    view.events
        .sort_by_key(|e| e.age_seconds.unwrap_or(i64::MAX));
    view.events.truncate(EVENTS_SHOWN);
    Ok(view)
}

fn tier_name(tier: Tier) -> &'static str {
    match tier {
        Tier::Pooled => "pooled",
        Tier::Dedicated => "dedicated",
    }
}

async fn workload(
    client: &Client,
    namespace: &str,
    name: &str,
    shared: bool,
) -> Result<Option<WorkloadView>, PluginError> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let Some(d) = deployments
        .get_opt(name)
        .await
        .map_err(api_err(format!("read Deployment {namespace}/{name}")))?
    else {
        return Ok(None);
    };
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let autoscaler = hpas
        .get_opt(name)
        .await
        .map_err(api_err(format!(
            "read HorizontalPodAutoscaler {namespace}/{name}"
        )))?
        .map(|h| {
            let current = h.status.and_then(|s| s.current_replicas).unwrap_or(0);
            (
                h.spec.min_replicas.unwrap_or(1),
                h.spec.max_replicas,
                current,
            )
        });
    let status = d.status.clone().unwrap_or_default();
    Ok(Some(WorkloadView {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        shared,
        image: runtime_image(&d),
        desired: d.spec.replicas.unwrap_or(1),
        updated: status.updated_replicas.unwrap_or(0),
        ready: status.ready_replicas.unwrap_or(0),
        available: status.available_replicas.unwrap_or(0),
        autoscaler,
    }))
}

/// The image of the Deployment's `storefront` container (its first, if named otherwise).
fn runtime_image(d: &Deployment) -> Option<String> {
    let containers = &d.spec.template.spec.as_ref()?.containers;
    containers
        .iter()
        .find(|c| c.name == "storefront")
        .or_else(|| containers.first())
        .and_then(|c| c.image.clone())
}

async fn pods(
    client: &Client,
    namespace: &str,
    selector: &str,
    now: Timestamp,
) -> Result<Vec<PodView>, PluginError> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(api_err(format!("list pods in {namespace}")))?;
    let mut pods: Vec<PodView> = list
        .items
        .into_iter()
        .map(|p| {
            let status = p.status.clone().unwrap_or_default();
            let containers = status.container_statuses.clone().unwrap_or_default();
            let total = p.spec.as_ref().map_or(0, |s| s.containers.len());
            let ready = containers.iter().filter(|c| c.ready).count();
            let waiting = containers
                .iter()
                .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
            let phase = if p.metadata.deletion_timestamp.is_some() {
                "Terminating".to_owned()
            } else {
                waiting.unwrap_or_else(|| status.phase.clone().unwrap_or_else(|| "Pending".into()))
            };
            PodView {
                name: p.name_any(),
                ready: format!("{ready}/{total}"),
                status: phase,
                restarts: containers.iter().map(|c| c.restart_count).sum(),
                node: p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_else(|| "<none>".into()),
                age_seconds: seconds_since(
                    p.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    now,
                ),
            }
        })
        .collect();
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(pods)
}

/// Asks the first running pod's `/readyz` through the API server (`pods/proxy`), as
/// `kubectl get --raw` would.
async fn runtime_health(client: &Client, namespace: &str, pods: &[PodView]) -> RuntimeHealth {
    let Some(pod) = pods.iter().find(|p| p.status == "Running") else {
        return RuntimeHealth::NoPod;
    };
    let path = format!(
        "/api/v1/namespaces/{namespace}/pods/{}:{HTTP_PORT}/proxy/readyz",
        pod.name
    );
    let request = match http::Request::get(&path).body(Vec::new()) {
        Ok(r) => r,
        Err(e) => {
            return RuntimeHealth::Unreachable {
                pod: pod.name.clone(),
                detail: e.to_string(),
            };
        }
    };
    match tokio::time::timeout(PROBE_TIMEOUT, client.request_text(request)).await {
        Err(_) => RuntimeHealth::Unreachable {
            pod: pod.name.clone(),
            detail: format!("no answer within {} s", PROBE_TIMEOUT.as_secs()),
        },
        Ok(Ok(body)) => {
            let degraded = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("degraded").cloned())
                .and_then(|d| serde_json::from_value::<Vec<String>>(d).ok())
                .unwrap_or_default();
            RuntimeHealth::Ready {
                pod: pod.name.clone(),
                degraded,
            }
        }
        // 503 from the runtime itself carries its problem document; anything else is the
        // proxy failing to reach the pod.
        Ok(Err(kube::Error::Api(status)))
            if status.code == 503 && status.message.contains("not-ready") =>
        {
            RuntimeHealth::NotReady {
                pod: pod.name.clone(),
                detail: status.message,
            }
        }
        Ok(Err(e)) => RuntimeHealth::Unreachable {
            pod: pod.name.clone(),
            detail: e.to_string(),
        },
    }
}

fn event_view(e: Event, now: Timestamp) -> EventView {
    let when = e
        .last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let object = format!(
        "{}/{}",
        e.involved_object.kind.clone().unwrap_or_default(),
        e.involved_object.name.clone().unwrap_or_default()
    );
    EventView {
        age_seconds: seconds_since(when, now),
        type_: e.type_.unwrap_or_default(),
        reason: e.reason.unwrap_or_default(),
        object,
        message: e.message.unwrap_or_default(),
        count: e
            .count
            .or(e.series.as_ref().and_then(|s| s.count))
            .unwrap_or(1),
    }
}

async fn storefront_events(
    client: &Client,
    name: &str,
    now: Timestamp,
) -> Result<Vec<EventView>, PluginError> {
    let api: Api<Event> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default().fields(&format!(
            "involvedObject.kind=Storefront,involvedObject.name={name}"
        )))
        .await
        .map_err(api_err(format!("list the Events of Storefront {name}")))?;
    Ok(list.items.into_iter().map(|e| event_view(e, now)).collect())
}

/// Warnings in a dedicated tenant's namespace (pods that cannot start, failed scheduling).
async fn namespace_warnings(
    client: &Client,
    namespace: &str,
    now: Timestamp,
) -> Result<Vec<EventView>, PluginError> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().fields("type=Warning"))
        .await
        .map_err(api_err(format!("list the Events in {namespace}")))?;
    Ok(list.items.into_iter().map(|e| event_view(e, now)).collect())
}

/// The fleet table: every Storefront, with the runtime version its Deployment runs.
pub async fn fleet(client: &Client, phase: Option<&str>) -> Result<Vec<FleetRow>, PluginError> {
    let now = Timestamp::now();
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let list = storefronts
        .list(&ListParams::default())
        .await
        .map_err(api_err("list Storefronts"))?;
    // One list of the operator's Deployments: namespace → runtime version.
    let deployments: Api<Deployment> = Api::all(client.clone());
    let versions: BTreeMap<(String, String), String> = deployments
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/managed-by={MANAGED_BY}")))
        .await
        .map_err(api_err("list the operator's Deployments"))?
        .items
        .into_iter()
        .filter_map(|d| {
            let image = runtime_image(&d)?;
            Some(((d.namespace()?, d.name_any()), version_of(&image)))
        })
        .collect();
    let mut rows: Vec<FleetRow> = list
        .items
        .into_iter()
        .map(|sf| {
            let status = sf.status.clone().unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .find(|c| c.type_ == "Ready")
                .map_or_else(
                    || "-".to_owned(),
                    |c| {
                        let since = c
                            .last_transition_time
                            .parse::<Timestamp>()
                            .ok()
                            .map(|t| now.as_second() - t.as_second());
                        format!("{} {}", c.status, super::table::age(since))
                    },
                );
            let workload = match status.tier {
                Some(Tier::Pooled) => POOL_NAME,
                _ => WORKLOAD_NAME,
            };
            let version = status
                .namespace
                .as_ref()
                .and_then(|ns| versions.get(&(ns.clone(), workload.to_owned())))
                .cloned()
                .unwrap_or_else(|| "-".to_owned());
            let phase = match (status.phase, sf.spec.paused) {
                (Some(p), _) => p.as_str().to_owned(),
                (None, true) => "Paused".to_owned(),
                (None, false) => "Pending".to_owned(),
            };
            FleetRow {
                name: sf.name_any(),
                tier: status.tier.map_or("-", tier_name).to_owned(),
                plan: sf.spec.plan.clone(),
                phase,
                ready,
                version,
                url: status.url.clone().unwrap_or_else(|| "-".to_owned()),
                cost: status.cost.clone(),
                age_seconds: seconds_since(
                    sf.metadata.creation_timestamp.as_ref().map(|t| t.0),
                    now,
                ),
            }
        })
        .filter(|r| phase.is_none_or(|p| r.phase.eq_ignore_ascii_case(p)))
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Sets `spec.paused`; returns whether it changed.
pub async fn set_paused(client: &Client, name: &str, paused: bool) -> Result<bool, PluginError> {
    let sf = storefront(client, name).await?;
    if sf.spec.paused == paused {
        return Ok(false);
    }
    let api: Api<Storefront> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "paused": paused } })),
    )
    .await
    .map_err(api_err(format!("patch Storefront {name}")))?;
    Ok(true)
}
