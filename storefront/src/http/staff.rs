//! The merchant API for staff, API tokens, the admin key and the audit log:
//! `admin/staff`, `admin/owner-invitation`, `admin/tokens`, `admin/admin-key`, `admin/audit`.
//! Staff sign in through the web app (`/admin/`); machines use tokens minted here.

use axum::{
    Json,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    admin_auth::{Admin, perm},
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, ApiQuery, came_over_tls},
};
use crate::{
    app::AppState,
    domain::staff::{ApiToken, AuditEntry, StaffMember, parse_permissions},
    notifications::account_mail::{AccountMail, AccountMailer},
    services::staff::{INVITATION_TTL, Staff},
    tenants::TenantRuntime,
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Permissions to give (never beyond the inviter's own).
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PermissionsRequest {
    pub permissions: Vec<String>,
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerInvitationRequest {
    /// Overrides the owner email of the tenant config.
    #[serde(default)]
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
}

/// A one-time invitation link, also mailed to the person (when the runtime has a sender); it
/// works once, until `expires_at`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    pub member: StaffMember,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[schema(min_length = 1, max_length = 60)]
    pub name: String,
    #[schema(min_items = 1)]
    pub permissions: Vec<String>,
}

/// A token and its secret, shown this once: send it as `Authorization: Bearer <secret>`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: ApiToken,
    pub secret: String,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

/// The link to the accept page on the host the request came to (the store's own host).
pub fn invitation_url(headers: &HeaderMap, tls: bool, secret: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if tls { "https" } else { "http" };
    // In the query, not the path: request logs record paths only.
    format!("{scheme}://{host}/admin/accept?token={secret}")
}

/// Mails the invitation link in the background (the answer carries it too, so a failed mail
/// only costs the inviter a copy and paste).
pub fn mail_invitation(state: &AppState, tenant: &TenantRuntime, to: &str, url: &str) {
    AccountMailer::new(state.notifier.clone(), tenant).spawn(
        AccountMail::StaffInvitation,
        to.to_owned(),
        url.to_owned(),
        INVITATION_TTL,
    );
}

fn invitation_expiry() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(INVITATION_TTL).unwrap_or(chrono::Duration::days(7))
}

fn staff_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("staff member"))
}

fn token_id(raw: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound("token"))
}

#[utoipa::path(get, path = "/api/v1/admin/staff", tag = "staff", security(("admin_key" = [])),
    responses((status = 200, body = Vec<StaffMember>), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "needs the `staff` permission")))]
pub async fn list(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Staff>,
) -> ApiResult<Json<Vec<StaffMember>>> {
    Ok(Json(Staff::new(&state, &tenant).members(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/staff/invitations", tag = "staff", security(("admin_key" = [])), request_body = InviteRequest,
    responses((status = 201, body = Invitation), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "needs `staff`, and every permission given"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "already on the staff"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn invite(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Staff>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    ApiJson(req): ApiJson<InviteRequest>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let permissions = parse_permissions("permissions", &req.permissions)?;
    let issued = Staff::new(&state, &tenant)
        .invite(&actor, &req.email, permissions)
        .await?;
    let url = invitation_url(&headers, came_over_tls(&uri, &headers), &issued.secret);
    mail_invitation(&state, &tenant, &issued.item.email, &url);
    let expires_at = issued
        .item
        .invitation_expires_at
        .unwrap_or_else(invitation_expiry);
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            member: issued.item,
            url,
            expires_at,
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/admin/owner-invitation", tag = "staff", security(("admin_key" = [])),
    request_body(content = Option<OwnerInvitationRequest>, description = "optional: another email than the tenant config's owner email"),
    responses((status = 201, body = Invitation, description = "a new one-time link; any earlier one stops working"),
              (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "only the store's admin key"),
              (status = 409, body = Problem, content_type = "application/problem+json", description = "the store already has an owner"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "no owner email known")))]
pub async fn owner_invitation(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Owner>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    let req = if body.iter().all(u8::is_ascii_whitespace) {
        OwnerInvitationRequest::default()
    } else {
        super::extract::parse_json::<OwnerInvitationRequest>(&body)?
    };
    let issued = Staff::new(&state, &tenant)
        .owner_invitation(&actor, req.email.as_deref())
        .await?;
    let url = invitation_url(&headers, came_over_tls(&uri, &headers), &issued.secret);
    mail_invitation(&state, &tenant, &issued.item.email, &url);
    let expires_at = issued
        .item
        .invitation_expires_at
        .unwrap_or_else(invitation_expiry);
    Ok((
        StatusCode::CREATED,
        Json(Invitation {
            member: issued.item,
            url,
            expires_at,
        }),
    ))
}

#[utoipa::path(put, path = "/api/v1/admin/staff/{id}/permissions", tag = "staff", security(("admin_key" = [])),
    params(("id" = Uuid, Path)), request_body = PermissionsRequest,
    responses((status = 200, body = StaffMember), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "needs `staff` and every permission given; never an owner or yourself"),
              (status = 404, body = Problem, content_type = "application/problem+json"), (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn set_permissions(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Staff>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PermissionsRequest>,
) -> ApiResult<Json<StaffMember>> {
    let id = staff_id(&id)?;
    let permissions = parse_permissions("permissions", &req.permissions)?;
    let member = Staff::new(&state, &tenant)
        .set_permissions(&actor, id, permissions)
        .await?;
    Ok(Json(member))
}

#[utoipa::path(delete, path = "/api/v1/admin/staff/{id}", tag = "staff", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "removed; their sessions ended"), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn remove(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Staff>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = staff_id(&id)?;
    Staff::new(&state, &tenant).remove(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "staff", security(("admin_key" = [])),
    responses((status = 200, body = Vec<ApiToken>), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "owner only")))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Owner>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(Staff::new(&state, &tenant).tokens(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/tokens", tag = "staff", security(("admin_key" = [])), request_body = TokenRequest,
    responses((status = 201, body = IssuedToken), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "owner only"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn create_token(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Owner>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<IssuedToken>)> {
    let permissions = parse_permissions("permissions", &req.permissions)?;
    let issued = Staff::new(&state, &tenant)
        .create_token(&actor, &req.name, permissions)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(IssuedToken {
            token: issued.item,
            secret: issued.secret,
        }),
    ))
}

#[utoipa::path(post, path = "/api/v1/admin/tokens/{id}/rotate", tag = "staff", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 200, body = IssuedToken, description = "the new secret; the old one no longer works"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn rotate_token(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Owner>,
    Path(id): Path<String>,
) -> ApiResult<Json<IssuedToken>> {
    let issued = Staff::new(&state, &tenant)
        .rotate_token(&actor, token_id(&id)?)
        .await?;
    Ok(Json(IssuedToken {
        token: issued.item,
        secret: issued.secret,
    }))
}

#[utoipa::path(delete, path = "/api/v1/admin/tokens/{id}", tag = "staff", security(("admin_key" = [])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "revoked"), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json"), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn delete_token(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Owner>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    Staff::new(&state, &tenant)
        .delete_token(&actor, token_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/admin/admin-key", tag = "staff", security(("admin_key" = [])),
    responses((status = 204, description = "the tenant config's admin key no longer works on this store; a new key in the tenant config works again"),
              (status = 401, body = Problem, content_type = "application/problem+json"), (status = 403, body = Problem, content_type = "application/problem+json", description = "owner only")))]
pub async fn retire_admin_key(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Owner>,
) -> ApiResult<StatusCode> {
    Staff::new(&state, &tenant).retire_admin_key(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "staff", security(("admin_key" = [])), params(AuditQuery),
    responses((status = 200, body = AuditPage), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 403, body = Problem, content_type = "application/problem+json", description = "owner only"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn audit(
    State(state): State<AppState>,
    Admin { tenant, actor, .. }: Admin<perm::Owner>,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<AuditPage>> {
    let (entries, next_cursor) = Staff::new(&state, &tenant)
        .audit(&actor, q.cursor.as_deref(), q.limit)
        .await?;
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}
