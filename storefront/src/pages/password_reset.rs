//! `/forgot-password` and `/reset-password`: a shopper who forgot their password asks for a
//! link by mail and chooses a new password on the page it opens. Both go through the accounts
//! service as the API does (same answer for every address, rate limits, single-use links,
//! every session ended on reset).

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;

use super::{
    PageError, SESSION_COOKIE, Shopper, clear_cookie, layout::alert, shopper_message, status_of,
};
use crate::{
    app::AppState,
    http::{auth::RESET_ACCEPTED, error::ApiError},
    services::accounts::AccountError,
};

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    new_password: String,
}

pub async fn show_forgot(shop: Shopper) -> Result<Response, PageError> {
    Ok(render_forgot(&shop, "", None, StatusCode::OK))
}

fn render_forgot(shop: &Shopper, email: &str, error: Option<&str>, status: StatusCode) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "Forgot your password?" }
            (alert(error))
            p { "Tell us the email address of your account and we mail you a link to choose a new password." }
            form method="post" action="/forgot-password" {
                (shop.csrf_field())
                div class="field" {
                    label for="email" { "Email" }
                    input type="email" id="email" name="email" value=(email) autocomplete="email" required;
                }
                p { button type="submit" { "Mail me a link" } }
            }
            p { a href="/signin" { "Back to sign in" } }
        }
    };
    shop.render(status, "Forgot your password?", main)
}

pub async fn submit_forgot(
    State(state): State<AppState>,
    shop: Shopper,
    form: Result<Form<ForgotForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let asked = state
        .accounts(&shop.tenant)
        .request_password_reset(&shop.ip, &shop.origin, &form.email)
        .await;
    match asked.map_err(ApiError::from) {
        Ok(()) => {
            let main = html! {
                div class="narrow" {
                    h1 { "Check your mail" }
                    p role="status" { (RESET_ACCEPTED) }
                    p { a href="/signin" { "Back to sign in" } }
                }
            };
            Ok(shop.render(StatusCode::OK, "Check your mail", main))
        }
        Err(e) => match shopper_message(&e) {
            Some(m) => Ok(render_forgot(&shop, &form.email, Some(&m), status_of(&e))),
            None => Err(e.into()),
        },
    }
}

/// The page a reset link opens: a form for the new password (the link is used only when it is
/// sent, so a mail scanner that opens links does not burn it).
pub async fn show_reset(
    State(state): State<AppState>,
    shop: Shopper,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(|e| PageError::BadForm(e.body_text()))?;
    if !state
        .accounts(&shop.tenant)
        .reset_link_live(&q.token)
        .await?
    {
        return Ok(dead_link(&shop));
    }
    Ok(render_reset(&shop, &q.token, None, StatusCode::OK))
}

fn render_reset(shop: &Shopper, token: &str, error: Option<&str>, status: StatusCode) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "Choose a new password" }
            (alert(error))
            form method="post" action="/reset-password" {
                (shop.csrf_field())
                input type="hidden" name="token" value=(token);
                div class="field" {
                    label for="new_password" { "New password" }
                    input type="password" id="new_password" name="new_password" autocomplete="new-password" minlength="10" maxlength="128" required aria-describedby="password-hint";
                    p id="password-hint" class="hint" { "10 to 128 characters. Every device signed in to your account is signed out." }
                }
                p { button type="submit" { "Set new password" } }
            }
        }
    };
    shop.render(status, "Choose a new password", main)
}

fn dead_link(shop: &Shopper) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "This link does not work" }
            p role="alert" { "The link is invalid, was used already, or has expired." }
            p { a href="/forgot-password" { "Ask for a new link" } }
        }
    };
    shop.render(
        StatusCode::UNPROCESSABLE_ENTITY,
        "This link does not work",
        main,
    )
}

pub async fn submit_reset(
    State(state): State<AppState>,
    mut shop: Shopper,
    form: Result<Form<ResetForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let reset = state
        .accounts(&shop.tenant)
        .reset_password(&form.token, form.new_password)
        .await;
    match reset {
        Ok(()) => {
            // Every session of the customer ended, this browser's too if it had one.
            shop.add_cookie(clear_cookie(SESSION_COOKIE, shop.secure));
            shop.session = None;
            let main = html! {
                div class="narrow" {
                    h1 { "Your password is changed" }
                    p role="status" { "Every device that was signed in to your account is signed out. Sign in with your new password." }
                    p { a href="/signin" { "Sign in" } }
                }
            };
            Ok(shop.render(StatusCode::OK, "Your password is changed", main))
        }
        Err(AccountError::TokenInvalid) => Ok(dead_link(&shop)),
        Err(e) => {
            let e = ApiError::from(e);
            match shopper_message(&e) {
                Some(m) => Ok(render_reset(&shop, &form.token, Some(&m), status_of(&e))),
                None => Err(e.into()),
            }
        }
    }
}
