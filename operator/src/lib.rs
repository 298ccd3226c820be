//! The Emporium operator as a library: the binary in `main.rs` wires these together, and the
//! integration tests under `tests/` drive them against a real API server.

pub mod config;
pub mod cost;
pub mod crd;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod plugin;
pub mod providers;
pub mod reconcile;
