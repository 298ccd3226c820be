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
    /// `pi_...` for PaymentIntent events, `cs_...` for Checkout Sessions.
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
    /// A Checkout Session's PaymentIntent.
    #[serde(default)]
    payment_intent: Option<String>,
    /// A Checkout Session's `paid`, `unpaid` or `no_payment_required`.
    #[serde(default)]
    payment_status: Option<String>,
}

impl EventObject {
    /// The PaymentIntent the event is about.
    fn intent(&self) -> Option<&str> {
        self.payment_intent
            .as_deref()
            .or(self.id.as_deref().filter(|id| id.starts_with("pi_")))
    }
}

/// What a Stripe event means for its order. A Checkout Session completes paid for cards, or
/// unpaid for delayed methods (then `async_payment_succeeded` follows).
fn order_event(kind: &str, object: &EventObject) -> Option<OrderEvent> {
    match kind {
        "payment_intent.succeeded" | "checkout.session.async_payment_succeeded" => {
            Some(OrderEvent::PaymentSucceeded)
        }
        "checkout.session.completed" if object.payment_status.as_deref() == Some("paid") => {
            Some(OrderEvent::PaymentSucceeded)
        }
        "payment_intent.payment_failed" | "checkout.session.async_payment_failed" => {
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
    responses((status = 200, description = "`{received, outcome}`: the order's new status, `duplicate`, `ignored`, `not_applicable`, `unknown_order` or `late_payment_refunded`"),
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
    let target = order_event(&event.kind, &event.data.object).zip(
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
        payment_ref: event.data.object.intent(),
    };
    // A store or refund failure is a 5xx: Stripe redelivers later.
    let provider = || crate::payments::Provider::for_tenant(payments, &state.payments_http);
    let outcome = state
        .orders(&tenant)
        .apply_payment(tenant.id(), notice, provider)
        .await?;
    Ok(received(outcome.as_str()))
}
