//! `/register`: creates an account through the accounts service, as the register API does
//! (validation, rate limit, argon2, a verification mail), signs the shopper in and keeps their
//! guest cart.

use axum::{
    Form,
    extract::{State, rejection::FormRejection},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;

use super::{PageError, Shopper, shopper_message, status_of};
use crate::{
    app::AppState,
    http::error::ApiError,
    services::{accounts::RegisterRequest, carts::adopt_on_login},
};

#[derive(Debug, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn show(shop: Shopper) -> Result<Response, PageError> {
    if shop.session.is_some() {
        return Ok(shop.redirect("/account"));
    }
    Ok(render(&shop, "", "", None, StatusCode::OK))
}

fn render(
    shop: &Shopper,
    name: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "Create an account" }
            (super::layout::alert(error))
            form method="post" action="/register" {
                (shop.csrf_field())
                div class="field" {
                    label for="name" { "Name" }
                    input type="text" id="name" name="name" value=(name) autocomplete="name" maxlength="100";
                }
                div class="field" {
                    label for="email" { "Email" }
                    input type="email" id="email" name="email" value=(email) autocomplete="email" required;
                }
                div class="field" {
                    label for="password" { "Password" }
                    input type="password" id="password" name="password" autocomplete="new-password" minlength="10" maxlength="128" required aria-describedby="password-hint";
                    p id="password-hint" class="hint" { "10 to 128 characters." }
                }
                p { button type="submit" { "Create account" } }
            }
            p { "Already have an account? " a href="/signin" { "Sign in" } }
        }
    };
    shop.render(status, "Create an account", main)
}

pub async fn submit(
    State(state): State<AppState>,
    mut shop: Shopper,
    form: Result<Form<RegisterForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    shop.check_csrf(&form.csrf)?;
    let req = RegisterRequest {
        email: form.email.clone(),
        password: form.password,
        name: form.name.clone(),
    };
    let registered = match state
        .accounts(&shop.tenant)
        .register(&shop.ip, &shop.origin, req)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let e = ApiError::from(e);
            return match shopper_message(&e) {
                Some(m) => Ok(render(
                    &shop,
                    &form.name,
                    &form.email,
                    Some(&m),
                    status_of(&e),
                )),
                None => Err(e.into()),
            };
        }
    };
    // Keep what the shopper put in the cart before registering, as sign-in does.
    adopt_on_login(&shop.tenant.carts, registered.customer.id, shop.guest_cart).await?;
    super::signin::start(&mut shop, &state, &registered.token);
    Ok(shop.redirect("/account"))
}
