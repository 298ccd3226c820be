//! The one error type of the HTTP layer, rendered as RFC 9457 `application/problem+json`.
//! Each resource's file maps its service's typed errors onto it.
//! Client errors name the offending field; server errors are logged and never shown.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::domain::{
    Invalid,
    ports::{CartWriteError, StoreError},
    pricing::PricingError,
};

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request field at fault (`email`, `variants[0].price.currency`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The order the problem is about (a cart that was already checked out names its order).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_id: Option<uuid::Uuid>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no store answers on this host")]
    UnknownHost,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("authentication required")]
    Unauthenticated,
    #[error("not allowed")]
    Forbidden,
    /// A staff member or API token without the permission (or owner rights) an operation needs.
    #[error("{0}")]
    PermissionDenied(String),
    #[error("malformed request body")]
    MalformedBody {
        field: Option<String>,
        detail: String,
    },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// A route that takes other media types than JSON: the detail says which.
    #[error("{0}")]
    UnsupportedMediaTypeOf(&'static str),
    #[error("request body too large")]
    PayloadTooLarge,
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("conflict")]
    Conflict {
        field: Option<String>,
        detail: String,
    },
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    /// A cart becomes an order once.
    #[error("this cart was already checked out as order {order_id}; start a new cart")]
    CartCheckedOut { order_id: uuid::Uuid },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Invalid(Invalid::new(field, message))
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use ApiError::*;
        match self {
            UnknownHost => (
                StatusCode::NOT_FOUND,
                "unknown-host",
                "No store answers on this host",
            ),
            NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            PermissionDenied(_) => (
                StatusCode::FORBIDDEN,
                "permission-denied",
                "You do not have the permission this needs",
            ),
            MalformedBody { .. } => (
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed request body",
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Send application/json",
            ),
            UnsupportedMediaTypeOf(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Request body too large",
            ),
            Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "A field is invalid",
            ),
            Conflict { .. } => (StatusCode::CONFLICT, "conflict", "Conflict"),
            CartCheckedOut { .. } => (
                StatusCode::CONFLICT,
                "cart-checked-out",
                "The cart is already an order",
            ),
            RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many attempts",
            ),
            Store(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "A backing service is unavailable",
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

/// Builds a problem response outside the error type (fallbacks, middleware).
pub fn problem_response(
    status: StatusCode,
    slug: &str,
    title: &str,
    detail: Option<String>,
    field: Option<String>,
) -> Response {
    let body = Problem {
        kind: format!("https://emporium.dev/problems/{slug}"),
        title: title.to_owned(),
        status: status.as_u16(),
        detail,
        field,
        order_id: None,
    };
    problem_document(body)
}

fn problem_document(body: Problem) -> Response {
    let status = StatusCode::from_u16(body.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = (status, Json(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let (detail, field) = match &self {
            ApiError::Store(e) => {
                tracing::error!(error = %e, "storage failure");
                (None, None)
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                (None, None)
            }
            ApiError::Invalid(i) => (Some(i.message.clone()), Some(i.field.clone())),
            ApiError::MalformedBody { field, detail } | ApiError::Conflict { field, detail } => {
                (Some(detail.clone()), field.clone())
            }
            ApiError::NotFound(what) => (Some(format!("no such {what}")), None),
            ApiError::PayloadTooLarge => (
                Some("the request body is larger than this server accepts".into()),
                Some("body".into()),
            ),
            other => (Some(other.to_string()), None),
        };
        let mut res = match &self {
            ApiError::CartCheckedOut { order_id } => problem_document(Problem {
                kind: format!("https://emporium.dev/problems/{slug}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail: Some(self.to_string()),
                field: Some("cart".into()),
                order_id: Some(*order_id),
            }),
            _ => problem_response(status, slug, title, detail, field),
        };
        if let ApiError::RateLimited { retry_after_secs } = self {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        res
    }
}

impl From<CartWriteError> for ApiError {
    fn from(e: CartWriteError) -> Self {
        match e {
            CartWriteError::NotFound => ApiError::NotFound("cart"),
            CartWriteError::NotOwner => ApiError::Forbidden,
            CartWriteError::NoLine => ApiError::NotFound("cart line"),
            CartWriteError::Limit => ApiError::invalid(
                "quantity",
                format!(
                    "a line holds at most {} and a cart at most {} lines",
                    crate::domain::cart::MAX_QUANTITY,
                    crate::domain::cart::MAX_LINES
                ),
            ),
            CartWriteError::Store(s) => ApiError::Store(s),
        }
    }
}

impl From<PricingError> for ApiError {
    fn from(e: PricingError) -> Self {
        ApiError::Conflict {
            field: None,
            detail: e.to_string(),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
