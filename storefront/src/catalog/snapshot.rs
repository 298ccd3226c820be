//! A tenant's catalog snapshot: the compact catalog and its search index, built together from
//! one load of the catalog's documents or derived from the previous snapshot by what changed,
//! and the source they are loaded from.

use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::Instant,
};

use super::search::{SearchIndex, SearchUpdateError};
use crate::{
    domain::{
        catalog::{Catalog, CatalogDelta},
        ports::{CatalogChange, CatalogDocs, CatalogStore, ChangedDocs, StoreError},
    },
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
    /// When the catalog was last loaded whole (snapshots derived by [`Snapshot::apply`] keep
    /// their base's).
    pub(super) loaded_at: Instant,
    /// Estimated heap bytes of the catalog and its search index (what the cache's memory
    /// budget charges for it; see [`Catalog::heap_bytes`] and [`SearchIndex::heap_bytes`]).
    pub bytes: usize,
}

impl Snapshot {
    /// A snapshot at `version` that differs from this one by `docs` (the current documents of
    /// what changed since): the catalog and the search index are updated by those products
    /// only, sharing everything else with this snapshot, which stays as it was. CPU-bound
    /// (tantivy commits): runs on the blocking pool.
    pub(super) fn apply(
        &self,
        tenant: &str,
        docs: ChangedDocs,
        version: u64,
    ) -> Result<Snapshot, SearchUpdateError> {
        let delta = CatalogDelta {
            products: docs
                .products
                .into_iter()
                .map(|(id, doc)| {
                    // An unreadable document is left out, as a full load leaves it out.
                    let product = doc.and_then(|d| CatalogDocs::parse_doc(tenant, "product", &d));
                    (id, product)
                })
                .collect(),
            categories: docs
                .categories
                .into_iter()
                .map(|(id, doc)| {
                    let category = doc.and_then(|d| CatalogDocs::parse_doc(tenant, "category", &d));
                    (id, category)
                })
                .collect(),
        };
        let applied = self.catalog.apply(delta);
        let search = self.search.apply(&applied.unindexed, &applied.indexed)?;
        Ok(Snapshot {
            bytes: applied.catalog.heap_bytes() + search.heap_bytes(),
            catalog: applied.catalog,
            search,
            version,
            serial: SERIAL.fetch_add(1, Ordering::Relaxed),
            loaded_at: self.loaded_at,
        })
    }
}

/// Where the cache loads a tenant's catalog from (DynamoDB; a fake in tests).
pub trait CatalogSource: Clone + Send + Sync + 'static {
    fn tenant(&self) -> &str;
    /// The catalog's version counter (cheap: one item).
    fn version(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;
    /// The whole catalog.
    fn fetch(&self) -> impl Future<Output = Result<CatalogDocs, StoreError>> + Send;
    /// The ids the versions `after + 1 ..= upto` changed, or `None` when the change feed no
    /// longer has them all (see [`CatalogStore::changes`]).
    fn changes(
        &self,
        after: u64,
        upto: u64,
    ) -> impl Future<Output = Result<Option<CatalogChange>, StoreError>> + Send;
    /// The current documents of a change's ids.
    fn fetch_changed(
        &self,
        change: &CatalogChange,
    ) -> impl Future<Output = Result<ChangedDocs, StoreError>> + Send;
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

    fn changes(
        &self,
        after: u64,
        upto: u64,
    ) -> impl Future<Output = Result<Option<CatalogChange>, StoreError>> + Send {
        CatalogStore::changes(self, after, upto)
    }

    fn fetch_changed(
        &self,
        change: &CatalogChange,
    ) -> impl Future<Output = Result<ChangedDocs, StoreError>> + Send {
        CatalogStore::fetch_changed(self, change)
    }
}

/// Serials of snapshots, process-wide.
static SERIAL: AtomicU64 = AtomicU64::new(1);

/// Parses the catalog and builds its search index (CPU-bound: runs on the blocking pool).
pub(super) fn build(
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
        bytes: catalog.heap_bytes() + search.heap_bytes(),
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
