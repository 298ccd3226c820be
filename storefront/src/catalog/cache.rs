//! The in-process catalog cache: one immutable snapshot (catalog + search index) per tenant.
//!
//! Staleness bound: a snapshot is served for at most `2 × max_staleness` after it was last
//! *verified* current, i.e. loaded, or found unchanged by reading the tenant's catalog version
//! counter (one consistent `GetItem`; every admin write bumps it after storing the change). From
//! a per-check random age in `[max_staleness / 2, max_staleness)` (jittered so tenants loaded
//! together do not check together) a request that finds it starts one background check and is
//! still served the current snapshot (stale-while-revalidate); past `2 × max_staleness` the
//! request waits for the check. A check that finds the version changed loads the whole catalog
//! again; one that finds it unchanged only extends the snapshot's life, so an idle or unchanged
//! tenant costs one small read per ~`max_staleness` instead of a catalog load and index build.
//! As a safety net for writes that bypassed the counter (a failed bump, a manual edit of the
//! table), a check also reloads everything once the snapshot is older than a jittered
//! `[10, 20) × max_staleness` (5–10 minutes by default); that reload never blocks a request.
//!
//! Loads and checks are single-flight per tenant, and catalog parsing and index building run on
//! Tokio's blocking pool, for at most half the cores at a time, never on the async workers that
//! serve requests. On top, admin writes reload the writing replica's snapshot
//! before they answer and publish a notice that makes every other replica check before serving
//! that tenant again, so in practice a change is visible everywhere within one DynamoDB load
//! (tens of milliseconds).

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;

use super::snapshot::{CatalogSource, Snapshot, build};
use crate::domain::ports::StoreError;

/// The snapshot a tenant is served and when it was last verified current.
#[derive(Clone)]
struct Current {
    snap: Arc<Snapshot>,
    /// The entry's generation when the snapshot was last verified.
    generation: u64,
    verified_at: Instant,
    /// Age (since `verified_at`) from which a request starts a background check (jittered).
    check_after: Duration,
    /// Age (since the snapshot was loaded) from which a check reloads whatever the version says.
    reload_after: Duration,
}

impl Current {
    fn check_due(&self) -> bool {
        self.verified_at.elapsed() >= self.check_after
            || self.snap.loaded_at.elapsed() >= self.reload_after
    }
}

#[derive(Default)]
struct Entry {
    /// Bumped by every invalidation; a snapshot verified at an older generation must be checked
    /// again before it is served.
    generation: AtomicU64,
    current: RwLock<Option<Current>>,
    load: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

pub struct CatalogCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    max_staleness: Duration,
    /// Past this age since verification a request waits for a check: `2 × max_staleness`.
    hard_staleness: Duration,
    /// Catalog parses and index builds running at once (they are CPU-bound).
    builds: tokio::sync::Semaphore,
    /// Full loads (catalog read + index build) done.
    pub loads: Counter,
    /// Version checks that found the snapshot current (no load needed).
    pub checks: Counter,
}

/// A random duration in `[base / 2, base)`.
fn jittered(base: Duration) -> Duration {
    let half = base / 2;
    half + half.mul_f64(rand::random::<f64>())
}

impl CatalogCache {
    /// The full reload safety net, as a multiple of `max_staleness` (jittered down to half).
    pub const RELOAD_FACTOR: u32 = 20;

    pub fn new(max_staleness: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            entries: RwLock::default(),
            max_staleness,
            hard_staleness: max_staleness.saturating_mul(2),
            builds: tokio::sync::Semaphore::new((cores / 2).max(1)),
            loads: Counter::default(),
            checks: Counter::default(),
        }
    }

    fn entry(&self, tenant: &str) -> Arc<Entry> {
        if let Some(e) = self.entries.read().get(tenant) {
            return e.clone();
        }
        self.entries
            .write()
            .entry(tenant.to_owned())
            .or_default()
            .clone()
    }

    fn current(entry: &Entry) -> Option<Current> {
        entry.current.read().clone()
    }

    fn install(&self, entry: &Entry, current: Current) {
        *entry.current.write() = Some(current);
    }

    /// The tenant's catalog. A missing or invalidated snapshot, or one not verified for
    /// `2 × max_staleness`, is checked (and reloaded if it changed) before answering; an ageing
    /// one is served while one background check runs.
    pub async fn snapshot<S: CatalogSource>(
        self: &Arc<Self>,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(store.tenant());
        if let Some(cur) = Self::current(&entry)
            && cur.generation == entry.generation.load(Ordering::Acquire)
            && cur.verified_at.elapsed() < self.hard_staleness
        {
            if cur.check_due() && !entry.refreshing.swap(true, Ordering::AcqRel) {
                let (this, store, entry) = (self.clone(), store.clone(), entry.clone());
                tokio::spawn(async move {
                    if let Err(e) = this.revalidate(&entry, &store, false).await {
                        tracing::warn!(tenant = %store.tenant(), error = %e, "background catalog refresh failed");
                    }
                    entry.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(cur.snap);
        }
        self.revalidate(&entry, store, false).await
    }

    /// Reloads now, whatever the version says (after this replica's own admin write).
    pub async fn reload<S: CatalogSource>(
        self: &Arc<Self>,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(store.tenant());
        entry.generation.fetch_add(1, Ordering::AcqRel);
        self.revalidate(&entry, store, true).await
    }

    /// Marks the tenant's snapshot for a check before it is served again (another replica
    /// changed the catalog).
    pub fn invalidate(&self, tenant: &str) {
        if let Some(e) = self.entries.read().get(tenant) {
            e.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Marks every snapshot for a check (after missing notices, e.g. a Redis reconnect).
    pub fn invalidate_all(&self) {
        for e in self.entries.read().values() {
            e.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub fn forget(&self, tenant: &str) {
        self.entries.write().remove(tenant);
    }

    /// Makes the entry current: reuses what a concurrent caller just verified, else reads the
    /// version and keeps the snapshot when it is unchanged (unless `force` or the full reload
    /// is due), else loads the catalog.
    async fn revalidate<S: CatalogSource>(
        &self,
        entry: &Entry,
        store: &S,
        force: bool,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let requested = entry.generation.load(Ordering::Acquire);
        let seen = Self::current(entry).map(|c| c.verified_at);
        let _single_flight = entry.load.lock().await;
        // Someone else may have verified while we waited: reuse a current-generation snapshot
        // that was verified meanwhile or is not due for a check.
        if let Some(cur) = Self::current(entry)
            && cur.generation >= requested
            && cur.generation == entry.generation.load(Ordering::Acquire)
            && (seen != Some(cur.verified_at) || (!force && !cur.check_due()))
        {
            return Ok(cur.snap);
        }
        // Read the generation, then the version, then the catalog: a write counted after the
        // version read, or an invalidation after the generation read, leaves this snapshot due
        // for another check.
        let generation = entry.generation.load(Ordering::Acquire);
        let verified_at = Instant::now();
        let version = store.version().await?;
        if !force
            && let Some(cur) = Self::current(entry)
            && cur.snap.version == version
            && cur.snap.loaded_at.elapsed() < cur.reload_after
        {
            self.install(
                entry,
                Current {
                    generation,
                    verified_at,
                    check_after: jittered(self.max_staleness),
                    ..cur.clone()
                },
            );
            self.checks.inc();
            return Ok(cur.snap);
        }
        let docs = store.fetch().await?;
        let tenant = store.tenant().to_owned();
        let snap = {
            let _permit = self
                .builds
                .acquire()
                .await
                .map_err(|e| StoreError::new("search", e))?;
            tokio::task::spawn_blocking(move || build(&tenant, docs, version, verified_at))
                .await
                .map_err(|e| StoreError::new("search", e))??
        };
        let snap = Arc::new(snap);
        self.install(
            entry,
            Current {
                snap: snap.clone(),
                generation,
                verified_at,
                check_after: jittered(self.max_staleness),
                reload_after: jittered(self.max_staleness.saturating_mul(Self::RELOAD_FACTOR)),
            },
        );
        self.loads.inc();
        tracing::debug!(tenant = %store.tenant(), version, products = snap.catalog.len(), ms = verified_at.elapsed().as_millis() as u64, "catalog loaded");
        Ok(snap)
    }
}

#[cfg(test)]
mod tests;
