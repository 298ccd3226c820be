//! `me`: the signed-in customer's profile and password.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    error::{ApiResult, Problem},
    extract::{ApiJson, SignedIn},
};
use crate::{app::AppState, domain::accounts::Customer};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(max_length = 100)]
    pub name: Option<String>,
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

#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("session" = [])), request_body = ProfileUpdate,
    responses((status = 200, body = Customer), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiJson(req): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<Customer>> {
    let SignedIn { tenant, session } = signed_in;
    let customer = state
        .accounts(&tenant)
        .update_profile(
            session.customer_id,
            req.email.as_deref(),
            req.name.as_deref(),
        )
        .await?;
    Ok(Json(customer))
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
