//! `carts/{id}/checkout`: turns a cart into an order in `pending_payment`, priced from the
//! catalog at this instant, with its stock reserved and its payment started. Requires an
//! `Idempotency-Key`: a retry with the same key and body gets the first response again.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::extract::{MaybeSignedIn, Tenant, parse_json};
use crate::{
    app::AppState,
    commerce::commerce,
    domain::{
        inventory::{check_idempotency_key, checkout_fingerprint, reservation_expiry},
        ports::CartStore as _,
        pricing::{self, Money},
    },
    error::{ApiError, ApiResult, Problem},
    payments::{PaymentError, PaymentProvider as _, Provider},
    storage::orders::{
        CheckoutError, CheckoutOutcome, NewOrder, Order, OrderLine, TransitionError,
    },
};

/// Optional checkout details.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// Where the receipt goes (guests); at most 254 characters.
    #[serde(default)]
    pub email: Option<String>,
}

/// How the shopper pays for the order.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    /// `manual` or `stripe`.
    pub provider: String,
    /// The provider's payment id (a Stripe PaymentIntent id).
    pub reference: Option<String>,
    /// For Stripe.js to confirm the payment in the browser.
    pub client_secret: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckoutResponse {
    pub order: Order,
    pub payment: PaymentView,
}

impl From<CheckoutError> for ApiError {
    fn from(e: CheckoutError) -> Self {
        match e {
            CheckoutError::OutOfStock { sku } => ApiError::Conflict {
                field: Some("sku".into()),
                detail: format!("not enough stock of `{sku}`"),
            },
            CheckoutError::KeyReused => ApiError::invalid(
                "Idempotency-Key",
                "was already used with a different request",
            ),
            CheckoutError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        match e {
            TransitionError::NotFound => ApiError::NotFound("order"),
            TransitionError::Illegal(i) => ApiError::Conflict {
                field: Some("status".into()),
                detail: i.to_string(),
            },
            TransitionError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(e: PaymentError) -> Self {
        match e {
            PaymentError::Refused(m) => ApiError::Conflict {
                field: Some("payment".into()),
                detail: m,
            },
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn replay(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut res = (status, Json(body)).into_response();
    res.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    res
}

#[utoipa::path(post, path = "/api/v1/carts/{id}/checkout", tag = "orders",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "required; a retry with the same key and body replays the first response")),
    request_body(content = Option<CheckoutRequest>),
    responses((status = 201, body = CheckoutResponse),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "a SKU is out of stock or no longer sold (named in the problem)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "missing Idempotency-Key, key reused with another body, empty cart")))]
pub async fn checkout(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = check_idempotency_key(headers.get("idempotency-key").and_then(|v| v.to_str().ok()))?
        .to_owned();
    let cart_id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("cart"))?;
    let req: CheckoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CheckoutRequest::default()
    } else {
        parse_json(&body)?
    };
    if let Some(email) = &req.email {
        crate::domain::check_len("email", email, 3, 254)?;
        if !email.contains('@') {
            return Err(ApiError::invalid("email", "must be an email address"));
        }
    }
    // Fingerprint the parsed request, so whitespace or key order do not make it "different".
    let canonical = serde_json::to_vec(&req).map_err(|e| ApiError::Internal(e.to_string()))?;
    let fingerprint = checkout_fingerprint(&cart_id, &canonical);
    let store = commerce(&tenant);

    if let Some(stored) = store.idempotent_response(&key).await? {
        if stored.fingerprint != fingerprint {
            return Err(CheckoutError::KeyReused.into());
        }
        return Ok(replay(stored.status, stored.body));
    }

    let cart = tenant
        .carts
        .get(cart_id)
        .await?
        .ok_or(ApiError::NotFound("cart"))?;
    let customer = session.map(|s| s.customer_id);
    if cart.owner.is_some() && cart.owner != customer {
        return Err(ApiError::Forbidden);
    }
    if cart.lines.is_empty() {
        return Err(ApiError::invalid("cart", "is empty"));
    }

    // Prices from the catalog as it is now; the order keeps them whatever happens later.
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    let mut lines = Vec::with_capacity(cart.lines.len());
    for (sku, qty) in &cart.lines {
        let variant = snap
            .catalog
            .variant(sku)
            .ok_or_else(|| ApiError::Conflict {
                field: Some("sku".into()),
                detail: format!("`{sku}` is no longer sold"),
            })?;
        lines.push(OrderLine {
            sku: sku.clone(),
            product_id: variant.item.id,
            title: variant.item.title(),
            quantity: i32::try_from(*qty)
                .map_err(|_| ApiError::invalid("quantity", "too large"))?,
            unit_price: variant.price(),
        });
    }
    let line_totals = lines
        .iter()
        .map(|l| pricing::line_total(&l.unit_price, l.quantity.unsigned_abs()))
        .collect::<Result<Vec<Money>, _>>()?;
    let total = pricing::sum(&line_totals)?.ok_or_else(|| ApiError::invalid("cart", "is empty"))?;

    let order_id = Uuid::now_v7();
    let provider = Provider::for_tenant(&tenant.config.payments, &state.commerce.http)?;
    // The payment starts before the order's transaction (a network call must not hold row
    // locks); if the transaction then fails, the unconfirmed intent is simply never paid.
    let payment = provider
        .start(order_id, &total, &format!("order-{order_id}"))
        .await?;
    let new = NewOrder {
        id: order_id,
        customer_id: customer,
        cart_id,
        email: req.email.clone(),
        lines,
        total,
        payment_provider: provider.name().to_owned(),
        payment_ref: payment.reference.clone(),
        reserved_until: reservation_expiry(Utc::now(), state.settings.reservation_ttl),
    };
    let respond = |order: &Order| {
        let body = CheckoutResponse {
            order: order.clone(),
            payment: PaymentView {
                provider: provider.name().to_owned(),
                reference: payment.reference.clone(),
                client_secret: payment.client_secret.clone(),
            },
        };
        (201, serde_json::to_value(body).unwrap_or(Value::Null))
    };
    match store.checkout(&key, &fingerprint, new, respond).await? {
        CheckoutOutcome::Created { status, body, .. } => Ok((
            StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
            Json(body),
        )
            .into_response()),
        CheckoutOutcome::Replayed(stored) => Ok(replay(stored.status, stored.body)),
    }
}
