//! `auth/register`, `auth/login`, `auth/logout`, password reset and email verification.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use serde::{Deserialize, Serialize};

use super::{
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ClientIp, Origin, SignedIn, Tenant},
};
pub use crate::services::accounts::{LoginRequest, RegisterRequest, SessionResponse};
use crate::{app::AppState, domain::accounts::Customer, services::accounts::AccountError};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The `token` of the link in the mail.
    #[schema(max_length = 128)]
    pub token: String,
    #[schema(min_length = 10, max_length = 128)]
    pub new_password: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailVerification {
    /// The `token` of the link in the mail.
    #[schema(max_length = 128)]
    pub token: String,
}

/// A mail request was taken. It says nothing about whether the address has an account.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MailAccepted {
    pub detail: String,
}

/// What every password-reset request is told, account or not.
pub const RESET_ACCEPTED: &str = "If this address has an account at this store, a link to choose a new password is on its way. It works once, for a limited time.";

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
            AccountError::PasswordRequired => ApiError::invalid(
                "current_password",
                "is required to change the email address",
            ),
            AccountError::TokenInvalid => {
                ApiError::invalid("token", "is invalid, used or expired; ask for a new link")
            }
            e @ AccountError::AlreadyVerified => ApiError::Conflict {
                field: Some("email".into()),
                detail: e.to_string(),
            },
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
    Origin(origin): Origin,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<impl IntoResponse> {
    let session = state.accounts(&tenant).register(&ip, &origin, req).await?;
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

/// Asks for a password-reset link. The answer is the same whether or not the address has an
/// account (and takes as long); the link goes to the address by mail.
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "accounts", request_body = PasswordResetRequest,
    responses((status = 202, body = MailAccepted, description = "the same for every well-formed address"),
              (status = 422, body = Problem, content_type = "application/problem+json"),
              (status = 429, body = Problem, content_type = "application/problem+json", description = "too many reset or verification mails for this address or from this IP")))]
pub async fn request_password_reset(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ClientIp(ip): ClientIp,
    Origin(origin): Origin,
    ApiJson(req): ApiJson<PasswordResetRequest>,
) -> ApiResult<(StatusCode, Json<MailAccepted>)> {
    state
        .accounts(&tenant)
        .request_password_reset(&ip, &origin, &req.email)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MailAccepted {
            detail: RESET_ACCEPTED.into(),
        }),
    ))
}

/// Sets a new password with the token of a reset link; every session of the customer ends.
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "accounts", request_body = PasswordResetConfirm,
    responses((status = 204, description = "changed; every session of the customer ended"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "`token`: invalid, used or expired; `new_password`: too short or long")))]
pub async fn confirm_password_reset(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(req): ApiJson<PasswordResetConfirm>,
) -> ApiResult<StatusCode> {
    state
        .accounts(&tenant)
        .reset_password(&req.token, req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Verifies an email address with the token of a verification link; a pending new address
/// becomes the customer's email.
#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "accounts", request_body = EmailVerification,
    responses((status = 200, body = Customer),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "another account took the address meanwhile"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "`token`: invalid, used or expired")))]
pub async fn verify_email(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    ApiJson(req): ApiJson<EmailVerification>,
) -> ApiResult<Json<Customer>> {
    Ok(Json(
        state.accounts(&tenant).verify_email(&req.token).await?,
    ))
}
