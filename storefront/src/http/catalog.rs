//! Shopper catalog: `products`, `products/{id}`, `categories`. Served from the in-process
//! snapshot; no storage round trip while it is fresh.

use axum::{
    Json,
    extract::{Path, State},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{ApiQuery, Tenant};
use crate::{
    app::AppState,
    domain::catalog::{Category, ListFilter, Product, Sort},
    error::{ApiError, ApiResult, Problem},
};

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// Query parameters arrive as text and are parsed here, so an error names the parameter.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only products in this category.
    pub category: Option<String>,
    /// Lowest price in minor units (inclusive).
    #[param(value_type = Option<i64>)]
    pub min_price: Option<String>,
    /// Highest price in minor units (inclusive).
    #[param(value_type = Option<i64>)]
    pub max_price: Option<String>,
    /// `newest` (default), `price_asc` or `price_desc`.
    #[param(value_type = Option<Sort>)]
    pub sort: Option<String>,
    /// 1 to 100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

pub fn parse_i64(field: &str, raw: Option<&str>) -> ApiResult<Option<i64>> {
    raw.filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| ApiError::invalid(field, "must be an integer"))
        })
        .transpose()
}

pub fn parse_limit(raw: Option<&str>) -> ApiResult<usize> {
    match raw.filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                "limit",
                format!("must be an integer from 1 to {MAX_LIMIT}"),
            )),
        },
    }
}

fn parse_sort(raw: Option<&str>) -> ApiResult<Sort> {
    match raw {
        None | Some("") | Some("newest") => Ok(Sort::Newest),
        Some("price_asc") => Ok(Sort::PriceAsc),
        Some("price_desc") => Ok(Sort::PriceDesc),
        Some(_) => Err(ApiError::invalid(
            "sort",
            "must be newest, price_asc or price_desc",
        )),
    }
}

/// A page of products.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProductPage<'a> {
    #[schema(value_type = Vec<Product>)]
    pub items: Vec<&'a Product>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/products", tag = "catalog", params(ListParams),
    responses((status = 200, body = ProductPage), (status = 404, body = Problem, content_type = "application/problem+json", description = "unknown host"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn list_products(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Response> {
    let filter = ListFilter {
        category: params.category.clone().filter(|c| !c.is_empty()),
        min_price_minor: parse_i64("min_price", params.min_price.as_deref())?,
        max_price_minor: parse_i64("max_price", params.max_price.as_deref())?,
    };
    let sort = parse_sort(params.sort.as_deref())?;
    let limit = parse_limit(params.limit.as_deref())?;
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    let page = snap.catalog.list(
        &filter,
        sort,
        params.cursor.as_deref().filter(|c| !c.is_empty()),
        limit,
    )?;
    Ok(Json(ProductPage {
        items: page.items,
        next_cursor: page.next_cursor,
    })
    .into_response())
}

#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalog", params(("id" = Uuid, Path)),
    responses((status = 200, body = Product), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn show_product(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("product"))?;
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    let product = snap
        .catalog
        .product(id)
        .ok_or(ApiError::NotFound("product"))?;
    Ok(Json(product).into_response())
}

#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog",
    responses((status = 200, body = Vec<Category>), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn list_categories(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
) -> ApiResult<Response> {
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    Ok(Json(snap.catalog.categories()).into_response())
}
