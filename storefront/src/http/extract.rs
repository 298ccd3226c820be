//! Extractors for the cross-cutting parts of a request: the tenant (by host), the signed-in
//! customer, the client IP (the merchant's credentials are [`super::admin_auth`]'s), and JSON bodies whose errors name the field.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request},
    http::{HeaderMap, Uri, header, request::Parts},
};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::{app::AppState, domain::ports::Session, tenants::TenantRuntime};

/// The tenant whose host the request came to. Unknown hosts are refused with 404.
pub struct Tenant(pub Arc<TenantRuntime>);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(t) = parts.extensions.get::<Arc<TenantRuntime>>() {
            return Ok(Tenant(t.clone()));
        }
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.host());
        let tenant = host
            .and_then(|h| state.tenants.resolve(h))
            .ok_or(ApiError::UnknownHost)?;
        parts.extensions.insert(tenant.clone());
        Ok(Tenant(tenant))
    }
}

pub(super) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A request carrying a valid session token of this tenant (`Authorization: Bearer <token>`).
pub struct SignedIn {
    pub tenant: Arc<TenantRuntime>,
    pub session: Session,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let session = state.accounts(&tenant).session(token).await?;
        Ok(SignedIn { tenant, session })
    }
}

/// The session if the request carries one; an invalid token is still refused.
pub struct MaybeSignedIn(pub Option<Session>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if bearer(parts).is_none() {
            return Ok(MaybeSignedIn(None));
        }
        let SignedIn { session, .. } = SignedIn::from_request_parts(parts, state).await?;
        Ok(MaybeSignedIn(Some(session)))
    }
}

/// The client's IP address, for rate limits.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.settings.trust_forwarded_for {
            let forwarded = parts
                .headers
                .get("x-forwarded-for")
                .and_then(|v| v.to_str().ok());
            if let Some(ip) = forwarded
                .and_then(|v| v.rsplit(',').next())
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                return Ok(ClientIp(ip.to_owned()));
            }
        }
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_string());
        Ok(ClientIp(ip.unwrap_or_else(|| "unknown".into())))
    }
}

/// The store's origin as the client addressed it (`https://shop.example.com`), for links in
/// mails. The host must be one of a tenant's (it is what picked the tenant), so a forged
/// `Host` cannot point a reset link at another site.
pub struct Origin(pub String);

impl FromRequestParts<AppState> for Origin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Tenant(_) = Tenant::from_request_parts(parts, state).await?;
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.host())
            .unwrap_or("localhost");
        Ok(Origin(origin(
            host,
            came_over_tls(&parts.uri, &parts.headers),
        )))
    }
}

/// `scheme://host` of a request to `host`.
pub fn origin(host: &str, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// Query parameters; a query string that cannot be decoded is a 400 problem document.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::try_from_uri(&parts.uri)
            .map(|q| ApiQuery(q.0))
            .map_err(|e| ApiError::MalformedBody {
                field: None,
                detail: e.body_text(),
            })
    }
}

/// A JSON body. Errors become problem documents naming the field: 415 without a JSON content
/// type, 413 past the body limit, 400 for broken JSON, 422 for a missing or mistyped field.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if mime != "application/json" && !mime.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::MalformedBody {
                    field: Some("body".into()),
                    detail: rejection.body_text(),
                }
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Deserialises one JSON object, naming the path of the first error. Anything but exactly one
/// object is refused naming the field `body`: broken JSON (400, with its line and column), data
/// after the value (400: `{...} xyz` or two concatenated objects), or another kind of value such
/// as `[]` (422).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') {
        // Only refuse well-formed non-objects here; broken input is reported as broken below.
        if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
            return Err(ApiError::Invalid(crate::domain::Invalid::new(
                "body",
                "must be a JSON object",
            )));
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner();
        if !inner.is_data() {
            // Broken JSON: the path is meaningless (serde_path_to_error shows `?`); the
            // position is what helps.
            return ApiError::MalformedBody {
                field: Some("body".into()),
                detail: format!(
                    "the body is not valid JSON: {} (line {}, column {})",
                    inner_message(inner),
                    inner.line(),
                    inner.column()
                ),
            };
        }
        let message = inner_message(inner);
        // serde names a missing or unknown field only in its message: `missing field `email``.
        let named = message
            .split('`')
            .nth(1)
            .filter(|_| message.contains("field `"));
        let path = (!path.contains('?')).then_some(path);
        let field = match (path.as_deref(), named) {
            (Some(".") | None, Some(name)) => name.to_owned(),
            (Some(".") | None, None) => "body".to_owned(),
            (Some(p), Some(name)) if message.starts_with("missing field") => format!("{p}.{name}"),
            (Some(p), _) => p.to_owned(),
        };
        ApiError::Invalid(crate::domain::Invalid::new(field, message))
    })?;
    de.end().map_err(|e| ApiError::MalformedBody {
        field: Some("body".into()),
        detail: format!(
            "the body holds data after its JSON value (line {}, column {}); send exactly one object",
            e.line(),
            e.column()
        ),
    })?;
    Ok(value)
}

/// serde_json's message without its ` at line L column C` suffix.
fn inner_message(e: &serde_json::Error) -> String {
    let message = e.to_string();
    message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_owned()
}

/// Whether the request came over TLS (directly, or via a proxy that says so).
pub fn came_over_tls(uri: &Uri, headers: &HeaderMap) -> bool {
    uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        lines: Vec<Line>,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Line {
        quantity: u32,
    }

    fn field(json: &str) -> Option<String> {
        match parse_json::<Body>(json.as_bytes()).unwrap_err() {
            ApiError::Invalid(i) => Some(i.field),
            ApiError::MalformedBody { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_errors_name_the_field() {
        assert_eq!(field(r#"{"lines": []}"#).as_deref(), Some("email"));
        assert_eq!(
            field(r#"{"email": 5, "lines": []}"#).as_deref(),
            Some("email")
        );
        assert_eq!(
            field(r#"{"email": "a", "lines": [{"quantity": "x"}]}"#).as_deref(),
            Some("lines[0].quantity")
        );
        assert_eq!(
            field(r#"{"email": "a", "lines": [{}]}"#).as_deref(),
            Some("lines[0].quantity")
        );
        assert_eq!(
            field(r#"{"email": "a", "lines": [], "evil": 1}"#).as_deref(),
            Some("evil")
        );
        assert!(matches!(
            parse_json::<Body>(b"{\"email\": "),
            Err(ApiError::MalformedBody { .. })
        ));
    }

    #[test]
    fn broken_json_names_the_body_never_a_question_mark() {
        for broken in [
            r#"{"email": "#,
            r#"{"email": "a", "lines": [{"quantity": 1,"#,
            "{,}",
        ] {
            assert_eq!(field(broken).as_deref(), Some("body"), "{broken}");
        }
    }

    #[test]
    fn trailing_data_and_non_objects_are_refused() {
        let ok = r#"{"email": "a", "lines": []}"#;
        assert!(parse_json::<Body>(ok.as_bytes()).is_ok());
        assert!(parse_json::<Body>(format!(" {ok}\n ").as_bytes()).is_ok());
        for trailing in [format!("{ok} xyz"), format!("{ok}{ok}"), format!("{ok} 1")] {
            match parse_json::<Body>(trailing.as_bytes()) {
                Err(ApiError::MalformedBody { field, detail }) => {
                    assert_eq!(field.as_deref(), Some("body"));
                    assert!(detail.contains("after its JSON value"), "{detail}");
                }
                other => panic!("{trailing}: {other:?}"),
            }
        }
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Optional {
            #[serde(default)]
            email: Option<String>,
        }
        for not_object in ["[]", "null", "\"x\"", "[\"a@b\"]"] {
            match parse_json::<Optional>(not_object.as_bytes()) {
                Err(ApiError::Invalid(i)) => assert_eq!(i.field, "body", "{not_object}"),
                other => panic!("{not_object}: {other:?}"),
            }
        }
    }
}
