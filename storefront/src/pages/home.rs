//! `/`: the catalog, by category, newest first or by price, a page at a time (opaque cursors).

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageError, Shopper, money};
use crate::{
    app::AppState,
    domain::catalog::{ListFilter, Product, Sort},
};

const PAGE_SIZE: usize = 12;

#[derive(Debug, Default, Deserialize)]
pub struct CatalogQuery {
    pub category: Option<String>,
    pub sort: Option<String>,
    pub cursor: Option<String>,
}

fn sort_of(raw: Option<&str>) -> Sort {
    match raw {
        Some("price_asc") => Sort::PriceAsc,
        Some("price_desc") => Sort::PriceDesc,
        _ => Sort::Newest,
    }
}

/// A link to the catalog with these parameters (values percent-encoded).
fn catalog_href(category: Option<&str>, sort: Option<&str>, cursor: Option<&str>) -> String {
    let mut pairs = Vec::new();
    for (k, v) in [("category", category), ("sort", sort), ("cursor", cursor)] {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            pairs.push(format!("{k}={}", encode(v)));
        }
    }
    if pairs.is_empty() {
        "/".to_owned()
    } else {
        format!("/?{}", pairs.join("&"))
    }
}

/// Percent-encodes a query value.
pub fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub async fn show(
    State(state): State<AppState>,
    shop: Shopper,
    Query(q): Query<CatalogQuery>,
) -> Result<Response, PageError> {
    let snap = state.catalog.snapshot(&shop.tenant.catalog).await?;
    let category = q.category.as_deref().filter(|c| !c.is_empty());
    if let Some(c) = category
        && !snap.catalog.has_category(c)
    {
        return Err(PageError::NotFound);
    }
    let filter = ListFilter {
        category: category.map(str::to_owned),
        ..ListFilter::default()
    };
    let sort = sort_of(q.sort.as_deref());
    let page = snap
        .catalog
        .list(&filter, sort, q.cursor.as_deref(), PAGE_SIZE)?;
    let products: Vec<Product> = page.items.iter().map(|i| i.product()).collect();
    let categories = snap.catalog.categories();
    let current = category.and_then(|c| categories.iter().find(|k| k.id == c));
    let heading = current.map_or("All products", |c| c.name.as_str());
    let sort_raw = q
        .sort
        .as_deref()
        .filter(|s| matches!(*s, "price_asc" | "price_desc"));
    let main = html! {
        div class="layout" {
            nav class="categories" aria-label="Categories" {
                h2 { "Categories" }
                ul {
                    li { a href="/" aria-current=[category.is_none().then_some("page")] { "All products" } }
                    @for c in categories {
                        li {
                            a href=(catalog_href(Some(&c.id), sort_raw, None))
                              aria-current=[(category == Some(c.id.as_str())).then_some("page")] { (c.name) }
                        }
                    }
                }
            }
            section aria-labelledby="catalog-heading" {
                h1 id="catalog-heading" { (heading) }
                form method="get" action="/" class="sort" {
                    @if let Some(c) = category { input type="hidden" name="category" value=(c); }
                    label for="sort" { "Sort by" }
                    select id="sort" name="sort" {
                        option value="newest" selected[sort == Sort::Newest] { "Newest" }
                        option value="price_asc" selected[sort == Sort::PriceAsc] { "Price, low to high" }
                        option value="price_desc" selected[sort == Sort::PriceDesc] { "Price, high to low" }
                    }
                    " "
                    button type="submit" class="secondary" { "Apply" }
                }
                @if products.is_empty() {
                    p { "No products here yet." }
                } @else {
                    (product_grid(&products))
                }
                nav class="pager" aria-label="Pages" {
                    @if q.cursor.is_some() {
                        a href=(catalog_href(category, sort_raw, None)) { "First page" }
                    }
                    @if let Some(next) = &page.next_cursor {
                        a href=(catalog_href(category, sort_raw, Some(next))) rel="next" { "Next page" }
                    }
                }
            }
        }
    };
    Ok(shop.render(StatusCode::OK, heading, main))
}

/// Product cards, used by the catalog and search pages.
pub fn product_grid(products: &[Product]) -> Markup {
    html! {
        ul class="grid" {
            @for p in products {
                li {
                    article class="card" {
                        @if let Some(img) = p.variants.iter().flat_map(|v| v.images.iter()).next() {
                            img src=(img) alt="" loading="lazy";
                        }
                        h2 { a href={ "/products/" (p.id) } { (p.title) } }
                        @if let Some(price) = p.from_price() {
                            p class="price" {
                                @if p.variants.len() > 1 { "from " }
                                (money(price))
                            }
                        }
                    }
                }
            }
        }
    }
}
