//! Who may call the merchant API, and the audit trail of what they did.
//!
//! [`Admin<R>`] authenticates `Authorization: Bearer` (the store's admin key or a scoped API
//! token) and requires what `R` names: `Admin<perm::Refunds>` is a refund route, and a caller
//! without `refunds` gets 403 before the handler runs. [`audit`] (a route layer) records every
//! write an authenticated caller attempted, with its outcome, in the tenant's audit log.

use std::{marker::PhantomData, sync::Arc};

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{Method, request::Parts},
    middleware::Next,
    response::Response,
};
use parking_lot::Mutex;

use super::{
    error::ApiError,
    extract::{ClientIp, Tenant, bearer},
};
use crate::{
    app::AppState,
    domain::staff::{Access, Actor, Permission},
    services::staff::{Staff, StaffError},
    tenants::TenantRuntime,
};

/// What an admin route requires, as a type: `Admin<perm::Catalog>`.
pub trait Requirement: Send + Sync + 'static {
    const ACCESS: Access;
}

/// The requirements admin routes name.
pub mod perm {
    use super::{Access, Permission, Requirement};

    macro_rules! requirement {
        ($($(#[$doc:meta])* $name:ident => $access:expr;)+) => {$(
            $(#[$doc])*
            pub struct $name;
            impl Requirement for $name {
                const ACCESS: Access = $access;
            }
        )+};
    }

    requirement! {
        /// Products, categories, stock.
        Catalog => Access::Permission(Permission::Catalog);
        /// Orders: list, detail, fulfil, cancel, mark paid.
        Orders => Access::Permission(Permission::Orders);
        /// Refunds, whole or partial.
        Refunds => Access::Permission(Permission::Refunds);
        /// Shipping, tax, discount codes.
        Settings => Access::Permission(Permission::Settings);
        /// Staff and their permissions.
        Staff => Access::Permission(Permission::Staff);
        /// The owner (or the store's admin key): audit log, API tokens.
        Owner => Access::Owner;
    }
}

/// An authenticated merchant API call allowed to do what `R` requires.
pub struct Admin<R: Requirement> {
    pub tenant: Arc<TenantRuntime>,
    pub actor: Actor,
    required: PhantomData<R>,
}

/// Filled by [`Admin`] so the [`audit`] layer knows who acted once the handler has answered.
#[derive(Clone, Default)]
struct AuditSlot(Arc<Mutex<Option<Acted>>>);

/// Who acted, on which tenant, from where.
struct Acted {
    tenant: Arc<TenantRuntime>,
    actor: Actor,
    ip: String,
}

impl From<StaffError> for ApiError {
    fn from(e: StaffError) -> Self {
        match e {
            StaffError::Invalid(i) => ApiError::Invalid(i),
            StaffError::Unauthenticated => ApiError::Unauthenticated,
            e @ (StaffError::Missing(_) | StaffError::OwnerOnly | StaffError::Grant(_)) => {
                ApiError::PermissionDenied(e.to_string())
            }
            e @ StaffError::AlreadyStaff(_) => ApiError::Conflict {
                field: Some("email".into()),
                detail: e.to_string(),
            },
            e @ StaffError::OwnerExists => ApiError::Conflict {
                field: None,
                detail: e.to_string(),
            },
            e @ StaffError::NoOwnerEmail => ApiError::invalid("email", e.to_string()),
            e @ StaffError::InvitationInvalid => ApiError::Conflict {
                field: Some("token".into()),
                detail: e.to_string(),
            },
            StaffError::NotFound(what) => ApiError::NotFound(what),
            StaffError::RateLimited { retry_after_secs } => {
                ApiError::RateLimited { retry_after_secs }
            }
            StaffError::Password(p) => ApiError::Internal(p.to_string()),
            StaffError::Store(s) => ApiError::Store(s),
        }
    }
}

impl<R: Requirement> FromRequestParts<AppState> for Admin<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Tenant(tenant) = Tenant::from_request_parts(parts, state).await?;
        let given = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let actor = Staff::new(state, &tenant)
            .authenticate_bearer(given)
            .await?;
        if let Some(slot) = parts.extensions.get::<AuditSlot>().cloned() {
            let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
            *slot.0.lock() = Some(Acted {
                tenant: tenant.clone(),
                actor: actor.clone(),
                ip,
            });
        }
        crate::services::staff::require(&actor, R::ACCESS)?;
        Ok(Admin {
            tenant,
            actor,
            required: PhantomData,
        })
    }
}

/// Records each write (anything but GET/HEAD) an authenticated caller attempted: who, the
/// route (`POST /admin/orders/{id}/refund`), the path it named, the status it ended with (a
/// 403 shows an attempt without the permission), and when. Reads are not recorded.
pub async fn audit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD) {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().trim_start_matches("/api/v1").to_owned())
        .unwrap_or_default();
    let action = format!("{} {route}", req.method());
    let target = req.uri().path().to_owned();
    let slot = AuditSlot::default();
    req.extensions_mut().insert(slot.clone());
    let res = next.run(req).await;
    let acted = slot.0.lock().take();
    if let Some(Acted { tenant, actor, ip }) = acted {
        Staff::new(&state, &tenant)
            .record(&actor, &action, &target, res.status().as_u16(), &ip)
            .await;
    }
    res
}
