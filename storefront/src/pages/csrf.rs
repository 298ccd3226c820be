//! CSRF protection of the server-rendered forms, one mechanism for the shop's pages and the
//! merchant app's: a double-submit token (a cookie whose value every form sends back in a
//! hidden `csrf` field) plus, when the browser sends an `Origin`, that origin must be the
//! store's own host. A request that came without the cookie gets a fresh token, and no form it
//! posts counts as genuine.

use axum::http::{HeaderMap, HeaderValue, header};
use maud::{Markup, html};
use subtle::ConstantTimeEq as _;

use super::{PageError, cookie};
use crate::domain::accounts::new_session_token;

/// Length of a token [`new_session_token`] makes (32 random bytes, base64url).
const TOKEN_LEN: usize = 43;

/// The CSRF state of one page request.
pub struct Csrf {
    token: String,
    /// The request came without a (well-formed) token cookie.
    minted: bool,
    origin_ok: bool,
}

impl Csrf {
    /// Reads the token from the cookie `cookie_name`, or mints one and pushes its
    /// `Set-Cookie`, made by `set_cookie`, onto `set_cookies`. `host` is the request's `Host`.
    pub fn from_request(
        headers: &HeaderMap,
        host: &str,
        cookie_name: &str,
        set_cookie: impl FnOnce(&str) -> HeaderValue,
        set_cookies: &mut Vec<HeaderValue>,
    ) -> Self {
        let (token, minted) = match cookie(headers, cookie_name) {
            Some(t) if t.len() == TOKEN_LEN => (t.to_owned(), false),
            _ => {
                let t = new_session_token();
                set_cookies.push(set_cookie(&t));
                (t, true)
            }
        };
        // Browsers send Origin on cross-site POSTs; when present it must be this host.
        let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            None => true,
            Some(origin) => origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest.eq_ignore_ascii_case(host)),
        };
        Self {
            token,
            minted,
            origin_ok,
        }
    }

    /// Accepts a form whose `csrf` field is `sent`, or refuses it with [`PageError::Csrf`].
    pub fn check(&self, sent: &str) -> Result<(), PageError> {
        let same = bool::from(sent.as_bytes().ct_eq(self.token.as_bytes()));
        if self.minted || !same || !self.origin_ok {
            return Err(PageError::Csrf);
        }
        Ok(())
    }

    /// The hidden field every form carries.
    pub fn field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.token); }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(k.clone(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn csrf(h: &HeaderMap) -> (Csrf, usize) {
        let mut set = Vec::new();
        let c = Csrf::from_request(
            h,
            "shop.test",
            "t",
            |_| HeaderValue::from_static("t=x"),
            &mut set,
        );
        (c, set.len())
    }

    #[test]
    fn a_matching_token_from_the_same_origin_is_accepted() {
        let token = "a".repeat(TOKEN_LEN);
        let h = headers(&[
            (header::COOKIE, &format!("t={token}")),
            (header::ORIGIN, "https://shop.test"),
        ]);
        let (c, minted) = csrf(&h);
        assert_eq!(minted, 0);
        assert!(c.check(&token).is_ok());
        assert!(c.check(&"b".repeat(TOKEN_LEN)).is_err());
    }

    #[test]
    fn another_origin_or_a_missing_cookie_is_refused() {
        let token = "a".repeat(TOKEN_LEN);
        let h = headers(&[
            (header::COOKIE, &format!("t={token}")),
            (header::ORIGIN, "https://evil.test"),
        ]);
        assert!(csrf(&h).0.check(&token).is_err());
        let (c, minted) = csrf(&HeaderMap::new());
        assert_eq!(minted, 1, "a fresh token is set");
        assert!(c.check("").is_err());
    }
}
