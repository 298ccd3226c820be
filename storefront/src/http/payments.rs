//! `payments/webhook`: Stripe events. The signature is checked over the raw body with the
//! tenant's webhook secret (and a timestamp tolerance); each event id is handled once, in the
//! same transaction as the order change it causes.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult, Problem, problem_response},
    extract::Tenant,
};
use crate::{
    app::AppState, domain::orders::OrderEvent, payments::stripe::verify_signature,
    services::orders::PaymentNotice,
};
use emporium_tenant_config::PaymentProvider;

#[derive(Debug, Deserialize)]
struct StripeEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: EventData,
}

#[derive(Debug, Deserialize)]
struct EventData {
    object: EventObject,
}

#[derive(Debug, Deserialize)]
struct EventObject {
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

fn order_event(kind: &str) -> Option<OrderEvent> {
    match kind {
        "payment_intent.succeeded" => Some(OrderEvent::PaymentSucceeded),
        "payment_intent.payment_failed" | "payment_intent.canceled" => {
            Some(OrderEvent::PaymentFailed)
        }
        _ => None,
    }
}

fn received(outcome: &str) -> Response {
    (
        StatusCode::OK,
        Json(json!({ "received": true, "outcome": outcome })),
    )
        .into_response()
}

#[utoipa::path(post, path = "/api/v1/payments/webhook", tag = "orders",
    params(("Stripe-Signature" = String, Header)),
    request_body(content = String, description = "a Stripe event, as Stripe sent it"),
    responses((status = 200, description = "handled, duplicate or ignored"),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "bad, missing or expired signature"),
              (status = 404, body = Problem, content_type = "application/problem+json", description = "this store does not take Stripe payments")))]
pub async fn webhook(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let payments = &tenant.config.payments;
    let secret = match (payments.provider, payments.webhook_secret.as_deref()) {
        (PaymentProvider::Stripe, Some(s)) if !s.is_empty() => s,
        _ => return Err(ApiError::NotFound("payment webhook")),
    };
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    if let Err(e) = verify_signature(signature, &body, secret, chrono::Utc::now().timestamp()) {
        return Ok(problem_response(
            StatusCode::BAD_REQUEST,
            "bad-signature",
            "The webhook signature does not verify",
            Some(e.to_string()),
            Some("Stripe-Signature".into()),
        ));
    }
    let event: StripeEvent =
        serde_json::from_slice(&body).map_err(|e| ApiError::MalformedBody {
            field: None,
            detail: format!("not a Stripe event: {e}"),
        })?;
    let target = order_event(&event.kind).zip(
        event
            .data
            .object
            .metadata
            .get("order_id")
            .and_then(|s| Uuid::parse_str(s).ok()),
    );
    let notice = PaymentNotice {
        event_id: &event.id,
        kind: &event.kind,
        target,
    };
    // A store failure is a 503: Stripe redelivers later.
    let outcome = state
        .orders(&tenant)
        .apply_payment(tenant.id(), notice)
        .await?;
    Ok(received(outcome.as_str()))
}
