//! Shopper catalog: `products`, `products/{id}`, `categories`. Served from the in-process
//! snapshot; no storage round trip while it is fresh. Products are written from the JSON the
//! snapshot serialised once per load: a product page is that JSON as is, a list page its items'
//! JSON joined.

use axum::{
    Json,
    body::Body,
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::extract::{ApiQuery, Tenant};
use crate::{
    app::AppState,
    domain::catalog::{Category, Item, ListFilter, Product, Sort},
    http::error::{ApiError, ApiResult, Problem},
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

/// A JSON body that is already serialised (what `Json` would have written).
pub fn json_response(body: impl Into<Body>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// `{"items":[…],"next_cursor":…}`, as serde would write [`ProductPage`].
pub fn page_json(items: &[&Item], next_cursor: Option<&str>) -> Vec<u8> {
    let size: usize = items.iter().map(|i| i.json().len() + 1).sum();
    let mut out = Vec::with_capacity(size + 64 + next_cursor.map_or(0, str::len));
    out.extend_from_slice(b"{\"items\":[");
    for (k, item) in items.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item.json());
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    serde_json::to_writer(&mut out, &next_cursor).expect("writing to a Vec");
    out.push(b'}');
    out
}

// The handler writes this shape with `page_json`.
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
    Ok(json_response(page_json(
        &page.items,
        page.next_cursor.as_deref(),
    )))
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
    let item = snap.catalog.get(id).ok_or(ApiError::NotFound("product"))?;
    Ok(json_response(item.json().clone()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{Catalog, tests::product};

    #[test]
    fn pages_are_what_serde_writes_for_the_documented_shape() {
        let mut products: Vec<Product> = (0..5)
            .map(|i| product(&format!("Mug \"{i}\""), 100 * i, i as u32, &["kitchen"]))
            .collect();
        products[2].description = "Tab\there, quote \" and ünïcode".into();
        let catalog = Catalog::new(products.clone(), vec![]);
        let page = catalog
            .list(&ListFilter::default(), Sort::PriceAsc, None, 3)
            .unwrap();
        let by_id = |id| products.iter().find(|p| p.id == id).unwrap();
        let expected = ProductPage {
            items: page.items.iter().map(|i| by_id(i.id)).collect(),
            next_cursor: page.next_cursor.clone(),
        };
        assert!(expected.next_cursor.is_some());
        assert_eq!(
            page_json(&page.items, page.next_cursor.as_deref()),
            serde_json::to_vec(&expected).unwrap()
        );
        let last = ProductPage {
            items: vec![],
            next_cursor: None,
        };
        assert_eq!(page_json(&[], None), serde_json::to_vec(&last).unwrap());
        // A product page is the product's JSON, whatever `Json` would have written.
        let item = catalog.get(products[2].id).unwrap();
        assert_eq!(
            item.json().as_ref(),
            serde_json::to_vec(&products[2]).unwrap()
        );
        assert_eq!(item.product(), products[2]);
        assert_eq!(item.title(), products[2].title);
    }
}
