//! `carts`, `carts/{id}`, `carts/{id}/items`: guest and customer carts. Totals are always
//! computed by the carts service from the current catalog; a client never sends a price.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, MaybeSignedIn, Tenant},
};
pub use crate::services::carts::CartView;
use crate::{app::AppState, domain::cart, services::carts::CartError};

impl From<CartError> for ApiError {
    fn from(e: CartError) -> Self {
        match e {
            CartError::Write(w) => w.into(),
            CartError::Invalid(i) => ApiError::Invalid(i),
            CartError::Pricing(p) => p.into(),
            CartError::Store(s) => ApiError::Store(s),
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    /// 1 to 99; added to the line's quantity.
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: u32,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetQuantity {
    /// 1 to 99.
    #[schema(minimum = 1, maximum = 99)]
    pub quantity: u32,
}

fn cart_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("cart"))
}

#[utoipa::path(post, path = "/api/v1/carts", tag = "carts",
    responses((status = 201, body = CartView, description = "a new cart (owned when signed in)"),
              (status = 200, body = CartView, description = "the signed-in customer's existing cart"),
              (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
) -> ApiResult<Response> {
    let opened = state
        .carts(&tenant)
        .open(session.map(|s| s.customer_id))
        .await?;
    Ok(if opened.created {
        (StatusCode::CREATED, Json(opened.cart)).into_response()
    } else {
        Json(opened.cart).into_response()
    })
}

#[utoipa::path(get, path = "/api/v1/carts/{id}", tag = "carts", params(("id" = Uuid, Path)),
    responses((status = 200, body = CartView), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<CartView>> {
    let caller = session.map(|s| s.customer_id);
    let cart = state.carts(&tenant).show(cart_id(&id)?, caller).await?;
    Ok(Json(cart))
}

#[utoipa::path(post, path = "/api/v1/carts/{id}/items", tag = "carts", params(("id" = Uuid, Path)), request_body = AddItem,
    responses((status = 200, body = CartView), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn add_item(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AddItem>,
) -> ApiResult<Json<CartView>> {
    let id = cart_id(&id)?;
    let caller = session.map(|s| s.customer_id);
    let cart = state
        .carts(&tenant)
        .add_item(id, caller, &req.sku, req.quantity)
        .await?;
    Ok(Json(cart))
}

#[utoipa::path(put, path = "/api/v1/carts/{id}/items/{sku}", tag = "carts",
    params(("id" = Uuid, Path), ("sku" = String, Path)), request_body = SetQuantity,
    responses((status = 200, body = CartView), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn set_item(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path((id, sku)): Path<(String, String)>,
    ApiJson(req): ApiJson<SetQuantity>,
) -> ApiResult<Json<CartView>> {
    // A bad quantity is reported before a bad cart id or SKU.
    cart::check_quantity(req.quantity)?;
    let caller = session.map(|s| s.customer_id);
    let cart = state
        .carts(&tenant)
        .set_item(cart_id(&id)?, caller, &sku, req.quantity)
        .await?;
    Ok(Json(cart))
}

#[utoipa::path(delete, path = "/api/v1/carts/{id}/items/{sku}", tag = "carts",
    params(("id" = Uuid, Path), ("sku" = String, Path)),
    responses((status = 200, body = CartView), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn remove_item(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path((id, sku)): Path<(String, String)>,
) -> ApiResult<Json<CartView>> {
    let caller = session.map(|s| s.customer_id);
    let cart = state
        .carts(&tenant)
        .remove_item(cart_id(&id)?, caller, &sku)
        .await?;
    Ok(Json(cart))
}
