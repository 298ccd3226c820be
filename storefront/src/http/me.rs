//! `me`: the signed-in customer's profile and password.

use axum::{Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    auth::revoke,
    extract::{ApiJson, SignedIn},
};
use crate::{
    app::AppState,
    domain::{
        accounts::{self, Customer},
        ports::{CustomerStore as _, SessionStore as _},
    },
    error::{ApiError, ApiResult, Problem},
    passwords,
};

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
pub async fn show(signed_in: SignedIn) -> ApiResult<Json<Customer>> {
    let found = signed_in
        .tenant
        .customers
        .by_id(signed_in.session.customer_id)
        .await?;
    found
        .map(|f| Json(f.customer))
        .ok_or(ApiError::Unauthenticated)
}

#[utoipa::path(patch, path = "/api/v1/me", tag = "accounts", security(("session" = [])), request_body = ProfileUpdate,
    responses((status = 200, body = Customer), (status = 401, body = Problem, content_type = "application/problem+json"), (status = 409, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn update(
    signed_in: SignedIn,
    ApiJson(req): ApiJson<ProfileUpdate>,
) -> ApiResult<Json<Customer>> {
    let email = req
        .email
        .as_deref()
        .map(accounts::normalize_email)
        .transpose()?;
    let name = req.name.as_deref().map(str::trim);
    if let Some(n) = name {
        accounts::check_name(n)?;
    }
    let updated = signed_in
        .tenant
        .customers
        .update_profile(signed_in.session.customer_id, email.as_deref(), name)
        .await?
        .map_err(|_| ApiError::Conflict {
            field: Some("email".into()),
            detail: "this email is already registered".into(),
        })?;
    updated.map(Json).ok_or(ApiError::Unauthenticated)
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
    accounts::check_password("new_password", &req.new_password)?;
    let found = tenant
        .customers
        .by_id(session.customer_id)
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    if req.current_password.len() > 1024
        || !passwords::verify(req.current_password, Some(found.password_hash)).await
    {
        return Err(ApiError::invalid(
            "current_password",
            "is not the current password",
        ));
    }
    let hash = passwords::hash(req.new_password).await?;
    tenant
        .customers
        .set_password_hash(session.customer_id, &hash)
        .await?;
    for ended in tenant
        .sessions
        .delete_others(session.customer_id, Some(&session.token_hash))
        .await?
    {
        revoke(&state, &tenant, &ended).await;
    }
    Ok(StatusCode::NO_CONTENT)
}
