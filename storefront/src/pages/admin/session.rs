//! `/admin/signin`, `/admin/signout` and `/admin/accept` (an invitation link: choose a name and
//! password, then you are signed in).

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Query, State, rejection::FormRejection},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;

use super::{STAFF_COOKIE, StaffPage, admin_cookie, alert, message_of};
use crate::{
    app::AppState,
    http::error::ApiError,
    pages::{PageError, status_of},
    services::staff::{Staff, StaffError},
};

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn show_sign_in(page: StaffPage) -> Result<Response, PageError> {
    if page.member.is_some() {
        return Ok(page.redirect("/admin/"));
    }
    Ok(render_sign_in(&page, "", None, StatusCode::OK))
}

fn render_sign_in(
    page: &StaffPage,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "Sign in to manage the store" }
            (alert(error))
            form method="post" action="/admin/signin" {
                (page.csrf_field())
                label for="email" { "Email" }
                input type="email" id="email" name="email" value=(email) autocomplete="username" required;
                label for="password" { "Password" }
                input type="password" id="password" name="password" autocomplete="current-password" required;
                p { button type="submit" { "Sign in" } }
            }
            p class="hint" { "Staff accounts are separate from shopper accounts. New staff get an invitation link from the store's owner." }
        }
    };
    page.render(status, "Sign in", main)
}

pub async fn sign_in(
    State(state): State<AppState>,
    mut page: StaffPage,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(&form.csrf)?;
    let staff = Staff::new(&state, &page.tenant);
    match staff.sign_in(&page.ip, &form.email, form.password).await {
        Ok(issued) => {
            let actor = issued.item.actor();
            staff
                .record(&actor, "staff.sign_in", &issued.item.email, 200, &page.ip)
                .await;
            page.start_session(&issued.secret);
            Ok(page.redirect("/admin/"))
        }
        Err(StaffError::Unauthenticated) => Ok(render_sign_in(
            &page,
            &form.email,
            Some("That email and password do not match a staff account of this store."),
            StatusCode::UNAUTHORIZED,
        )),
        Err(e) => {
            let e = ApiError::from(e);
            match message_of(&e) {
                Some(m) => Ok(render_sign_in(&page, &form.email, Some(&m), status_of(&e))),
                None => Err(e.into()),
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    mut page: StaffPage,
    form: Result<Form<CsrfForm>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(&form.csrf)?;
    if let (Some(token), Some(member)) = (page.session_token(), page.member.clone()) {
        let staff = Staff::new(&state, &page.tenant);
        staff.sign_out(token).await.map_err(ApiError::from)?;
        staff
            .record(
                &member.actor(),
                "staff.sign_out",
                &member.email,
                200,
                &page.ip,
            )
            .await;
    }
    let secure = page.secure;
    page.add_cookie(admin_cookie(STAFF_COOKIE, "", Some(0), secure));
    Ok(page.redirect("/admin/signin"))
}

#[derive(Debug, Deserialize)]
pub struct AcceptQuery {
    #[serde(default)]
    token: String,
}

pub async fn show_accept(
    State(state): State<AppState>,
    page: StaffPage,
    Query(q): Query<AcceptQuery>,
) -> Result<Response, PageError> {
    let found = Staff::new(&state, &page.tenant).invitation(&q.token).await;
    match found {
        Ok(member) => Ok(render_accept(
            &page,
            &q.token,
            &member.email,
            "",
            None,
            StatusCode::OK,
        )),
        Err(StaffError::InvitationInvalid) => Ok(invalid_link(&page)),
        Err(e) => Err(ApiError::from(e).into()),
    }
}

fn invalid_link(page: &StaffPage) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "This invitation link does not work" }
            p class="alert" role="alert" { "It was used already, it expired, or it was replaced by a newer one. Ask the store's owner for a new invitation." }
            p { a href="/admin/signin" { "Sign in" } }
        }
    };
    page.render(StatusCode::GONE, "Invitation", main)
}

fn render_accept(
    page: &StaffPage,
    token: &str,
    email: &str,
    name: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let main = html! {
        div class="narrow" {
            h1 { "Join " (page.tenant.config.display_name) }
            p { "You were invited as " strong { (email) } ". Choose your name and a password to finish." }
            (alert(error))
            form method="post" action="/admin/accept" {
                (page.csrf_field())
                input type="hidden" name="token" value=(token);
                label for="name" { "Your name" }
                input type="text" id="name" name="name" value=(name) autocomplete="name" maxlength="100";
                label for="password" { "Password" }
                input type="password" id="password" name="password" autocomplete="new-password" minlength="10" maxlength="128" required aria-describedby="password-hint";
                p id="password-hint" class="hint" { "10 to 128 characters." }
                p { button type="submit" { "Accept the invitation" } }
            }
        }
    };
    page.render(status, "Accept the invitation", main)
}

pub async fn accept(
    State(state): State<AppState>,
    mut page: StaffPage,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    page.check_csrf(field("csrf"))?;
    let staff = Staff::new(&state, &page.tenant);
    let token = field("token");
    match staff
        .accept(token, field("name"), field("password").to_owned())
        .await
    {
        Ok(issued) => {
            let actor = issued.item.actor();
            staff
                .record(
                    &actor,
                    "staff.accept_invitation",
                    &issued.item.email,
                    200,
                    &page.ip,
                )
                .await;
            page.start_session(&issued.secret);
            Ok(page.redirect("/admin/"))
        }
        Err(StaffError::InvitationInvalid) => Ok(invalid_link(&page)),
        Err(StaffError::Invalid(i)) => {
            let email = staff
                .invitation(token)
                .await
                .map(|m| m.email)
                .unwrap_or_default();
            let message = format!("{}: {}", i.field, i.message);
            Ok(render_accept(
                &page,
                token,
                &email,
                field("name"),
                Some(&message),
                StatusCode::UNPROCESSABLE_ENTITY,
            ))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}
