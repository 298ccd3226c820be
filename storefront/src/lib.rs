//! The Emporium storefront runtime as a library, so the binary and the tests build the same app.
pub mod app;
pub mod catalog;
pub mod commerce;
pub mod domain;
pub mod error;
pub mod http;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod payments;
pub mod sessions;
pub mod storage;
pub mod tenants;

pub use app::{AppState, Settings, build_state, router, serve};
pub mod passwords;
pub mod telemetry;
