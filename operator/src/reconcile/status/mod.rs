//! Status: conditions computed from what was applied and observed. [`compute`] is pure: the
//! clock reading arrives as `now`, and a condition keeps its `lastTransitionTime` while its
//! status holds, so a steady-state resync writes nothing. [`writer`] sends the result.

#[cfg(test)]
mod tests;
pub mod writer;

use super::{
    tenant_data::TenantData,
    validate::{Invalid, ValidatedTenant},
};
use crate::{
    config::ReadinessGate,
    crd::{Condition, CostStatus, Phase, StorefrontStatus},
};

pub const READY: &str = "Ready";
pub const DATABASE_READY: &str = "DatabaseReady";
pub const TABLES_READY: &str = "TablesReady";
pub const QUEUE_READY: &str = "QueueReady";
pub const WORKLOAD_READY: &str = "WorkloadReady";
pub const ROUTING_READY: &str = "RoutingReady";
/// `WorkloadReady` reason while the Deployment controller has not observed the template.
pub const ROLLING_OUT: &str = "RollingOut";

/// What the apply step saw of the tenant's workload (its Deployment, or the pool's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadObservation {
    /// The Deployment controller has seen the current template (`observedGeneration`).
    pub rolled_out: bool,
    /// The Deployment's condition `Available` is `True` (at least its minimum of replicas
    /// has been ready for `minReadySeconds`).
    pub available: bool,
}

/// What the apply step saw of the tenant's routing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingObservation {
    pub ingress_applied: bool,
    /// The load balancer's hostname, once the AWS Load Balancer Controller set it.
    pub address: Option<String>,
}

/// Everything one reconcile learned about a tenant.
#[derive(Debug, Clone)]
pub struct Reconciled<'a> {
    pub tenant: &'a ValidatedTenant,
    pub data: &'a TenantData,
    pub workload: WorkloadObservation,
    pub routing: RoutingObservation,
    pub namespace: String,
    pub ingress_group: Option<String>,
    pub gate: ReadinessGate,
    /// A new cost estimate; `None` keeps the one the status has (see `reconcile::cost`).
    pub cost: Option<&'a CostStatus>,
}

/// What the status describes: how far one reconcile got (not a provider's
/// [`crate::providers::Outcome`]).
#[derive(Debug, Clone)]
pub enum ReconcileOutcome<'a> {
    Reconciled(Reconciled<'a>),
    Invalid(&'a Invalid),
    /// The reconcile failed at a step only a reconcile can find (an apply the API server
    /// refused, a missing payments Secret): shown in `Ready`, retried with backoff.
    Failed(&'a crate::reconcile::Error),
    Paused,
    Deleting,
}

/// The status to write for `outcome`, given the `previous` status and the time `now`
/// (RFC 3339).
pub fn compute(
    outcome: &ReconcileOutcome<'_>,
    previous: Option<&StorefrontStatus>,
    generation: Option<i64>,
    now: &str,
) -> StorefrontStatus {
    let mut status = previous.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let mut set = |type_: &str, ok: bool, reason: &str, message: String| {
        set_condition(
            &mut status.conditions,
            type_,
            ok,
            reason,
            message,
            generation,
            now,
        );
    };
    match outcome {
        ReconcileOutcome::Paused => {
            set(
                READY,
                false,
                "Paused",
                "spec.paused is true; the operator changes nothing until it is false".into(),
            );
            status.phase = Some(Phase::Paused);
        }
        ReconcileOutcome::Deleting => {
            set(
                READY,
                false,
                "Deleting",
                "the Storefront is being deleted".into(),
            );
            status.phase = Some(Phase::Deleting);
        }
        ReconcileOutcome::Invalid(invalid) => {
            set(READY, false, invalid.reason(), invalid.to_string());
            status.phase = Some(Phase::Failed);
        }
        ReconcileOutcome::Failed(error) => {
            set(READY, false, error.condition_reason(), error.to_string());
            status.phase = Some(match status.phase {
                _ if error.needs_person() => Phase::Failed,
                None | Some(Phase::Ready) => Phase::Provisioning,
                Some(phase) => phase,
            });
        }
        ReconcileOutcome::Reconciled(r) => {
            let data = r.data;
            set(
                DATABASE_READY,
                data.database.ready,
                &data.database.reason,
                data.database.message.clone(),
            );
            set(
                TABLES_READY,
                data.tables.ready,
                &data.tables.reason,
                data.tables.message.clone(),
            );
            set(
                QUEUE_READY,
                data.queue.ready,
                &data.queue.reason,
                data.queue.message.clone(),
            );
            let (workload_ok, workload_reason, workload_message) =
                workload_condition(r.workload, r.gate);
            set(
                WORKLOAD_READY,
                workload_ok,
                workload_reason,
                workload_message,
            );
            let (routing_ok, routing_reason, routing_message) = routing_condition(r);
            set(ROUTING_READY, routing_ok, routing_reason, routing_message);

            let waiting: Vec<&str> = [
                (
                    DATABASE_READY,
                    data.database.ready || !data.database.required_for_ready,
                ),
                (
                    TABLES_READY,
                    data.tables.ready || !data.tables.required_for_ready,
                ),
                (
                    QUEUE_READY,
                    data.queue.ready || !data.queue.required_for_ready,
                ),
                (WORKLOAD_READY, workload_ok),
                (ROUTING_READY, routing_ok),
            ]
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(name, _)| name)
            .collect();
            let hostname_conflict =
                !r.tenant.conflicts.is_empty() && r.tenant.routed_domains.is_empty();
            if waiting.is_empty() {
                set(READY, true, "Ready", "the store is serving".into());
                status.phase = Some(Phase::Ready);
            } else {
                set(
                    READY,
                    false,
                    "Waiting",
                    format!("waiting for {}", waiting.join(", ")),
                );
                let needs_person = data.database.needs_person
                    || data.tables.needs_person
                    || data.queue.needs_person;
                status.phase = Some(if hostname_conflict || needs_person {
                    Phase::Failed
                } else {
                    Phase::Provisioning
                });
            }
            status.tier = Some(r.tenant.tier);
            status.namespace = Some(r.namespace.clone());
            status.url = r
                .tenant
                .routed_domains
                .first()
                .map(|d| format!("https://{d}"));
            status.ingress_group = r.ingress_group.clone();
            status.database_id = data.database_id.clone();
            if let Some(cost) = r.cost {
                status.cost = Some(cost.clone());
            }
            // Tables once ready stay recorded while a later check is not (AWS busy or
            // unreachable): the record is how a table that disappeared is told from a new one.
            if data.tables.ready {
                status.tables = vec![
                    data.table_names.catalog.clone(),
                    data.table_names.carts.clone(),
                    data.table_names.sessions.clone(),
                ];
            } else if !data.tables.required_for_ready {
                status.tables = Vec::new();
            }
        }
    }
    status
}

fn workload_condition(
    workload: WorkloadObservation,
    gate: ReadinessGate,
) -> (bool, &'static str, String) {
    match (gate, workload.rolled_out, workload.available) {
        (_, false, _) => (
            false,
            ROLLING_OUT,
            "the Deployment controller has not yet observed the current template".into(),
        ),
        // No replica counts in messages: they change with every pod start and stop, and a
        // status that follows them is written again and again in a steady state.
        (ReadinessGate::Applied, true, _) => (
            true,
            "Applied",
            "the Deployment is applied and rolled out".into(),
        ),
        (ReadinessGate::Available | ReadinessGate::DeploymentAvailable, true, false) => (
            false,
            "Unavailable",
            "the Deployment is not Available: fewer replicas are ready than it requires (see `kubectl describe deployment`)".into(),
        ),
        (ReadinessGate::Available | ReadinessGate::DeploymentAvailable, true, true) => (
            true,
            "Available",
            "the Deployment is Available".into(),
        ),
    }
}

fn routing_condition(r: &Reconciled<'_>) -> (bool, &'static str, String) {
    if r.tenant.routed_domains.is_empty() {
        let held: Vec<String> = r
            .tenant
            .conflicts
            .iter()
            .map(|(domain, holder)| format!("{domain} is held by Storefront `{holder}`"))
            .collect();
        return (
            false,
            "HostnameConflict",
            format!("not routed: {}; choose other domains", held.join("; ")),
        );
    }
    if !r.routing.ingress_applied {
        return (
            false,
            "IngressPending",
            "the Ingress is not applied yet".into(),
        );
    }
    let conflict_note = if r.tenant.conflicts.is_empty() {
        String::new()
    } else {
        let held: Vec<String> = r
            .tenant
            .conflicts
            .iter()
            .map(|(d, holder)| format!("{d} (held by `{holder}`)"))
            .collect();
        format!("; not routed: {}", held.join(", "))
    };
    let group = r.ingress_group.as_deref().unwrap_or_default();
    match (r.gate, &r.routing.address) {
        (_, Some(address)) => (
            true,
            "Routed",
            format!("served by load balancer {address} (group {group}){conflict_note}"),
        ),
        (ReadinessGate::Applied | ReadinessGate::DeploymentAvailable, None) => (
            true,
            "IngressApplied",
            format!(
                "Ingress applied in group {group}; no load balancer address yet{conflict_note}"
            ),
        ),
        (ReadinessGate::Available, None) => (
            false,
            "AwaitingLoadBalancer",
            format!("Ingress applied in group {group}; waiting for the load balancer address"),
        ),
    }
}

/// Sets one condition, keeping `lastTransitionTime` when the status did not change.
fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    ok: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &str,
) {
    let status = if ok { "True" } else { "False" };
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_owned());
    let condition = Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message,
        last_transition_time,
        observed_generation: generation,
    };
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

/// The condition of `type_`, if set.
pub fn condition<'a>(status: Option<&'a StorefrontStatus>, type_: &str) -> Option<&'a Condition> {
    status?.conditions.iter().find(|c| c.type_ == type_)
}
