//! `/products/{id}`: a product, its variants with their stock, and add-to-cart forms. The stock
//! figures update live through `/assets/stock.js` (SSE); without JavaScript they show the stock
//! at load time.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use maud::html;
use uuid::Uuid;

use super::{PageError, Shopper, money};
use crate::{app::AppState, domain::ports::InventoryStore as _};

fn stock_text(available: Option<i32>) -> String {
    match available {
        Some(n) if n > 0 => format!("{n} in stock"),
        // No inventory row: checkout could not reserve any, so it is not for sale.
        Some(_) | None => "Out of stock".to_owned(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    shop: Shopper,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let id = Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    let snap = state.catalog.snapshot(&shop.tenant.catalog).await?;
    let product = snap.catalog.product(id).ok_or(PageError::NotFound)?;
    let mut stock = Vec::with_capacity(product.variants.len());
    for v in &product.variants {
        stock.push(shop.tenant.orders.stock(&v.sku).await?);
    }
    let categories: Vec<_> = snap
        .catalog
        .categories()
        .iter()
        .filter(|c| product.categories.contains(&c.id))
        .collect();
    let image = product.variants.iter().flat_map(|v| v.images.iter()).next();
    let main = html! {
        article class="product" {
            div {
                @if let Some(img) = image {
                    img src=(img) alt={ "Photo of " (product.title) };
                }
            }
            div {
                h1 { (product.title) }
                @if !categories.is_empty() {
                    p class="hint" {
                        "In "
                        @for (i, c) in categories.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={ "/?category=" (super::home::encode(&c.id)) } { (c.name) }
                        }
                    }
                }
                @for para in product.description.split("\n\n").filter(|p| !p.trim().is_empty()) {
                    p { (para) }
                }
                h2 { "Options" }
                ul class="variants" {
                    @for (i, (v, available)) in product.variants.iter().zip(&stock).enumerate() {
                        li {
                            p class="price" { (money(&v.price)) }
                            @if !v.attributes.is_empty() {
                                p {
                                    @for (j, (k, val)) in v.attributes.iter().enumerate() {
                                        @if j > 0 { ", " }
                                        (k) ": " (val)
                                    }
                                }
                            }
                            p class="stock" {
                                span data-stock-sku=(v.sku) aria-live="polite" { (stock_text(*available)) }
                                " · SKU " (v.sku)
                            }
                            form method="post" action="/cart" {
                                (shop.csrf_field())
                                input type="hidden" name="action" value="add";
                                input type="hidden" name="sku" value=(v.sku);
                                label for={ "qty-" (i) } { "Quantity" }
                                input class="qty" type="number" id={ "qty-" (i) } name="quantity" value="1" min="1" max="99" required;
                                " "
                                button type="submit" disabled[!matches!(available, Some(n) if *n > 0)] { "Add to cart" }
                            }
                        }
                    }
                }
            }
        }
        script src="/assets/stock.js" defer {}
    };
    Ok(shop.render(StatusCode::OK, &product.title, main))
}
