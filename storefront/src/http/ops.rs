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

use crate::{app::AppState, error::problem_response, openapi::ApiDoc};

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: every PostgreSQL database in use, Redis and DynamoDB answer within 2 s.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let limit = Duration::from_secs(2);
    let mut failed = Vec::new();
    for db in state.tenants.databases() {
        if !matches!(tokio::time::timeout(limit, db.ping()).await, Ok(Ok(()))) {
            failed.push("postgres");
        }
    }
    let mut redis = state.bus.connection();
    if !matches!(
        tokio::time::timeout(limit, redis.ping::<String>()).await,
        Ok(Ok(_))
    ) {
        failed.push("redis");
    }
    let dynamo = state.dynamo.list_tables().limit(1).send();
    if !matches!(tokio::time::timeout(limit, dynamo).await, Ok(Ok(_))) {
        failed.push("dynamodb");
    }
    if failed.is_empty() {
        return Json(json!({ "status": "ready" })).into_response();
    }
    failed.dedup();
    problem_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-ready",
        "Dependencies unreachable",
        Some(format!("unreachable: {}", failed.join(", "))),
        None,
    )
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
