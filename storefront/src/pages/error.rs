//! What can go wrong on a page, and how it is shown: client errors with their message, server
//! faults logged and shown as a generic apology.

use axum::{
    extract::rejection::FormRejection,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::html;

use super::html_response;
use crate::{
    domain::ports::CartWriteError,
    http::error::ApiError,
    payments::PaymentError,
    services::{
        accounts::AccountError, carts::CartError, checkout::PlaceOrderError, orders::OrderError,
    },
};

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("no store answers on this host")]
    UnknownHost,
    #[error("page not found")]
    NotFound,
    #[error("the form's security token is missing or stale")]
    Csrf,
    #[error("the form could not be read: {0}")]
    BadForm(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<crate::domain::ports::StoreError> for PageError {
    fn from(e: crate::domain::ports::StoreError) -> Self {
        PageError::Api(ApiError::Store(e))
    }
}

impl From<crate::domain::Invalid> for PageError {
    fn from(e: crate::domain::Invalid) -> Self {
        PageError::Api(ApiError::Invalid(e))
    }
}

/// A service's refusal, shown as the API would classify it.
macro_rules! through_api_error {
    ($($service_error:ty),+) => {$(
        impl From<$service_error> for PageError {
            fn from(e: $service_error) -> Self {
                PageError::Api(ApiError::from(e))
            }
        }
    )+};
}

through_api_error!(
    AccountError,
    CartError,
    CartWriteError,
    OrderError,
    PaymentError,
    PlaceOrderError
);

impl From<FormRejection> for PageError {
    fn from(e: FormRejection) -> Self {
        PageError::BadForm(e.body_text())
    }
}

/// The HTTP status an API error stands for.
pub fn status_of(e: &ApiError) -> StatusCode {
    match e {
        ApiError::UnknownHost | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
        ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
        ApiError::Forbidden | ApiError::PermissionDenied(_) => StatusCode::FORBIDDEN,
        ApiError::MalformedBody { .. } => StatusCode::BAD_REQUEST,
        ApiError::UnsupportedMediaType | ApiError::UnsupportedMediaTypeOf(_) => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApiError::Conflict { .. } | ApiError::CartCheckedOut { .. } => StatusCode::CONFLICT,
        ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ApiError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// What a shopper may be told about an API error; `None` for server faults (logged instead).
pub fn shopper_message(e: &ApiError) -> Option<String> {
    match e {
        ApiError::Store(_) | ApiError::Internal(_) => None,
        ApiError::Invalid(i) => Some(format!("{}: {}", i.field, i.message)),
        ApiError::Conflict { detail, .. } | ApiError::MalformedBody { detail, .. } => {
            Some(detail.clone())
        }
        ApiError::RateLimited { retry_after_secs } => Some(format!(
            "Too many attempts. Try again in {retry_after_secs} seconds."
        )),
        other => Some(capitalise(&other.to_string())),
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            PageError::UnknownHost => (
                StatusCode::NOT_FOUND,
                "No store answers on this host.".to_owned(),
            ),
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "We could not find that page.".to_owned(),
            ),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired. Go back, reload the page and try again.".to_owned(),
            ),
            PageError::BadForm(detail) => (
                StatusCode::BAD_REQUEST,
                format!("The form could not be read: {detail}"),
            ),
            PageError::Api(e) => {
                let status = status_of(e);
                match shopper_message(e) {
                    Some(m) => (status, m),
                    None => {
                        tracing::error!(error = %e, "page failed");
                        (
                            status,
                            "Something went wrong on our side. Please try again.".to_owned(),
                        )
                    }
                }
            }
        };
        // No tenant styling: the tenant may be unknown, and errors must not depend on storage.
        let body = html! {
            (maud::DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (status.canonical_reason().unwrap_or("Error")) }
                    link rel="stylesheet" href="/assets/storefront.css";
                }
                body {
                    main id="main" class="narrow" {
                        h1 { (status.canonical_reason().unwrap_or("Error")) }
                        p { (message) }
                        p { a href="/" { "Go to the home page" } }
                    }
                }
            }
        };
        html_response(status, body)
    }
}
