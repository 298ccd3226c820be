//! `/checkout`: review the cart, give an email, place the order. Placing goes through the
//! checkout service, as the checkout API does (pricing, stock reservation, payment start,
//! idempotency); the form carries an idempotency key minted with the page, so a double submit
//! places one order.

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse as _, Response},
};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    CART_COOKIE, PageError, Shopper, cart, clear_cookie, money, shopper_message, status_of,
};
use crate::{
    app::AppState,
    domain::shipping::{Address, ShippingSettings},
    domain::{
        inventory::check_idempotency_key,
        orders::{Order, OrderStatus},
        ports::CustomerStore as _,
    },
    http::{checkout::recorded_reply, error::ApiError, idempotency::StoredResponse},
    payments::{Provider, stripe::SessionRequest},
    services::{
        carts::CartView,
        checkout::{CheckoutRequest, CheckoutResponse, PlaceOrderError, Placed},
        orders::OrderError,
        store_settings::{SHIPPING, SettingsError, load_settings},
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
    #[serde(default)]
    ship_name: String,
    #[serde(default)]
    ship_line1: String,
    #[serde(default)]
    ship_line2: String,
    #[serde(default)]
    ship_city: String,
    #[serde(default)]
    ship_postal_code: String,
    #[serde(default)]
    ship_region: String,
    #[serde(default)]
    ship_country: String,
    #[serde(default)]
    shipping_method: String,
    #[serde(default)]
    discount_code: String,
}

impl CheckoutForm {
    /// The address typed in, if any field was (the service names what is missing).
    fn shipping_address(&self) -> Option<Address> {
        let t = |s: &str| s.trim().to_owned();
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let fields = [
            &self.ship_name,
            &self.ship_line1,
            &self.ship_city,
            &self.ship_country,
        ];
        fields
            .iter()
            .any(|f| !f.trim().is_empty())
            .then(|| Address {
                name: t(&self.ship_name),
                line1: t(&self.ship_line1),
                line2: opt(&self.ship_line2),
                city: t(&self.ship_city),
                postal_code: opt(&self.ship_postal_code),
                region: opt(&self.ship_region).map(|r| r.to_ascii_uppercase()),
                country: t(&self.ship_country).to_ascii_uppercase(),
                phone: None,
            })
    }
}

/// What the checkout form offers beside the cart: the payment rule and, when the store ships
/// and the cart holds goods to ship, the address and the merchant's methods.
struct FormContext {
    manual_hold: Option<std::time::Duration>,
    shipping: Option<ShippingSettings>,
    address: Option<Address>,
    method: Option<String>,
}

async fn form_context(
    state: &AppState,
    shop: &Shopper,
    cart: Option<&CartView>,
) -> Result<FormContext, PageError> {
    let settings: ShippingSettings = load_settings(&shop.tenant.orders, SHIPPING).await?;
    let snap = state.catalog.snapshot(&shop.tenant.catalog).await?;
    let ships = cart.is_some_and(|c| {
        c.lines.iter().any(|l| {
            snap.catalog
                .variant(&l.sku)
                .is_some_and(|v| v.requires_shipping)
        })
    });
    let address = match shop.customer() {
        Some(id) if ships && settings.ships() => state
            .store_settings(&shop.tenant)
            .address_book(id)
            .await
            .map_err(|e| match e {
                SettingsError::Store(s) => PageError::from(ApiError::Store(s)),
                SettingsError::Invalid(i) => PageError::from(ApiError::Invalid(i)),
            })?
            .addresses
            .into_iter()
            .next(),
        _ => None,
    };
    Ok(FormContext {
        manual_hold: state.settings.manual_payment_hold,
        shipping: (ships && settings.ships()).then_some(settings),
        address,
        method: None,
    })
}

fn address_fields(address: Option<&Address>) -> Markup {
    let a = address;
    let v = |f: fn(&Address) -> Option<&str>| a.and_then(f).unwrap_or("").to_owned();
    let field = |name: &str, label: &str, value: String, required: bool, autocomplete: &str| {
        html! {
            div class="field" {
                label for=(name) { (label) }
                input type="text" id=(name) name=(name) value=(value) required[required] autocomplete=(autocomplete);
            }
        }
    };
    html! {
        (field("ship_name", "Full name", v(|a| Some(&a.name)), true, "shipping name"))
        (field("ship_line1", "Street and number", v(|a| Some(&a.line1)), true, "shipping address-line1"))
        (field("ship_line2", "Address line 2 (optional)", v(|a| a.line2.as_deref()), false, "shipping address-line2"))
        (field("ship_postal_code", "Postal code", v(|a| a.postal_code.as_deref()), false, "shipping postal-code"))
        (field("ship_city", "City", v(|a| Some(&a.city)), true, "shipping address-level2"))
        (field("ship_region", "Region code (optional, e.g. BY)", v(|a| a.region.as_deref()), false, "shipping address-level1"))
        (field("ship_country", "Country code (e.g. DE)", v(|a| Some(&a.country)), true, "shipping country"))
    }
}

fn method_choice(settings: &ShippingSettings, chosen: Option<&str>) -> Markup {
    html! {
        div class="field" {
            label for="shipping_method" { "Shipping method" }
            select id="shipping_method" name="shipping_method" required {
                @for z in &settings.zones {
                    optgroup label=(z.name) {
                        @for m in &z.methods {
                            option value=(m.id) selected[chosen == Some(m.id.as_str())] {
                                (m.name) " · " (money(&m.price))
                                @if m.per_kg.is_some() { " + by weight" }
                                @if let Some(f) = &m.free_over { " · free from " (money(f)) }
                            }
                        }
                    }
                }
            }
            p class="hint" { "Pick a method for the zone your address is in; the order shows the exact price." }
        }
    }
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

fn payment_note(provider: &str, manual_hold: Option<std::time::Duration>) -> String {
    if provider == "stripe" {
        return "Pay by card on Stripe's secure page after placing the order.".into();
    }
    let held = match manual_hold {
        None => "your items are held for you until then".to_owned(),
        Some(d) if d.as_secs() >= 7200 => format!(
            "your items are held for {} hours, then the order lapses",
            d.as_secs() / 3600
        ),
        Some(d) => format!(
            "your items are held for {} minutes, then the order lapses",
            (d.as_secs() / 60).max(1)
        ),
    };
    format!(
        "Pay by bank transfer or on collection: the store confirms your payment by hand; {held}."
    )
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
    let ctx = form_context(&state, &shop, cart.as_ref()).await?;
    Ok(render(
        &ctx,
        &shop,
        cart.as_ref(),
        &email,
        None,
        StatusCode::OK,
    ))
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
    ctx: &FormContext,
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
                    @if let Some(settings) = &ctx.shipping {
                        fieldset {
                            legend { "Shipping address" }
                            (address_fields(ctx.address.as_ref()))
                            (method_choice(settings, ctx.method.as_deref()))
                        }
                    }
                    div class="field" {
                        label for="discount_code" { "Discount code (optional)" }
                        input type="text" id="discount_code" name="discount_code" autocomplete="off";
                    }
                    fieldset {
                        legend { "Payment" }
                        p { (payment_note(provider, ctx.manual_hold)) }
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

/// The "Pay with card" button of a Stripe order: it sends the shopper to Stripe's hosted page.
fn pay_form(shop: &Shopper, order: Uuid, label: &str) -> Markup {
    html! {
        form method="post" action="/checkout/pay" {
            (shop.csrf_field())
            input type="hidden" name="order" value=(order);
            p class="hint" { "You pay on Stripe's secure page and come back here; the store never sees your card." }
            button type="submit" { (label) }
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

/// The shopper's unpaid Stripe order named by a form or link, or why there is nothing to pay.
async fn payable_order(state: &AppState, shop: &Shopper, raw_id: &str) -> Result<Order, PageError> {
    let id = Uuid::parse_str(raw_id.trim()).map_err(|_| PageError::NotFound)?;
    match state
        .orders(&shop.tenant)
        .for_shopper(id, shop.customer())
        .await
    {
        Ok(order) => Ok(order),
        Err(OrderError::NotFound) => Err(PageError::NotFound),
        Err(e) => Err(e.into()),
    }
}

/// `POST /checkout/pay`: opens a Stripe Checkout Session for the order and redirects the shopper
/// to Stripe's hosted page (no card data ever reaches the runtime). Stripe sends the shopper
/// back to `/checkout/complete`; the order turns paid when Stripe's signed webhook arrives.
pub async fn pay(
    State(state): State<AppState>,
    shop: Shopper,
    form: Result<Form<PayForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let Ok(Provider::Stripe(stripe)) =
        Provider::for_tenant(&shop.tenant.config.payments, &state.payments_http)
    else {
        return Err(PageError::NotFound);
    };
    let order = payable_order(&state, &shop, &form.order).await?;
    if order.payment_provider != "stripe" || order.status != OrderStatus::PendingPayment {
        return Err(ApiError::Conflict {
            field: Some("order".into()),
            detail: format!(
                "this order is {}; there is nothing to pay",
                status_label(order.status).to_lowercase()
            ),
        }
        .into());
    }
    let origin = format!(
        "{}://{}",
        if shop.secure { "https" } else { "http" },
        shop.tenant
            .config
            .domains
            .first()
            .map(String::as_str)
            .unwrap_or("localhost")
    );
    let order_id = order.id.to_string();
    let description = format!("Order {order_id} at {}", shop.tenant.config.display_name);
    let success = format!("{origin}/checkout/complete?order={order_id}");
    let cancel = format!("{origin}/checkout/complete?order={order_id}&cancelled=1");
    let session = stripe
        .create_checkout_session(&SessionRequest {
            order_id: &order_id,
            amount_minor: order.total.amount_minor,
            currency: &order.total.currency,
            description: &description,
            email: order.email.as_deref(),
            success_url: &success,
            cancel_url: &cancel,
        })
        .await
        .map_err(ApiError::from)?;
    let url = session
        .url
        .filter(|u| u.starts_with("https://"))
        .ok_or_else(|| ApiError::Internal("Stripe gave the session no https url".into()))?;
    // The session pays with its own PaymentIntent: the one checkout started must not be payable
    // too. Best effort; a payment that slips through anyway is refunded when it arrives.
    if let Some(intent) = order
        .payment_ref
        .as_deref()
        .filter(|r| r.starts_with("pi_"))
        && let Err(e) = stripe.cancel_intent(intent).await
    {
        tracing::info!(order = %order.id, error = %e, "checkout's own PaymentIntent not cancelled");
    }
    let mut res = StatusCode::SEE_OTHER.into_response();
    res.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(&url).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(res)
}

#[derive(Debug, Deserialize)]
pub struct CompleteQuery {
    #[serde(default)]
    order: String,
    #[serde(default)]
    cancelled: Option<String>,
}

/// `GET /checkout/complete`: where Stripe sends the shopper back. Says where the order stands:
/// paid once the webhook arrived, else waiting for Stripe (or, when the shopper cancelled on
/// Stripe's page, a button to try again).
pub async fn complete(
    State(state): State<AppState>,
    shop: Shopper,
    Query(q): Query<CompleteQuery>,
) -> Result<Response, PageError> {
    let order = payable_order(&state, &shop, &q.order).await?;
    let pending = order.status == OrderStatus::PendingPayment;
    let main = html! {
        h1 { @if pending { "Waiting for your payment" } @else { "Your order" } }
        p class="notice" role="status" {
            "Order " strong { (order.id) } " · " (status_label(order.status))
        }
        @if pending && q.cancelled.is_some() {
            p { "The payment was not completed. Your items are held until " (held_until(&order)) "." }
            (pay_form(&shop, order.id, "Try paying again"))
        } @else if pending {
            p { "Stripe is confirming your payment to the store; reload this page in a moment." }
        } @else if order.status == OrderStatus::Paid {
            p { "Thank you: the store received your payment." }
        }
        (totals(&order))
        @if shop.session.is_some() { p { a href="/account" { "See your orders" } } }
        @else { p { a href="/" { "Continue shopping" } } }
    };
    Ok(shop.render(StatusCode::OK, "Payment", main))
}

/// An order's totals as the shopper reads them: subtotal, discount, shipping (and where to),
/// tax by rate (included in the prices, or added), total.
fn totals(o: &Order) -> Markup {
    let detailed = o.shipping.is_some() || o.discount.amount_minor > 0 || !o.tax.lines.is_empty();
    html! {
        @if detailed { p { "Subtotal: " (money(&o.subtotal)) } }
        @if o.discount.amount_minor > 0 { p { "Discount: −" (money(&o.discount)) } }
        @if let Some(s) = &o.shipping {
            p { "Shipping (" (s.name) "): " (money(&s.price)) }
            @if let Some(a) = &o.shipping_address {
                p class="hint" { "Ships to " (a.name) ", " (a.line1) ", " (a.city) ", " (a.country) }
            }
        }
        @if !o.tax.prices_include_tax {
            @for t in &o.tax.lines { p { (t.name) ": " (money(&t.amount)) } }
        }
        p class="price" { "Total: " (money(&o.total)) }
        @if o.tax.prices_include_tax {
            @for t in &o.tax.lines { p class="hint" { "Includes " (t.name) ": " (money(&t.amount)) } }
        }
    }
}

fn held_until(order: &Order) -> String {
    match order.reserved_until {
        Some(t) => t.format("%H:%M UTC").to_string(),
        None => "the store confirms it".into(),
    }
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
                let ctx = form_context(&state, &shop, None).await?;
                return Ok(render(
                    &ctx,
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
    let method = Some(form.shipping_method.trim().to_owned()).filter(|m| !m.is_empty());
    let req = CheckoutRequest {
        email: (!email.is_empty()).then(|| email.to_owned()),
        shipping_address: form.shipping_address(),
        shipping_method: method.clone(),
        billing_address: None,
        discount_code: Some(form.discount_code.trim().to_owned()).filter(|c| !c.is_empty()),
    };
    let typed = (req.shipping_address.clone(), method);
    let placed = match place_order(&state, &shop, form.key.trim(), cart_id, req).await {
        Ok(placed) => placed,
        Err(e) => {
            let e = ApiError::from(e);
            return match shopper_message(&e) {
                Some(m) => {
                    let cart = cart::current(&state, &shop).await?;
                    let mut ctx = form_context(&state, &shop, cart.as_ref()).await?;
                    let (address, method) = typed;
                    ctx.address = address.or(ctx.address);
                    ctx.method = method;
                    Ok(render(
                        &ctx,
                        &shop,
                        cart.as_ref(),
                        email,
                        Some(&m),
                        status_of(&e),
                    ))
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
        (totals(o))
        p { (payment_note(&placed.payment.provider, state.settings.manual_payment_hold)) }
        @if let Some(r) = &placed.payment.reference { p class="hint" { "Payment reference: " (r) } }
        @if placed.payment.provider == "stripe" && o.status == OrderStatus::PendingPayment {
            (pay_form(&shop, o.id, "Pay with card"))
        }
        @if shop.session.is_some() {
            p { a href="/account" { "See your orders" } }
        } @else {
            p { a href="/" { "Continue shopping" } }
        }
    };
    Ok(shop.render(StatusCode::OK, "Order placed", main))
}
