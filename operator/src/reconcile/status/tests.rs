//! [`compute`] as tables: each row is one combination of what a reconcile saw, and the phase
//! and conditions the status then reports.

use emporium_tenant_config::Tables;

use super::*;
use crate::{
    crd::{Hostname, Tier},
    reconcile::{build::tests::sample_plan, tenant_data::DataPart},
};

const NOW: &str = "2025-01-02T03:04:05Z";
const LATER: &str = "2025-01-02T04:00:00Z";

fn tenant(routed: &[&str], conflicts: &[(&str, &str)]) -> ValidatedTenant {
    ValidatedTenant {
        name: "acme".into(),
        tier: Tier::Dedicated,
        plan_name: "premium".into(),
        plan: sample_plan("premium", Tier::Dedicated).spec,
        routed_domains: routed.iter().map(|d| Hostname((*d).into())).collect(),
        conflicts: conflicts
            .iter()
            .map(|(d, holder)| (Hostname((*d).into()), (*holder).into()))
            .collect(),
    }
}

/// A data part: `ready`, whether Ready waits for it, whether it needs a person.
fn part(ready: bool, required: bool, needs_person: bool, reason: &str) -> DataPart {
    DataPart {
        ready,
        reason: reason.into(),
        message: format!("{reason} message"),
        required_for_ready: required,
        needs_person,
    }
}

fn provisioned() -> DataPart {
    part(true, true, false, "Provisioned")
}

fn data(database: DataPart, tables: DataPart) -> TenantData {
    TenantData {
        database,
        tables,
        queue: provisioned(),
        queue_url: None,
        database_url: String::new(),
        table_names: Tables {
            catalog: "emporium-acme-catalog".into(),
            carts: "emporium-acme-carts".into(),
            sessions: "emporium-acme-sessions".into(),
        },
        database_id: Some("emporium-acme".into()),
        progressing: false,
    }
}

const ROLLED_OUT: WorkloadObservation = WorkloadObservation {
    rolled_out: true,
    available: true,
};

fn routed(address: Option<&str>) -> RoutingObservation {
    RoutingObservation {
        ingress_applied: true,
        address: address.map(str::to_owned),
    }
}

fn reconciled<'a>(
    tenant: &'a ValidatedTenant,
    data: &'a TenantData,
    workload: WorkloadObservation,
    routing: RoutingObservation,
    gate: ReadinessGate,
) -> ReconcileOutcome<'a> {
    ReconcileOutcome::Reconciled(Reconciled {
        tenant,
        data,
        workload,
        routing,
        namespace: "store-acme".into(),
        ingress_group: Some("emporium-0".into()),
        gate,
        cost: None,
    })
}

/// `(type, status, reason)` of every condition, in the order they were set.
fn conditions(status: &StorefrontStatus) -> Vec<(&str, &str, &str)> {
    status
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
        .collect()
}

fn ready_message(status: &StorefrontStatus) -> &str {
    condition(Some(status), READY)
        .map(|c| c.message.as_str())
        .unwrap_or_default()
}

/// One reconciled tenant: what it saw and the phase and conditions that follow.
struct Case {
    name: &'static str,
    gate: ReadinessGate,
    routed: &'static [&'static str],
    conflicts: &'static [(&'static str, &'static str)],
    database: DataPart,
    tables: DataPart,
    workload: WorkloadObservation,
    routing: RoutingObservation,
    phase: Phase,
    /// `(status, reason)` of DatabaseReady, TablesReady, WorkloadReady, RoutingReady, Ready.
    conditions: [(&'static str, &'static str); 5],
    ready_message: &'static str,
}

#[test]
fn a_reconciled_tenant_gets_the_phase_and_conditions_of_what_it_saw() {
    use ReadinessGate::{Applied, Available};
    const T: &str = "True";
    const F: &str = "False";
    let acme: &[&str] = &["acme.example.com"];
    let cases = [
        Case {
            name: "applied gate: rolled out and Ingress applied is Ready",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: routed(None),
            phase: Phase::Ready,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Applied"),
                (T, "IngressApplied"),
                (T, "Ready"),
            ],
            ready_message: "the store is serving",
        },
        Case {
            name: "available gate: a replica and a load balancer is Ready",
            gate: Available,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: routed(Some("lb.example.com")),
            phase: Phase::Ready,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Available"),
                (T, "Routed"),
                (T, "Ready"),
            ],
            ready_message: "the store is serving",
        },
        Case {
            name: "applied gate: a load balancer address is Routed too",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: routed(Some("lb.example.com")),
            phase: Phase::Ready,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Applied"),
                (T, "Routed"),
                (T, "Ready"),
            ],
            ready_message: "the store is serving",
        },
        Case {
            name: "available gate: no replica available yet",
            gate: Available,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: WorkloadObservation {
                rolled_out: true,
                available: false,
            },
            routing: routed(Some("lb.example.com")),
            phase: Phase::Provisioning,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (F, "Unavailable"),
                (T, "Routed"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for WorkloadReady",
        },
        Case {
            name: "applied gate: replicas do not matter",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: WorkloadObservation {
                rolled_out: true,
                available: false,
            },
            routing: routed(None),
            phase: Phase::Ready,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Applied"),
                (T, "IngressApplied"),
                (T, "Ready"),
            ],
            ready_message: "the store is serving",
        },
        Case {
            name: "the Deployment controller has not observed the template",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: WorkloadObservation {
                rolled_out: false,
                available: true,
            },
            routing: routed(None),
            phase: Phase::Provisioning,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (F, ROLLING_OUT),
                (T, "IngressApplied"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for WorkloadReady",
        },
        Case {
            name: "available gate: no load balancer address yet",
            gate: Available,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: routed(None),
            phase: Phase::Provisioning,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Available"),
                (F, "AwaitingLoadBalancer"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for RoutingReady",
        },
        Case {
            name: "the Ingress is not applied yet",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: RoutingObservation::default(),
            phase: Phase::Provisioning,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Applied"),
                (F, "IngressPending"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for RoutingReady",
        },
        Case {
            name: "every domain held by another tenant fails",
            gate: Applied,
            routed: &[],
            conflicts: &[("acme.example.com", "older")],
            database: provisioned(),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: RoutingObservation::default(),
            phase: Phase::Failed,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Applied"),
                (F, "HostnameConflict"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for RoutingReady",
        },
        Case {
            name: "some domains held by another tenant is still Ready",
            gate: Applied,
            routed: acme,
            conflicts: &[("shop.acme.example", "older")],
            database: provisioned(),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: routed(None),
            phase: Phase::Ready,
            conditions: [
                (T, "Provisioned"),
                (T, "Provisioned"),
                (T, "Applied"),
                (T, "IngressApplied"),
                (T, "Ready"),
            ],
            ready_message: "the store is serving",
        },
        Case {
            name: "a database AWS is still creating",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: part(false, true, false, "Creating"),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: routed(None),
            phase: Phase::Provisioning,
            conditions: [
                (F, "Creating"),
                (T, "Provisioned"),
                (T, "Applied"),
                (T, "IngressApplied"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for DatabaseReady",
        },
        Case {
            name: "a database that needs a person fails",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: part(false, true, true, "Terminal"),
            tables: provisioned(),
            workload: ROLLED_OUT,
            routing: routed(None),
            phase: Phase::Failed,
            conditions: [
                (F, "Terminal"),
                (T, "Provisioned"),
                (T, "Applied"),
                (T, "IngressApplied"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for DatabaseReady",
        },
        Case {
            name: "tables that need a person fail",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: provisioned(),
            tables: part(false, true, true, "AdoptionFailed"),
            workload: ROLLED_OUT,
            routing: routed(None),
            phase: Phase::Failed,
            conditions: [
                (T, "Provisioned"),
                (F, "AdoptionFailed"),
                (T, "Applied"),
                (T, "IngressApplied"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for TablesReady",
        },
        Case {
            name: "a disabled provider is reported but not waited for",
            gate: Applied,
            routed: acme,
            conflicts: &[],
            database: part(false, false, false, "ProviderDisabled"),
            tables: part(false, false, false, "ProviderDisabled"),
            workload: ROLLED_OUT,
            routing: routed(None),
            phase: Phase::Ready,
            conditions: [
                (F, "ProviderDisabled"),
                (F, "ProviderDisabled"),
                (T, "Applied"),
                (T, "IngressApplied"),
                (T, "Ready"),
            ],
            ready_message: "the store is serving",
        },
        Case {
            name: "everything waiting is listed in condition order",
            gate: Available,
            routed: acme,
            conflicts: &[],
            database: part(false, true, false, "ProviderNotConfigured"),
            tables: part(false, true, false, "Unreachable"),
            workload: WorkloadObservation::default(),
            routing: RoutingObservation::default(),
            phase: Phase::Provisioning,
            conditions: [
                (F, "ProviderNotConfigured"),
                (F, "Unreachable"),
                (F, ROLLING_OUT),
                (F, "IngressPending"),
                (F, "Waiting"),
            ],
            ready_message: "waiting for DatabaseReady, TablesReady, WorkloadReady, RoutingReady",
        },
    ];
    for case in cases {
        let tenant = tenant(case.routed, case.conflicts);
        let data = data(case.database, case.tables);
        let outcome = reconciled(&tenant, &data, case.workload, case.routing, case.gate);
        let status = compute(&outcome, None, Some(3), NOW);
        let types = [
            DATABASE_READY,
            TABLES_READY,
            QUEUE_READY,
            WORKLOAD_READY,
            ROUTING_READY,
            READY,
        ];
        // The queue is provisioned in every case here; its own cases follow below.
        let mut case_conditions = case.conditions.to_vec();
        case_conditions.insert(2, ("True", "Provisioned"));
        let expected: Vec<(&str, &str, &str)> = types
            .iter()
            .zip(case_conditions)
            .map(|(type_, (status, reason))| (*type_, status, reason))
            .collect();
        assert_eq!(status.phase, Some(case.phase), "{}", case.name);
        assert_eq!(conditions(&status), expected, "{}", case.name);
        assert_eq!(ready_message(&status), case.ready_message, "{}", case.name);
    }
}

#[test]
fn paused_deleting_and_invalid_set_only_ready() {
    let missing_plan = Invalid::PlanNotFound("gold".into());
    let tier_change = Invalid::TierChange {
        plan: "shared".into(),
        current: Tier::Dedicated,
        requested: Tier::Pooled,
    };
    let cases: [(ReconcileOutcome<'_>, Phase, &str, String); 4] = [
        (
            ReconcileOutcome::Paused,
            Phase::Paused,
            "Paused",
            "spec.paused is true; the operator changes nothing until it is false".into(),
        ),
        (
            ReconcileOutcome::Deleting,
            Phase::Deleting,
            "Deleting",
            "the Storefront is being deleted".into(),
        ),
        (
            ReconcileOutcome::Invalid(&missing_plan),
            Phase::Failed,
            "PlanNotFound",
            missing_plan.to_string(),
        ),
        (
            ReconcileOutcome::Invalid(&tier_change),
            Phase::Failed,
            "TierChangeUnsupported",
            tier_change.to_string(),
        ),
    ];
    for (outcome, phase, reason, message) in cases {
        let status = compute(&outcome, None, Some(4), NOW);
        assert_eq!(status.phase, Some(phase), "{reason}");
        assert_eq!(conditions(&status), [(READY, "False", reason)], "{reason}");
        assert_eq!(ready_message(&status), message, "{reason}");
        assert_eq!(status.observed_generation, Some(4), "{reason}");
        assert_eq!(status.conditions[0].observed_generation, Some(4));
        assert_eq!(status.conditions[0].last_transition_time, NOW);
    }
}

#[test]
fn paused_keeps_what_the_previous_status_recorded() {
    let tenant = tenant(&["acme.example.com"], &[]);
    let data = data(provisioned(), provisioned());
    let ready = compute(
        &reconciled(
            &tenant,
            &data,
            ROLLED_OUT,
            routed(None),
            ReadinessGate::Applied,
        ),
        None,
        Some(1),
        NOW,
    );
    let paused = compute(&ReconcileOutcome::Paused, Some(&ready), Some(2), LATER);
    assert_eq!(paused.phase, Some(Phase::Paused));
    assert_eq!(paused.tier, ready.tier);
    assert_eq!(paused.namespace, ready.namespace);
    assert_eq!(paused.ingress_group, ready.ingress_group);
    assert_eq!(paused.tables, ready.tables);
    // The other conditions stay as they were; Ready flips and takes the new time.
    assert_eq!(paused.conditions.len(), 6);
    let ready_condition = condition(Some(&paused), READY).expect("Ready");
    assert_eq!(
        (
            ready_condition.status.as_str(),
            ready_condition.reason.as_str()
        ),
        ("False", "Paused")
    );
    assert_eq!(ready_condition.last_transition_time, LATER);
    assert_eq!(
        condition(Some(&paused), WORKLOAD_READY)
            .expect("WorkloadReady")
            .last_transition_time,
        NOW
    );
}

#[test]
fn a_condition_keeps_its_transition_time_while_its_status_holds() {
    let tenant = tenant(&["acme.example.com"], &[]);
    let data = data(provisioned(), provisioned());
    let gate = ReadinessGate::Available;
    let available = |replicas: i32| WorkloadObservation {
        rolled_out: true,
        available: replicas > 0,
    };
    let first = compute(
        &reconciled(&tenant, &data, available(1), routed(Some("lb")), gate),
        None,
        Some(1),
        NOW,
    );
    // Same statuses later (another replica count): nothing changes, not even the times.
    let again = compute(
        &reconciled(&tenant, &data, available(3), routed(Some("lb")), gate),
        Some(&first),
        Some(1),
        LATER,
    );
    assert_eq!(again, first);
    // WorkloadReady and Ready flip: they take the new time, the others keep theirs.
    let flipped = compute(
        &reconciled(&tenant, &data, available(0), routed(Some("lb")), gate),
        Some(&first),
        Some(1),
        LATER,
    );
    let times: Vec<(&str, &str)> = flipped
        .conditions
        .iter()
        .map(|c| (c.type_.as_str(), c.last_transition_time.as_str()))
        .collect();
    assert_eq!(
        times,
        [
            (DATABASE_READY, NOW),
            (TABLES_READY, NOW),
            (QUEUE_READY, NOW),
            (WORKLOAD_READY, LATER),
            (ROUTING_READY, NOW),
            (READY, LATER),
        ]
    );
}

#[test]
fn recorded_tables_follow_the_tables_condition() {
    let tenant = tenant(&["acme.example.com"], &[]);
    let gate = ReadinessGate::Applied;
    let with_tables = |tables: DataPart, previous: Option<&StorefrontStatus>| {
        let data = data(provisioned(), tables);
        compute(
            &reconciled(&tenant, &data, ROLLED_OUT, routed(None), gate),
            previous,
            Some(1),
            NOW,
        )
    };
    let ready = with_tables(provisioned(), None);
    let names = vec![
        "emporium-acme-catalog".to_owned(),
        "emporium-acme-carts".to_owned(),
        "emporium-acme-sessions".to_owned(),
    ];
    // (tables part, tables recorded afterwards)
    let cases = [
        (provisioned(), names.clone()),
        // A later check that cannot say keeps the record.
        (part(false, true, false, "Unreachable"), names.clone()),
        // No tables provider: nothing recorded.
        (part(false, false, false, "ProviderDisabled"), Vec::new()),
    ];
    for (tables, recorded) in cases {
        let reason = tables.reason.clone();
        assert_eq!(
            with_tables(tables, Some(&ready)).tables,
            recorded,
            "{reason}"
        );
    }
    assert!(
        with_tables(part(false, true, false, "Creating"), None)
            .tables
            .is_empty()
    );
}

#[test]
fn a_ready_dedicated_tenant_status() {
    let tenant = tenant(&["acme.example.com", "shop.acme.example"], &[]);
    let data = data(provisioned(), provisioned());
    let status = compute(
        &reconciled(
            &tenant,
            &data,
            ROLLED_OUT,
            routed(Some("k8s-emporium-0.elb.example.com")),
            ReadinessGate::Available,
        ),
        None,
        Some(7),
        NOW,
    );
    insta::assert_yaml_snapshot!(status);
}

#[test]
fn ready_waits_for_the_queue_and_a_foreign_queue_needs_a_person() {
    let tenant = tenant(&["acme.example.com"], &[]);
    let gate = ReadinessGate::Applied;
    let mut data = data(provisioned(), provisioned());
    data.queue = part(false, true, false, "Progressing");
    let waiting = compute(
        &reconciled(&tenant, &data, ROLLED_OUT, routed(None), gate),
        None,
        Some(1),
        NOW,
    );
    assert_eq!(waiting.phase, Some(Phase::Provisioning));
    assert_eq!(ready_message(&waiting), "waiting for QueueReady");
    data.queue = part(false, true, true, "QueueOwnedByAnother");
    let refused = compute(
        &reconciled(&tenant, &data, ROLLED_OUT, routed(None), gate),
        None,
        Some(1),
        NOW,
    );
    assert_eq!(refused.phase, Some(Phase::Failed));
    let queue = condition(Some(&refused), QUEUE_READY).expect("QueueReady");
    assert_eq!(
        (queue.status.as_str(), queue.reason.as_str()),
        ("False", "QueueOwnedByAnother")
    );
    // `--queues-provider none`: Ready does not wait for it.
    data.queue = part(false, false, false, "ProviderDisabled");
    let disabled = compute(
        &reconciled(&tenant, &data, ROLLED_OUT, routed(None), gate),
        None,
        Some(1),
        NOW,
    );
    assert_eq!(disabled.phase, Some(Phase::Ready));
}
