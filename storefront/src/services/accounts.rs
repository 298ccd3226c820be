//! Accounts: registration, sign-in (rate limited, guest cart merged), sign-out, profile and
//! password changes, and the session lookup every signed-in request goes through.

use chrono::{DateTime, Utc};
use prometheus_client::metrics::counter::Counter;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{
    carts::adopt_on_login,
    passwords::{self, PasswordError},
    session_cache::SessionCache,
};
use crate::{
    app::Settings,
    domain::{
        Invalid,
        accounts::{self, Customer, session_token_hash},
        ports::{CartStore, CartWriteError, CustomerStore, Session, SessionStore, StoreError},
    },
    storage::{
        bus::{Bus, Notice},
        ratelimit::RateLimiter,
    },
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

/// Why an account operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Registering an email the store already has.
    #[error("this email is already registered with this store")]
    EmailRegistered,
    /// Changing the profile to another customer's email.
    #[error("this email is already registered")]
    EmailInUse,
    /// Unknown email, wrong password, or a session (or its customer) that no longer exists.
    #[error("authentication required")]
    Unauthenticated,
    #[error("the current password is wrong")]
    WrongPassword,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Cart(#[from] CartWriteError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What accounts need: the tenant's customers, sessions and carts, the session cache, the
/// notice bus (revocations), the login rate limiter and its settings.
pub struct Accounts<'a, U, S, C> {
    pub tenant: &'a str,
    pub customers: &'a U,
    pub sessions: &'a S,
    pub carts: &'a C,
    pub session_cache: &'a SessionCache,
    pub bus: &'a Bus,
    pub limiter: &'a RateLimiter,
    pub settings: &'a Settings,
    /// Counts logins refused by the rate limit.
    pub rate_limited: &'a Counter,
}

fn limit_key(tenant: &str, kind: &str, value: &str) -> String {
    // Hash the email so Redis never holds it in clear.
    let digest = Sha256::digest(value.as_bytes());
    let short: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("emporium:login:{tenant}:{kind}:{short}")
}

impl<U: CustomerStore, S: SessionStore, C: CartStore> Accounts<'_, U, S, C> {
    /// Looks a session token up: memory first, then the tenant's sessions table.
    pub async fn session(&self, token: &str) -> Result<Session, AccountError> {
        let hash = session_token_hash(token);
        if let Some(s) = self.session_cache.get(self.tenant, &hash) {
            return Ok(s);
        }
        let s = self
            .sessions
            .get(&hash)
            .await?
            .ok_or(AccountError::Unauthenticated)?;
        self.session_cache.put(self.tenant, s.clone());
        Ok(s)
    }

    async fn start_session(&self, customer: Uuid) -> Result<(String, Session), AccountError> {
        let token = accounts::new_session_token();
        let ttl = chrono::Duration::from_std(self.settings.session_ttl)
            .unwrap_or(chrono::Duration::days(30));
        let session = Session {
            token_hash: accounts::session_token_hash(&token),
            customer_id: customer,
            expires_at: Utc::now() + ttl,
        };
        self.sessions.create(&session).await?;
        self.session_cache.put(self.tenant, session.clone());
        Ok((token, session))
    }

    /// Creates the account and signs it in; `ip` is the client's, for the rate limit.
    pub async fn register(
        &self,
        ip: &str,
        req: RegisterRequest,
    ) -> Result<SessionResponse, AccountError> {
        let email = accounts::normalize_email(&req.email)?;
        accounts::check_password("password", &req.password)?;
        // Hashing is deliberately expensive: cap how often one client can make us do it.
        let s = self.settings;
        let key = limit_key(self.tenant, "register-ip", ip);
        if let Err(retry_after_secs) = self
            .limiter
            .hit(&key, s.login_limit_per_ip, s.login_window.as_secs().max(1))
            .await
        {
            return Err(AccountError::RateLimited { retry_after_secs });
        }
        let name = req.name.trim().to_owned();
        accounts::check_name(&name)?;
        let hash = passwords::hash(req.password).await?;
        let customer = self
            .customers
            .create(&email, &hash, &name)
            .await?
            .map_err(|_| AccountError::EmailRegistered)?;
        let (token, session) = self.start_session(customer.id).await?;
        Ok(SessionResponse {
            token,
            expires_at: session.expires_at,
            customer,
            cart_id: None,
        })
    }

    /// Signs in (limited per IP and per email) and merges the guest cart.
    pub async fn login(
        &self,
        ip: &str,
        req: LoginRequest,
    ) -> Result<SessionResponse, AccountError> {
        let email = accounts::normalize_email(&req.email)?;
        if req.password.len() > 1024 {
            return Err(Invalid::new("password", "is too long").into());
        }
        let s = self.settings;
        let window = s.login_window.as_secs().max(1);
        for (kind, value, limit) in [
            ("ip", ip, s.login_limit_per_ip),
            ("email", email.as_str(), s.login_limit_per_email),
        ] {
            if let Err(retry_after_secs) = self
                .limiter
                .hit(&limit_key(self.tenant, kind, value), limit, window)
                .await
            {
                self.rate_limited.inc();
                return Err(AccountError::RateLimited { retry_after_secs });
            }
        }
        let found = self.customers.by_email(&email).await?;
        let ok = passwords::verify(
            req.password,
            found.as_ref().map(|f| f.password_hash.clone()),
        )
        .await;
        let customer = match found {
            Some(f) if ok => f.customer,
            _ => return Err(AccountError::Unauthenticated),
        };
        let (token, session) = self.start_session(customer.id).await?;
        let cart_id = adopt_on_login(self.carts, customer.id, req.guest_cart_id).await?;
        Ok(SessionResponse {
            token,
            expires_at: session.expires_at,
            customer,
            cart_id,
        })
    }

    /// Ends the session.
    pub async fn logout(&self, session: &Session) -> Result<(), AccountError> {
        self.sessions
            .delete(&session.token_hash, session.customer_id)
            .await?;
        self.revoke(&session.token_hash).await;
        Ok(())
    }

    /// Forgets a session here and tells the other replicas.
    async fn revoke(&self, token_hash: &str) {
        self.session_cache.revoke(self.tenant, token_hash);
        self.bus
            .publish(&Notice::SessionRevoked {
                tenant: self.tenant.to_owned(),
                token_hash: token_hash.to_owned(),
            })
            .await;
    }

    /// The signed-in customer.
    pub async fn profile(&self, customer: Uuid) -> Result<Customer, AccountError> {
        let found = self.customers.by_id(customer).await?;
        found
            .map(|f| f.customer)
            .ok_or(AccountError::Unauthenticated)
    }

    /// Changes the email and/or name.
    pub async fn update_profile(
        &self,
        customer: Uuid,
        email: Option<&str>,
        name: Option<&str>,
    ) -> Result<Customer, AccountError> {
        let email = email.map(accounts::normalize_email).transpose()?;
        let name = name.map(str::trim);
        if let Some(n) = name {
            accounts::check_name(n)?;
        }
        let updated = self
            .customers
            .update_profile(customer, email.as_deref(), name)
            .await?
            .map_err(|_| AccountError::EmailInUse)?;
        updated.ok_or(AccountError::Unauthenticated)
    }

    /// Changes the password and ends every other session of the customer.
    pub async fn change_password(
        &self,
        session: &Session,
        current_password: String,
        new_password: String,
    ) -> Result<(), AccountError> {
        accounts::check_password("new_password", &new_password)?;
        let found = self
            .customers
            .by_id(session.customer_id)
            .await?
            .ok_or(AccountError::Unauthenticated)?;
        if current_password.len() > 1024
            || !passwords::verify(current_password, Some(found.password_hash)).await
        {
            return Err(AccountError::WrongPassword);
        }
        let hash = passwords::hash(new_password).await?;
        self.customers
            .set_password_hash(session.customer_id, &hash)
            .await?;
        for ended in self
            .sessions
            .delete_others(session.customer_id, Some(&session.token_hash))
            .await?
        {
            self.revoke(&ended).await;
        }
        Ok(())
    }
}
