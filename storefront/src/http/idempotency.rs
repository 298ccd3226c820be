//! `Idempotency-Key` replies: what a key records (the first request's fingerprint, status and
//! JSON body) and how a retry gets it again, marked `Idempotent-Replayed: true`.

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use serde_json::Value;

/// A stored response for an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
}

impl StoredResponse {
    /// The reply to record for a request with this fingerprint.
    pub fn new(fingerprint: &str, status: StatusCode, body: &impl Serialize) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            status: status.as_u16(),
            body: serde_json::to_value(body).unwrap_or(Value::Null),
        }
    }

    /// The response as first given.
    pub fn respond(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::CREATED);
        (status, Json(self.body)).into_response()
    }

    /// The response again, for a retry.
    pub fn replay(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let mut res = (status, Json(self.body)).into_response();
        res.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        res
    }
}

/// The `Idempotency-Key` header's text, if it has a readable one.
pub fn key_header(headers: &HeaderMap) -> Option<&str> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok())
}
