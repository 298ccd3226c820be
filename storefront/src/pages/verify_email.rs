//! `/verify-email`: the page a verification link opens. The address is verified only when the
//! shopper presses the button (a POST), so a mail scanner that opens links does not use it up.
//! `/account/verification` mails a new link.

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection, rejection::QueryRejection},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;

use super::{PageError, Shopper, shopper_message, status_of};
use crate::{app::AppState, http::error::ApiError, services::accounts::AccountError};

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
}

#[derive(Debug, Deserialize)]
pub struct ResendForm {
    #[serde(default)]
    csrf: String,
}

pub async fn show(
    shop: Shopper,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let Query(q) = query.map_err(|e| PageError::BadForm(e.body_text()))?;
    let main = html! {
        div class="narrow" {
            h1 { "Confirm your email address" }
            form method="post" action="/verify-email" {
                (shop.csrf_field())
                input type="hidden" name="token" value=(q.token);
                p { button type="submit" { "Confirm my email address" } }
            }
        }
    };
    Ok(shop.render(StatusCode::OK, "Confirm your email address", main))
}

pub async fn submit(
    State(state): State<AppState>,
    shop: Shopper,
    form: Result<Form<VerifyForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let verified = state.accounts(&shop.tenant).verify_email(&form.token).await;
    let (status, title, message) = match verified {
        Ok(c) => (
            StatusCode::OK,
            "Email address confirmed",
            format!("{} is confirmed as the address of your account.", c.email),
        ),
        Err(AccountError::TokenInvalid) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "This link does not work",
            "The link is invalid, was used already, or has expired. Ask for a new one on your account page.".to_owned(),
        ),
        Err(e) => {
            let e = ApiError::from(e);
            match shopper_message(&e) {
                Some(m) => (status_of(&e), "Email address not confirmed", m),
                None => return Err(e.into()),
            }
        }
    };
    let main = html! {
        div class="narrow" {
            h1 { (title) }
            p role="status" { (message) }
            p { a href="/account" { "Your account" } }
        }
    };
    Ok(shop.render(status, title, main))
}

/// Mails a new verification link (the account page's button).
pub async fn resend(
    State(state): State<AppState>,
    shop: Shopper,
    form: Result<Form<ResendForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let Some(customer) = shop.customer() else {
        return Ok(shop.redirect("/signin"));
    };
    let sent = state
        .accounts(&shop.tenant)
        .resend_verification(&shop.ip, &shop.origin, customer)
        .await
        .map_err(ApiError::from);
    let message = match sent {
        Ok(()) => "A new link is on its way. It works once.".to_owned(),
        Err(e) => match shopper_message(&e) {
            Some(m) => m,
            None => return Err(e.into()),
        },
    };
    let main = html! {
        div class="narrow" {
            h1 { "Confirm your email address" }
            p role="status" { (message) }
            p { a href="/account" { "Your account" } }
        }
    };
    Ok(shop.render(StatusCode::OK, "Confirm your email address", main))
}
