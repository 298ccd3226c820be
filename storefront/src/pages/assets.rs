//! The stylesheet and the stock script, compiled into the binary (no CDN, no web fonts), and
//! the tenant's theme colours as a tiny per-host stylesheet.

use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};

use super::{PageError, theme::Palette};
use crate::app::AppState;

const STYLESHEET: &str = include_str!("storefront.css");
const STOCK_SCRIPT: &str = include_str!("stock.js");

fn asset(content_type: &'static str, body: String, max_age: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(max_age));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

pub async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        STYLESHEET.to_owned(),
        "public, max-age=3600",
    )
}

pub async fn stock_script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        STOCK_SCRIPT.to_owned(),
        "public, max-age=3600",
    )
}

/// Per host: the colours follow the tenant config, which can change at any time. Resolves the
/// tenant only (no session or cookie work for a stylesheet).
pub async fn theme(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let tenant = state.tenants.resolve(host).ok_or(PageError::UnknownHost)?;
    let palette = Palette::for_theme(tenant.config.theme_color.as_deref());
    Ok(asset(
        "text/css; charset=utf-8",
        palette.css(),
        "public, max-age=60",
    ))
}
