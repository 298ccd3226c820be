//! `/admin/staff` (the team: invite, set permissions, remove) and `/admin/audit` (who did what,
//! when; owner only). The staff service enforces who may grant what.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::{HeaderMap, StatusCode, Uri},
    response::Response,
};
use maud::{Markup, html};
use serde::Deserialize;
use uuid::Uuid;

use super::{SignedInStaff, StaffPage, alert, message_of, notice};
use crate::{
    app::AppState,
    domain::staff::{Access, Permission, Permissions, Role, StaffMember},
    http::{
        error::ApiError,
        extract::came_over_tls,
        staff::{invitation_url, mail_invitation},
    },
    pages::{PageError, status_of},
    services::staff::Staff,
};

fn field<'a>(form: &'a HashMap<String, String>, key: &str) -> &'a str {
    form.get(key).map(String::as_str).unwrap_or("")
}

/// Ticked `perm_<name>` checkboxes.
fn ticked(form: &HashMap<String, String>) -> Permissions {
    Permission::ALL
        .into_iter()
        .filter(|p| form.contains_key(&format!("perm_{}", p.as_str())))
        .collect()
}

fn checkboxes(id_prefix: &str, chosen: &Permissions, grantable: &Permissions) -> Markup {
    html! {
        fieldset class="perms" {
            legend { "Permissions" }
            @for p in Permission::ALL {
                @let id = format!("{id_prefix}-{}", p.as_str());
                div class="check" {
                    input type="checkbox" id=(id) name={ "perm_" (p.as_str()) } checked[chosen.contains(&p)] disabled[!grantable.contains(&p)];
                    label for=(id) { (p.as_str()) span class="hint" { " — " (p.describe()) } }
                }
            }
        }
    }
}

struct Shown<'a> {
    message: Option<&'a str>,
    error: Option<&'a str>,
    /// A new invitation's link, shown once.
    link: Option<(&'a str, &'a str)>,
}

async fn render(
    state: &AppState,
    page: &StaffPage,
    who: &SignedInStaff,
    shown: Shown<'_>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let members = Staff::new(state, &page.tenant)
        .members(&who.actor)
        .await
        .map_err(ApiError::from)?;
    let grantable = who.actor.permissions();
    let main = html! {
        h1 { "Staff" }
        (notice(shown.message))
        (alert(shown.error))
        @if let Some((email, url)) = shown.link {
            div class="notice" role="status" {
                p { "Send this one-time link to " strong { (email) } ". It works once, for 7 days:" }
                p { input type="text" readonly value=(url) aria-label="Invitation link" class="wide" id="invitation-link"; }
            }
        }
        table {
            caption class="visually-hidden" { "Staff of the store" }
            thead { tr { th scope="col" { "Person" } th scope="col" { "Role" } th scope="col" { "Permissions" } } }
            tbody {
                @for m in &members {
                    tr {
                        td { (m.email) @if !m.name.is_empty() { br; span class="hint" { (m.name) } } @if !m.accepted { br; span class="hint" { "invitation pending" } } }
                        td { (m.role.as_str()) }
                        td { (member_form(page, who, m, &grantable)) }
                    }
                }
            }
        }
        section aria-labelledby="invite-heading" {
            h2 id="invite-heading" { "Invite someone" }
            form method="post" action="/admin/staff" {
                (page.csrf_field())
                label for="invite-email" { "Email" }
                input type="email" id="invite-email" name="email" required autocomplete="off";
                (checkboxes("invite", &Permissions::new(), &grantable))
                p { button type="submit" { "Create invitation link" } }
            }
        }
    };
    Ok(page.render(status, "Staff", main))
}

fn member_form(
    page: &StaffPage,
    who: &SignedInStaff,
    m: &StaffMember,
    grantable: &Permissions,
) -> Markup {
    let editable = m.role == Role::Staff && m.id != who.member.id;
    html! {
        @if m.role == Role::Owner {
            "Everything"
        } @else if !editable {
            @for (i, p) in m.permissions.iter().enumerate() { @if i > 0 { ", " } (p.as_str()) }
            @if m.permissions.is_empty() { "none" }
        } @else {
            form method="post" action={ "/admin/staff/" (m.id) } {
                (page.csrf_field())
                (checkboxes(&format!("m-{}", m.id), &m.permissions, grantable))
                div class="row" {
                    button type="submit" name="op" value="save" { "Save permissions" span class="visually-hidden" { " of " (m.email) } }
                    button type="submit" name="op" value="remove" class="secondary" { "Remove" span class="visually-hidden" { " " (m.email) } }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    page: StaffPage,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let who = match page
        .authorise(
            &state,
            Access::Permission(Permission::Staff),
            "staff.list",
            "",
        )
        .await
    {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let message = match q.done.as_deref() {
        Some("saved") => Some("Permissions saved."),
        Some("removed") => Some("Removed from the staff."),
        _ => None,
    };
    let shown = Shown {
        message,
        error: None,
        link: None,
    };
    render(&state, &page, &who, shown, StatusCode::OK).await
}

pub async fn invite(
    State(state): State<AppState>,
    page: StaffPage,
    uri: Uri,
    headers: HeaderMap,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(field(&form, "csrf"))?;
    let email = field(&form, "email");
    let who = match page
        .authorise(
            &state,
            Access::Permission(Permission::Staff),
            "staff.invite",
            email,
        )
        .await
    {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let result = Staff::new(&state, &page.tenant)
        .invite(&who.actor, email, ticked(&form))
        .await
        .map_err(ApiError::from);
    match result {
        Ok(issued) => {
            page.record(
                &state,
                &who.actor,
                "staff.invite",
                &issued.item.email,
                StatusCode::CREATED,
            )
            .await;
            let url = invitation_url(&headers, came_over_tls(&uri, &headers), &issued.secret);
            mail_invitation(&state, &page.tenant, &issued.item.email, &url);
            let shown = Shown {
                message: None,
                error: None,
                link: Some((&issued.item.email, &url)),
            };
            render(&state, &page, &who, shown, StatusCode::CREATED).await
        }
        Err(e) => refused(&state, &page, &who, "staff.invite", email, e).await,
    }
}

async fn refused(
    state: &AppState,
    page: &StaffPage,
    who: &SignedInStaff,
    action: &str,
    target: &str,
    e: ApiError,
) -> Result<Response, PageError> {
    let Some(message) = message_of(&e) else {
        return Err(e.into());
    };
    let status = status_of(&e);
    page.record(state, &who.actor, action, target, status).await;
    let shown = Shown {
        message: None,
        error: Some(&message),
        link: None,
    };
    render(state, page, who, shown, status).await
}

pub async fn update(
    State(state): State<AppState>,
    page: StaffPage,
    Path(id): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(field(&form, "csrf"))?;
    let remove = field(&form, "op") == "remove";
    let action = if remove {
        "staff.remove"
    } else {
        "staff.set_permissions"
    };
    let who = match page
        .authorise(&state, Access::Permission(Permission::Staff), action, &id)
        .await
    {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let id = Uuid::parse_str(&id).map_err(|_| PageError::NotFound)?;
    let staff = Staff::new(&state, &page.tenant);
    let result = if remove {
        staff.remove(&who.actor, id).await.map(|_| "removed")
    } else {
        staff
            .set_permissions(&who.actor, id, ticked(&form))
            .await
            .map(|_| "saved")
    };
    match result.map_err(ApiError::from) {
        Ok(done) => {
            page.record(&state, &who.actor, action, &id.to_string(), StatusCode::OK)
                .await;
            Ok(page.redirect(&format!("/admin/staff?done={done}")))
        }
        Err(e) => refused(&state, &page, &who, action, &id.to_string(), e).await,
    }
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    cursor: Option<String>,
}

pub async fn audit(
    State(state): State<AppState>,
    page: StaffPage,
    Query(q): Query<AuditQuery>,
) -> Result<Response, PageError> {
    let who = match page
        .authorise(&state, Access::Owner, "audit.view", "")
        .await
    {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let cursor = q.cursor.as_deref().filter(|c| Uuid::parse_str(c).is_ok());
    let (entries, next) = Staff::new(&state, &page.tenant)
        .audit(&who.actor, cursor, Some(100))
        .await
        .map_err(ApiError::from)?;
    let main = html! {
        h1 { "Audit log" }
        p class="hint" { "Every change made by staff, API tokens or the store's admin key, newest first. Refusals (403) are recorded too." }
        @if entries.is_empty() {
            p { "Nothing recorded yet." }
        } @else {
            table {
                caption class="visually-hidden" { "Audit log, newest first" }
                thead { tr { th scope="col" { "When (UTC)" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Target" } th scope="col" class="num" { "Result" } } }
                tbody {
                    @for e in &entries {
                        tr {
                            td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                            td { (e.actor_label) }
                            td { code { (e.action) } }
                            td { (e.target) }
                            td class="num" { (e.outcome) }
                        }
                    }
                }
            }
            @if let Some(next) = next {
                p { a href={ "/admin/audit?cursor=" (next) } { "Older entries" } }
            }
        }
    };
    Ok(page.render(StatusCode::OK, "Audit log", main))
}
