//! The in-process catalog cache: one immutable snapshot (catalog + search index) per tenant.
//!
//! Staleness bound: a snapshot is served for at most `2 × max_staleness` after it was loaded.
//! From a per-load random age in `[max_staleness / 2, max_staleness)` (jittered so tenants loaded
//! together do not refresh together) a request that finds it starts one background reload and is
//! still served the current snapshot (stale-while-revalidate); past `2 × max_staleness` the
//! request waits for a reload. Loads are single-flight per tenant. On top, admin writes reload the
//! writing replica's snapshot before they answer and publish a notice that makes every other
//! replica reload before serving that tenant again, so in practice a change is visible everywhere
//! within one DynamoDB load (tens of milliseconds).

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    domain::{
        catalog::{Catalog, Category, Product},
        ports::{CatalogStore, StoreError},
    },
    search::SearchIndex,
    storage::dynamo::DynamoCatalog,
};

/// What requests read: never changes once built.
pub struct Snapshot {
    pub catalog: Catalog,
    pub search: SearchIndex,
    generation: u64,
    loaded_at: Instant,
    /// Age from which a request starts a background refresh (jittered per load).
    refresh_after: Duration,
}

/// Where the cache loads a tenant's catalog from (DynamoDB; a fake in tests).
pub trait CatalogSource: Clone + Send + Sync + 'static {
    fn tenant(&self) -> &str;
    fn fetch(
        &self,
    ) -> impl Future<Output = Result<(Vec<Product>, Vec<Category>), StoreError>> + Send;
}

impl CatalogSource for DynamoCatalog {
    fn tenant(&self) -> &str {
        &self.tenant
    }

    fn fetch(
        &self,
    ) -> impl Future<Output = Result<(Vec<Product>, Vec<Category>), StoreError>> + Send {
        CatalogStore::load(self)
    }
}

#[derive(Default)]
struct Entry {
    /// Bumped by every invalidation; a snapshot built from an older generation is stale.
    generation: AtomicU64,
    current: RwLock<Option<Arc<Snapshot>>>,
    load: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
}

pub struct CatalogCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
    max_staleness: Duration,
    /// Past this age a request waits for a reload: `2 × max_staleness`.
    hard_staleness: Duration,
    pub loads: AtomicU64,
}

impl CatalogCache {
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            entries: RwLock::default(),
            max_staleness,
            hard_staleness: max_staleness.saturating_mul(2),
            loads: AtomicU64::new(0),
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

    fn current(entry: &Entry) -> Option<Arc<Snapshot>> {
        entry
            .current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The tenant's catalog. A missing, invalidated or older than `2 × max_staleness` snapshot
    /// is loaded before answering; an ageing one is served while one background reload runs.
    pub async fn snapshot<S: CatalogSource>(
        self: &Arc<Self>,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(store.tenant());
        if let Some(snap) = Self::current(&entry)
            && snap.generation == entry.generation.load(Ordering::Acquire)
            && snap.loaded_at.elapsed() < self.hard_staleness
        {
            if snap.loaded_at.elapsed() >= snap.refresh_after
                && !entry.refreshing.swap(true, Ordering::AcqRel)
            {
                let (this, store, entry) = (self.clone(), store.clone(), entry.clone());
                tokio::spawn(async move {
                    if let Err(e) = this.load(&entry, &store).await {
                        tracing::warn!(tenant = %store.tenant(), error = %e, "background catalog refresh failed");
                    }
                    entry.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(snap);
        }
        self.load(&entry, store).await
    }

    /// Reloads now (after this replica's own admin write).
    pub async fn reload<S: CatalogSource>(
        self: &Arc<Self>,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(store.tenant());
        entry.generation.fetch_add(1, Ordering::AcqRel);
        self.load(&entry, store).await
    }

    /// Marks the tenant's snapshot stale (another replica changed the catalog).
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

    /// Marks every snapshot stale (after missing notices, e.g. a Redis reconnect).
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

    async fn load<S: CatalogSource>(
        &self,
        entry: &Entry,
        store: &S,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let requested = entry.generation.load(Ordering::Acquire);
        let seen = Self::current(entry);
        let _single_flight = entry.load.lock().await;
        // Someone else may have loaded while we waited: reuse a current-generation snapshot that
        // was installed meanwhile or is not yet due for a refresh.
        if let Some(snap) = Self::current(entry)
            && snap.generation >= requested
            && snap.generation == entry.generation.load(Ordering::Acquire)
            && (!seen.is_some_and(|s| Arc::ptr_eq(&s, &snap))
                || snap.loaded_at.elapsed() < snap.refresh_after)
        {
            return Ok(snap);
        }
        let generation = entry.generation.load(Ordering::Acquire);
        let started = Instant::now();
        let half = self.max_staleness / 2;
        let refresh_after = half + half.mul_f64(rand::random::<f64>());
        let (products, categories) = store.fetch().await?;
        let snap = tokio::task::spawn_blocking(move || {
            let search = SearchIndex::build(&products).map_err(|e| StoreError::new("search", e))?;
            Ok::<_, StoreError>(Snapshot {
                catalog: Catalog::new(products, categories),
                search,
                generation,
                loaded_at: started,
                refresh_after,
            })
        })
        .await
        .map_err(|e| StoreError::new("search", e))??;
        let snap = Arc::new(snap);
        *entry.current.write().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());
        self.loads.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(tenant = %store.tenant(), products = snap.catalog.products().len(), ms = started.elapsed().as_millis() as u64, "catalog loaded");
        Ok(snap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog whose category list is whatever `db` holds; counts fetches, each taking `delay`.
    #[derive(Clone)]
    struct Fake {
        db: Arc<std::sync::Mutex<Vec<Category>>>,
        fetches: Arc<AtomicU64>,
        delay: Duration,
    }

    impl Fake {
        fn new(delay: Duration) -> Self {
            Self {
                db: Arc::default(),
                fetches: Arc::default(),
                delay,
            }
        }

        fn fetches(&self) -> u64 {
            self.fetches.load(Ordering::SeqCst)
        }

        fn write(&self, id: &str) {
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

        async fn fetch(&self) -> Result<(Vec<Product>, Vec<Category>), StoreError> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let categories = self.db.lock().unwrap().clone();
            tokio::time::sleep(self.delay).await;
            Ok((Vec::new(), categories))
        }
    }

    fn cache(max_staleness: Duration) -> Arc<CatalogCache> {
        Arc::new(CatalogCache::new(max_staleness))
    }

    #[tokio::test]
    async fn a_stale_snapshot_is_served_at_once_while_one_reload_runs() {
        let (cache, store) = (
            cache(Duration::from_secs(2)),
            Fake::new(Duration::from_millis(400)),
        );
        let first = cache.snapshot(&store).await.unwrap();
        // Past the refresh point (1–2 s) but before the hard bound (4 s).
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
        assert_eq!(store.fetches(), 2);
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
        // Past the hard bound (200 ms): everyone waits, for one load.
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
        assert!(
            cache
                .snapshot(&store)
                .await
                .unwrap()
                .catalog
                .categories()
                .is_empty()
        );
        // This replica's admin write: reload before answering.
        store.write("shoes");
        let reloaded = cache.reload(&store).await.unwrap();
        assert_eq!(reloaded.catalog.categories().len(), 1);
        let snap = cache.snapshot(&store).await.unwrap();
        assert!(
            Arc::ptr_eq(&snap, &reloaded),
            "the next read sees the write"
        );
        // Another replica's write: the notice makes the next read reload.
        store.write("hats");
        cache.invalidate("t");
        assert_eq!(
            cache
                .snapshot(&store)
                .await
                .unwrap()
                .catalog
                .categories()
                .len(),
            2
        );
        store.write("socks");
        cache.invalidate_all();
        assert_eq!(
            cache
                .snapshot(&store)
                .await
                .unwrap()
                .catalog
                .categories()
                .len(),
            3
        );
        assert_eq!(store.fetches(), 4);
    }

    #[tokio::test]
    async fn refresh_points_are_jittered() {
        let (cache, store) = (cache(Duration::from_secs(30)), Fake::new(Duration::ZERO));
        let mut points = Vec::new();
        for _ in 0..8 {
            let snap = cache.reload(&store).await.unwrap();
            assert!(snap.refresh_after >= Duration::from_secs(15));
            assert!(snap.refresh_after < Duration::from_secs(30));
            points.push(snap.refresh_after);
        }
        points.dedup();
        assert!(points.len() > 1, "refresh points differ between loads");
    }
}
