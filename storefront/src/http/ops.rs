//! Operational endpoints: liveness, readiness, metrics, the OpenAPI document.

use std::time::Duration;

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use redis::AsyncCommands as _;
use serde_json::json;
use utoipa::OpenApi as _;

use super::error::problem_response;
use crate::{app::AppState, ops::openapi::ApiDoc};

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness, for the kubelet and the load balancer.
///
/// Only DynamoDB is required: every tenant's catalog and carts live there, so a replica that
/// cannot reach it serves nobody. Redis (cross-replica notices and shared login limits) and a
/// tenant's PostgreSQL are reported as `degraded` but keep the replica ready: without Redis it
/// still serves, with per-replica limits; one tenant's database down must not take every other
/// tenant on this shared runtime out of the load balancer.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let limit = Duration::from_secs(2);
    let mut degraded = Vec::new();
    let databases = state.tenants.databases();
    let mut down = 0;
    for db in &databases {
        if !matches!(tokio::time::timeout(limit, db.ping()).await, Ok(Ok(()))) {
            down += 1;
        }
    }
    if down > 0 {
        degraded.push(format!(
            "postgres: {down} of {} databases unreachable",
            databases.len()
        ));
    }
    let mut redis = state.bus.connection();
    if !matches!(
        tokio::time::timeout(limit, redis.ping::<String>()).await,
        Ok(Ok(_))
    ) {
        degraded.push("redis unreachable: login limits are per replica, catalog changes reach this replica within the staleness bound".to_owned());
    }
    let dynamo = state.dynamo.list_tables().limit(1).send();
    if !matches!(tokio::time::timeout(limit, dynamo).await, Ok(Ok(_))) {
        return problem_response(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "Dependencies unreachable",
            Some(format!(
                "unreachable: dynamodb{}",
                degraded
                    .iter()
                    .map(|d| format!("; {d}"))
                    .collect::<String>()
            )),
            None,
        );
    }
    Json(json!({ "status": "ready", "degraded": degraded })).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi().to_pretty_json().unwrap_or_default(),
    )
        .into_response()
}
