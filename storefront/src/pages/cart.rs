//! `/cart`: the shopper's cart, changed through plain HTML forms (add, update, remove). Every
//! change goes through the carts service, so limits and pricing are the API's.

use axum::{
    Form,
    extract::{State, rejection::FormRejection},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{CART_COOKIE, PageError, Shopper, money, set_cookie, shopper_message, status_of};
use crate::{
    app::AppState,
    domain::ports::CartStore as _,
    http::error::ApiError,
    services::carts::{CartError, CartView},
};

/// How long a guest's cart cookie lives; the cart itself expires in storage on its own TTL.
const CART_COOKIE_SECS: i64 = 14 * 24 * 3600;

/// The shopper's cart, if they have one that still exists.
pub async fn current(state: &AppState, shop: &Shopper) -> Result<Option<CartView>, PageError> {
    let id = match shop.customer() {
        Some(customer) => shop.tenant.carts.customer_cart(customer).await?,
        None => shop.guest_cart,
    };
    let Some(id) = id else { return Ok(None) };
    match state.carts(&shop.tenant).show(id, shop.customer()).await {
        Ok(view) => Ok(Some(view)),
        Err(e) if e.is_unusable_cart() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A new cart (or, for a customer, their existing one), as the API's create gives it.
async fn create(state: &AppState, shop: &mut Shopper) -> Result<Uuid, PageError> {
    let id = state
        .carts(&shop.tenant)
        .open(shop.customer())
        .await?
        .cart
        .id;
    if shop.session.is_none() {
        let cookie = set_cookie(
            CART_COOKIE,
            &id.to_string(),
            Some(CART_COOKIE_SECS),
            shop.secure,
        );
        shop.add_cookie(cookie);
    }
    Ok(id)
}

#[derive(Debug, Deserialize)]
pub struct CartForm {
    #[serde(default)]
    csrf: String,
    action: String,
    sku: String,
    #[serde(default)]
    quantity: Option<String>,
}

fn quantity(raw: Option<&str>) -> Result<u32, ApiError> {
    raw.map(str::trim)
        .filter(|q| !q.is_empty())
        .unwrap_or("1")
        .parse::<u32>()
        .map_err(|_| ApiError::invalid("quantity", "must be a whole number from 1 to 99"))
}

async fn add_line(
    state: &AppState,
    shop: &Shopper,
    cart: Uuid,
    sku: &str,
    quantity: u32,
) -> Result<(), CartError> {
    let carts = state.carts(&shop.tenant);
    carts
        .add_item(cart, shop.customer(), sku, quantity)
        .await
        .map(drop)
}

async fn apply(state: &AppState, shop: &mut Shopper, form: &CartForm) -> Result<(), PageError> {
    let qty = quantity(form.quantity.as_deref());
    match form.action.as_str() {
        "add" => {
            let qty = qty?;
            // A customer's cart is found (or made) by `create`; a guest's is the cookie's.
            let guest_cart = shop.session.is_none().then_some(shop.guest_cart).flatten();
            let id = match guest_cart {
                Some(id) => id,
                None => create(state, shop).await?,
            };
            match add_line(state, shop, id, &form.sku, qty).await {
                // The guest cart expired or was adopted by an account: start a new one.
                Err(e) if e.is_unusable_cart() && guest_cart.is_some() => {
                    let id = create(state, shop).await?;
                    Ok(add_line(state, shop, id, &form.sku, qty).await?)
                }
                other => Ok(other?),
            }
        }
        "update" | "remove" => {
            let Some(cart) = current(state, shop).await? else {
                return Err(ApiError::NotFound("cart").into());
            };
            let carts = state.carts(&shop.tenant);
            // The page redirects to the cart, which shows the new state.
            if form.action == "update" {
                carts
                    .set_item(cart.id, shop.customer(), &form.sku, qty?)
                    .await?;
            } else {
                carts
                    .remove_item(cart.id, shop.customer(), &form.sku)
                    .await?;
            }
            Ok(())
        }
        _ => Err(ApiError::invalid("action", "must be add, update or remove").into()),
    }
}

pub async fn change(
    State(state): State<AppState>,
    mut shop: Shopper,
    form: Result<Form<CartForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    match apply(&state, &mut shop, &form).await {
        Ok(()) => Ok(shop.redirect("/cart")),
        Err(PageError::Api(e)) if shopper_message(&e).is_some() => {
            let message = shopper_message(&e).unwrap_or_default();
            let cart = current(&state, &shop).await?;
            Ok(render(&shop, cart.as_ref(), Some(&message), status_of(&e)))
        }
        Err(e) => Err(e),
    }
}

pub async fn show(State(state): State<AppState>, shop: Shopper) -> Result<Response, PageError> {
    let cart = current(&state, &shop).await?;
    Ok(render(&shop, cart.as_ref(), None, StatusCode::OK))
}

fn render(
    shop: &Shopper,
    cart: Option<&CartView>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let lines = cart.map(|c| c.lines.as_slice()).unwrap_or_default();
    let main = html! {
        h1 { "Your cart" }
        (super::layout::alert(error))
        @if lines.is_empty() {
            p { "Your cart is empty. " a href="/" { "Browse the catalog" } "." }
        } @else {
            table {
                caption class="visually-hidden" { "Items in your cart" }
                thead {
                    tr { th scope="col" { "Product" } th scope="col" class="num" { "Price" } th scope="col" { "Quantity" } th scope="col" class="num" { "Total" } th scope="col" { span class="visually-hidden" { "Remove" } } }
                }
                tbody {
                    @for (i, l) in lines.iter().enumerate() {
                        @let title = l.title.clone().unwrap_or_else(|| l.sku.clone());
                        tr {
                            td {
                                @if let Some(pid) = l.product_id { a href={ "/products/" (pid) } { (title) } } @else { (title) }
                                @if !l.available { br; span class="hint" { "No longer sold; not counted in the total." } }
                            }
                            td class="num" { @if let Some(p) = &l.unit_price { (money(p)) } }
                            td {
                                form method="post" action="/cart" {
                                    (shop.csrf_field())
                                    input type="hidden" name="action" value="update";
                                    input type="hidden" name="sku" value=(l.sku);
                                    label for={ "line-" (i) } class="visually-hidden" { "Quantity of " (title) }
                                    input class="qty" type="number" id={ "line-" (i) } name="quantity" value=(l.quantity) min="1" max="99" required;
                                    " "
                                    button type="submit" class="secondary" { "Update" span class="visually-hidden" { " " (title) } }
                                }
                            }
                            td class="num" { @if let Some(t) = &l.line_total { (money(t)) } }
                            td {
                                form method="post" action="/cart" {
                                    (shop.csrf_field())
                                    input type="hidden" name="action" value="remove";
                                    input type="hidden" name="sku" value=(l.sku);
                                    button type="submit" class="secondary" { "Remove" span class="visually-hidden" { " " (title) } }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(total) = cart.and_then(|c| c.total.as_ref()) {
                p class="price" { "Total: " (money(total)) }
            }
            p { a class="button" href="/checkout" { "Go to checkout" } }
        }
    };
    shop.render(status, "Cart", main)
}
