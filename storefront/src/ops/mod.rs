//! Operating the runtime: Prometheus [`metrics`], the [`openapi`] document, [`telemetry`] (logs).

pub mod metrics;
pub mod openapi;
pub mod telemetry;
