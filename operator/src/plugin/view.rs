//! What `kubectl emporium` shows, as plain data gathered from the API server
//! ([`super::gather`]) and rendered here without I/O, so the screens are unit-tested.

use std::fmt::Write as _;

use super::table::{age, render};
use crate::crd::CostStatus;

/// One Storefront with everything that serves it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TenantView {
    pub name: String,
    pub display_name: String,
    pub plan: String,
    pub tier: Option<String>,
    pub phase: Option<String>,
    pub paused: bool,
    pub tenant_id: Option<String>,
    pub url: Option<String>,
    pub domains: Vec<String>,
    pub namespace: Option<String>,
    pub ingress_group: Option<String>,
    pub database_id: Option<String>,
    pub tables: Vec<String>,
    /// The operator's monthly estimate (`status.cost`), when it made one.
    pub cost: Option<CostStatus>,
    pub conditions: Vec<ConditionView>,
    /// The Deployment serving the tenant: its own, or the pool's for a pooled tenant.
    pub workload: Option<WorkloadView>,
    pub pods: Vec<PodView>,
    pub runtime: RuntimeHealth,
    /// Newest first.
    pub events: Vec<EventView>,
    pub age_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ConditionView {
    pub type_: String,
    pub status: String,
    pub reason: String,
    pub message: String,
    pub age_seconds: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkloadView {
    pub namespace: String,
    pub name: String,
    /// Shared with every pooled tenant.
    pub shared: bool,
    pub image: Option<String>,
    pub desired: i32,
    pub updated: i32,
    pub ready: i32,
    pub available: i32,
    /// HPA bounds and current replicas, when an autoscaler exists.
    pub autoscaler: Option<(i32, i32, i32)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodView {
    pub name: String,
    /// `ready/total` containers.
    pub ready: String,
    pub status: String,
    pub restarts: i32,
    pub node: String,
    pub age_seconds: Option<i64>,
}

/// What the runtime answered on `/readyz`, asked through the API server's pod proxy.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum RuntimeHealth {
    /// Ready; the degradations it reported (a tenant database or Redis down), if any.
    Ready { pod: String, degraded: Vec<String> },
    /// The runtime answered that it is not ready.
    NotReady { pod: String, detail: String },
    /// The proxy could not reach it (no kubelet behind a fake node, a pod not listening).
    Unreachable { pod: String, detail: String },
    /// No running pod to ask.
    #[default]
    NoPod,
    /// Not asked (`--no-probe`).
    NotAsked,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventView {
    pub age_seconds: Option<i64>,
    pub type_: String,
    pub reason: String,
    /// `kind/name` of the object the event is about.
    pub object: String,
    pub message: String,
    pub count: i32,
}

/// One line of the fleet table.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetRow {
    pub name: String,
    pub tier: String,
    pub plan: String,
    pub phase: String,
    /// The Ready condition's status and for how long it has been so.
    pub ready: String,
    pub version: String,
    pub url: String,
    /// `status.cost`, when the operator made an estimate.
    pub cost: Option<CostStatus>,
    pub age_seconds: Option<i64>,
}

/// The COST cell: `$68.92` (other currencies: `68.92 EUR`), `-` without an estimate.
pub fn cost_cell(cost: Option<&CostStatus>) -> String {
    match cost {
        None => "-".to_owned(),
        Some(c) if c.currency == "USD" => format!("${}", c.monthly_estimate),
        Some(c) => format!("{} {}", c.monthly_estimate, c.currency),
    }
}

/// The image's tag (or digest), the runtime version a tenant runs.
pub fn version_of(image: &str) -> String {
    if let Some((_, digest)) = image.split_once('@') {
        return digest.chars().take(19).collect();
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag.to_owned(),
        None => "latest".to_owned(),
    }
}

fn or_dash(value: Option<&str>) -> &str {
    match value {
        Some(v) if !v.is_empty() => v,
        _ => "-",
    }
}

/// One char-bounded line: messages can be long, a screen is not.
fn clip(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut s: String = one_line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// `kubectl emporium status NAME`: one screen about one tenant.
pub fn render_status(view: &TenantView) -> String {
    let mut out = String::new();
    let phase = match (&view.phase, view.paused) {
        (Some(p), true) if p != "Paused" => format!("{p} (paused)"),
        (Some(p), _) => p.clone(),
        (None, true) => "Paused".to_owned(),
        (None, false) => {
            "Pending (never reconciled: is the operator running and selecting it?)".to_owned()
        }
    };
    let _ = writeln!(out, "Storefront:    {} ({})", view.name, view.display_name);
    let _ = writeln!(out, "Phase:         {phase}");
    let _ = writeln!(
        out,
        "Plan:          {} ({})",
        view.plan,
        or_dash(view.tier.as_deref())
    );
    let _ = writeln!(out, "Tenant id:     {}", or_dash(view.tenant_id.as_deref()));
    let _ = writeln!(out, "URL:           {}", or_dash(view.url.as_deref()));
    let _ = writeln!(out, "Domains:       {}", view.domains.join(", "));
    let _ = writeln!(out, "Namespace:     {}", or_dash(view.namespace.as_deref()));
    let _ = writeln!(
        out,
        "Ingress group: {}",
        or_dash(view.ingress_group.as_deref())
    );
    let _ = writeln!(
        out,
        "Database:      {}",
        or_dash(view.database_id.as_deref())
    );
    let tables = if view.tables.is_empty() {
        "-".to_owned()
    } else {
        view.tables.join(", ")
    };
    let _ = writeln!(out, "Tables:        {tables}");
    let _ = writeln!(out, "Age:           {}", age(view.age_seconds));

    out.push_str("\nConditions:\n");
    if view.conditions.is_empty() {
        out.push_str("  (none yet)\n");
    } else {
        let rows: Vec<Vec<String>> = view
            .conditions
            .iter()
            .map(|c| {
                vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.reason.clone(),
                    age(c.age_seconds),
                    clip(&c.message, 100),
                ]
            })
            .collect();
        indent(
            &mut out,
            &render(&["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"], &rows),
        );
    }

    out.push_str("\nWorkload:\n");
    match &view.workload {
        None => out.push_str("  no Deployment found\n"),
        Some(w) => {
            let _ = writeln!(
                out,
                "  Deployment {}/{}{}: {}/{} ready, {} up to date, {} available",
                w.namespace,
                w.name,
                if w.shared {
                    " (the pool, shared by pooled tenants)"
                } else {
                    ""
                },
                w.ready,
                w.desired,
                w.updated,
                w.available
            );
            let _ = writeln!(
                out,
                "  Runtime version: {} (image {})",
                w.image.as_deref().map_or("-".to_owned(), version_of),
                or_dash(w.image.as_deref())
            );
            if let Some((min, max, current)) = w.autoscaler {
                let _ = writeln!(
                    out,
                    "  Autoscaler: {current} replicas (min {min}, max {max})"
                );
            }
        }
    }
    if view.pods.is_empty() {
        out.push_str("  no pods\n");
    } else {
        let rows: Vec<Vec<String>> = view
            .pods
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    p.ready.clone(),
                    p.status.clone(),
                    p.restarts.to_string(),
                    p.node.clone(),
                    age(p.age_seconds),
                ]
            })
            .collect();
        indent(
            &mut out,
            &render(
                &["POD", "READY", "STATUS", "RESTARTS", "NODE", "AGE"],
                &rows,
            ),
        );
    }
    let health = match &view.runtime {
        RuntimeHealth::Ready { pod, degraded } if degraded.is_empty() => {
            format!("ready ({pod} /readyz)")
        }
        RuntimeHealth::Ready { pod, degraded } => {
            format!("ready, degraded: {} ({pod} /readyz)", degraded.join("; "))
        }
        RuntimeHealth::NotReady { pod, detail } => {
            format!("NOT READY: {} ({pod} /readyz)", clip(detail, 160))
        }
        RuntimeHealth::Unreachable { pod, detail } => {
            format!(
                "unreachable through the API server proxy ({pod}): {}",
                clip(detail, 120)
            )
        }
        RuntimeHealth::NoPod => "no running pod to ask".to_owned(),
        RuntimeHealth::NotAsked => "not asked (--no-probe)".to_owned(),
    };
    let _ = writeln!(out, "  Runtime health: {health}");

    match &view.cost {
        None => {
            out.push_str("\nCost: no estimate yet (the operator makes one on its next reconcile)\n")
        }
        Some(cost) => {
            let _ = writeln!(
                out,
                "\nCost: {} a month (estimate at {}, computed {})",
                cost_cell(Some(cost)),
                cost.price_book,
                cost.computed_at
            );
            let rows: Vec<Vec<String>> = cost
                .breakdown
                .iter()
                .map(|l| {
                    vec![
                        l.component.clone(),
                        l.monthly.clone(),
                        l.source.clone(),
                        clip(&l.basis, 110),
                    ]
                })
                .collect();
            let per_month = format!("{}/MONTH", cost.currency);
            indent(
                &mut out,
                &render(&["COMPONENT", &per_month, "SOURCE", "BASIS"], &rows),
            );
        }
    }

    out.push_str("\nRecent events:\n");
    if view.events.is_empty() {
        out.push_str("  (none)\n");
    } else {
        let rows: Vec<Vec<String>> = view
            .events
            .iter()
            .map(|e| {
                let reason = if e.count > 1 {
                    format!("{} (x{})", e.reason, e.count)
                } else {
                    e.reason.clone()
                };
                vec![
                    age(e.age_seconds),
                    e.type_.clone(),
                    reason,
                    e.object.clone(),
                    clip(&e.message, 100),
                ]
            })
            .collect();
        indent(
            &mut out,
            &render(&["AGE", "TYPE", "REASON", "OBJECT", "MESSAGE"], &rows),
        );
    }
    out
}

/// `kubectl emporium tenants`: the fleet, one line per Storefront.
pub fn render_fleet(rows: &[FleetRow]) -> String {
    if rows.is_empty() {
        return "No Storefronts found.\n".to_owned();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.name.clone(),
                r.tier.clone(),
                r.plan.clone(),
                r.phase.clone(),
                r.ready.clone(),
                r.version.clone(),
                cost_cell(r.cost.as_ref()),
                r.url.clone(),
                age(r.age_seconds),
            ]
        })
        .collect();
    let mut out = render(
        &[
            "NAME", "TIER", "PLAN", "PHASE", "READY", "VERSION", "COST", "URL", "AGE",
        ],
        &cells,
    );
    let ready = rows.iter().filter(|r| r.phase == "Ready").count();
    let _ = writeln!(out, "\n{ready} of {} Ready", rows.len());
    out
}

fn indent(out: &mut String, block: &str) {
    for line in block.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> TenantView {
        TenantView {
            name: "acme".into(),
            display_name: "Acme Outfitters".into(),
            plan: "standard".into(),
            tier: Some("dedicated".into()),
            phase: Some("Ready".into()),
            tenant_id: Some("acme-1b2c3d4e".into()),
            url: Some("https://acme.example.com".into()),
            domains: vec!["acme.example.com".into()],
            namespace: Some("store-acme".into()),
            ingress_group: Some("emporium-0".into()),
            database_id: Some("emporium-acme".into()),
            tables: vec!["emporium-acme-catalog".into(), "emporium-acme-carts".into()],
            cost: Some(sample_cost()),
            conditions: vec![ConditionView {
                type_: "Ready".into(),
                status: "True".into(),
                reason: "Reconciled".into(),
                message: "the store serves shoppers".into(),
                age_seconds: Some(600),
            }],
            workload: Some(WorkloadView {
                namespace: "store-acme".into(),
                name: "storefront".into(),
                shared: false,
                image: Some("ghcr.io/emporium/storefront:0.4.1".into()),
                desired: 2,
                updated: 2,
                ready: 2,
                available: 2,
                autoscaler: Some((2, 6, 2)),
            }),
            pods: vec![PodView {
                name: "storefront-7d9f-abcde".into(),
                ready: "1/1".into(),
                status: "Running".into(),
                restarts: 0,
                node: "emporium-node".into(),
                age_seconds: Some(590),
            }],
            runtime: RuntimeHealth::Ready {
                pod: "storefront-7d9f-abcde".into(),
                degraded: vec![],
            },
            events: vec![EventView {
                age_seconds: Some(600),
                type_: "Normal".into(),
                reason: "Ready".into(),
                object: "Storefront/acme".into(),
                message: "the store serves shoppers".into(),
                count: 1,
            }],
            age_seconds: Some(700),
            paused: false,
        }
    }

    fn sample_cost() -> CostStatus {
        let line =
            |component: &str, monthly: &str, source: &str, basis: &str| crate::crd::CostLine {
                component: component.into(),
                monthly: monthly.into(),
                source: source.into(),
                basis: basis.into(),
            };
        CostStatus {
            currency: "USD".into(),
            monthly_estimate: "62.27".into(),
            price_book: "us-east-1 list prices of 2026-12-07".into(),
            computed_at: "2026-12-07T10:00:00Z".into(),
            provisional: false,
            breakdown: vec![
                line(
                    "aurora-capacity",
                    "43.80",
                    "Observed",
                    "0.5 ACU × 730 h × $0.12/ACU-h",
                ),
                line(
                    "compute",
                    "18.02",
                    "Observed",
                    "2 replicas × (0.25 vCPU × $0.04048/vCPU-h + 0.5 GiB × $0.004445/GiB-h) × 730 h",
                ),
                line(
                    "load-balancer",
                    "0.45",
                    "Declared",
                    "($0.0225/h + 1 LCU assumed × $0.008/LCU-h) × 730 h ÷ 50 tenants",
                ),
            ],
        }
    }

    #[test]
    fn a_healthy_tenant_in_one_screen() {
        insta::assert_snapshot!(render_status(&healthy()));
    }

    #[test]
    fn a_broken_tenant_says_what_is_wrong() {
        let mut view = healthy();
        view.phase = Some("Failed".into());
        view.conditions = vec![ConditionView {
            type_: "Ready".into(),
            status: "False".into(),
            reason: "PlanNotFound".into(),
            message: "StorefrontPlan `gold` does not exist; create it or change spec.plan".into(),
            age_seconds: Some(30),
        }];
        view.workload = None;
        view.pods = vec![];
        view.runtime = RuntimeHealth::NoPod;
        view.cost = None;
        view.events[0] = EventView {
            age_seconds: Some(30),
            type_: "Warning".into(),
            reason: "Failed".into(),
            object: "Storefront/acme".into(),
            message: "StorefrontPlan `gold` does not exist".into(),
            count: 3,
        };
        let out = render_status(&view);
        assert!(out.contains("Phase:         Failed"), "{out}");
        assert!(out.contains("PlanNotFound"), "{out}");
        assert!(out.contains("Failed (x3)"), "{out}");
        assert!(out.contains("no Deployment found"), "{out}");
        assert!(out.contains("no running pod to ask"), "{out}");
        assert!(out.contains("Cost: no estimate yet"), "{out}");
    }

    #[test]
    fn never_reconciled_and_paused_tenants_say_so() {
        let mut view = healthy();
        view.phase = None;
        assert!(render_status(&view).contains("never reconciled"));
        view.paused = true;
        assert!(render_status(&view).contains("Phase:         Paused"));
        view.phase = Some("Ready".into());
        assert!(render_status(&view).contains("Ready (paused)"));
    }

    #[test]
    fn versions_are_tags_or_digests() {
        assert_eq!(version_of("ghcr.io/emporium/storefront:0.4.1"), "0.4.1");
        assert_eq!(version_of("localhost:5000/storefront"), "latest");
        assert_eq!(version_of("registry:5000/storefront:dev"), "dev");
        assert_eq!(
            version_of("ghcr.io/e/s@sha256:0123456789abcdef0123"),
            "sha256:0123456789ab"
        );
    }

    #[test]
    fn the_fleet_table_counts_ready_tenants() {
        let rows = vec![
            FleetRow {
                name: "acme".into(),
                tier: "dedicated".into(),
                plan: "standard".into(),
                phase: "Ready".into(),
                ready: "True 10m".into(),
                version: "0.4.1".into(),
                url: "https://acme.example.com".into(),
                cost: Some(sample_cost()),
                age_seconds: Some(700),
            },
            FleetRow {
                name: "bolt".into(),
                tier: "pooled".into(),
                plan: "starter".into(),
                phase: "Provisioning".into(),
                ready: "False 1m".into(),
                version: "0.4.0".into(),
                url: "-".into(),
                cost: None,
                age_seconds: Some(70),
            },
        ];
        insta::assert_snapshot!(render_fleet(&rows));
        assert_eq!(render_fleet(&[]), "No Storefronts found.\n");
    }
}
