//! Shopper web pages, server-rendered by the runtime for the tenant the `Host` names. Pages call
//! the same services ([`crate::services`]) as the JSON API, so rules live in one place; this
//! module only adds HTML (maud, escaped by default), cookies and CSRF protection.
//!
//! Sessions: the `sf_session` cookie holds the same opaque token the API takes as a bearer token
//! (HttpOnly, SameSite=Lax, Secure when the request came over TLS). CSRF: every form POST must
//! carry the value of the `sf_csrf` cookie in its `csrf` field (double-submit, compared in constant
//! time), on top of SameSite=Lax; a POST whose `Origin` names another host is refused too.

pub mod account;
pub mod admin;
pub mod assets;
pub mod cart;
pub mod checkout;
mod csrf;
pub mod error;
pub mod home;
pub mod layout;
pub mod password_reset;
pub mod product;
pub mod register;
pub mod search;
pub mod shopper;
pub mod signin;
pub mod theme;
pub mod verify_email;

use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use maud::Markup;

pub use error::{PageError, shopper_message, status_of};
pub use shopper::{Shopper, clear_cookie, cookie, set_cookie};

use crate::app::AppState;

pub const SESSION_COOKIE: &str = "sf_session";
pub const CART_COOKIE: &str = "sf_cart";
pub const CSRF_COOKIE: &str = "sf_csrf";

/// The page routes; the app's router merges them. `import_limit`: the largest file the admin
/// app's import form takes.
pub fn routes(import_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/", get(home::show))
        .route("/products/{id}", get(product::show))
        .route("/search", get(search::show))
        .route("/cart", get(cart::show).post(cart::change))
        .route("/checkout", get(checkout::show).post(checkout::place))
        .route("/checkout/pay", post(checkout::pay))
        .route("/checkout/complete", get(checkout::complete))
        .route("/signin", get(signin::show).post(signin::submit))
        .route("/register", get(register::show).post(register::submit))
        .route("/account", get(account::show))
        .route("/account/verification", post(verify_email::resend))
        .route(
            "/forgot-password",
            get(password_reset::show_forgot).post(password_reset::submit_forgot),
        )
        .route(
            "/reset-password",
            get(password_reset::show_reset).post(password_reset::submit_reset),
        )
        .route(
            "/verify-email",
            get(verify_email::show).post(verify_email::submit),
        )
        .route("/signout", post(signin::sign_out))
        .route("/assets/storefront.css", get(assets::stylesheet))
        .route("/assets/theme.css", get(assets::theme))
        .route("/assets/stock.js", get(assets::stock_script))
        .merge(admin::routes(import_limit))
}

/// Security headers every page carries: no external anything, no framing, no sniffing. Forms
/// post to the store itself; the one that pays redirects to Stripe's hosted Checkout page,
/// which `form-action` must allow (browsers apply it to the redirect too).
const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; \
    img-src 'self' https: http: data:; form-action 'self' https://checkout.stripe.com; \
    frame-ancestors 'none'; base-uri 'none'";

pub fn html_response(status: StatusCode, body: Markup) -> Response {
    let mut res = (status, body.into_string()).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    // Pages carry the shopper's CSRF token and cart: never store them in shared caches.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Formats money for shoppers: minor units with the currency's decimal places (two for EUR,
/// none for JPY, three for KWD) and the currency code.
pub fn money(m: &crate::domain::pricing::Money) -> String {
    let sign = if m.amount_minor < 0 { "-" } else { "" };
    let abs = m.amount_minor.unsigned_abs();
    match crate::domain::currency::minor_units(&m.currency).unwrap_or(2) {
        0 => format!("{sign}{abs} {}", m.currency),
        places => {
            let scale = 10u64.pow(u32::from(places));
            let width = usize::from(places);
            format!(
                "{sign}{}.{:0width$} {}",
                abs / scale,
                abs % scale,
                m.currency
            )
        }
    }
}
