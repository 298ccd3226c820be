//! Staff: invitations (single use, expiring), sign-in and sessions for the merchant web app,
//! scoped API tokens, the store's admin key, and the audit log. A realm apart from shoppers:
//! other tables, another cookie; nothing a shopper holds authorises anything here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;

use super::passwords::{self, PasswordError};
use crate::{
    app::AppState,
    domain::{
        Invalid,
        accounts::{self, new_session_token, session_token_hash},
        ports::StoreError,
        staff::{
            Access, Actor, ApiToken, AuditEntry, GrantRefused, Permission, Permissions, Role,
            StaffMember, check_grant, check_token_name,
        },
    },
    storage::{
        ratelimit::RateLimiter,
        staff::{AlreadyStaff, NewAuditEntry, NewInvitation, PgStaff},
    },
    tenants::TenantRuntime,
};

/// How long a staff web session lasts (then sign in again): a working day, not a month.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// How long an invitation link works.
pub const INVITATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Prefix of API tokens, so a leaked one is recognisable (secret scanners, logs reviews).
pub const TOKEN_PREFIX: &str = "emp_";
const AUDIT_MAX_LIMIT: i64 = 200;

/// Why a staff operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("authentication required")]
    Unauthenticated,
    #[error("this needs the `{0}` permission; ask the store's owner for it")]
    Missing(&'static str),
    #[error("only the store's owner can do this")]
    OwnerOnly,
    #[error(transparent)]
    Grant(#[from] GrantRefused),
    #[error("{0} is already on the staff of this store")]
    AlreadyStaff(String),
    #[error("this invitation link is invalid, used or expired; ask for a new one")]
    InvitationInvalid,
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("the store already has an owner; they invite everyone else")]
    OwnerExists,
    #[error(
        "no owner email: give the Storefront `spec.owner.email` or send `email` in the request"
    )]
    NoOwnerEmail,
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A secret handed out once: an invitation token, a session token or an API token.
pub struct Issued<T> {
    pub secret: String,
    pub item: T,
}

/// What staff operations need: the tenant, its staff store, the login rate limiter.
pub struct Staff<'a> {
    pub tenant: &'a TenantRuntime,
    pub store: PgStaff,
    pub limiter: &'a RateLimiter,
    pub login_limit_per_ip: u32,
    pub login_limit_per_email: u32,
    pub login_window: Duration,
}

impl<'a> Staff<'a> {
    pub fn new(state: &'a AppState, tenant: &'a TenantRuntime) -> Self {
        Staff {
            tenant,
            store: PgStaff {
                db: tenant.db.clone(),
                tenant: tenant.id().into(),
            },
            limiter: &state.limiter,
            login_limit_per_ip: state.settings.login_limit_per_ip,
            login_limit_per_email: state.settings.login_limit_per_email,
            login_window: state.settings.login_window,
        }
    }
}

fn digest_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn expiry(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12))
}

fn limit_key(tenant: &str, kind: &str, value: &str) -> String {
    let short: String = digest_hex(value).chars().take(24).collect();
    format!("emporium:staff-login:{tenant}:{kind}:{short}")
}

/// Requires `access` of `actor`.
pub fn require(actor: &Actor, access: Access) -> Result<(), StaffError> {
    if actor.may(access) {
        return Ok(());
    }
    Err(match access {
        Access::Owner => StaffError::OwnerOnly,
        Access::Permission(p) => StaffError::Missing(p.as_str()),
    })
}

impl Staff<'_> {
    /// The actor behind an `Authorization: Bearer` value: the tenant config's admin key
    /// (unless the owner retired it) or a scoped API token. Shopper session tokens, staff
    /// session tokens and other stores' keys are all refused alike.
    pub async fn authenticate_bearer(&self, given: &str) -> Result<Actor, StaffError> {
        let key = &self.tenant.config.admin_key;
        // Compare digests in constant time: neither the key's bytes nor its length leak.
        let (a, b) = (
            Sha256::digest(given.as_bytes()),
            Sha256::digest(key.as_bytes()),
        );
        if !key.is_empty() && bool::from(a.as_slice().ct_eq(b.as_slice())) {
            if self.store.admin_key_retired(&digest_hex(key)).await? {
                return Err(StaffError::Unauthenticated);
            }
            return Ok(Actor::AdminKey);
        }
        if !given.starts_with(TOKEN_PREFIX) {
            return Err(StaffError::Unauthenticated);
        }
        let token = self
            .store
            .use_token(&session_token_hash(given))
            .await?
            .ok_or(StaffError::Unauthenticated)?;
        Ok(Actor::Token {
            id: token.id,
            name: token.name,
            permissions: token.permissions,
        })
    }

    /// The staff member behind a web session token.
    pub async fn session(&self, token: &str) -> Result<StaffMember, StaffError> {
        self.store
            .session(&session_token_hash(token))
            .await?
            .ok_or(StaffError::Unauthenticated)
    }

    async fn start_session(&self, member: &StaffMember) -> Result<String, StaffError> {
        let token = new_session_token();
        self.store
            .create_session(&session_token_hash(&token), member.id, expiry(SESSION_TTL))
            .await?;
        Ok(token)
    }

    /// Signs a staff member in (limited per IP and per email, argon2id, same cost for unknown
    /// emails and pending invitations as for wrong passwords).
    pub async fn sign_in(
        &self,
        ip: &str,
        email: &str,
        password: String,
    ) -> Result<Issued<StaffMember>, StaffError> {
        let email = accounts::normalize_email(email)?;
        if password.len() > 1024 {
            return Err(Invalid::new("password", "is too long").into());
        }
        let window = self.login_window.as_secs().max(1);
        for (kind, value, limit) in [
            ("ip", ip, self.login_limit_per_ip),
            ("email", email.as_str(), self.login_limit_per_email),
        ] {
            let key = limit_key(self.tenant.id(), kind, value);
            if let Err(retry_after_secs) = self.limiter.hit(&key, limit, window).await {
                return Err(StaffError::RateLimited { retry_after_secs });
            }
        }
        let found = self.store.by_email(&email).await?;
        let stored = found.as_ref().and_then(|(_, hash)| hash.clone());
        let ok = passwords::verify(password, stored).await;
        match found {
            Some((member, Some(_))) if ok => {
                let secret = self.start_session(&member).await?;
                Ok(Issued {
                    secret,
                    item: member,
                })
            }
            _ => Err(StaffError::Unauthenticated),
        }
    }

    pub async fn sign_out(&self, token: &str) -> Result<(), StaffError> {
        Ok(self
            .store
            .delete_session(&session_token_hash(token))
            .await?)
    }

    /// Invites `email` as staff with `permissions` (never beyond the inviter's own). Inviting
    /// someone whose invitation is pending renews it: a new link, the old one dead.
    pub async fn invite(
        &self,
        by: &Actor,
        email: &str,
        permissions: Permissions,
    ) -> Result<Issued<StaffMember>, StaffError> {
        require(by, Access::Permission(Permission::Staff))?;
        let email = accounts::normalize_email(email)?;
        check_grant(by, None, &permissions)?;
        self.issue_invitation(by, &email, Role::Staff, &permissions)
            .await
    }

    async fn issue_invitation(
        &self,
        by: &Actor,
        email: &str,
        role: Role,
        permissions: &Permissions,
    ) -> Result<Issued<StaffMember>, StaffError> {
        let secret = new_session_token();
        let invited_by = by.label();
        let member = self
            .store
            .invite(NewInvitation {
                email,
                name: "",
                role,
                permissions,
                invitation_hash: &session_token_hash(&secret),
                expires_at: expiry(INVITATION_TTL),
                invited_by: &invited_by,
            })
            .await?
            .map_err(|AlreadyStaff| StaffError::AlreadyStaff(email.to_owned()))?;
        Ok(Issued {
            secret,
            item: member,
        })
    }

    /// The owner's invitation, for the platform to hand to the merchant: only with the store's
    /// admin key, only while no owner has accepted. Each call makes a new link and kills the
    /// previous one. `email` defaults to the tenant config's owner email.
    pub async fn owner_invitation(
        &self,
        by: &Actor,
        email: Option<&str>,
    ) -> Result<Issued<StaffMember>, StaffError> {
        if *by != Actor::AdminKey {
            return Err(StaffError::OwnerOnly);
        }
        if self.store.has_active_owner().await? {
            return Err(StaffError::OwnerExists);
        }
        let email = email
            .or(self.tenant.config.owner_email.as_deref())
            .ok_or(StaffError::NoOwnerEmail)?;
        let email = accounts::normalize_email(email)?;
        self.issue_invitation(by, &email, Role::Owner, &Permissions::new())
            .await
    }

    /// Who a pending invitation is for (the accept page greets them by email).
    pub async fn invitation(&self, token: &str) -> Result<StaffMember, StaffError> {
        self.store
            .by_invitation(&session_token_hash(token))
            .await?
            .ok_or(StaffError::InvitationInvalid)
    }

    /// Uses an invitation: sets the name and password and signs the new member in.
    pub async fn accept(
        &self,
        token: &str,
        name: &str,
        password: String,
    ) -> Result<Issued<StaffMember>, StaffError> {
        let name = name.trim();
        accounts::check_name(name)?;
        accounts::check_password("password", &password)?;
        let hash = session_token_hash(token);
        // Refuse a dead link before paying for argon2.
        self.store
            .by_invitation(&hash)
            .await?
            .ok_or(StaffError::InvitationInvalid)?;
        let password_hash = passwords::hash(password).await?;
        let member = self
            .store
            .accept(&hash, &password_hash, name)
            .await?
            .ok_or(StaffError::InvitationInvalid)?;
        let secret = self.start_session(&member).await?;
        Ok(Issued {
            secret,
            item: member,
        })
    }

    pub async fn members(&self, by: &Actor) -> Result<Vec<StaffMember>, StaffError> {
        require(by, Access::Permission(Permission::Staff))?;
        Ok(self.store.members().await?)
    }

    /// Sets a staff member's permissions (not an owner's, not one's own, nothing one lacks).
    pub async fn set_permissions(
        &self,
        by: &Actor,
        id: Uuid,
        permissions: Permissions,
    ) -> Result<StaffMember, StaffError> {
        require(by, Access::Permission(Permission::Staff))?;
        let target = self
            .store
            .member(id)
            .await?
            .ok_or(StaffError::NotFound("staff member"))?;
        check_grant(by, Some((target.id, target.role)), &permissions)?;
        self.store
            .set_permissions(id, &permissions)
            .await?
            .ok_or(StaffError::NotFound("staff member"))
    }

    /// Removes a staff member; their sessions end at once.
    pub async fn remove(&self, by: &Actor, id: Uuid) -> Result<(), StaffError> {
        require(by, Access::Permission(Permission::Staff))?;
        let target = self
            .store
            .member(id)
            .await?
            .ok_or(StaffError::NotFound("staff member"))?;
        check_grant(by, Some((target.id, target.role)), &Permissions::new())?;
        if !self.store.remove(id).await? {
            return Err(StaffError::NotFound("staff member"));
        }
        Ok(())
    }

    pub async fn tokens(&self, by: &Actor) -> Result<Vec<ApiToken>, StaffError> {
        require(by, Access::Owner)?;
        Ok(self.store.tokens().await?)
    }

    /// Mints a scoped API token; its secret is shown once.
    pub async fn create_token(
        &self,
        by: &Actor,
        name: &str,
        permissions: Permissions,
    ) -> Result<Issued<ApiToken>, StaffError> {
        require(by, Access::Owner)?;
        check_token_name(name)?;
        if permissions.is_empty() {
            return Err(
                Invalid::new("permissions", "give the token at least one permission").into(),
            );
        }
        let secret = format!("{TOKEN_PREFIX}{}", new_session_token());
        let token = self
            .store
            .create_token(
                name.trim(),
                &session_token_hash(&secret),
                &permissions,
                &by.label(),
            )
            .await?;
        Ok(Issued {
            secret,
            item: token,
        })
    }

    /// A new secret for the token; the old one stops working at once.
    pub async fn rotate_token(&self, by: &Actor, id: Uuid) -> Result<Issued<ApiToken>, StaffError> {
        require(by, Access::Owner)?;
        let secret = format!("{TOKEN_PREFIX}{}", new_session_token());
        let token = self
            .store
            .rotate_token(id, &session_token_hash(&secret))
            .await?
            .ok_or(StaffError::NotFound("token"))?;
        Ok(Issued {
            secret,
            item: token,
        })
    }

    pub async fn delete_token(&self, by: &Actor, id: Uuid) -> Result<(), StaffError> {
        require(by, Access::Owner)?;
        if !self.store.delete_token(id).await? {
            return Err(StaffError::NotFound("token"));
        }
        Ok(())
    }

    /// Stops the tenant config's admin key from working here (owner only). The platform
    /// brings it back by putting a new key in the tenant config.
    pub async fn retire_admin_key(&self, by: &Actor) -> Result<(), StaffError> {
        require(by, Access::Owner)?;
        let key = &self.tenant.config.admin_key;
        Ok(self
            .store
            .retire_admin_key(&digest_hex(key), &by.label())
            .await?)
    }

    /// Appends to the audit log. A failure is logged, never returned: the action it records
    /// has already happened.
    pub async fn record(&self, actor: &Actor, action: &str, target: &str, outcome: u16, ip: &str) {
        let label = actor.label();
        let entry = NewAuditEntry {
            actor_kind: actor.kind(),
            actor_id: actor.id(),
            actor_label: &label,
            action,
            target,
            outcome,
            client_ip: ip,
        };
        if let Err(e) = self.store.append_audit(entry).await {
            tracing::error!(tenant = self.tenant.name(), action, error = %e, "audit entry not written");
        }
    }

    /// The audit log, newest first (owner only); `cursor` is the last id of the previous page.
    pub async fn audit(
        &self,
        by: &Actor,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<(Vec<AuditEntry>, Option<String>), StaffError> {
        require(by, Access::Owner)?;
        let limit = limit.unwrap_or(50);
        if !(1..=AUDIT_MAX_LIMIT).contains(&limit) {
            return Err(
                Invalid::new("limit", format!("must be between 1 and {AUDIT_MAX_LIMIT}")).into(),
            );
        }
        let before = cursor
            .map(|c| {
                Uuid::parse_str(c)
                    .map_err(|_| Invalid::new("cursor", "is not a cursor this API returned"))
            })
            .transpose()?;
        let entries = self.store.audit(before, limit).await?;
        let next = (entries.len() as i64 == limit)
            .then(|| entries.last().map(|e| e.id.to_string()))
            .flatten();
        Ok((entries, next))
    }
}
