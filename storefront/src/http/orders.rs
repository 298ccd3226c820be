//! Orders: the shopper's history (`me/orders`) and detail (`orders/{id}`), and the merchant's
//! list, fulfil (with carrier and tracking number), cancel, refund (whole, or chosen lines or
//! an amount with a reason) and mark-paid (`admin/orders`).

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::HeaderMap,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    admin_auth::{Admin, perm},
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, MaybeSignedIn, SignedIn, Tenant, parse_json},
    idempotency::key_header,
};
pub use crate::services::orders::OrderPage;
use crate::{
    app::AppState,
    domain::{
        inventory::check_idempotency_key,
        orders::{Fulfilment, Order, OrderStatus, RefundError, RefundRequest},
    },
    payments::Provider,
    services::orders::OrderError,
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<i64>,
    /// Only orders in this state (merchant list only).
    pub status: Option<String>,
}

impl From<OrderError> for ApiError {
    fn from(e: OrderError) -> Self {
        match e {
            OrderError::NotFound => ApiError::NotFound("order"),
            OrderError::Invalid(i) => ApiError::Invalid(i),
            OrderError::Transition(t) => t.into(),
            e @ OrderError::PaidByProvider { .. } => ApiError::Conflict {
                field: Some("payment_provider".into()),
                detail: e.to_string(),
            },
            e @ OrderError::ProviderGone => ApiError::Conflict {
                field: Some("payment_provider".into()),
                detail: e.to_string(),
            },
            OrderError::Payment(p) => p.into(),
            OrderError::Refund(r) => match r {
                RefundError::NotFound => ApiError::NotFound("order"),
                RefundError::Illegal(i) => ApiError::Conflict {
                    field: Some("status".into()),
                    detail: i.to_string(),
                },
                e @ RefundError::TooMuch { .. } => ApiError::Conflict {
                    field: Some("amount".into()),
                    detail: e.to_string(),
                },
                RefundError::Store(s) => ApiError::Store(s),
            },
            e @ OrderError::Duplicate => ApiError::Internal(e.to_string()),
            OrderError::Store(s) => ApiError::Store(s),
        }
    }
}

fn order_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("order"))
}

#[utoipa::path(get, path = "/api/v1/me/orders", tag = "orders", security(("session" = [])),
    params(("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = OrderPage), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn my_orders(
    State(state): State<AppState>,
    SignedIn { tenant, session }: SignedIn,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<OrderPage>> {
    if q.status.is_some() {
        return Err(ApiError::invalid("status", "is a merchant filter"));
    }
    let page = state
        .orders(&tenant)
        .page(
            Some(session.customer_id),
            None,
            q.cursor.as_deref(),
            q.limit,
        )
        .await?;
    Ok(Json(page))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let caller = session.map(|s| s.customer_id);
    let order = state
        .orders(&tenant)
        .for_shopper(order_id(&id)?, caller)
        .await?;
    Ok(Json(order))
}

#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "admin", security(("admin_key" = [])),
    params(("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query), ("status" = Option<OrderStatus>, Query)),
    responses((status = 200, body = OrderPage), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn admin_list(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Orders>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<OrderPage>> {
    let status = q
        .status
        .as_deref()
        .map(|s| {
            OrderStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "is not an order status"))
        })
        .transpose()?;
    let page = state
        .orders(&tenant)
        .page(None, status, q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Json(page))
}

#[utoipa::path(get, path = "/api/v1/admin/orders/{id}", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn admin_show(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Orders>,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    Ok(Json(state.orders(&tenant).get(order_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/fulfil", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    request_body(content = Option<Fulfilment>, description = "optional: carrier and tracking number, shown to the shopper"),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "the order's state does not allow it"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn fulfil(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Orders>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    let fulfilment = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(parse_json::<Fulfilment>(&body)?)
    };
    Ok(Json(state.orders(&tenant).fulfil(id, fulfilment).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refunds", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = String, Header, description = "required; a retry with the same key refunds nothing twice")),
    request_body = RefundRequest,
    responses((status = 200, body = Order, description = "the order with its refunds; `refunded` once the whole total is back"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "not paid, more than is left (another refund took it), or the provider refused"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "a line, quantity, amount or reason is invalid (named)")))]
pub async fn refund_part(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Refunds>,
    Path(id): Path<String>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<RefundRequest>,
) -> ApiResult<Json<Order>> {
    let key = check_idempotency_key(key_header(&headers))?;
    let provider = || Provider::for_tenant(&tenant.config.payments, &state.payments_http);
    let order = state
        .orders(&tenant)
        .refund_part(order_id(&id)?, key, req, provider)
        .await?;
    Ok(Json(order))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/cancel", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "only unpaid orders can be cancelled; refund paid ones")))]
pub async fn cancel(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Orders>,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let provider = || Provider::for_tenant(&tenant.config.payments, &state.payments_http);
    let order = state
        .orders(&tenant)
        .cancel(order_id(&id)?, provider)
        .await?;
    Ok(Json(order))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/mark-paid", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "not a manual-payment order, or not awaiting payment")))]
pub async fn mark_paid(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Orders>,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    Ok(Json(state.orders(&tenant).mark_paid(order_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refund", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "not paid, or the provider refused")))]
pub async fn refund(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Refunds>,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let provider = || Provider::for_tenant(&tenant.config.payments, &state.payments_http);
    let order = state
        .orders(&tenant)
        .refund(order_id(&id)?, provider)
        .await?;
    Ok(Json(order))
}
