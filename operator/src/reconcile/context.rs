//! The reconciler's shared state: the API client, configuration, metrics, data providers and
//! caches, plus what this process remembers per tenant between reconciles.

use std::{collections::BTreeMap, sync::Arc, time::Instant};

use kube::{Client, runtime::events::Recorder};
use parking_lot::Mutex;

use super::{
    apply::Applier, cache::Cache, cost::PoolReadings, sharding::Demand, tenant_data::DataProviders,
};
use crate::{config::OperatorConfig, crd::StorefrontStatus, metrics::Metrics};

/// Shared state of the reconciler.
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub metrics: Arc<Metrics>,
    /// The database and table providers (built once from the configuration).
    pub providers: DataProviders,
    pub(super) recorder: Recorder,
    /// Reflector stores of Storefronts, plans and every child kind.
    pub cache: Cache,
    /// The status this process last wrote per Storefront (by uid): fresher than the cache right
    /// after a write, so an unchanged status is never written twice.
    pub(super) written: Mutex<BTreeMap<String, (String, StorefrontStatus)>>,
    /// Ingress group assignments made by this process and not yet seen in a status; guarded
    /// so two concurrent reconciles never fill the same last slot.
    pub(super) assignments: Mutex<BTreeMap<String, (u32, Demand)>>,
    /// Consecutive failures per tenant, for exponential backoff.
    pub(super) failures: Mutex<BTreeMap<String, u32>>,
    /// Storefronts (by uid) whose first status is held back, since when (see
    /// [`super::status::writer::first_look_pending`]).
    pub(super) held_back: Mutex<BTreeMap<String, Instant>>,
    /// The pool's cost figures, shared by every pooled tenant (see [`super::cost`]).
    pub(super) pool_readings: Mutex<PoolReadings>,
}

impl Context {
    /// A context with nothing remembered yet.
    pub(super) fn new(
        client: Client,
        config: OperatorConfig,
        metrics: Arc<Metrics>,
        providers: DataProviders,
        cache: Cache,
        recorder: Recorder,
    ) -> Self {
        Self {
            recorder,
            client,
            config,
            metrics,
            providers,
            cache,
            written: Mutex::default(),
            assignments: Mutex::default(),
            failures: Mutex::default(),
            held_back: Mutex::default(),
            pool_readings: Mutex::default(),
        }
    }

    pub(super) fn applier(&self) -> Applier<'_> {
        Applier {
            client: &self.client,
            cache: &self.cache,
            metrics: &self.metrics,
        }
    }

    /// Forgets what this process remembered about an offboarded tenant (`name`, `uid`).
    pub(super) fn forget(&self, name: &str, uid: &str) {
        self.assignments.lock().remove(name);
        self.written.lock().remove(name);
        self.held_back.lock().remove(uid);
    }
}
