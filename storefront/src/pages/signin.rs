//! `/signin` and `/signout`. Signing in goes through the accounts service, as the login API does
//! (rate limits, argon2 verification, guest cart merge); the session token lands in an HttpOnly
//! cookie.

use axum::{
    Form,
    extract::{State, rejection::FormRejection},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;

use super::{
    CART_COOKIE, PageError, SESSION_COOKIE, Shopper, clear_cookie, set_cookie, shopper_message,
    status_of,
};
use crate::{app::AppState, http::error::ApiError, services::accounts::LoginRequest};

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

/// Cookie lifetime matching the session's (the server-side session is the real limit).
pub fn session_cookie_secs(state: &AppState) -> i64 {
    i64::try_from(state.settings.session_ttl.as_secs()).unwrap_or(30 * 24 * 3600)
}

/// Sets the session cookie and drops the guest cart cookie (the cart now belongs to the account).
pub fn start(shop: &mut Shopper, state: &AppState, token: &str) {
    let secure = shop.secure;
    shop.add_cookie(set_cookie(
        SESSION_COOKIE,
        token,
        Some(session_cookie_secs(state)),
        secure,
    ));
    shop.add_cookie(clear_cookie(CART_COOKIE, secure));
}

pub async fn show(shop: Shopper) -> Result<Response, PageError> {
    if shop.session.is_some() {
        return Ok(shop.redirect("/account"));
    }
    Ok(render(&shop, "", None, StatusCode::OK))
}

fn render(shop: &Shopper, email: &str, error: Option<&str>, status: StatusCode) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "Sign in" }
            (super::layout::alert(error))
            form method="post" action="/signin" {
                (shop.csrf_field())
                div class="field" {
                    label for="email" { "Email" }
                    input type="email" id="email" name="email" value=(email) autocomplete="email" required;
                }
                div class="field" {
                    label for="password" { "Password" }
                    input type="password" id="password" name="password" autocomplete="current-password" required;
                }
                p { button type="submit" { "Sign in" } }
            }
            p { a href="/forgot-password" { "Forgot your password?" } }
            p { "New here? " a href="/register" { "Create an account" } }
        }
    };
    shop.render(status, "Sign in", main)
}

pub async fn submit(
    State(state): State<AppState>,
    mut shop: Shopper,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let req = LoginRequest {
        email: form.email.clone(),
        password: form.password,
        guest_cart_id: shop.guest_cart,
    };
    let result = state.accounts(&shop.tenant).login(&shop.ip, req).await;
    match result.map_err(ApiError::from) {
        Ok(session) => {
            start(&mut shop, &state, &session.token);
            Ok(shop.redirect("/account"))
        }
        Err(ApiError::Unauthenticated) => Ok(render(
            &shop,
            &form.email,
            Some("That email and password do not match an account of this store."),
            StatusCode::UNAUTHORIZED,
        )),
        Err(e) => match shopper_message(&e) {
            Some(m) => Ok(render(&shop, &form.email, Some(&m), status_of(&e))),
            None => Err(e.into()),
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct SignOutForm {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (as the logout API does) and clears the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    mut shop: Shopper,
    form: Result<Form<SignOutForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    if let Some(session) = &shop.session {
        state.accounts(&shop.tenant).logout(session).await?;
    }
    shop.add_cookie(clear_cookie(SESSION_COOKIE, shop.secure));
    shop.session = None;
    Ok(shop.redirect("/"))
}
