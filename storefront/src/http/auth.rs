//! `auth/register`, `auth/login`, `auth/logout`.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{
    carts,
    extract::{ApiJson, ClientIp, SignedIn, Tenant},
};
use crate::{
    app::AppState,
    domain::{
        accounts::{self, Customer},
        ports::{CustomerStore as _, Session, SessionStore as _},
    },
    error::{ApiError, ApiResult, Problem},
    passwords,
    storage::bus::Notice,
    tenants::TenantRuntime,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 10 to 128 characters.
    #[schema(min_length = 10, max_length = 128)]
    pub password: String,
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    #[schema(max_length = 1024)]
    pub password: String,
    /// A guest cart to merge into the customer's cart.
    #[serde(default)]
    pub guest_cart_id: Option<Uuid>,
}

/// A new session. The token is shown once; send it as `Authorization: Bearer <token>`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionResponse {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub customer: Customer,
    /// The customer's cart, when they have one (after merging a guest cart).
    pub cart_id: Option<Uuid>,
}

pub(crate) async fn start_session(
    state: &AppState,
    tenant: &TenantRuntime,
    customer: Uuid,
) -> ApiResult<(String, Session)> {
    let token = accounts::new_session_token();
    let ttl = chrono::Duration::from_std(state.settings.session_ttl)
        .unwrap_or(chrono::Duration::days(30));
    let session = Session {
        token_hash: accounts::session_token_hash(&token),
        customer_id: customer,
        expires_at: Utc::now() + ttl,
    };
    tenant.sessions.create(&session).await?;
    state.sessions.put(tenant.id(), session.clone());
    Ok((token, session))
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
    let email = accounts::normalize_email(&req.email)?;
    accounts::check_password("password", &req.password)?;
    // Hashing is deliberately expensive: cap how often one client can make us do it.
    let s = &state.settings;
    let key = limit_key(tenant.id(), "register-ip", &ip);
    if let Err(retry_after_secs) = state
        .limiter
        .hit(&key, s.login_limit_per_ip, s.login_window.as_secs().max(1))
        .await
    {
        return Err(ApiError::RateLimited { retry_after_secs });
    }
    let name = req.name.trim().to_owned();
    accounts::check_name(&name)?;
    let hash = passwords::hash(req.password).await?;
    let customer = tenant
        .customers
        .create(&email, &hash, &name)
        .await?
        .map_err(|_| ApiError::Conflict {
            field: Some("email".into()),
            detail: "this email is already registered with this store".into(),
        })?;
    let (token, session) = start_session(&state, &tenant, customer.id).await?;
    Ok((
        StatusCode::CREATED,
        Json(SessionResponse {
            token,
            expires_at: session.expires_at,
            customer,
            cart_id: None,
        }),
    ))
}

fn limit_key(tenant: &str, kind: &str, value: &str) -> String {
    // Hash the email so Redis never holds it in clear.
    let digest = Sha256::digest(value.as_bytes());
    let short: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("emporium:login:{tenant}:{kind}:{short}")
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
    let email = accounts::normalize_email(&req.email)?;
    if req.password.len() > 1024 {
        return Err(ApiError::invalid("password", "is too long"));
    }
    let s = &state.settings;
    let window = s.login_window.as_secs().max(1);
    for (kind, value, limit) in [
        ("ip", ip.as_str(), s.login_limit_per_ip),
        ("email", email.as_str(), s.login_limit_per_email),
    ] {
        if let Err(retry_after_secs) = state
            .limiter
            .hit(&limit_key(tenant.id(), kind, value), limit, window)
            .await
        {
            state.metrics.logins_rate_limited.inc();
            return Err(ApiError::RateLimited { retry_after_secs });
        }
    }
    let found = tenant.customers.by_email(&email).await?;
    let ok = passwords::verify(
        req.password,
        found.as_ref().map(|f| f.password_hash.clone()),
    )
    .await;
    let customer = match found {
        Some(f) if ok => f.customer,
        _ => return Err(ApiError::Unauthenticated),
    };
    let (token, session) = start_session(&state, &tenant, customer.id).await?;
    let cart_id = carts::adopt_on_login(&state, &tenant, customer.id, req.guest_cart_id)
        .await
        .map_err(ApiError::from)?;
    Ok(Json(SessionResponse {
        token,
        expires_at: session.expires_at,
        customer,
        cart_id,
    }))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "accounts", security(("session" = [])),
    responses((status = 204, description = "the session is ended"), (status = 401, body = Problem, content_type = "application/problem+json")))]
pub async fn logout(State(state): State<AppState>, signed_in: SignedIn) -> ApiResult<StatusCode> {
    let SignedIn { tenant, session } = signed_in;
    tenant
        .sessions
        .delete(&session.token_hash, session.customer_id)
        .await?;
    revoke(&state, &tenant, &session.token_hash).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets a session here and tells the other replicas.
pub(crate) async fn revoke(state: &AppState, tenant: &TenantRuntime, token_hash: &str) {
    state.sessions.revoke(tenant.id(), token_hash);
    state
        .bus
        .publish(&Notice::SessionRevoked {
            tenant: tenant.id().to_owned(),
            token_hash: token_hash.to_owned(),
        })
        .await;
}
