//! The Emporium storefront runtime as a library, so the binary and the tests build the same app.
//!
//! - [`app`]: settings, shared state, serving. [`http`] (the JSON API) and [`pages`] (shopper
//!   HTML) are the two front doors; both call the use cases in [`services`].
//! - [`domain`]: business rules and the ports storage implements; [`storage`]: the adapters
//!   (DynamoDB, PostgreSQL, Redis); [`catalog`]: the catalog read side (snapshots, search).
//! - [`workers`]: reservation sweeper and outbox relay; [`live`]: live stock feed;
//!   [`payments`]: payment providers; [`tenants`]: the tenants served, by host.
//! - [`ops`]: metrics, the OpenAPI document, logging.
pub mod app;
pub mod catalog;
pub mod domain;
pub mod http;
pub mod live;
pub mod notifications;
pub mod ops;
pub mod pages;
pub mod payments;
pub mod services;
pub mod storage;
pub mod tenants;
pub mod workers;

pub use app::{AppState, Settings, build_state, router, serve};
