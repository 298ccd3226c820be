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
    future::Future,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use prometheus_client::metrics::counter::Counter;

use crate::{
    domain::{
        catalog::Catalog,
        ports::{CatalogDocs, CatalogStore, StoreError},
    },
    search::SearchIndex,
    storage::dynamo::DynamoCatalog,
};

/// What requests read: never changes once built.
pub struct Snapshot {
    pub catalog: Catalog,
    pub search: SearchIndex,
    /// The tenant's catalog version this snapshot was loaded at.
    pub version: u64,
    /// Unique within this process (never reused, whatever the tenant): keys answers derived
    /// from this snapshot in caches.
    pub serial: u64,
    loaded_at: Instant,
}

/// Where the cache loads a tenant's catalog from (DynamoDB; a fake in tests).
pub trait CatalogSource: Clone + Send + Sync + 'static {
    fn tenant(&self) -> &str;
    /// The catalog's version counter (cheap: one item).
    fn version(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The whole catalog.
    fn fetch(&self) -> impl Future<Output = Result<CatalogDocs, StoreError>> + Send;
}

impl CatalogSource for DynamoCatalog {
    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn version(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        CatalogStore::version(self)
    }

    fn fetch(&self) -> impl Future<Output = Result<CatalogDocs, StoreError>> + Send {
        CatalogStore::load(self)
    }
}

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

/// Serials of snapshots, process-wide.
static SERIAL: AtomicU64 = AtomicU64::new(1);

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
        if let Some(e) = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            return e.clone();
        }
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(tenant.to_owned())
            .or_default()
            .clone()
    }

    fn current(entry: &Entry) -> Option<Current> {
        entry
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn install(&self, entry: &Entry, current: Current) {
        *entry.current.write().unwrap_or_else(|p| p.into_inner()) = Some(current);
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
        if let Some(e) = self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            e.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Marks every snapshot for a check (after missing notices, e.g. a Redis reconnect).
    pub fn invalidate_all(&self) {
        for e in self
            .entries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
        {
            e.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    pub fn forget(&self, tenant: &str) {
        self.entries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(tenant);
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

/// Parses the catalog and builds its search index (CPU-bound: runs on the blocking pool).
fn build(
    tenant: &str,
    docs: CatalogDocs,
    version: u64,
    loaded_at: Instant,
) -> Result<Snapshot, StoreError> {
    let search_err = |e| StoreError::new("search", e);
    let (products, categories) = docs.parse(tenant);
    // One pass: each product is indexed, then kept as its compact form, then dropped.
    let mut index = SearchIndex::builder().map_err(search_err)?;
    let mut failed = None;
    let products = products.map_while(|p| match index.add(&p) {
        Ok(()) => Some(p),
        Err(e) => {
            failed = Some(e);
            None
        }
    });
    let catalog = Catalog::new(products, categories);
    if let Some(e) = failed {
        return Err(search_err(e));
    }
    let search = index.finish().map_err(search_err)?;
    Ok(Snapshot {
        catalog,
        search,
        version,
        serial: SERIAL.fetch_add(1, Ordering::Relaxed),
        loaded_at,
    })
}

/// A snapshot of `products` (and no category), as a load would build it.
#[cfg(test)]
pub(crate) fn snapshot_for_tests(products: Vec<crate::domain::catalog::Product>) -> Snapshot {
    let docs = CatalogDocs {
        products: products
            .iter()
            .map(|p| serde_json::to_string(p).unwrap())
            .collect(),
        categories: Vec::new(),
    };
    build("test", docs, 0, Instant::now()).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::Category;

    /// A catalog whose category list is whatever `db` holds, with a version counter bumped by
    /// every write; counts fetches (each taking `delay`) and version reads.
    #[derive(Clone)]
    struct Fake {
        db: Arc<std::sync::Mutex<Vec<Category>>>,
        version: Arc<AtomicU64>,
        fetches: Arc<AtomicU64>,
        version_reads: Arc<AtomicU64>,
        delay: Duration,
    }

    impl Fake {
        fn new(delay: Duration) -> Self {
            Self {
                db: Arc::default(),
                version: Arc::default(),
                fetches: Arc::default(),
                version_reads: Arc::default(),
                delay,
            }
        }

        fn fetches(&self) -> u64 {
            self.fetches.load(Ordering::SeqCst)
        }

        fn version_reads(&self) -> u64 {
            self.version_reads.load(Ordering::SeqCst)
        }

        /// A write through the admin API: store, then count it.
        fn write(&self, id: &str) {
            self.write_uncounted(id);
            self.version.fetch_add(1, Ordering::SeqCst);
        }

        /// A write that bypassed the version counter (e.g. its bump failed).
        fn write_uncounted(&self, id: &str) {
            self.db.lock().unwrap().push(Category {
                id: id.to_owned(),
                name: id.to_owned(),
                parent_id: None,
            });
        }
    }

    impl CatalogSource for Fake {
        fn tenant(&self) -> &str {
            "t"
        }

        async fn version(&self) -> Result<u64, StoreError> {
            self.version_reads.fetch_add(1, Ordering::SeqCst);
            Ok(self.version.load(Ordering::SeqCst))
        }

        async fn fetch(&self) -> Result<CatalogDocs, StoreError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let categories = self
                .db
                .lock()
                .unwrap()
                .iter()
                .map(|c| serde_json::to_string(c).unwrap())
                .collect();
            tokio::time::sleep(self.delay).await;
            Ok(CatalogDocs {
                products: Vec::new(),
                categories,
            })
        }
    }

    fn cache(max_staleness: Duration) -> Arc<CatalogCache> {
        Arc::new(CatalogCache::new(max_staleness))
    }

    async fn categories(cache: &Arc<CatalogCache>, store: &Fake) -> usize {
        cache
            .snapshot(store)
            .await
            .unwrap()
            .catalog
            .categories()
            .len()
    }

    #[tokio::test]
    async fn a_stale_snapshot_is_served_at_once_while_one_reload_runs() {
        let (cache, store) = (
            cache(Duration::from_secs(2)),
            Fake::new(Duration::from_millis(400)),
        );
        let first = cache.snapshot(&store).await.unwrap();
        store.write("shoes");
        // Past the check point (1–2 s) but before the hard bound (4 s).
        tokio::time::sleep(Duration::from_millis(2100)).await;
        for _ in 0..5 {
            let started = Instant::now();
            let snap = cache.snapshot(&store).await.unwrap();
            assert!(Arc::ptr_eq(&snap, &first), "the stale snapshot is served");
            assert!(
                started.elapsed() < Duration::from_millis(300),
                "without waiting for the load"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.fetches(), 2, "exactly one background reload");
        // Once it is done, the reloaded snapshot replaces the stale one.
        let polled = Instant::now();
        while Arc::ptr_eq(&cache.snapshot(&store).await.unwrap(), &first) {
            assert!(
                polled.elapsed() < Duration::from_millis(1500),
                "reload never landed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(categories(&cache, &store).await, 1);
        assert_eq!(store.fetches(), 2);
    }

    #[tokio::test]
    async fn an_unchanged_catalog_is_checked_not_reloaded() {
        let (cache, store) = (
            cache(Duration::from_millis(100)),
            Fake::new(Duration::from_millis(10)),
        );
        store.write("shoes");
        let first = cache.snapshot(&store).await.unwrap();
        assert_eq!((store.fetches(), store.version_reads()), (1, 1));
        // Past the check point: background checks; past the hard bound: a waited-for check.
        for wait in [120, 250, 120] {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let snap = cache.snapshot(&store).await.unwrap();
            assert!(
                Arc::ptr_eq(&snap, &first),
                "the same snapshot, never rebuilt"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.fetches(), 1, "no catalog read after the first");
        assert!(store.version_reads() >= 3, "but its version was read");
        assert!(cache.checks.get() >= 2);
        // Notices (this tenant, or all after a reconnect) only force a check when the version
        // says nothing changed.
        cache.invalidate("t");
        cache.invalidate_all();
        assert!(Arc::ptr_eq(&cache.snapshot(&store).await.unwrap(), &first));
        assert_eq!(store.fetches(), 1);
    }

    #[tokio::test]
    async fn a_write_that_bypassed_the_counter_shows_after_the_full_reload_interval() {
        let (cache, store) = (cache(Duration::from_millis(50)), Fake::new(Duration::ZERO));
        cache.snapshot(&store).await.unwrap();
        store.write_uncounted("shoes");
        // The full reload is due within 20 × 50 ms = 1 s; keep asking until it lands.
        let started = Instant::now();
        while categories(&cache, &store).await == 0 {
            assert!(started.elapsed() < Duration::from_secs(3), "never reloaded");
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        assert!(store.fetches() >= 2);
    }

    #[tokio::test]
    async fn concurrent_requests_start_one_load() {
        let (cache, store) = (
            cache(Duration::from_millis(100)),
            Fake::new(Duration::from_millis(200)),
        );
        let wave = || {
            futures::future::join_all((0..8).map(|_| {
                let (cache, store) = (cache.clone(), store.clone());
                async move { cache.snapshot(&store).await.unwrap() }
            }))
        };
        let cold = wave().await;
        assert_eq!(store.fetches(), 1, "a cold tenant is loaded once");
        assert!(cold.iter().all(|s| Arc::ptr_eq(s, &cold[0])));
        // Changed, and past the hard bound (200 ms): everyone waits, for one load.
        store.write("shoes");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let expired = wave().await;
        assert_eq!(store.fetches(), 2, "an expired tenant is reloaded once");
        assert!(expired.iter().all(|s| Arc::ptr_eq(s, &expired[0])));
        assert!(!Arc::ptr_eq(&expired[0], &cold[0]));
    }

    #[tokio::test]
    async fn past_the_hard_bound_a_request_waits_for_a_reload() {
        let (cache, store) = (
            cache(Duration::from_millis(100)),
            Fake::new(Duration::from_millis(150)),
        );
        cache.snapshot(&store).await.unwrap();
        store.write("shoes");
        tokio::time::sleep(Duration::from_millis(250)).await;
        let started = Instant::now();
        let snap = cache.snapshot(&store).await.unwrap();
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "the request waited"
        );
        assert_eq!(
            snap.catalog.categories().len(),
            1,
            "and sees the current catalog"
        );
        assert_eq!(store.fetches(), 2);
    }

    #[tokio::test]
    async fn writes_are_visible_at_once_after_reload_or_invalidate() {
        let (cache, store) = (
            cache(Duration::from_secs(60)),
            Fake::new(Duration::from_millis(10)),
        );
        assert_eq!(categories(&cache, &store).await, 0);
        // This replica's admin write: reload before answering.
        store.write("shoes");
        let reloaded = cache.reload(&store).await.unwrap();
        assert_eq!(reloaded.catalog.categories().len(), 1);
        let snap = cache.snapshot(&store).await.unwrap();
        assert!(
            Arc::ptr_eq(&snap, &reloaded),
            "the next read sees the write"
        );
        // Another replica's write: the notice makes the next read check, and reload.
        store.write("hats");
        cache.invalidate("t");
        assert_eq!(categories(&cache, &store).await, 2);
        store.write("socks");
        cache.invalidate_all();
        assert_eq!(categories(&cache, &store).await, 3);
        assert_eq!(store.fetches(), 4);
    }

    #[tokio::test]
    async fn snapshots_get_distinct_serials_and_check_points_are_jittered() {
        let (cache, store) = (cache(Duration::from_secs(30)), Fake::new(Duration::ZERO));
        let mut serials = Vec::new();
        let mut points = Vec::new();
        for _ in 0..8 {
            let snap = cache.reload(&store).await.unwrap();
            serials.push(snap.serial);
            let cur = CatalogCache::current(&cache.entry("t")).unwrap();
            assert!(cur.check_after >= Duration::from_secs(15));
            assert!(cur.check_after < Duration::from_secs(30));
            assert!(cur.reload_after >= Duration::from_secs(300));
            assert!(cur.reload_after < Duration::from_secs(600));
            points.push(cur.check_after);
        }
        serials.dedup();
        assert_eq!(serials.len(), 8);
        points.dedup();
        assert!(points.len() > 1, "check points differ between loads");
    }
}
