//! `search`: full text with typo tolerance and facet counts.
//!
//! An answer (every match, ranked and filtered, and the facet counts over them) is computed once
//! per catalog snapshot and normalised query and kept in the bounded [`SearchCache`]; the
//! response is then assembled from the snapshot's pre-serialised product JSON, so a repeated
//! query or its next page costs a lookup and a copy.

use std::sync::Arc;

use axum::{extract::State, response::Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{
    catalog::{json_response, parse_i64, parse_limit},
    extract::{ApiQuery, Tenant},
};
use crate::{
    app::AppState,
    catalog::{SearchAnswer, SearchCache, Snapshot},
    domain::catalog::{Facets, ListFilter, Product},
    http::error::{ApiError, ApiResult, Problem},
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

// The response's shape (for the OpenAPI document; the handler writes the same JSON from the
// snapshot's fragments, see `render`).
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

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Every product matching `words` as (position, score), best first; every product newest first
/// (score 0) when there is no word.
pub fn ranked(snap: &Snapshot, words: &[String]) -> ApiResult<Vec<(u32, f32)>> {
    if words.is_empty() {
        return Ok(snap.catalog.newest().iter().map(|&p| (p, 0.0)).collect());
    }
    snap.search.search_words(words).map_err(internal)
}

/// Facet counts over the products at `positions`.
pub fn facets_of(snap: &Snapshot, positions: impl IntoIterator<Item = u32>) -> Facets {
    let catalog = &snap.catalog;
    catalog.facet_table().count(
        positions
            .into_iter()
            .filter_map(|p| catalog.item(p))
            .map(|i| (i.facet_codes(), i.from_price_minor())),
    )
}

/// The answer for `words` and `filter` on this snapshot: from the cache, or computed and cached.
fn answer(
    state: &AppState,
    snap: &Snapshot,
    words: &[String],
    filter: &ListFilter,
) -> ApiResult<Arc<SearchAnswer>> {
    let query = serde_json::to_string(&(
        words,
        &filter.category,
        filter.min_price_minor,
        filter.max_price_minor,
    ))
    .map_err(internal)?;
    let key = SearchCache::key(snap.serial, &query);
    if let Some(found) = state.search_cache.get(&key) {
        return Ok(found);
    }
    let matcher = snap.catalog.matcher(filter);
    let matches: Box<[(u32, f32)]> = ranked(snap, words)?
        .into_iter()
        .filter(|&(p, _)| snap.catalog.item(p).is_some_and(|i| matcher.matches(i)))
        .collect();
    let facets = facets_of(snap, matches.iter().map(|&(p, _)| p));
    let answer = Arc::new(SearchAnswer {
        matches,
        facets: Bytes::from(serde_json::to_vec(&facets).map_err(internal)?),
    });
    state.search_cache.insert(key, answer.clone());
    Ok(answer)
}

/// `{"total":…,"hits":[{"product":…,"score":…},…],"facets":…}`, as serde would write
/// [`SearchResults`].
fn render(snap: &Snapshot, answer: &SearchAnswer, offset: usize, limit: usize) -> Vec<u8> {
    let page = answer.matches.iter().skip(offset).take(limit);
    let size: usize = page
        .clone()
        .filter_map(|&(p, _)| snap.catalog.item(p))
        .map(|i| i.json().len() + 40)
        .sum();
    let mut out = Vec::with_capacity(size + answer.facets.len() + 64);
    out.extend_from_slice(b"{\"total\":");
    out.extend_from_slice(answer.matches.len().to_string().as_bytes());
    out.extend_from_slice(b",\"hits\":[");
    let mut first = true;
    for &(p, score) in page {
        let Some(item) = snap.catalog.item(p) else {
            continue;
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"product\":");
        out.extend_from_slice(item.json());
        out.extend_from_slice(b",\"score\":");
        serde_json::to_writer(&mut out, &score).expect("writing to a Vec");
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"facets\":");
    out.extend_from_slice(&answer.facets);
    out.push(b'}');
    out
}

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
    let words = snap.search.words(&text).map_err(internal)?;
    let answer = answer(&state, &snap, &words, &filter)?;
    Ok(json_response(render(&snap, &answer, offset, limit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{catalog::snapshot_for_tests as snapshot_of, domain::catalog::tests::product};

    #[test]
    fn rendered_answers_are_what_serde_writes_for_the_documented_shape() {
        let mut products: Vec<Product> = (0..30)
            .map(|i| product(&format!("Wool \"scarf\" {i}"), 100 * i, i as u32, &["c-1"]))
            .collect();
        products[3].description = "Line\nbreak & <b>tags</b> ünïcode".into();
        products[3].variants[0]
            .attributes
            .insert("colour".into(), "blue".into());
        let snap = snapshot_of(products.clone());
        let words = snap.search.words("WOOL scarf").unwrap();
        assert_eq!(words, ["wool", "scarf"]);
        let ranked = ranked(&snap, &words).unwrap();
        let facets = facets_of(&snap, ranked.iter().map(|h| h.0));
        let answer = SearchAnswer {
            matches: ranked.clone().into_boxed_slice(),
            facets: Bytes::from(serde_json::to_vec(&facets).unwrap()),
        };
        let expected = SearchResults {
            total: 30,
            hits: ranked[5..12]
                .iter()
                .map(|&(p, score)| SearchHit {
                    product: &products[p as usize],
                    score,
                })
                .collect(),
            facets,
        };
        assert_eq!(
            render(&snap, &answer, 5, 7),
            serde_json::to_vec(&expected).unwrap(),
            "byte for byte"
        );
        // Past the end: no hits, same total and facets.
        let empty: serde_json::Value =
            serde_json::from_slice(&render(&snap, &answer, 100, 7)).unwrap();
        assert_eq!(empty["hits"], serde_json::json!([]));
        assert_eq!(empty["total"], 30);
    }
}
