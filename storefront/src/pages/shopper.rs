//! The shopper behind a page request: tenant by host, session and cart by cookie, CSRF token.

use std::sync::Arc;

use axum::{
    extract::FromRequestParts,
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use maud::Markup;
use uuid::Uuid;

use super::{
    CART_COOKIE, CSRF_COOKIE, PageError, SESSION_COOKIE, csrf::Csrf, html_response, layout,
};
use crate::{
    app::AppState,
    domain::ports::Session,
    http::extract::{ClientIp, came_over_tls},
    services::accounts::AccountError,
    tenants::TenantRuntime,
};

/// Reads one cookie from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The shopper behind a page request: the tenant by host, the session and cart by cookie, and
/// the CSRF token the page's forms must send back.
pub struct Shopper {
    pub tenant: Arc<TenantRuntime>,
    pub session: Option<Session>,
    pub guest_cart: Option<Uuid>,
    csrf: Csrf,
    pub ip: String,
    /// Came over TLS (directly or via a proxy that says so): cookies get `Secure`.
    pub secure: bool,
    /// `scheme://host` as the shopper addressed the store (a host of this tenant), for links
    /// in mails.
    pub origin: String,
    /// Cookies to set on the response.
    set_cookies: Vec<HeaderValue>,
}

impl FromRequestParts<AppState> for Shopper {
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

        // Validate the session token exactly as the API does, through the accounts service.
        let mut session = None;
        if let Some(token) = cookie(&parts.headers, SESSION_COOKIE) {
            match state.accounts(&tenant).session(token).await {
                Ok(s) => session = Some(s),
                Err(AccountError::Unauthenticated) => {
                    set_cookies.push(clear_cookie(SESSION_COOKIE, secure));
                }
                Err(e) => return Err(e.into()),
            }
        }
        let guest_cart = cookie(&parts.headers, CART_COOKIE).and_then(|v| Uuid::parse_str(v).ok());
        let csrf = Csrf::from_request(
            &parts.headers,
            &host,
            CSRF_COOKIE,
            |t| set_cookie(CSRF_COOKIE, t, None, secure),
            &mut set_cookies,
        );
        Ok(Shopper {
            tenant,
            session,
            guest_cart,
            csrf,
            ip,
            secure,
            origin: crate::http::extract::origin(&host, secure),
            set_cookies,
        })
    }
}

/// `Set-Cookie` for one of our cookies; `max_age` `None` makes a browser-session cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    cookie_header(
        name,
        value,
        "Path=/; HttpOnly; SameSite=Lax",
        max_age,
        secure,
    )
}

/// `Set-Cookie: <name>=<value>; <scope>` with `Max-Age` and `Secure` when given.
pub fn cookie_header(
    name: &str,
    value: &str,
    scope: &str,
    max_age: Option<i64>,
    secure: bool,
) -> HeaderValue {
    let mut c = format!("{name}={value}; {scope}");
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    // Our values are base64url or UUIDs: always valid header bytes.
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

pub fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", Some(0), secure)
}

impl Shopper {
    pub fn customer(&self) -> Option<Uuid> {
        self.session.as_ref().map(|s| s.customer_id)
    }

    pub fn display_name(&self) -> &str {
        &self.tenant.config.display_name
    }

    /// Refuses a form POST whose CSRF token does not match the cookie's, or whose `Origin`
    /// is another site.
    pub fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        self.csrf.check(sent)
    }

    pub fn add_cookie(&mut self, value: HeaderValue) {
        self.set_cookies.push(value);
    }

    /// Wraps `main` in the store's layout and sets pending cookies.
    pub fn render(&self, status: StatusCode, title: &str, main: Markup) -> Response {
        let mut res = html_response(status, layout::page(self, title, main));
        self.attach_cookies(&mut res);
        res
    }

    /// `303 See Other` to `to`, with pending cookies.
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

    /// The hidden CSRF field every form carries.
    pub fn csrf_field(&self) -> Markup {
        self.csrf.field()
    }
}
