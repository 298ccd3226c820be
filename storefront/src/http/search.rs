//! `search`: full text with typo tolerance and facet counts.

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{
    catalog::{parse_i64, parse_limit},
    extract::{ApiQuery, Tenant},
};
use crate::{
    app::AppState,
    domain::{
        catalog::{ListFilter, Product},
        facets::{self, Facets},
    },
    error::{ApiError, ApiResult, Problem},
};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// Words to find in titles, descriptions and attributes; empty lists everything.
    #[param(max_length = 200)]
    pub q: Option<String>,
    pub category: Option<String>,
    #[param(value_type = Option<i64>)]
    pub min_price: Option<String>,
    #[param(value_type = Option<i64>)]
    pub max_price: Option<String>,
    /// 1 to 100, default 20.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// How many hits to skip.
    #[param(value_type = Option<i64>, minimum = 0)]
    pub offset: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchHit<'a> {
    #[schema(value_type = Product)]
    pub product: &'a Product,
    pub score: f32,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SearchResults<'a> {
    /// All matches, before `limit` and `offset`.
    pub total: usize,
    #[schema(value_type = Vec<SearchHit>)]
    pub hits: Vec<SearchHit<'a>>,
    /// Counts over all matches.
    pub facets: Facets,
}

const MAX_QUERY_CHARS: usize = 200;

#[utoipa::path(get, path = "/api/v1/search", tag = "catalog", params(SearchParams),
    responses((status = 200, body = SearchResults), (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn search(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Response> {
    let text = params.q.unwrap_or_default();
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let filter = ListFilter {
        category: params.category.filter(|c| !c.is_empty()),
        min_price_minor: parse_i64("min_price", params.min_price.as_deref())?,
        max_price_minor: parse_i64("max_price", params.max_price.as_deref())?,
    };
    let limit = parse_limit(params.limit.as_deref())?;
    let offset = parse_i64("offset", params.offset.as_deref())?.unwrap_or(0);
    let offset =
        usize::try_from(offset).map_err(|_| ApiError::invalid("offset", "must not be negative"))?;
    let snap = state.catalog.snapshot(&tenant.catalog).await?;
    let catalog = &snap.catalog;
    let matches: Vec<(&Product, f32)> = match snap
        .search
        .search(&text)
        .map_err(|e| ApiError::Internal(e.to_string()))?
    {
        Some(hits) => hits
            .into_iter()
            .filter_map(|(id, score)| catalog.product(id).map(|p| (p, score)))
            .collect(),
        None => {
            let mut all: Vec<&Product> = catalog.products().iter().collect();
            all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
            all.into_iter().map(|p| (p, 0.0)).collect()
        }
    };
    let matches: Vec<_> = matches
        .into_iter()
        .filter(|(p, _)| filter.matches(p))
        .collect();
    let facets = facets::count(matches.iter().map(|(p, _)| *p));
    let hits = matches
        .iter()
        .skip(offset)
        .take(limit)
        .map(|&(product, score)| SearchHit { product, score })
        .collect();
    Ok(Json(SearchResults {
        total: matches.len(),
        hits,
        facets,
    })
    .into_response())
}
