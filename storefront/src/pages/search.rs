//! `/search`: full text with typo tolerance, narrowed by category and price band, with facet
//! counts. Uses the same index, filter and facet counting as `GET /api/v1/search`.

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;

use super::{
    PageError, Shopper,
    home::{encode, product_grid},
    money,
};
use crate::{
    app::AppState,
    domain::{
        catalog::{ListFilter, Product},
        pricing::Money,
    },
    http::{
        catalog::parse_i64,
        error::ApiError,
        search::{facets_of, ranked},
    },
};

const PAGE_SIZE: usize = 12;
const MAX_QUERY_CHARS: usize = 200;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
    pub category: Option<String>,
    pub min_price: Option<String>,
    pub max_price: Option<String>,
    pub page: Option<String>,
}

fn href(
    q: &str,
    category: Option<&str>,
    min: Option<i64>,
    max: Option<i64>,
    page: usize,
) -> String {
    let mut s = format!("/search?q={}", encode(q));
    if let Some(c) = category {
        s.push_str(&format!("&category={}", encode(c)));
    }
    if let Some(m) = min {
        s.push_str(&format!("&min_price={m}"));
    }
    if let Some(m) = max {
        s.push_str(&format!("&max_price={m}"));
    }
    if page > 1 {
        s.push_str(&format!("&page={page}"));
    }
    s
}

pub async fn show(
    State(state): State<AppState>,
    shop: Shopper,
    Query(params): Query<SearchQuery>,
) -> Result<Response, PageError> {
    let text = params.q.clone().unwrap_or_default();
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(ApiError::invalid(
            "q",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        )
        .into());
    }
    let category = params.category.as_deref().filter(|c| !c.is_empty());
    let min = parse_i64(
        "min_price",
        params.min_price.as_deref().filter(|v| !v.is_empty()),
    )?;
    let max = parse_i64(
        "max_price",
        params.max_price.as_deref().filter(|v| !v.is_empty()),
    )?;
    let page = params
        .page
        .as_deref()
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let filter = ListFilter {
        category: category.map(str::to_owned),
        min_price_minor: min,
        max_price_minor: max,
    };
    let snap = state.catalog.snapshot(&shop.tenant.catalog).await?;
    let catalog = &snap.catalog;
    let words = snap
        .search
        .words(&text)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let matches = ranked(&snap, &words)?;
    // Facets count what the text matched before the shopper's narrowing, so every option stays
    // visible; the result list applies the narrowing.
    let counts = facets_of(&snap, matches.iter().map(|&(p, _)| p));
    let matcher = catalog.matcher(&filter);
    let narrowed: Vec<u32> = matches
        .into_iter()
        .map(|(p, _)| p)
        .filter(|&p| catalog.item(p).is_some_and(|i| matcher.matches(i)))
        .collect();
    let total = narrowed.len();
    let shown: Vec<Product> = narrowed
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .filter_map(|&p| catalog.item(p).map(|i| i.product()))
        .collect();
    let currency = catalog.some_currency().unwrap_or_default().to_owned();
    let band_label = |min: i64, max: Option<i64>| {
        let m = |a| {
            money(&Money {
                amount_minor: a,
                currency: currency.clone(),
            })
        };
        match max {
            Some(max) => format!("{} – {}", m(min), m(max)),
            None => format!("{} and up", m(min)),
        }
    };
    let category_name = |id: &str| {
        catalog
            .categories()
            .iter()
            .find(|c| c.id == id)
            .map_or_else(|| id.to_owned(), |c| c.name.clone())
    };
    let title = if text.trim().is_empty() {
        "Search".to_owned()
    } else {
        format!("Search: {text}")
    };
    let main = html! {
        h1 { "Search" }
        form method="get" action="/search" role="search" {
            label for="q" { "Search for" }
            input type="search" id="q" name="q" value=(text);
            @if let Some(c) = category { input type="hidden" name="category" value=(c); }
            " "
            button type="submit" { "Search" }
        }
        p aria-live="polite" {
            (total) @if total == 1 { " product" } @else { " products" }
            @if !text.trim().is_empty() { " for “" (text) "”" }
        }
        div class="layout" {
            aside class="facets" aria-label="Narrow the results" {
                h2 { "Category" }
                ul {
                    li { a href=(href(&text, None, min, max, 1)) aria-current=[category.is_none().then_some("true")] { "Any category" } }
                    @for f in &counts.categories {
                        li {
                            a href=(href(&text, Some(&f.value), min, max, 1))
                              aria-current=[(category == Some(f.value.as_str())).then_some("true")] {
                                (category_name(&f.value)) " (" (f.count) ")"
                            }
                        }
                    }
                }
                h2 { "Price" }
                ul {
                    li { a href=(href(&text, category, None, None, 1)) aria-current=[(min.is_none() && max.is_none()).then_some("true")] { "Any price" } }
                    @for b in &counts.price_bands {
                        @let band_max = b.band.max_minor.map(|m| m - 1);
                        li {
                            a href=(href(&text, category, Some(b.band.min_minor), band_max, 1))
                              aria-current=[(min == Some(b.band.min_minor) && max == band_max).then_some("true")] {
                                (band_label(b.band.min_minor, b.band.max_minor)) " (" (b.count) ")"
                            }
                        }
                    }
                }
                @for (name, values) in &counts.attributes {
                    h2 { (name) }
                    ul {
                        @for v in values { li { (v.value) " (" (v.count) ")" } }
                    }
                }
            }
            section aria-label="Results" {
                @if shown.is_empty() {
                    p { "Nothing matched. Try fewer or different words." }
                } @else {
                    (product_grid(&shown))
                }
                nav class="pager" aria-label="Pages" {
                    @if page > 1 { a href=(href(&text, category, min, max, page - 1)) rel="prev" { "Previous page" } }
                    @if page * PAGE_SIZE < total { a href=(href(&text, category, min, max, page + 1)) rel="next" { "Next page" } }
                }
            }
        }
    };
    Ok(shop.render(StatusCode::OK, &title, main))
}
