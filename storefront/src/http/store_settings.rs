//! The merchant's store settings (`admin/shipping`), what shoppers see of them
//! (`carts/{id}/shipping-options`), and a signed-in customer's address book (`me/addresses`).

use axum::{
    Json,
    extract::{Path, State},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    admin_auth::{Admin, perm},
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, MaybeSignedIn, SignedIn, Tenant},
};
use crate::{
    app::AppState,
    domain::{
        promotions::{Promotion, PromotionDraft},
        shipping::{Address, AddressBook, ShippingOption, ShippingSettings},
        totals::TaxSettings,
    },
    services::store_settings::SettingsError,
};

impl From<SettingsError> for ApiError {
    fn from(e: SettingsError) -> Self {
        match e {
            SettingsError::Invalid(i) => ApiError::Invalid(i),
            SettingsError::Store(s) => ApiError::Store(s),
        }
    }
}

#[utoipa::path(get, path = "/api/v1/admin/shipping", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = ShippingSettings), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn show_shipping(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
) -> ApiResult<Json<ShippingSettings>> {
    Ok(Json(state.store_settings(&tenant).shipping().await?))
}

#[utoipa::path(put, path = "/api/v1/admin/shipping", tag = "admin", security(("admin_key" = [])),
    request_body = ShippingSettings,
    responses((status = 200, body = ShippingSettings), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "a zone or method is invalid (named)")))]
pub async fn set_shipping(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
    ApiJson(settings): ApiJson<ShippingSettings>,
) -> ApiResult<Json<ShippingSettings>> {
    Ok(Json(
        state.store_settings(&tenant).set_shipping(settings).await?,
    ))
}

/// Where the cart would go; the methods depend on the country and region only.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DestinationQuery {
    /// ISO 3166-1 alpha-2, e.g. `DE`.
    pub country: String,
    /// ISO 3166-2 subdivision part, e.g. `BY`.
    pub region: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/carts/{id}/shipping-options", tag = "carts",
    params(("id" = Uuid, Path), DestinationQuery),
    responses((status = 200, body = Vec<ShippingOption>, description = "priced for this cart; empty when nothing in it ships or the store does not ship there"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn shipping_options(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    MaybeSignedIn(session): MaybeSignedIn,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DestinationQuery>,
) -> ApiResult<Json<Vec<ShippingOption>>> {
    let cart = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("cart"))?;
    // Only the destination matters for rates; the rest of an address is not asked for here.
    let destination = Address {
        name: "-".into(),
        line1: "-".into(),
        line2: None,
        city: "-".into(),
        postal_code: None,
        region: q.region.filter(|r| !r.is_empty()),
        country: q.country,
        phone: None,
    };
    destination.validate("").map_err(|mut i| {
        i.field = i.field.trim_start_matches('.').to_owned();
        ApiError::Invalid(i)
    })?;
    let options = state
        .checkout(&tenant)
        .shipping_options(cart, session.map(|s| s.customer_id), &destination)
        .await?;
    Ok(Json(options))
}

#[utoipa::path(get, path = "/api/v1/me/addresses", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = AddressBook), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn show_address_book(
    State(state): State<AppState>,
    SignedIn { tenant, session }: SignedIn,
) -> ApiResult<Json<AddressBook>> {
    Ok(Json(
        state
            .store_settings(&tenant)
            .address_book(session.customer_id)
            .await?,
    ))
}

#[utoipa::path(put, path = "/api/v1/me/addresses", tag = "accounts", security(("session" = [])),
    request_body = AddressBook,
    responses((status = 200, body = AddressBook), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "an address is invalid (named), or more than 20")))]
pub async fn set_address_book(
    State(state): State<AppState>,
    SignedIn { tenant, session }: SignedIn,
    ApiJson(book): ApiJson<AddressBook>,
) -> ApiResult<Json<AddressBook>> {
    Ok(Json(
        state
            .store_settings(&tenant)
            .set_address_book(session.customer_id, book)
            .await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/admin/tax", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = TaxSettings), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn show_tax(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
) -> ApiResult<Json<TaxSettings>> {
    Ok(Json(state.store_settings(&tenant).tax().await?))
}

#[utoipa::path(put, path = "/api/v1/admin/tax", tag = "admin", security(("admin_key" = [])),
    request_body = TaxSettings,
    responses((status = 200, body = TaxSettings), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "a rate is invalid or repeated (named)")))]
pub async fn set_tax(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
    ApiJson(settings): ApiJson<TaxSettings>,
) -> ApiResult<Json<TaxSettings>> {
    Ok(Json(state.store_settings(&tenant).set_tax(settings).await?))
}

#[utoipa::path(get, path = "/api/v1/admin/promotions", tag = "admin", security(("admin_key" = [])),
    responses((status = 200, body = Vec<Promotion>), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn list_promotions(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
) -> ApiResult<Json<Vec<Promotion>>> {
    Ok(Json(state.store_settings(&tenant).promotions().await?))
}

#[utoipa::path(put, path = "/api/v1/admin/promotions/{code}", tag = "admin", security(("admin_key" = [])),
    params(("code" = String, Path, description = "3-40 letters, digits, - or _; case-insensitive")),
    request_body = PromotionDraft,
    responses((status = 200, body = Promotion), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "the code or a field is invalid (named)")))]
pub async fn set_promotion(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Settings>,
    Path(code): Path<String>,
    ApiJson(draft): ApiJson<PromotionDraft>,
) -> ApiResult<Json<Promotion>> {
    Ok(Json(
        state
            .store_settings(&tenant)
            .set_promotion(&code, draft)
            .await?,
    ))
}
