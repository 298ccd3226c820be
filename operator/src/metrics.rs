//! Prometheus metrics: reconciles, errors by reason, reconcile duration, tenants by phase,
//! whether this replica leads, and the write requests sent (and applies skipped) by kind.

use std::{collections::HashMap, sync::atomic::AtomicI64, time::Duration};

use parking_lot::Mutex;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::crd::Phase;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    verb: String,
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: String,
}

/// The operator's metrics, shared by the reconciler and the `/metrics` endpoint.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Counter,
    errors: Family<ErrorLabels, Counter>,
    duration: Histogram,
    tenants: Family<PhaseLabels, Gauge>,
    leader: Gauge<i64, AtomicI64>,
    writes: Family<WriteLabels, Counter>,
    unchanged: Family<KindLabels, Counter>,
    phases: Mutex<HashMap<String, Phase>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("emporium_operator");
        let reconciles = Counter::default();
        let errors = Family::<ErrorLabels, Counter>::default();
        let duration =
            Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]);
        let tenants = Family::<PhaseLabels, Gauge>::default();
        let leader = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "reconciles",
            "Storefront reconciles started",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Storefront reconciles that failed, by reason",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "How long one Storefront reconcile took",
            duration.clone(),
        );
        registry.register("tenants", "Storefronts by phase", tenants.clone());
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Write requests (apply, delete, status, finalizer, event) the reconciler sent to the API server, by verb and kind",
            writes.clone(),
        );
        let unchanged = Family::<KindLabels, Counter>::default();
        registry.register(
            "applies_skipped",
            "Child objects not applied because the cached object already matched the desired one, by kind",
            unchanged.clone(),
        );
        for phase in Phase::ALL {
            tenants
                .get_or_create(&PhaseLabels {
                    phase: phase.as_str().to_owned(),
                })
                .set(0);
        }
        Self {
            registry,
            reconciles,
            errors,
            duration,
            tenants,
            leader,
            writes,
            unchanged,
            phases: Mutex::default(),
        }
    }

    pub fn reconcile_started(&self) {
        self.reconciles.inc();
    }

    pub fn reconcile_finished(&self, took: Duration) {
        self.duration.observe(took.as_secs_f64());
    }

    pub fn reconcile_failed(&self, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts one write request (`verb`: apply, delete, status, finalizer, create) on `kind`.
    pub fn api_write(&self, verb: &str, kind: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                verb: verb.to_owned(),
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// Counts one child object left alone because the cache showed it already as desired.
    pub fn apply_skipped(&self, kind: &str) {
        self.unchanged
            .get_or_create(&KindLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Records a tenant's phase (`None` once it is gone) and recounts the gauge.
    pub fn set_phase(&self, tenant: &str, phase: Option<Phase>) {
        let mut phases = self.phases.lock();
        match phase {
            Some(phase) => phases.insert(tenant.to_owned(), phase),
            None => phases.remove(tenant),
        };
        for each in Phase::ALL {
            let count = phases.values().filter(|p| **p == each).count();
            self.tenants
                .get_or_create(&PhaseLabels {
                    phase: each.as_str().to_owned(),
                })
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
