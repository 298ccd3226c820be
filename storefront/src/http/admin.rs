//! Merchant admin API (`admin/products`, `admin/categories`), authenticated by the tenant's
//! admin key. Each write goes to DynamoDB, bumps the tenant's catalog version (what other
//! replicas' freshness checks read), reloads this replica's snapshot before answering (so the
//! merchant reads their own write) and tells the other replicas.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use chrono::Utc;
use serde::Deserialize;
use uuid::Uuid;

use super::extract::{Admin, ApiJson};
use crate::{
    app::AppState,
    catalog::Snapshot,
    domain::{
        catalog::{Category, CategoryDraft, Product, ProductDraft},
        ports::CatalogStore as _,
    },
    error::{ApiError, ApiResult, Problem},
    storage::bus::Notice,
    tenants::TenantRuntime,
};

async fn changed(state: &AppState, tenant: &TenantRuntime) -> ApiResult<()> {
    tenant.catalog.bump_version().await?;
    state.catalog.reload(&tenant.catalog).await?;
    state
        .bus
        .publish(&Notice::CatalogChanged {
            tenant: tenant.id().to_owned(),
        })
        .await;
    Ok(())
}

fn product_from(draft: ProductDraft, id: Uuid, created_at: chrono::DateTime<Utc>) -> Product {
    Product {
        id,
        title: draft.title.trim().to_owned(),
        description: draft.description,
        categories: draft.categories,
        variants: draft.variants,
        created_at,
        updated_at: Utc::now(),
    }
}

fn validate(snap: &Snapshot, draft: &ProductDraft, id: Option<Uuid>) -> ApiResult<()> {
    draft.validate(
        |c| snap.catalog.has_category(c),
        |sku| {
            snap.catalog
                .variant(sku)
                .is_some_and(|v| Some(v.item.id) != id)
        },
    )?;
    Ok(())
}

fn product_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("product"))
}

#[utoipa::path(post, path = "/api/v1/admin/products", tag = "admin", security(("admin_key" = [])), request_body = ProductDraft,
    responses((status = 201, body = Product), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_product(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    ApiJson(draft): ApiJson<ProductDraft>,
) -> ApiResult<(StatusCode, Json<Product>)> {
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    validate(&snap, &draft, None)?;
    let product = product_from(draft, Uuid::now_v7(), Utc::now());
    tenant.catalog.put_product(&product).await?;
    changed(&state, &tenant).await?;
    Ok((StatusCode::CREATED, Json(product)))
}

#[utoipa::path(put, path = "/api/v1/admin/products/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path)), request_body = ProductDraft,
    responses((status = 200, body = Product), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_product(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    Path(id): Path<String>,
    ApiJson(draft): ApiJson<ProductDraft>,
) -> ApiResult<Json<Product>> {
    let id = product_id(&id)?;
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    let existing = snap
        .catalog
        .product(id)
        .ok_or(ApiError::NotFound("product"))?;
    validate(&snap, &draft, Some(id))?;
    let product = product_from(draft, id, existing.created_at);
    tenant.catalog.put_product(&product).await?;
    changed(&state, &tenant).await?;
    Ok(Json(product))
}

#[utoipa::path(delete, path = "/api/v1/admin/products/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_product(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    if !tenant.catalog.delete_product(product_id(&id)?).await? {
        return Err(ApiError::NotFound("product"));
    }
    changed(&state, &tenant).await?;
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
    Admin(tenant): Admin,
    ApiJson(mut draft): ApiJson<CategoryDraft>,
) -> ApiResult<(StatusCode, Json<Category>)> {
    // An empty parent means none.
    draft.parent_id = draft.parent_id.filter(|p| !p.is_empty());
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    draft.validate(|c| snap.catalog.has_category(c))?;
    if snap.catalog.has_category(&draft.id) {
        return Err(ApiError::Conflict {
            field: Some("id".into()),
            detail: format!("category `{}` exists", draft.id),
        });
    }
    let category = Category {
        id: draft.id,
        name: draft.name.trim().to_owned(),
        parent_id: draft.parent_id,
    };
    tenant.catalog.put_category(&category).await?;
    changed(&state, &tenant).await?;
    Ok((StatusCode::CREATED, Json(category)))
}

#[utoipa::path(put, path = "/api/v1/admin/categories/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path)), request_body = CategoryFields,
    responses((status = 200, body = Category), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn replace_category(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    Path(id): Path<String>,
    ApiJson(fields): ApiJson<CategoryFields>,
) -> ApiResult<Json<Category>> {
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    if !snap.catalog.has_category(&id) {
        return Err(ApiError::NotFound("category"));
    }
    let draft = CategoryDraft {
        id,
        name: fields.name,
        parent_id: fields.parent_id.filter(|p| !p.is_empty()),
    };
    draft.validate(|c| snap.catalog.has_category(c))?;
    let category = Category {
        id: draft.id,
        name: draft.name.trim().to_owned(),
        parent_id: draft.parent_id,
    };
    tenant.catalog.put_category(&category).await?;
    changed(&state, &tenant).await?;
    Ok(Json(category))
}

#[utoipa::path(delete, path = "/api/v1/admin/categories/{id}", tag = "admin", security(("admin_key" = [])),
    params(("id" = String, Path)),
    responses((status = 204, description = "deleted"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "products or subcategories still use it")))]
pub async fn delete_category(
    State(state): State<AppState>,
    Admin(tenant): Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    let in_use = snap.catalog.category_in_use(&id)
        || snap
            .catalog
            .categories()
            .iter()
            .any(|c| c.parent_id.as_deref() == Some(id.as_str()));
    if in_use {
        return Err(ApiError::Conflict {
            field: None,
            detail: format!("category `{id}` is still in use"),
        });
    }
    if !tenant.catalog.delete_category(&id).await? {
        return Err(ApiError::NotFound("category"));
    }
    changed(&state, &tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}
