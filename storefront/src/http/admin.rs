//! Merchant admin API (`admin/products`, `admin/categories`), authenticated by the tenant's
//! admin key. The writes and their effects on the catalog's replicas are the catalog admin
//! service's ([`crate::services::catalog_admin`]).

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    admin_auth::{Admin, perm},
    error::{ApiError, ApiResult, Problem},
    extract::ApiJson,
};
use crate::{
    app::AppState,
    domain::catalog::{Category, CategoryDraft, Product, ProductDraft},
    services::catalog_admin::CatalogAdminError,
};

impl From<CatalogAdminError> for ApiError {
    fn from(e: CatalogAdminError) -> Self {
        match e {
            CatalogAdminError::NotFound(what) => ApiError::NotFound(what),
            CatalogAdminError::Invalid(i) => ApiError::Invalid(i),
            e @ CatalogAdminError::CategoryExists { .. } => ApiError::Conflict {
                field: Some("id".into()),
                detail: e.to_string(),
            },
            e @ CatalogAdminError::CategoryInUse { .. } => ApiError::Conflict {
                field: None,
                detail: e.to_string(),
            },
            CatalogAdminError::Store(s) => ApiError::Store(s),
        }
    }
}

fn product_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("product"))
}

#[utoipa::path(post, path = "/api/v1/admin/products", tag = "admin", security(("admin_key" = [])), request_body = ProductDraft,
    responses((status = 201, body = Product), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_product(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    ApiJson(draft): ApiJson<ProductDraft>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    let product = state.catalog_admin(&tenant).create_product(draft).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

#[utoipa::path(put, path = "/api/v1/admin/products/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path)), request_body = ProductDraft,
    responses((status = 200, body = Product), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_product(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    Path(id): Path<String>,
    ApiJson(draft): ApiJson<ProductDraft>,
) -> ApiResult<Json<Product>> {
    let id = product_id(&id)?;
    let product = state
        .catalog_admin(&tenant)
        .replace_product(id, draft)
        .await?;
    Ok(Json(product))
}

#[utoipa::path(delete, path = "/api/v1/admin/products/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_product(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = product_id(&id)?;
    state.catalog_admin(&tenant).delete_product(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A category's fields other than its id (which the path names).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryFields {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/admin/categories", tag = "admin", security(("admin_key" = [])), request_body = CategoryDraft,
    responses((status = 201, body = Category), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_category(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    ApiJson(draft): ApiJson<CategoryDraft>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    let category = state.catalog_admin(&tenant).create_category(draft).await?;
    Ok((StatusCode::CREATED, Json(category)))
}

#[utoipa::path(put, path = "/api/v1/admin/categories/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path)), request_body = CategoryFields,
    responses((status = 200, body = Category), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_category(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    Path(id): Path<String>,
    ApiJson(fields): ApiJson<CategoryFields>,
) -> ApiResult<Json<Category>> {
    let category = state
        .catalog_admin(&tenant)
        .replace_category(id, fields.name, fields.parent_id)
        .await?;
    Ok(Json(category))
}

#[utoipa::path(delete, path = "/api/v1/admin/categories/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "products or subcategories still use it")))]
pub async fn delete_category(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.catalog_admin(&tenant).delete_category(id).await?;
    Ok(StatusCode::NO_CONTENT)
}
