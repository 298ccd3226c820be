//! The in-process catalog cache: one immutable snapshot (catalog + search index) per tenant.
//!
//! Staleness bound: a snapshot is served for at most `max_staleness` after it was loaded
//! (refreshed in the background from half that age, reloaded before answering past it). On top,
//! admin writes reload the writing replica's snapshot before they answer and publish a notice
//! that makes every other replica treat its snapshot as stale at once, so in practice a change is
//! visible everywhere within one DynamoDB load (tens of milliseconds).

use std::{
    collections::HashMap,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crate::{
    domain::{
        catalog::Catalog,
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
    pub loads: AtomicU64,
}

impl CatalogCache {
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            entries: RwLock::default(),
            max_staleness,
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

    fn fresh(&self, entry: &Entry, snap: &Snapshot) -> bool {
        snap.generation == entry.generation.load(Ordering::Acquire)
            && snap.loaded_at.elapsed() < self.max_staleness
    }

    /// The tenant's catalog, loading it when missing or stale.
    pub async fn snapshot(
        self: &Arc<Self>,
        store: &DynamoCatalog,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(&store.tenant);
        if let Some(snap) = Self::current(&entry)
            && self.fresh(&entry, &snap)
        {
            if snap.loaded_at.elapsed() > self.max_staleness / 2
                && !entry.refreshing.swap(true, Ordering::AcqRel)
            {
                let (this, store, entry) = (self.clone(), store.clone(), entry.clone());
                tokio::spawn(async move {
                    if let Err(e) = this.load(&entry, &store).await {
                        tracing::warn!(tenant = %store.tenant, error = %e, "background catalog refresh failed");
                    }
                    entry.refreshing.store(false, Ordering::Release);
                });
            }
            return Ok(snap);
        }
        self.load(&entry, store).await
    }

    /// Reloads now (after this replica's own admin write).
    pub async fn reload(
        self: &Arc<Self>,
        store: &DynamoCatalog,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let entry = self.entry(&store.tenant);
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

    async fn load(
        &self,
        entry: &Entry,
        store: &DynamoCatalog,
    ) -> Result<Arc<Snapshot>, StoreError> {
        let requested = entry.generation.load(Ordering::Acquire);
        let _single_flight = entry.load.lock().await;
        // Someone else may have loaded while we waited.
        if let Some(snap) = Self::current(entry)
            && snap.generation >= requested
            && self.fresh(entry, &snap)
        {
            return Ok(snap);
        }
        let generation = entry.generation.load(Ordering::Acquire);
        let started = Instant::now();
        let (products, categories) = store.load().await?;
        let snap = tokio::task::spawn_blocking(move || {
            let search = SearchIndex::build(&products).map_err(|e| StoreError::new("search", e))?;
            Ok::<_, StoreError>(Snapshot {
                catalog: Catalog::new(products, categories),
                search,
                generation,
                loaded_at: started,
            })
        })
        .await
        .map_err(|e| StoreError::new("search", e))??;
        let snap = Arc::new(snap);
        *entry.current.write().unwrap_or_else(|p| p.into_inner()) = Some(snap.clone());
        self.loads.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(tenant = %store.tenant, products = snap.catalog.products().len(), ms = started.elapsed().as_millis() as u64, "catalog loaded");
        Ok(snap)
    }
}
