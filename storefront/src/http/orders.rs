//! Orders: the shopper's history (`me/orders`) and detail (`orders/{id}`), and the merchant's
//! list, fulfil, cancel, refund and mark-paid (`admin/orders`).

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult, Problem},
    extract::{Admin, ApiQuery, MaybeSignedIn, SignedIn, Tenant},
};
pub use crate::services::orders::OrderPage;
use crate::{
    app::AppState,
    domain::orders::{Order, OrderEvent, OrderStatus},
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
    Admin(tenant): Admin,
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
    Admin(tenant): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    Ok(Json(state.orders(&tenant).get(order_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/fulfil", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "the order's state does not allow it")))]
pub async fn fulfil(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let order = state
        .orders(&tenant)
        .apply(order_id(&id)?, OrderEvent::Fulfil)
        .await?;
    Ok(Json(order))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/cancel", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "only unpaid orders can be cancelled; refund paid ones")))]
pub async fn cancel(
    State(state): State<AppState>,
    Admin(tenant): Admin,
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
    Admin(tenant): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    Ok(Json(state.orders(&tenant).mark_paid(order_id(&id)?).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refund", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "not paid, or the provider refused")))]
pub async fn refund(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let provider = || Provider::for_tenant(&tenant.config.payments, &state.payments_http);
    let order = state
        .orders(&tenant)
        .refund(order_id(&id)?, provider)
        .await?;
    Ok(Json(order))
}
