//! Orders: the shopper's history (`me/orders`) and detail (`orders/{id}`), and the merchant's
//! list, fulfil, cancel, refund and mark-paid (`admin/orders`).

use axum::{
    Json,
    extract::{Path, State},
};
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{Admin, ApiQuery, MaybeSignedIn, SignedIn, Tenant};
use crate::{
    app::AppState,
    commerce::commerce,
    domain::orders::{OrderEvent, OrderStatus, transition},
    error::{ApiError, ApiResult, Problem},
    payments::{PaymentProvider as _, Provider},
    storage::orders::{Applied, Order},
    tenants::TenantRuntime,
};

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

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

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn decode_cursor(raw: Option<&str>) -> ApiResult<Option<Uuid>> {
    raw.map(|c| {
        URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| Uuid::from_slice(&b).ok())
            .ok_or_else(|| ApiError::invalid("cursor", "is not a cursor this API returned"))
    })
    .transpose()
}

async fn page(
    tenant: &TenantRuntime,
    customer: Option<Uuid>,
    q: &ListQuery,
    status: Option<OrderStatus>,
) -> ApiResult<OrderPage> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let before = decode_cursor(q.cursor.as_deref())?;
    let orders = commerce(tenant)
        .list(customer, status, before, limit)
        .await?;
    let next_cursor = (orders.len() as i64 == limit)
        .then(|| {
            orders
                .last()
                .map(|o| URL_SAFE_NO_PAD.encode(o.id.as_bytes()))
        })
        .flatten();
    Ok(OrderPage {
        orders,
        next_cursor,
    })
}

fn order_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("order"))
}

#[utoipa::path(get, path = "/api/v1/me/orders", tag = "orders", security(("session" = [])),
    params(("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query)),
    responses((status = 200, body = OrderPage), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn my_orders(
    SignedIn { tenant, session }: SignedIn,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult<Json<OrderPage>> {
    if q.status.is_some() {
        return Err(ApiError::invalid("status", "is a merchant filter"));
    }
    Ok(Json(
        page(&tenant, Some(session.customer_id), &q, None).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let order = commerce(&tenant)
        .order(order_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    // A customer's order is theirs alone; a guest order is reachable by its (unguessable) id.
    if order.customer_id.is_some() && order.customer_id != session.map(|s| s.customer_id) {
        return Err(ApiError::NotFound("order"));
    }
    Ok(Json(order))
}

#[utoipa::path(get, path = "/api/v1/admin/orders", tag = "admin", security(("admin_key" = [])),
    params(("cursor" = Option<String>, Query), ("limit" = Option<i64>, Query), ("status" = Option<OrderStatus>, Query)),
    responses((status = 200, body = OrderPage), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn admin_list(
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
    Ok(Json(page(&tenant, None, &q, status).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/orders/{id}", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn admin_show(Admin(tenant): Admin, Path(id): Path<String>) -> ApiResult<Json<Order>> {
    commerce(&tenant)
        .order(order_id(&id)?)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("order"))
}

async fn apply(tenant: &TenantRuntime, id: &str, event: OrderEvent) -> ApiResult<Json<Order>> {
    match commerce(tenant).apply(order_id(id)?, event, None).await? {
        Applied::Done(order) => Ok(Json(*order)),
        Applied::Duplicate => Err(ApiError::Internal("duplicate without an event id".into())),
    }
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/fulfil", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "the order's state does not allow it")))]
pub async fn fulfil(Admin(tenant): Admin, Path(id): Path<String>) -> ApiResult<Json<Order>> {
    apply(&tenant, &id, OrderEvent::Fulfil).await
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/cancel", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "only unpaid orders can be cancelled; refund paid ones")))]
pub async fn cancel(Admin(tenant): Admin, Path(id): Path<String>) -> ApiResult<Json<Order>> {
    apply(&tenant, &id, OrderEvent::Cancel).await
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/mark-paid", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "not a manual-payment order, or not awaiting payment")))]
pub async fn mark_paid(Admin(tenant): Admin, Path(id): Path<String>) -> ApiResult<Json<Order>> {
    let order = commerce(&tenant)
        .order(order_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    if order.payment_provider != "manual" {
        return Err(ApiError::Conflict {
            field: Some("payment_provider".into()),
            detail: format!(
                "{} orders are marked paid by the provider's webhook",
                order.payment_provider
            ),
        });
    }
    apply(&tenant, &id, OrderEvent::PaymentSucceeded).await
}

#[utoipa::path(post, path = "/api/v1/admin/orders/{id}/refund", tag = "admin", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = Order), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "not paid, or the provider refused")))]
pub async fn refund(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let order = commerce(&tenant)
        .order(order_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("order"))?;
    // Refuse before moving money when the state machine would refuse anyway.
    transition(order.status, OrderEvent::Refund)
        .map_err(crate::storage::orders::TransitionError::from)?;
    let provider = Provider::for_tenant(&tenant.config.payments, &state.commerce.http)?;
    if order.payment_provider == provider.name() {
        provider
            .refund(order.id, order.payment_ref.as_deref())
            .await?;
    } else if order.payment_provider != "manual" {
        return Err(ApiError::Conflict {
            field: Some("payment_provider".into()),
            detail: "the order was paid through a provider this store no longer uses".into(),
        });
    }
    apply(&tenant, &id, OrderEvent::Refund).await
}

/// Checkout, orders, payments and inventory routes (nested under `/api/v1` by the router).
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post, put};

    use super::{checkout, inventory, payments};
    axum::Router::new()
        .route("/carts/{id}/checkout", post(checkout::checkout))
        .route("/me/orders", get(my_orders))
        .route("/orders/{id}", get(show))
        .route("/payments/webhook", post(payments::webhook))
        .route("/inventory/events", get(inventory::events))
        .route(
            "/admin/inventory/{sku}",
            put(inventory::set_stock).get(inventory::get_stock),
        )
        .route("/admin/orders", get(admin_list))
        .route("/admin/orders/{id}", get(admin_show))
        .route("/admin/orders/{id}/fulfil", post(fulfil))
        .route("/admin/orders/{id}/cancel", post(cancel))
        .route("/admin/orders/{id}/refund", post(refund))
        .route("/admin/orders/{id}/mark-paid", post(mark_paid))
}
