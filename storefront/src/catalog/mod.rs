//! The catalog read side: what shopper requests read a tenant's catalog from.
//!
//! - [`snapshot`]: one immutable [`Snapshot`] per tenant (the compact catalog and its search
//!   index), where it is loaded from ([`CatalogSource`]) and how it is built.
//! - [`cache`]: the per-tenant [`CatalogCache`] of snapshots, its documented staleness bound
//!   and its memory budget (least recently read tenants evicted; [`budget`] sizes it).
//! - [`search`]: the tantivy [`SearchIndex`] a snapshot holds, rebuilt with every snapshot.
//! - [`search_cache`]: the bounded [`SearchCache`] of search answers, keyed by snapshot.

pub mod budget;
pub mod cache;
pub mod search;
pub mod search_cache;
pub mod snapshot;

pub use cache::CatalogCache;
pub use search::{SearchIndex, SearchIndexBuilder};
pub use search_cache::{SearchAnswer, SearchCache};
#[cfg(test)]
pub(crate) use snapshot::snapshot_for_tests;
pub use snapshot::{CatalogSource, Snapshot};
