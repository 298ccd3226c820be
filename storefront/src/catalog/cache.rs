//! The in-process catalog cache: one immutable snapshot (catalog + search index) per tenant.
//!
//! Staleness bound: a snapshot is served for at most `2 × max_staleness` after it was last
//! *verified* current, i.e. loaded, or found up to date by reading the tenant's catalog version
//! counter (one consistent `GetItem`; every admin write raises it after storing the change). From
//! a per-check random age in `[max_staleness / 2, max_staleness)` (jittered so tenants loaded
//! together do not check together) a request that finds it starts one background check and is
//! still served the current snapshot (stale-while-revalidate); past `2 × max_staleness` the
//! request waits for the check.
//!
//! A check that finds the version unchanged only extends the snapshot's life. One that finds it
//! changed reads the catalog's change feed for the versions since the snapshot's, re-reads just
//! the products and categories they changed, and derives a new snapshot from the current one by
//! those (copy-on-write: unchanged products and search documents are shared, see
//! [`Snapshot::apply`]); only when the feed no longer covers the snapshot's version (trimmed, or
//! a version counted without an entry), or the change is too large, does it load the whole
//! catalog. As a safety net for writes that bypassed the counter (a failed count, a manual edit
//! of the table), a check also reloads everything once the snapshot's last full load is older
//! than a jittered `[10, 20) × max_staleness` (5–10 minutes by default); that reload never
//! blocks a request.
//!
//! Loads, checks and incremental updates are single-flight per tenant. Catalog parsing and index
//! building run on Tokio's blocking pool, for at most half the cores at a time, never on the
//! async workers that serve requests; incremental updates run there too but do not wait for a
//! full build elsewhere. Admin writes bring the writing replica's snapshot up to date before they
//! answer and publish a notice that makes every other replica check before serving that tenant
//! again, so a change is visible everywhere within one feed read (a few milliseconds).
//!
//! Memory budget: snapshots are loaded on a tenant's first request, not at start, and the cache
//! holds at most `budget` bytes of them (each charged its [`Snapshot::bytes`] estimate). A load
//! or update that takes it over the budget evicts the least recently read tenants' snapshots
//! (never the one just installed) until it fits; an evicted tenant's next request loads it
//! whole again, once, however many requests wait for it. A tenant whose catalog alone exceeds
//! the budget is still served: everything else is evicted for it, and it goes at the next load.
//! Requests holding an evicted snapshot finish on it; it is freed when the last one drops it.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use prometheus_client::metrics::{
    counter::Counter,
    gauge::Gauge,
    histogram::{Histogram, exponential_buckets},
};

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
    /// When a request last read this tenant's catalog (ms since the cache was made): what
    /// eviction picks by.
    last_read: AtomicU64,
    /// Set when the tenant is forgotten: a load finishing afterwards must not stay charged.
    removed: AtomicBool,
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
    /// Snapshots brought up to date from the change feed (no full load).
    pub applies: Counter,
    /// Changes the feed could not cover (trimmed past the snapshot's version, or a version
    /// counted without an entry), so the catalog was loaded whole.
    pub feed_gaps: Counter,
    /// Bytes of snapshots this replica may hold ([`Snapshot::bytes`] summed).
    budget: usize,
    /// Bytes of snapshots held now (installed and not evicted).
    pub bytes_held: Gauge,
    /// Tenants whose snapshot is in memory.
    pub snapshots_loaded: Gauge,
    /// The budget, as a metric.
    pub budget_bytes: Gauge,
    /// Snapshots dropped to stay within the budget.
    pub evictions: Counter,
    /// Requests for a tenant's catalog (`snapshot` calls).
    pub reads: Counter,
    /// How long requests that found their tenant's catalog not in memory waited for it (the
    /// cold-load cost a shopper sees; its count is the number of such requests).
    pub cold_reads: Histogram,
    /// Requests that found their tenant's catalog not in memory (the histogram's count).
    pub cold_read_count: Counter,
    /// Started when the cache was made; `last_read` counts from it.
    epoch: Instant,
    /// One eviction pass at a time (passes are short: a scan of the tenants).
    evicting: Mutex<()>,
}

/// How much checking a caller asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A request: reuse a snapshot that is not due for a check.
    Serve,
    /// Verify now (after an admin write): read the version and catch up.
    Refresh,
    /// Load the whole catalog whatever the version says.
    Reload,
}

/// A change touching more products than this share of the catalog (plus a floor) is loaded
/// whole: re-reading them one by one would cost more than one catalog query.
fn worth_applying(changed: usize, catalog_len: usize) -> bool {
    changed <= catalog_len / 2 + 500
}

/// A random duration in `[base / 2, base)`.
fn jittered(base: Duration) -> Duration {
    let half = base / 2;
    half + half.mul_f64(rand::random::<f64>())
}

impl CatalogCache {
    /// The full reload safety net, as a multiple of `max_staleness` (jittered down to half).
    pub const RELOAD_FACTOR: u32 = 20;

    /// A cache without a memory budget (tests and single-tenant tools).
    pub fn new(max_staleness: Duration) -> Self {
        Self::with_budget(max_staleness, usize::MAX)
    }

    /// A cache that holds at most `budget` bytes of snapshots (see the module docs).
    pub fn with_budget(max_staleness: Duration, budget: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let budget_bytes = Gauge::default();
        budget_bytes.set(i64::try_from(budget).unwrap_or(i64::MAX));
        Self {
            entries: RwLock::default(),
            max_staleness,
            hard_staleness: max_staleness.saturating_mul(2),
            builds: tokio::sync::Semaphore::new((cores / 2).max(1)),
            loads: Counter::default(),
            checks: Counter::default(),
            applies: Counter::default(),
            feed_gaps: Counter::default(),
            budget,
            bytes_held: Gauge::default(),
            snapshots_loaded: Gauge::default(),
            budget_bytes,
            evictions: Counter::default(),
            reads: Counter::default(),
            // 1 ms to ~16 s.
            cold_reads: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            cold_read_count: Counter::default(),
            epoch: Instant::now(),
            evicting: Mutex::new(()),
        }
    }

    /// The memory budget in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Bytes of snapshots held now.
    pub fn held(&self) -> usize {
        usize::try_from(self.bytes_held.get()).unwrap_or(0)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
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

    /// Makes `current` the entry's snapshot, charges it to the budget and evicts others
    /// while over it.
    fn install(&self, entry: &Entry, current: Current) {
        let new = current.snap.bytes;
        let old = entry.current.write().replace(current);
        match old {
            Some(old) => self.charge(new, old.snap.bytes),
            None => {
                self.charge(new, 0);
                self.snapshots_loaded.inc();
            }
        }
        if entry.removed.load(Ordering::SeqCst) {
            self.evict(entry);
            return;
        }
        self.evict_over_budget(entry);
    }

    /// Adjusts the bytes held by a snapshot of `new` bytes replacing one of `old`.
    fn charge(&self, new: usize, old: usize) {
        let delta = i64::try_from(new).unwrap_or(i64::MAX) - i64::try_from(old).unwrap_or(i64::MAX);
        self.bytes_held.inc_by(delta);
    }

    /// Drops the entry's snapshot (if it has one) and its charge; true if it had one.
    fn evict(&self, entry: &Entry) -> bool {
        let Some(old) = entry.current.write().take() else {
            return false;
        };
        self.charge(0, old.snap.bytes);
        self.snapshots_loaded.dec();
        true
    }

    /// Evicts the least recently read snapshots other than `keep`'s until the cache is within
    /// its budget (or nothing else is left).
    fn evict_over_budget(&self, keep: &Entry) {
        if self.held() <= self.budget {
            return;
        }
        let _one_pass = self.evicting.lock();
        while self.held() > self.budget {
            let victim = {
                let entries = self.entries.read();
                entries
                    .iter()
                    .filter(|(_, e)| !std::ptr::eq(e.as_ref(), keep) && e.current.read().is_some())
                    .min_by_key(|(_, e)| e.last_read.load(Ordering::Relaxed))
                    .map(|(tenant, e)| (tenant.clone(), e.clone()))
            };
            let Some((tenant, victim)) = victim else {
                tracing::warn!(
                    held = self.held(),
                    budget = self.budget,
                    "one tenant's catalog exceeds the catalog memory budget; serving it anyway"
                );
                return;
            };
            if self.evict(&victim) {
                self.evictions.inc();
                tracing::debug!(%tenant, held = self.held(), budget = self.budget, "catalog evicted");
            }
        }
    }

    /// The tenant's catalog. A missing or invalidated snapshot, or one not verified for
    /// `2 × max_staleness`, is checked (and reloaded if it changed) before answering; an ageing
    /// one is served while one background check runs.
    pub async fn snapshot<S: CatalogSource>(
        self: &Arc<Self>,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(store.tenant());
        self.reads.inc();
        entry.last_read.store(self.now_ms(), Ordering::Relaxed);
        let current = Self::current(&entry);
        if current.is_none() {
            let started = Instant::now();
            let snap = self.revalidate(&entry, store, Mode::Serve).await;
            self.cold_reads.observe(started.elapsed().as_secs_f64());
            self.cold_read_count.inc();
            return snap;
        }
        if let Some(cur) = current
            && cur.generation == entry.generation.load(Ordering::Acquire)
            && cur.verified_at.elapsed() < self.hard_staleness
        {
            if cur.check_due() && !entry.refreshing.swap(true, Ordering::AcqRel) {
                let (this, store, entry) = (self.clone(), store.clone(), entry.clone());
                tokio::spawn(async move {
                    if let Err(e) = this.revalidate(&entry, &store, Mode::Serve).await {
                        tracing::warn!(tenant = %store.tenant(), error = %e, "background catalog refresh failed");
                    }
                    entry.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(cur.snap);
        }
        self.revalidate(&entry, store, Mode::Serve).await
    }

    /// Brings the snapshot up to date now (after this replica's own admin write, which the
    /// counter already shows): reads the version and applies what changed since the snapshot.
    pub async fn refresh<S: CatalogSource>(
        self: &Arc<Self>,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(store.tenant());
        entry.generation.fetch_add(1, Ordering::AcqRel);
        self.revalidate(&entry, store, Mode::Refresh).await
    }

    /// Loads the whole catalog now, whatever the version says.
    pub async fn reload<S: CatalogSource>(
        self: &Arc<Self>,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(store.tenant());
        entry.generation.fetch_add(1, Ordering::AcqRel);
        self.revalidate(&entry, store, Mode::Reload).await
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

    /// Drops a tenant this replica no longer serves (and its snapshot's charge).
    pub fn forget(&self, tenant: &str) {
        let removed = self.entries.write().remove(tenant);
        if let Some(e) = removed {
            e.removed.store(true, Ordering::SeqCst);
            self.evict(&e);
        }
    }

    /// Makes the entry current: reuses what a concurrent caller just verified, else reads the
    /// version and keeps the snapshot when it is unchanged, or derives one by the changes since
    /// (unless `Reload`, or the full reload is due), else loads the catalog.
    async fn revalidate<S: CatalogSource>(
        &self,
        entry: &Entry,
        store: &S,
        mode: Mode,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let requested = entry.generation.load(Ordering::Acquire);
        let seen = Self::current(entry).map(|c| c.verified_at);
        let _single_flight = entry.load.lock().await;
        // Someone else may have verified while we waited: reuse a current-generation snapshot
        // that was verified meanwhile or is not due for a check.
        if let Some(cur) = Self::current(entry)
            && mode != Mode::Reload
            && cur.generation >= requested
            && cur.generation == entry.generation.load(Ordering::Acquire)
            && (seen != Some(cur.verified_at) || (mode == Mode::Serve && !cur.check_due()))
        {
            return Ok(cur.snap);
        }
        // Read the generation, then the version, then the catalog: a write counted after the
        // version read, or an invalidation after the generation read, leaves this snapshot due
        // for another check.
        let generation = entry.generation.load(Ordering::Acquire);
        let verified_at = Instant::now();
        let version = store.version().await?;
        if mode != Mode::Reload
            && let Some(cur) = Self::current(entry)
            && cur.snap.loaded_at.elapsed() < cur.reload_after
            && !cur.snap.catalog.wants_rebuild()
        {
            let verified = |snap| Current {
                snap,
                generation,
                verified_at,
                check_after: jittered(self.max_staleness),
                reload_after: cur.reload_after,
            };
            if cur.snap.version == version {
                self.install(entry, verified(cur.snap.clone()));
                self.checks.inc();
                return Ok(cur.snap);
            }
            if version > cur.snap.version
                && let Some(snap) = self.catch_up(store, &cur.snap, version).await?
            {
                let snap = Arc::new(snap);
                self.install(entry, verified(snap.clone()));
                self.applies.inc();
                tracing::debug!(tenant = %store.tenant(), from = cur.snap.version, version, products = snap.catalog.len(), us = verified_at.elapsed().as_micros() as u64, "catalog changes applied");
                return Ok(snap);
            }
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

    /// `base` brought from its version to `version` by the change feed, or `None` when that
    /// takes a full load (the feed no longer covers it, the change is too large, or the search
    /// index cannot be updated in place).
    async fn catch_up<S: CatalogSource>(
        &self,
        store: &S,
        base: &Arc<Snapshot>,
        version: u64,
    ) -> Result<Option<Snapshot>, StoreError> {
        let Some(change) = store.changes(base.version, version).await? else {
            self.feed_gaps.inc();
            tracing::info!(tenant = %store.tenant(), from = base.version, version, "catalog change feed does not reach back to this snapshot; loading the whole catalog");
            return Ok(None);
        };
        if !worth_applying(change.products.len(), base.catalog.len()) {
            return Ok(None);
        }
        let docs = store.fetch_changed(&change).await?;
        let (tenant, base) = (store.tenant().to_owned(), base.clone());
        let applied = tokio::task::spawn_blocking(move || base.apply(&tenant, docs, version))
            .await
            .map_err(|e| StoreError::new("search", e))?;
        match applied {
            Ok(snap) => Ok(Some(snap)),
            Err(e) => {
                tracing::warn!(tenant = %store.tenant(), error = %e, "catalog changes not applied; loading the whole catalog");
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests;
