//! `auth/register`, `auth/login`, `auth/logout`.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};

use super::{
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ClientIp, SignedIn, Tenant},
};
pub use crate::services::accounts::{LoginRequest, RegisterRequest, SessionResponse};
use crate::{app::AppState, services::accounts::AccountError};

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(i) => ApiError::Invalid(i),
            AccountError::RateLimited { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            e @ (AccountError::EmailRegistered | AccountError::EmailInUse) => ApiError::Conflict {
                field: Some("email".into()),
                detail: e.to_string(),
            },
            AccountError::Unauthenticated => ApiError::Unauthenticated,
            AccountError::WrongPassword => {
                ApiError::invalid("current_password", "is not the current password")
            }
            AccountError::Password(p) => ApiError::Internal(p.to_string()),
            AccountError::Cart(c) => c.into(),
            AccountError::Store(s) => ApiError::Store(s),
        }
    }
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "accounts", request_body = RegisterRequest,
    responses((status = 201, body = SessionResponse), (status = 429, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json", description = "email taken"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn register(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let session = state.accounts(&tenant).register(&ip, req).await?;
    Ok((StatusCode::CREATED, Json(session)))
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "accounts", request_body = LoginRequest,
    responses((status = 200, body = SessionResponse), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json", description = "too many attempts from this IP or for this email")))]
pub async fn login(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<SessionResponse>> {
    Ok(Json(state.accounts(&tenant).login(&ip, req).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", security(("session" = [])),
    responses((status = 204, description = "the session is ended"), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn logout(State(state): State<AppState>, signed_in: SignedIn) -> ApiResult<StatusCode> {
    let SignedIn { tenant, session } = signed_in;
    state.accounts(&tenant).logout(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}
