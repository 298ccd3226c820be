//! The Emporium storefront runtime as a library, so the binary and the tests build the same app.
pub mod app;
pub mod catalog_cache;
pub mod commerce;
pub mod domain;
pub mod error;
pub mod http;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod payments;
pub mod search;
pub mod search_cache;
pub mod sessions;
pub mod storage;
pub mod tenants;

pub use app::{AppState, Settings, build_state, router, serve};
pub mod passwords;
pub mod telemetry;
