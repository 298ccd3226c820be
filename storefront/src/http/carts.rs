//! `carts`, `carts/{id}`, `carts/{id}/items`: guest and customer carts. Totals are always
//! computed here from the current catalog; a client never sends a price.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{ApiJson, MaybeSignedIn, Tenant};
use crate::{
    app::AppState,
    catalog::Snapshot,
    domain::{
        cart::{self, CurrentPrice, PricedLine},
        catalog::is_sku,
        ports::{CartStore as _, CartWriteError, StoredCart},
        pricing::{Money, PricingError},
    },
    error::{ApiError, ApiResult, Problem},
    tenants::TenantRuntime,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CartView {
    pub id: Uuid,
    /// True when the cart belongs to a signed-in customer.
    pub owned: bool,
    pub lines: Vec<PricedLine>,
    pub item_count: u32,
    /// Sum of the available lines at current prices; absent for an empty cart.
    pub total: Option<Money>,
    pub expires_at: DateTime<Utc>,
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

fn price(snap: &Snapshot, cart: &StoredCart) -> Result<CartView, PricingError> {
    let lookup = |sku: &str| {
        snap.catalog.variant(sku).map(|v| CurrentPrice {
            product_id: v.item.id,
            title: v.item.title(),
            unit_price: v.price(),
        })
    };
    let (lines, total) = cart::price_lines(&cart.lines, lookup)?;
    Ok(CartView {
        id: cart.id,
        owned: cart.owner.is_some(),
        item_count: lines.iter().map(|l| l.quantity).sum(),
        lines,
        total,
        expires_at: cart.expires_at,
    })
}

async fn view(state: &AppState, tenant: &TenantRuntime, cart: &StoredCart) -> ApiResult<CartView> {
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    Ok(price(&snap, cart)?)
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
    let owner = session.map(|s| s.customer_id);
    if let Some(customer) = owner
        && let Some(id) = tenant.carts.customer_cart(customer).await?
        && let Some(cart) = tenant.carts.get(id).await?
    {
        return Ok(Json(view(&state, &tenant, &cart).await?).into_response());
    }
    let cart = tenant.carts.create(Uuid::new_v4(), owner).await?;
    if let Some(customer) = owner {
        tenant.carts.set_customer_cart(customer, cart.id).await?;
    }
    Ok((
        StatusCode::CREATED,
        Json(view(&state, &tenant, &cart).await?),
    )
        .into_response())
}

#[utoipa::path(get, path = "/api/v1/carts/{id}", tag = "carts", params(("id" = Uuid, Path)),
    responses((status = 200, body = CartView), (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
) -> ApiResult<Json<CartView>> {
    let cart = tenant
        .carts
        .get(cart_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("cart"))?;
    if cart.owner.is_some() && cart.owner != session.map(|s| s.customer_id) {
        return Err(ApiError::Forbidden);
    }
    Ok(Json(view(&state, &tenant, &cart).await?))
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
    cart::check_quantity(req.quantity)?;
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    if !is_sku(&req.sku) || snap.catalog.variant(&req.sku).is_none() {
        return Err(ApiError::invalid("sku", "no product sells this SKU"));
    }
    let caller = session.map(|s| s.customer_id);
    let cart = tenant
        .carts
        .add_line(id, caller, &req.sku, req.quantity)
        .await?;
    match price(&snap, &cart) {
        Ok(v) => Ok(Json(v)),
        Err(PricingError::MixedCurrency(..)) => {
            // Undo: a cart holds one currency.
            let before = cart
                .lines
                .get(&req.sku)
                .copied()
                .unwrap_or(0)
                .saturating_sub(req.quantity);
            let undo = if before == 0 {
                tenant.carts.remove_line(id, caller, &req.sku).await
            } else {
                tenant.carts.set_line(id, caller, &req.sku, before).await
            };
            undo.map_err(ApiError::from)?;
            Err(ApiError::invalid(
                "sku",
                "is priced in another currency than the cart",
            ))
        }
        Err(e) => Err(e.into()),
    }
}

fn sku_param(raw: &str) -> ApiResult<&str> {
    if is_sku(raw) {
        Ok(raw)
    } else {
        Err(ApiError::NotFound("cart line"))
    }
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
    cart::check_quantity(req.quantity)?;
    let cart = tenant
        .carts
        .set_line(
            cart_id(&id)?,
            session.map(|s| s.customer_id),
            sku_param(&sku)?,
            req.quantity,
        )
        .await?;
    Ok(Json(view(&state, &tenant, &cart).await?))
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
    let cart = tenant
        .carts
        .remove_line(
            cart_id(&id)?,
            session.map(|s| s.customer_id),
            sku_param(&sku)?,
        )
        .await?;
    Ok(Json(view(&state, &tenant, &cart).await?))
}

/// At login: merges the guest cart into the customer's cart (or adopts it when they have none)
/// and returns the customer's cart id.
pub(crate) async fn adopt_on_login(
    _state: &AppState,
    tenant: &TenantRuntime,
    customer: Uuid,
    guest_cart: Option<Uuid>,
) -> Result<Option<Uuid>, CartWriteError> {
    let carts = &tenant.carts;
    let own = match carts.customer_cart(customer).await? {
        Some(id) => carts.get(id).await?,
        None => None,
    };
    let guest = match guest_cart {
        Some(id) => carts
            .get(id)
            .await?
            .filter(|g| g.owner.is_none_or(|o| o == customer)),
        None => None,
    };
    match (own, guest) {
        (Some(mut own), Some(guest)) if own.id != guest.id => {
            own.lines = cart::merge(&own.lines, &guest.lines);
            carts.replace(&own).await?;
            carts.delete(guest.id).await?;
            Ok(Some(own.id))
        }
        (Some(own), _) => Ok(Some(own.id)),
        (None, Some(mut guest)) => {
            guest.owner = Some(customer);
            carts.replace(&guest).await?;
            carts.set_customer_cart(customer, guest.id).await?;
            Ok(Some(guest.id))
        }
        (None, None) => Ok(None),
    }
}
