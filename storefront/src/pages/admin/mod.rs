//! The merchant web app under `/admin/` on the store's own host: sign-in, invitations,
//! dashboard, products, orders, staff and the audit log. Server-rendered with maud like the
//! shop pages, calling the same services as the merchant API.
//!
//! A realm apart from shoppers: the `sf_staff` cookie (HttpOnly, SameSite=Strict, `Path=/admin`,
//! Secure over TLS) holds a staff session token checked against the tenant's `staff_sessions`;
//! a shopper's `sf_session` means nothing here. Every form carries the `sf_staff_csrf` cookie's
//! value (double-submit, constant-time compare) and a POST whose `Origin` is another host is
//! refused. Each action a page takes lands in the audit log.

pub mod dashboard;
pub mod imports;
pub mod orders;
pub mod products;
pub mod session;
pub mod staff;

use std::sync::Arc;

use axum::{
    Router,
    extract::FromRequestParts,
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use maud::{DOCTYPE, Markup, html};

use super::{PageError, cookie, csrf::Csrf, shopper::cookie_header};
use crate::{
    app::AppState,
    domain::{
        Invalid,
        staff::{Access, Actor, Permission, StaffMember},
    },
    http::{
        error::ApiError,
        extract::{ClientIp, came_over_tls},
    },
    services::staff::{SESSION_TTL, Staff, StaffError},
    tenants::TenantRuntime,
};

pub const STAFF_COOKIE: &str = "sf_staff";
pub const STAFF_CSRF_COOKIE: &str = "sf_staff_csrf";

const STYLESHEET: &str = include_str!("admin.css");

/// No scripts at all; forms post only to the store itself.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
    form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// `import_limit`: the largest file the import form takes (every other form keeps the small
/// general body limit).
pub fn routes(import_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/", get(dashboard::show))
        .route(
            "/admin/signin",
            get(session::show_sign_in).post(session::sign_in),
        )
        .route("/admin/signout", post(session::sign_out))
        .route(
            "/admin/accept",
            get(session::show_accept).post(session::accept),
        )
        .route("/admin/products", get(products::list))
        .route(
            "/admin/products/new",
            get(products::show_new).post(products::create),
        )
        .route(
            "/admin/products/{id}",
            get(products::show).post(products::save),
        )
        .route("/admin/orders", get(orders::list))
        .route("/admin/orders/{id}", get(orders::show))
        .route("/admin/orders/{id}/fulfil", post(orders::fulfil))
        .route("/admin/orders/{id}/refund", post(orders::refund))
        .route("/admin/staff", get(staff::show).post(staff::invite))
        .route("/admin/staff/{id}", post(staff::update))
        .route("/admin/audit", get(staff::audit))
        .route(
            "/admin/imports",
            get(imports::list)
                .post(imports::create)
                .layer(axum::extract::DefaultBodyLimit::max(import_limit)),
        )
        .route("/admin/imports/{id}", get(imports::show))
        .route("/admin/exports/{kind}", get(imports::export))
        .route("/admin/assets/admin.css", get(stylesheet))
}

async fn stylesheet() -> Response {
    let mut res = STYLESHEET.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

/// The staff member behind an `/admin/` request (if signed in) and what the page needs to
/// answer: tenant by host, CSRF token, cookies to set.
pub struct StaffPage {
    pub tenant: Arc<TenantRuntime>,
    pub member: Option<StaffMember>,
    session_token: Option<String>,
    csrf: Csrf,
    pub secure: bool,
    pub ip: String,
    set_cookies: Vec<HeaderValue>,
}

/// `Set-Cookie` for an admin cookie: HttpOnly, SameSite=Strict, only sent to `/admin`.
pub fn admin_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    cookie_header(
        name,
        value,
        "Path=/admin; HttpOnly; SameSite=Strict",
        max_age,
        secure,
    )
}

impl FromRequestParts<AppState> for StaffPage {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let tenant = state.tenants.resolve(&host).ok_or(PageError::UnknownHost)?;
        let secure = came_over_tls(&parts.uri, &parts.headers);
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
        let mut set_cookies = Vec::new();
        let mut member = None;
        let mut session_token = None;
        if let Some(token) = cookie(&parts.headers, STAFF_COOKIE) {
            match Staff::new(state, &tenant).session(token).await {
                Ok(m) => {
                    member = Some(m);
                    session_token = Some(token.to_owned());
                }
                Err(StaffError::Unauthenticated) => {
                    set_cookies.push(admin_cookie(STAFF_COOKIE, "", Some(0), secure));
                }
                Err(e) => return Err(PageError::Api(e.into())),
            }
        }
        let csrf = Csrf::from_request(
            &parts.headers,
            &host,
            STAFF_CSRF_COOKIE,
            |t| admin_cookie(STAFF_CSRF_COOKIE, t, None, secure),
            &mut set_cookies,
        );
        Ok(StaffPage {
            tenant,
            member,
            session_token,
            csrf,
            secure,
            ip,
            set_cookies,
        })
    }
}

/// The answer a page gives instead when the caller may not see it: a redirect to sign in,
/// or a 403 page.
pub type Refusal = Box<Response>;

/// What a page for signed-in staff gets: the member and the actor they act as.
pub struct SignedInStaff {
    pub member: StaffMember,
    pub actor: Actor,
}

impl StaffPage {
    /// The signed-in member, or a redirect to the sign-in page.
    pub fn signed_in(&self) -> Result<SignedInStaff, Refusal> {
        match &self.member {
            Some(m) => Ok(SignedInStaff {
                member: m.clone(),
                actor: m.actor(),
            }),
            None => Err(Box::new(self.redirect("/admin/signin"))),
        }
    }

    pub fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref()
    }

    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        self.csrf.check(sent)
    }

    pub fn add_cookie(&mut self, value: HeaderValue) {
        self.set_cookies.push(value);
    }

    /// Starts a staff session: the cookie lives as long as the session.
    pub fn start_session(&mut self, token: &str) {
        let secs = i64::try_from(SESSION_TTL.as_secs()).unwrap_or(12 * 3600);
        let c = admin_cookie(STAFF_COOKIE, token, Some(secs), self.secure);
        self.add_cookie(c);
    }

    pub fn csrf_field(&self) -> Markup {
        self.csrf.field()
    }

    pub fn render(&self, status: StatusCode, title: &str, main: Markup) -> Response {
        let body = layout(self, title, main);
        let mut res = admin_html(status, body);
        self.attach_cookies(&mut res);
        res
    }

    /// A 403 page naming what is missing, recorded in the audit log by the caller.
    pub fn denied(&self, what: &str) -> Response {
        let main = html! {
            h1 { "Not allowed" }
            p class="alert" role="alert" { (what) }
            p { a href="/admin/" { "Back to the dashboard" } }
        };
        self.render(StatusCode::FORBIDDEN, "Not allowed", main)
    }

    pub fn redirect(&self, to: &str) -> Response {
        let mut res = StatusCode::SEE_OTHER.into_response();
        if let Ok(loc) = HeaderValue::from_str(to) {
            res.headers_mut().insert(header::LOCATION, loc);
        }
        res.headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        self.attach_cookies(&mut res);
        res
    }

    fn attach_cookies(&self, res: &mut Response) {
        for c in &self.set_cookies {
            res.headers_mut().append(header::SET_COOKIE, c.clone());
        }
    }

    /// Records what the signed-in member did (or tried) in the audit log.
    pub async fn record(
        &self,
        state: &AppState,
        actor: &Actor,
        action: &str,
        target: &str,
        status: StatusCode,
    ) {
        Staff::new(state, &self.tenant)
            .record(actor, action, target, status.as_u16(), &self.ip)
            .await;
    }

    /// Refuses (403 page, audited) unless the actor may do what `access` names.
    /// The signed-in member if they have `access`; otherwise a redirect to sign in, or a 403
    /// page with the refusal recorded in the audit log as `action` on `target`.
    pub async fn authorise(
        &self,
        state: &AppState,
        access: Access,
        action: &str,
        target: &str,
    ) -> Result<SignedInStaff, Refusal> {
        let who = self.signed_in()?;
        match crate::services::staff::require(&who.actor, access) {
            Ok(()) => Ok(who),
            Err(e) => {
                self.record(state, &who.actor, action, target, StatusCode::FORBIDDEN)
                    .await;
                Err(Box::new(self.denied(&e.to_string())))
            }
        }
    }
}

fn admin_html(status: StatusCode, body: Markup) -> Response {
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
    // Invitation links carry their token in the query: never send it to another site.
    // (`no-referrer` would also make browsers send `Origin: null` on our own form posts.)
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn layout(page: &StaffPage, title: &str, main: Markup) -> Markup {
    let name = &page.tenant.config.display_name;
    let actor = page.member.as_ref().map(StaffMember::actor);
    let can = |p: Permission| actor.as_ref().is_some_and(|a| a.holds(p));
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (name) " admin" }
                link rel="stylesheet" href="/admin/assets/admin.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="admin" {
                    div class="bar" {
                        a class="brand" href="/admin/" { (name) " · admin" }
                        @if let Some(m) = &page.member {
                            nav aria-label="Admin" {
                                ul {
                                    li { a href="/admin/" { "Dashboard" } }
                                    @if can(Permission::Catalog) { li { a href="/admin/products" { "Products" } } }
                                    @if can(Permission::Catalog) { li { a href="/admin/imports" { "Import" } } }
                                    @if can(Permission::Orders) || can(Permission::Refunds) { li { a href="/admin/orders" { "Orders" } } }
                                    @if can(Permission::Staff) { li { a href="/admin/staff" { "Staff" } } }
                                    @if actor.as_ref().is_some_and(Actor::is_owner) { li { a href="/admin/audit" { "Audit log" } } }
                                    li { a href="/" { "View shop" } }
                                    li {
                                        form method="post" action="/admin/signout" class="inline" {
                                            (page.csrf_field())
                                            button type="submit" class="link" { "Sign out " span class="visually-hidden" { (m.email) } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
            }
        }
    }
}

/// An error or notice box; screen readers announce it.
pub fn alert(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p class="alert" role="alert" { (m) }
        }
    }
}

pub fn notice(message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p class="notice" role="status" { (m) }
        }
    }
}

/// What a merchant may be told about a refusal; `None` for server faults (logged instead).
pub fn message_of(e: &ApiError) -> Option<String> {
    super::shopper_message(e)
}

/// Reads a price typed by a person (`12.50`, `12,50`, `12`) into minor units of `currency`.
pub fn parse_price(field: &str, text: &str, currency: &str) -> Result<i64, Invalid> {
    let places = crate::domain::currency::minor_units(currency)
        .ok_or_else(|| Invalid::new(field, format!("`{currency}` is not a currency code")))?;
    let text = text.trim().replace(',', ".");
    let bad = || Invalid::new(field, "must be a price such as 12.50");
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    if whole.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    if frac.len() > usize::from(places) {
        return Err(Invalid::new(
            field,
            format!("{currency} has {places} decimal places"),
        ));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let scale = 10i64.pow(u32::from(places));
    let frac_minor: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = usize::from(places))
            .parse()
            .map_err(|_| bad())?
    };
    whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(frac_minor))
        .filter(|v| *v <= 1_000_000_000)
        .ok_or_else(|| Invalid::new(field, "is too large"))
}

/// Minor units shown as a decimal the price field accepts back (`1250` EUR → `12.50`).
pub fn price_input(amount_minor: i64, currency: &str) -> String {
    let places = crate::domain::currency::minor_units(currency).unwrap_or(2);
    if places == 0 {
        return amount_minor.to_string();
    }
    let scale = 10i64.pow(u32::from(places));
    format!(
        "{}.{:0width$}",
        amount_minor / scale,
        amount_minor % scale,
        width = usize::from(places)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_read_as_people_type_them() {
        assert_eq!(parse_price("p", "12.5", "EUR"), Ok(1250));
        assert_eq!(parse_price("p", " 12,50 ", "EUR"), Ok(1250));
        assert_eq!(parse_price("p", "12", "EUR"), Ok(1200));
        assert_eq!(parse_price("p", "1500", "JPY"), Ok(1500));
        assert_eq!(parse_price("p", "1.234", "KWD"), Ok(1234));
        for bad in ["", "abc", "-1", "1.999", "1e3", "1.2.3"] {
            assert!(parse_price("p", bad, "EUR").is_err(), "{bad}");
        }
        assert!(parse_price("p", "1.5", "JPY").is_err());
        assert!(parse_price("p", "1", "XYZ").is_err());
        assert_eq!(price_input(1250, "EUR"), "12.50");
        assert_eq!(price_input(5, "EUR"), "0.05");
        assert_eq!(price_input(1500, "JPY"), "1500");
    }
}
