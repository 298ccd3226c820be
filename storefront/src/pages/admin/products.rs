//! `/admin/products`: the catalog with search, a product's variants with their prices and
//! stock (edit, add a variant), and new products. Writes go through the catalog admin service,
//! as the merchant API's do; images stay as they are (uploads are another page's job).

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::StatusCode,
    response::Response,
};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{SignedInStaff, StaffPage, alert, message_of, notice, parse_price, price_input};
use crate::{
    app::AppState,
    domain::{
        Invalid,
        catalog::{Product, ProductDraft, Variant},
        ports::InventoryStore as _,
        pricing::Money,
        staff::{Access, Permission},
    },
    http::error::ApiError,
    pages::{PageError, money, status_of},
};

const SHOWN: usize = 50;
const CATALOG: Access = Access::Permission(Permission::Catalog);

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    saved: Option<String>,
}

async fn staff_for(
    state: &AppState,
    page: &StaffPage,
    action: &str,
    target: &str,
) -> Result<SignedInStaff, super::Refusal> {
    page.authorise(state, CATALOG, action, target).await
}

pub async fn list(
    State(state): State<AppState>,
    page: StaffPage,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    if let Err(r) = staff_for(&state, &page, "product.list", "").await {
        return Ok(*r);
    }
    let snap = state.catalog.snapshot(&page.tenant.catalog).await?;
    let catalog = &snap.catalog;
    let text = q.q.trim();
    let positions: Vec<u32> = if text.is_empty() {
        catalog.newest().to_vec()
    } else {
        // Merchants look products up by SKU, which the shoppers' search does not index:
        // SKU matches first (a scan, fine at admin rates), then the text search's.
        let mut found: Vec<u32> = Vec::new();
        if crate::domain::catalog::is_sku(text) {
            let wanted = text.to_ascii_lowercase();
            found.extend(catalog.newest().iter().copied().filter(|&p| {
                catalog.item(p).is_some_and(|i| {
                    i.product()
                        .variants
                        .iter()
                        .any(|v| v.sku.to_ascii_lowercase().contains(&wanted))
                })
            }));
        }
        let by_text = snap
            .search
            .search(text)
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .unwrap_or_default();
        let seen: std::collections::HashSet<u32> = found.iter().copied().collect();
        found.extend(
            by_text
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| !seen.contains(p)),
        );
        found
    };
    let total = positions.len();
    let products: Vec<Product> = positions
        .iter()
        .take(SHOWN)
        .filter_map(|&p| catalog.item(p).map(|i| i.product()))
        .collect();
    let main = html! {
        h1 { "Products" }
        (notice(q.saved.as_deref().map(|_| "Product saved.")))
        div class="toolbar" {
            form method="get" action="/admin/products" role="search" {
                label for="q" { "Search products" }
                div class="row" {
                    input type="search" id="q" name="q" value=(text);
                    button type="submit" { "Search" }
                }
            }
            p { a class="button" href="/admin/products/new" { "New product" } }
        }
        @if products.is_empty() {
            p { @if text.is_empty() { "No products yet." } @else { "No product matches “" (text) "”." } }
        } @else {
            p class="hint" { (total) " products" @if total > SHOWN { ", showing the first " (SHOWN) } "." }
            table {
                caption class="visually-hidden" { "Products" }
                thead { tr { th scope="col" { "Product" } th scope="col" { "Variants" } th scope="col" class="num" { "From" } } }
                tbody {
                    @for p in &products {
                        tr {
                            td { a href={ "/admin/products/" (p.id) } { (p.title) } }
                            td { @for (i, v) in p.variants.iter().enumerate() { @if i > 0 { ", " } (v.sku) } }
                            td class="num" { @if let Some(m) = p.from_price() { (money(m)) } }
                        }
                    }
                }
            }
        }
    };
    Ok(page.render(StatusCode::OK, "Products", main))
}

async fn stock_of(page: &StaffPage, product: &Product) -> Result<Vec<Option<i32>>, PageError> {
    let mut levels = Vec::with_capacity(product.variants.len());
    for v in &product.variants {
        levels.push(page.tenant.orders.stock(&v.sku).await?);
    }
    Ok(levels)
}

fn field<'a>(form: &'a HashMap<String, String>, key: &str) -> &'a str {
    form.get(key).map(String::as_str).unwrap_or("")
}

fn edit_form(
    page: &StaffPage,
    product: &Product,
    stock: &[Option<i32>],
    form: Option<&HashMap<String, String>>,
    error: Option<&str>,
) -> Markup {
    let value = |key: &str, default: String| -> String {
        form.and_then(|f| f.get(key).cloned()).unwrap_or(default)
    };
    html! {
        (alert(error))
        form method="post" action={ "/admin/products/" (product.id) } {
            (page.csrf_field())
            label for="title" { "Title" }
            input type="text" id="title" name="title" value=(value("title", product.title.clone())) required maxlength="200";
            label for="description" { "Description" }
            textarea id="description" name="description" rows="4" maxlength="10000" { (value("description", product.description.clone())) }
            fieldset {
                legend { "Variants" }
                @for (i, v) in product.variants.iter().enumerate() {
                    div class="variant" {
                        h3 { (v.sku) @for (k, a) in &v.attributes { " · " (k) ": " (a) } }
                        div class="row" {
                            div {
                                label for={ "price_" (i) } { "Price (" (v.price.currency) ")" }
                                input type="text" inputmode="decimal" id={ "price_" (i) } name={ "price_" (i) } value=(value(&format!("price_{i}"), price_input(v.price.amount_minor, &v.price.currency))) required;
                            }
                            div {
                                label for={ "stock_" (i) } { "Stock available" }
                                input type="number" min="0" max="1000000000" id={ "stock_" (i) } name={ "stock_" (i) } value=(value(&format!("stock_{i}"), stock.get(i).copied().flatten().map(|s| s.to_string()).unwrap_or_default()));
                            }
                        }
                    }
                }
            }
            fieldset {
                legend { "Add a variant (optional)" }
                div class="row" {
                    div {
                        label for="new_sku" { "SKU" }
                        input type="text" id="new_sku" name="new_sku" value=(value("new_sku", String::new())) pattern="[A-Za-z0-9._-]{1,64}" aria-describedby="sku-hint";
                    }
                    div {
                        label for="new_price" { "Price" }
                        input type="text" inputmode="decimal" id="new_price" name="new_price" value=(value("new_price", String::new()));
                    }
                    div {
                        label for="new_stock" { "Stock" }
                        input type="number" min="0" id="new_stock" name="new_stock" value=(value("new_stock", String::new()));
                    }
                }
                p id="sku-hint" class="hint" { "Letters, digits, dots, dashes and underscores. Same currency as the other variants." }
            }
            p { button type="submit" { "Save product" } }
        }
    }
}

fn product_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| PageError::NotFound)
}

pub async fn show(
    State(state): State<AppState>,
    page: StaffPage,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    if let Err(r) = staff_for(&state, &page, "product.view", &id).await {
        return Ok(*r);
    }
    let snap = state.catalog.snapshot(&page.tenant.catalog).await?;
    let product = snap
        .catalog
        .product(product_id(&id)?)
        .ok_or(PageError::NotFound)?;
    let stock = stock_of(&page, &product).await?;
    let main = html! {
        p { a href="/admin/products" { "← Products" } }
        h1 { "Edit " (product.title) }
        p { a href={ "/products/" (product.id) } { "See it in the shop" } }
        (edit_form(&page, &product, &stock, None, None))
    };
    Ok(page.render(StatusCode::OK, &product.title, main))
}

fn stock_value(name: &str, text: &str) -> Result<Option<i64>, Invalid> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .filter(|n| (0..=1_000_000_000).contains(n))
        .map(Some)
        .ok_or_else(|| Invalid::new(name, "must be a whole number from 0 to 1,000,000,000"))
}

/// The product the form describes, and the stock counts to set (`None`: leave as is).
fn draft_from(
    product: &Product,
    form: &HashMap<String, String>,
) -> Result<(ProductDraft, Vec<(String, i64)>), Invalid> {
    let mut variants = Vec::with_capacity(product.variants.len() + 1);
    let mut stock = Vec::new();
    for (i, v) in product.variants.iter().enumerate() {
        let name = format!("price_{i}");
        let amount_minor = parse_price(&name, field(form, &name), &v.price.currency)?;
        variants.push(Variant {
            price: Money {
                amount_minor,
                currency: v.price.currency.clone(),
            },
            ..v.clone()
        });
        let name = format!("stock_{i}");
        if let Some(n) = stock_value(&name, field(form, &name))? {
            stock.push((v.sku.clone(), n));
        }
    }
    let new_sku = field(form, "new_sku").trim();
    if !new_sku.is_empty() {
        let currency = product
            .variants
            .first()
            .map(|v| v.price.currency.clone())
            .unwrap_or_else(|| "EUR".into());
        let amount_minor = parse_price("new_price", field(form, "new_price"), &currency)?;
        let template = product.variants.first();
        variants.push(Variant {
            sku: new_sku.to_owned(),
            price: Money {
                amount_minor,
                currency,
            },
            attributes: Default::default(),
            images: template.map(|t| t.images.clone()).unwrap_or_default(),
            weight_grams: template.map_or(0, |t| t.weight_grams),
            requires_shipping: template.is_none_or(|t| t.requires_shipping),
            tax_class: template.and_then(|t| t.tax_class.clone()),
        });
        if let Some(n) = stock_value("new_stock", field(form, "new_stock"))? {
            stock.push((new_sku.to_owned(), n));
        }
    }
    Ok((
        ProductDraft {
            title: field(form, "title").trim().to_owned(),
            description: field(form, "description").to_owned(),
            categories: product.categories.clone(),
            variants,
        },
        stock,
    ))
}

pub async fn save(
    State(state): State<AppState>,
    page: StaffPage,
    Path(id): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(field(&form, "csrf"))?;
    let who = match staff_for(&state, &page, "product.update", &id).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let id = product_id(&id)?;
    let snap = state.catalog.snapshot(&page.tenant.catalog).await?;
    let product = snap.catalog.product(id).ok_or(PageError::NotFound)?;
    let admin = state.catalog_admin(&page.tenant);
    let result: Result<(), ApiError> = async {
        let (draft, stock) = draft_from(&product, &form)?;
        admin.replace_product(id, draft).await?;
        for (sku, n) in stock {
            admin.set_stock(&sku, n).await?;
        }
        Ok(())
    }
    .await;
    let target = id.to_string();
    match result {
        Ok(()) => {
            page.record(
                &state,
                &who.actor,
                "product.update",
                &target,
                StatusCode::OK,
            )
            .await;
            Ok(page.redirect("/admin/products?saved=1"))
        }
        Err(e) => {
            let Some(message) = message_of(&e) else {
                return Err(e.into());
            };
            let status = status_of(&e);
            page.record(&state, &who.actor, "product.update", &target, status)
                .await;
            let stock = stock_of(&page, &product).await?;
            let main = html! {
                p { a href="/admin/products" { "← Products" } }
                h1 { "Edit " (product.title) }
                (edit_form(&page, &product, &stock, Some(&form), Some(&message)))
            };
            Ok(page.render(status, &product.title, main))
        }
    }
}

fn new_form(
    page: &StaffPage,
    form: Option<&HashMap<String, String>>,
    currency: &str,
    error: Option<&str>,
) -> Markup {
    let value = |key: &str| form.and_then(|f| f.get(key).cloned()).unwrap_or_default();
    let currency = form
        .and_then(|f| f.get("currency").cloned())
        .unwrap_or_else(|| currency.to_owned());
    html! {
        p { a href="/admin/products" { "← Products" } }
        h1 { "New product" }
        (alert(error))
        form method="post" action="/admin/products/new" {
            (page.csrf_field())
            label for="title" { "Title" }
            input type="text" id="title" name="title" value=(value("title")) required maxlength="200";
            label for="description" { "Description" }
            textarea id="description" name="description" rows="4" maxlength="10000" { (value("description")) }
            fieldset {
                legend { "First variant" }
                div class="row" {
                    div {
                        label for="sku" { "SKU" }
                        input type="text" id="sku" name="sku" value=(value("sku")) required pattern="[A-Za-z0-9._-]{1,64}";
                    }
                    div {
                        label for="price" { "Price" }
                        input type="text" inputmode="decimal" id="price" name="price" value=(value("price")) required;
                    }
                    div {
                        label for="currency" { "Currency" }
                        input type="text" id="currency" name="currency" value=(currency) required pattern="[A-Z]{3}" maxlength="3";
                    }
                    div {
                        label for="stock" { "Stock" }
                        input type="number" min="0" id="stock" name="stock" value=(value("stock"));
                    }
                }
            }
            p { button type="submit" { "Create product" } }
        }
    }
}

pub async fn show_new(
    State(state): State<AppState>,
    page: StaffPage,
) -> Result<Response, PageError> {
    if let Err(r) = staff_for(&state, &page, "product.new", "").await {
        return Ok(*r);
    }
    let snap = state.catalog.snapshot(&page.tenant.catalog).await?;
    let currency = snap.catalog.some_currency().unwrap_or("EUR").to_owned();
    Ok(page.render(
        StatusCode::OK,
        "New product",
        new_form(&page, None, &currency, None),
    ))
}

pub async fn create(
    State(state): State<AppState>,
    page: StaffPage,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(field(&form, "csrf"))?;
    let who = match staff_for(&state, &page, "product.create", "").await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let admin = state.catalog_admin(&page.tenant);
    let result: Result<Product, ApiError> = async {
        let currency = field(&form, "currency").trim().to_ascii_uppercase();
        let amount_minor = parse_price("price", field(&form, "price"), &currency)?;
        let stock = stock_value("stock", field(&form, "stock"))?;
        let sku = field(&form, "sku").trim().to_owned();
        let draft = ProductDraft {
            title: field(&form, "title").trim().to_owned(),
            description: field(&form, "description").to_owned(),
            categories: Vec::new(),
            variants: vec![Variant {
                sku: sku.clone(),
                price: Money {
                    amount_minor,
                    currency,
                },
                attributes: Default::default(),
                images: Vec::new(),
                weight_grams: 0,
                requires_shipping: true,
                tax_class: None,
            }],
        };
        let product = admin.create_product(draft).await?;
        if let Some(n) = stock {
            admin.set_stock(&sku, n).await?;
        }
        Ok(product)
    }
    .await;
    match result {
        Ok(product) => {
            page.record(
                &state,
                &who.actor,
                "product.create",
                &product.id.to_string(),
                StatusCode::CREATED,
            )
            .await;
            Ok(page.redirect(&format!("/admin/products/{}", product.id)))
        }
        Err(e) => {
            let Some(message) = message_of(&e) else {
                return Err(e.into());
            };
            let status = status_of(&e);
            page.record(&state, &who.actor, "product.create", "", status)
                .await;
            Ok(page.render(
                status,
                "New product",
                new_form(&page, Some(&form), "EUR", Some(&message)),
            ))
        }
    }
}
