//! `me`: the signed-in customer's profile and password.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    auth::MailAccepted,
    error::{ApiResult, Problem},
    extract::{ApiJson, ClientIp, Origin, SignedIn},
};
use crate::{app::AppState, domain::accounts::Customer, services::accounts::ProfileChange};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// A new address becomes `pending_email` and replaces `email` once the link mailed to it
    /// is used. Needs `current_password`.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(max_length = 100)]
    pub name: Option<String>,
    /// Required when `email` is a new address.
    #[schema(max_length = 1024)]
    pub current_password: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(max_length = 1024)]
    pub current_password: String,
    #[schema(min_length = 10, max_length = 128)]
    pub new_password: String,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", security(("session" = [])),
    responses((status = 200, body = Customer), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn show(State(state): State<AppState>, signed_in: SignedIn) -> ApiResult<Json<Customer>> {
    let SignedIn { tenant, session } = signed_in;
    Ok(Json(
        state.accounts(&tenant).profile(session.customer_id).await?,
    ))
}

/// Changes the name; a new email address needs the current password and is verified by mail
/// before it replaces the current one.
#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("session" = [])), request_body = ProfileUpdate,
    responses((status = 200, body = Customer, description = "a new address shows as `pending_email` until verified"), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "a field is invalid; `current_password` missing or wrong for an email change"),
              (status = 429, body = Problem, content_type = "application/problem+json", description = "too many verification mails for this address or from this IP")))]
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Origin(origin): Origin,
    ApiJson(req): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<Customer>> {
    let SignedIn { tenant, session } = signed_in;
    let customer = state
        .accounts(&tenant)
        .update_profile(
            &ip,
            &origin,
            session.customer_id,
            ProfileChange {
                email: req.email.as_deref(),
                name: req.name.as_deref(),
                current_password: req.current_password,
            },
        )
        .await?;
    Ok(Json(customer))
}

/// Mails a new verification link: to the pending address, or to the unverified current one.
#[utoipa::path(post, path = "/api/v1/me/verification", tag = "accounts", security(("session" = [])),
    responses((status = 202, body = MailAccepted), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the email is verified and no change is pending"),
              (status = 429, body = Problem, content_type = "application/problem+json", description = "too many verification mails for this address or from this IP")))]
pub async fn resend_verification(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ClientIp(ip): ClientIp,
    Origin(origin): Origin,
) -> ApiResult<(StatusCode, Json<MailAccepted>)> {
    let SignedIn { tenant, session } = signed_in;
    state
        .accounts(&tenant)
        .resend_verification(&ip, &origin, session.customer_id)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(MailAccepted {
            detail: "A verification link is on its way.".into(),
        }),
    ))
}

/// Changes the password and ends every other session of the customer.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "accounts", security(("session" = [])), request_body = PasswordChange,
    responses((status = 204, description = "changed; other sessions ended"), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn change_password(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(req): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let SignedIn { tenant, session } = signed_in;
    state
        .accounts(&tenant)
        .change_password(&session, req.current_password, req.new_password)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
