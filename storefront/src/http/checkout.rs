//! `carts/{id}/checkout`: turns a cart into an order in `pending_payment`, priced from the
//! catalog at this instant, with its stock reserved and its payment started. Requires an
//! `Idempotency-Key`: a retry with the same key and body gets the first response again.

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult, Problem},
    extract::{MaybeSignedIn, Tenant, parse_json},
    idempotency::{StoredResponse, key_header},
};
pub use crate::services::checkout::{CheckoutRequest, CheckoutResponse, PaymentView};
use crate::{
    app::AppState,
    domain::{
        inventory::check_idempotency_key,
        orders::{CheckoutError, TransitionError},
        promotions::CodeRefused,
    },
    ops::metrics::OutcomeLabels,
    payments::PaymentError,
    services::checkout::{PlaceOrderError, Placed},
};

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
            CheckoutError::CartCheckedOut { order_id } => ApiError::CartCheckedOut { order_id },
            CheckoutError::Code(refused) => refused.into(),
            CheckoutError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<CodeRefused> for ApiError {
    fn from(e: CodeRefused) -> Self {
        match e {
            // Others redeemed it first: the request was fine, the code's state is not.
            CodeRefused::UsedUp | CodeRefused::UsedByCustomer => ApiError::Conflict {
                field: Some("discount_code".into()),
                detail: e.to_string(),
            },
            other => ApiError::invalid("discount_code", other.to_string()),
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

impl From<PlaceOrderError> for ApiError {
    fn from(e: PlaceOrderError) -> Self {
        match e {
            PlaceOrderError::CartNotFound => ApiError::NotFound("cart"),
            PlaceOrderError::NotOwner => ApiError::Forbidden,
            PlaceOrderError::EmptyCart => ApiError::invalid("cart", "is empty"),
            PlaceOrderError::NoLongerSold { sku } => ApiError::Conflict {
                field: Some("sku".into()),
                detail: format!("`{sku}` is no longer sold"),
            },
            PlaceOrderError::Invalid(i) => ApiError::Invalid(i),
            PlaceOrderError::Code(refused) => refused.into(),
            PlaceOrderError::Pricing(e) => e.into(),
            PlaceOrderError::Payment(e) => e.into(),
            PlaceOrderError::Checkout(e) => e.into(),
            PlaceOrderError::Store(e) => ApiError::Store(e),
        }
    }
}

/// The `outcome` label of a checkout's result.
fn outcome<R>(placed: &Result<Placed<R>, PlaceOrderError>) -> &'static str {
    match placed {
        Ok(Placed::New { .. }) => "placed",
        Ok(Placed::Replayed(_)) => "replayed",
        Err(PlaceOrderError::Checkout(CheckoutError::OutOfStock { .. })) => "out_of_stock",
        Err(PlaceOrderError::Payment(PaymentError::Refused(_))) => "payment_refused",
        Err(
            PlaceOrderError::Store(_)
            | PlaceOrderError::Payment(_)
            | PlaceOrderError::Checkout(CheckoutError::Store(_)),
        ) => "failed",
        Err(_) => "refused",
    }
}

/// The reply a checkout records under its key: `201` and the checkout's answer.
pub fn recorded_reply(fingerprint: &str, answer: &CheckoutResponse) -> StoredResponse {
    StoredResponse::new(fingerprint, StatusCode::CREATED, answer)
}

#[utoipa::path(post, path = "/api/v1/carts/{id}/checkout", tag = "orders",
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "required; a retry with the same key and body replays the first response")),
    request_body(content = Option<CheckoutRequest>),
    responses((status = 201, body = CheckoutResponse),
              (status = 400, body = Problem, content_type = "application/problem+json", description = "the body is not one JSON object (`field`: `body`)"),
              (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "a SKU is out of stock or no longer sold (named in the problem), or the cart was already checked out under another key (type `cart-checked-out`, `order_id` names the order)"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "missing Idempotency-Key, key reused with another body, empty cart")))]
pub async fn checkout(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let key = check_idempotency_key(key_header(&headers))?;
    let cart_id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("cart"))?;
    let req: CheckoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CheckoutRequest::default()
    } else {
        parse_json(&body)?
    };
    let customer = session.map(|s| s.customer_id);
    let placed = state
        .checkout(&tenant)
        .place(key, cart_id, customer, req, recorded_reply)
        .await;
    state
        .metrics
        .checkouts
        .get_or_create(&OutcomeLabels {
            outcome: outcome(&placed),
        })
        .inc();
    match placed? {
        Placed::New { reply, .. } => Ok(reply.respond()),
        Placed::Replayed(stored) => Ok(stored.replay()),
    }
}
