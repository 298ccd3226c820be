//! `/checkout`: review the cart, give an email, place the order. Placing goes through the
//! checkout service, as the checkout API does (pricing, stock reservation, payment start,
//! idempotency); the form carries an idempotency key minted with the page, so a double submit
//! places one order.

use axum::{
    Form,
    extract::{State, rejection::FormRejection},
    http::{HeaderValue, StatusCode},
    response::Response,
};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    CART_COOKIE, PageError, Shopper, cart, clear_cookie, money, shopper_message, status_of,
};
use crate::{
    app::AppState,
    domain::{inventory::check_idempotency_key, orders::OrderStatus, ports::CustomerStore as _},
    http::{checkout::recorded_reply, error::ApiError, idempotency::StoredResponse},
    payments::Provider,
    services::{
        carts::CartView,
        checkout::{CheckoutRequest, CheckoutResponse, PlaceOrderError, Placed},
        orders::OrderError,
    },
};

#[derive(Debug, Deserialize)]
pub struct CheckoutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    /// The cart the page showed, so a repeated submit replays its order even after the cart
    /// is gone.
    #[serde(default)]
    cart: String,
    #[serde(default)]
    email: String,
}

pub fn status_label(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::PendingPayment => "Awaiting payment",
        OrderStatus::Paid => "Paid",
        OrderStatus::Fulfilled => "Shipped",
        OrderStatus::Cancelled => "Cancelled",
        OrderStatus::Refunded => "Refunded",
        OrderStatus::PaymentFailed => "Payment failed",
        OrderStatus::Expired => "Expired (not paid in time)",
    }
}

fn payment_note(provider: &str) -> &'static str {
    if provider == "stripe" {
        "Pay by card with Stripe (test mode in development)."
    } else {
        "Pay by bank transfer or on collection: the store confirms your payment by hand."
    }
}

async fn customer_email(shop: &Shopper) -> Result<Option<String>, PageError> {
    match shop.customer() {
        Some(id) => Ok(shop
            .tenant
            .customers
            .by_id(id)
            .await?
            .map(|c| c.customer.email)),
        None => Ok(None),
    }
}

pub async fn show(State(state): State<AppState>, shop: Shopper) -> Result<Response, PageError> {
    let cart = cart::current(&state, &shop).await?;
    let email = customer_email(&shop).await?.unwrap_or_default();
    Ok(render(&shop, cart.as_ref(), &email, None, StatusCode::OK))
}

fn summary(cart: &CartView) -> Markup {
    html! {
        table {
            caption class="visually-hidden" { "Order summary" }
            thead { tr { th scope="col" { "Product" } th scope="col" class="num" { "Quantity" } th scope="col" class="num" { "Total" } } }
            tbody {
                @for l in cart.lines.iter().filter(|l| l.available) {
                    tr {
                        td { (l.title.as_deref().unwrap_or(&l.sku)) }
                        td class="num" { (l.quantity) }
                        td class="num" { @if let Some(t) = &l.line_total { (money(t)) } }
                    }
                }
            }
        }
        @if let Some(total) = &cart.total { p class="price" { "Total: " (money(total)) } }
    }
}

fn render(
    shop: &Shopper,
    cart: Option<&CartView>,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let provider = match shop.tenant.config.payments.provider {
        emporium_tenant_config::PaymentProvider::Stripe => "stripe",
        emporium_tenant_config::PaymentProvider::Manual => "manual",
    };
    let main = html! {
        h1 { "Checkout" }
        (super::layout::alert(error))
        @match cart.filter(|c| c.total.is_some()) {
            None => p { "Your cart is empty. " a href="/" { "Browse the catalog" } "." },
            Some(cart) => {
                (summary(cart))
                form method="post" action="/checkout" class="narrow" {
                    (shop.csrf_field())
                    input type="hidden" name="key" value=(Uuid::new_v4());
                    input type="hidden" name="cart" value=(cart.id);
                    div class="field" {
                        label for="email" { "Email for your receipt" }
                        input type="email" id="email" name="email" value=(email) autocomplete="email" required[shop.session.is_none()] aria-describedby="email-hint";
                        p id="email-hint" class="hint" { "We only use it for this order." }
                    }
                    fieldset {
                        legend { "Payment" }
                        p { (payment_note(provider)) }
                    }
                    p { button type="submit" { "Place order" } }
                }
                @if shop.session.is_none() {
                    p { "Have an account? " a href="/signin" { "Sign in" } " to keep this order in your order history." }
                }
            }
        }
    };
    shop.render(status, "Checkout", main)
}

/// Stripe test mode (a `sk_test_` key, or stripe-mock through `apiBase`): the page can pay with
/// Stripe's test card token `pm_card_visa`, so no card data ever reaches the runtime. Live keys
/// need Stripe.js in the browser, which these pages do not load (no external assets).
fn stripe_test_mode(shop: &Shopper) -> bool {
    let p = &shop.tenant.config.payments;
    p.provider == emporium_tenant_config::PaymentProvider::Stripe
        && (p.api_base.is_some()
            || p.secret_key
                .as_deref()
                .is_some_and(|k| k.starts_with("sk_test_")))
}

fn test_card_form(shop: &Shopper, order: Uuid) -> Markup {
    html! {
        form method="post" action="/checkout/pay" {
            (shop.csrf_field())
            input type="hidden" name="order" value=(order);
            p class="hint" { "This store runs in Stripe test mode: no real card is charged." }
            button type="submit" { "Pay with Stripe test card" }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    order: String,
}

/// `POST /checkout/pay`: confirms the order's PaymentIntent with Stripe's test card token. The
/// order turns paid when Stripe's signed webhook arrives, as for any other payment.
pub async fn pay(
    State(state): State<AppState>,
    shop: Shopper,
    form: Result<Form<PayForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    if !stripe_test_mode(&shop) {
        return Err(PageError::NotFound);
    }
    let id = Uuid::parse_str(form.order.trim()).map_err(|_| PageError::NotFound)?;
    let order = match state
        .orders(&shop.tenant)
        .for_shopper(id, shop.customer())
        .await
    {
        Ok(order) => order,
        Err(OrderError::NotFound) => return Err(PageError::NotFound),
        Err(e) => return Err(e.into()),
    };
    let reference = match (&order.payment_ref, order.status) {
        (Some(r), OrderStatus::PendingPayment) if order.payment_provider == "stripe" => r.clone(),
        _ => {
            return Err(ApiError::Conflict {
                field: Some("order".into()),
                detail: format!(
                    "this order is {}; there is nothing to pay",
                    status_label(order.status).to_lowercase()
                ),
            }
            .into());
        }
    };
    let Provider::Stripe(stripe) =
        Provider::for_tenant(&shop.tenant.config.payments, &state.payments_http)
            .map_err(ApiError::from)?
    else {
        return Err(PageError::NotFound);
    };
    let intent = stripe
        .confirm_intent(&reference, "pm_card_visa")
        .await
        .map_err(ApiError::from)?;
    let main = html! {
        h1 { "Payment submitted" }
        p class="notice" role="status" {
            "Stripe answered “" (intent.status) "” for order " strong { (order.id) } ". "
            "The order shows as paid once Stripe confirms the payment to the store."
        }
        @if shop.session.is_some() { p { a href="/account" { "See your orders" } } }
        @else { p { a href="/" { "Continue shopping" } } }
    };
    Ok(shop.render(StatusCode::OK, "Payment submitted", main))
}

/// Places the order with the form's key, read as the API reads an `Idempotency-Key` header.
async fn place_order(
    state: &AppState,
    shop: &Shopper,
    key: &str,
    cart_id: Uuid,
    req: CheckoutRequest,
) -> Result<Placed<StoredResponse>, PlaceOrderError> {
    let header = HeaderValue::from_str(key).ok();
    let key = check_idempotency_key(header.as_ref().and_then(|v| v.to_str().ok()))?;
    state
        .checkout(&shop.tenant)
        .place(key, cart_id, shop.customer(), req, recorded_reply)
        .await
}

pub async fn place(
    State(state): State<AppState>,
    mut shop: Shopper,
    form: Result<Form<CheckoutForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let cart_id = match Uuid::parse_str(form.cart.trim()) {
        Ok(id) => id,
        Err(_) => match cart::current(&state, &shop).await? {
            Some(c) => c.id,
            None => {
                return Ok(render(
                    &shop,
                    None,
                    &form.email,
                    Some("Your cart is empty."),
                    StatusCode::CONFLICT,
                ));
            }
        },
    };
    let email = form.email.trim();
    let req = CheckoutRequest {
        email: (!email.is_empty()).then(|| email.to_owned()),
    };
    let placed = match place_order(&state, &shop, form.key.trim(), cart_id, req).await {
        Ok(placed) => placed,
        Err(e) => {
            let e = ApiError::from(e);
            return match shopper_message(&e) {
                Some(m) => {
                    let cart = cart::current(&state, &shop).await?;
                    Ok(render(&shop, cart.as_ref(), email, Some(&m), status_of(&e)))
                }
                None => Err(e.into()),
            };
        }
    };
    let placed = match placed {
        Placed::New { receipt, .. } => *receipt,
        // A repeated submit: the confirmation of the order the key placed.
        Placed::Replayed(stored) if (200..300).contains(&stored.status) => {
            serde_json::from_value::<CheckoutResponse>(stored.body)
                .map_err(|e| ApiError::Internal(e.to_string()))?
        }
        Placed::Replayed(stored) => {
            return Err(ApiError::Internal(format!("checkout answered {}", stored.status)).into());
        }
    };
    // The checkout service deleted the cart (the order holds the lines); forget it here too.
    if shop.session.is_none() {
        shop.add_cookie(clear_cookie(CART_COOKIE, shop.secure));
    }
    let o = &placed.order;
    let main = html! {
        h1 { "Thank you, your order is placed" }
        p class="notice" role="status" {
            "Order " strong { (o.id) } " · " (status_label(o.status))
        }
        table {
            caption class="visually-hidden" { "Your order" }
            thead { tr { th scope="col" { "Product" } th scope="col" class="num" { "Quantity" } th scope="col" class="num" { "Price" } } }
            tbody {
                @for l in &o.lines {
                    tr { td { (l.title) } td class="num" { (l.quantity) } td class="num" { (money(&l.unit_price)) } }
                }
            }
        }
        p class="price" { "Total: " (money(&o.total)) }
        p { (payment_note(&placed.payment.provider)) }
        @if let Some(r) = &placed.payment.reference { p class="hint" { "Payment reference: " (r) } }
        @if placed.payment.provider == "stripe" && stripe_test_mode(&shop) && o.status == OrderStatus::PendingPayment {
            (test_card_form(&shop, o.id))
        }
        @if shop.session.is_some() {
            p { a href="/account" { "See your orders" } }
        } @else {
            p { a href="/" { "Continue shopping" } }
        }
    };
    Ok(shop.render(StatusCode::OK, "Order placed", main))
}
