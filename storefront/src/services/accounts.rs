//! Accounts: registration, sign-in (rate limited, guest cart merged), sign-out, profile and
//! password changes, password reset and email verification by mailed single-use links, and the
//! session lookup every signed-in request goes through.
//!
//! Why the reset request answers the same for every address, how links are stored and used,
//! and the mail rate limits: `docs/decisions/0026-password-reset-and-email-verification.md`.

use std::sync::Arc;

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
        accounts::{self, Customer, TokenPurpose, new_session_token, session_token_hash},
        ports::{CartStore, CartWriteError, CustomerStore, Session, SessionStore, StoreError},
    },
    notifications::{
        Notifier,
        account_mail::{AccountMail, AccountMailer},
    },
    storage::{
        bus::{Bus, Notice},
        ratelimit::RateLimiter,
    },
    tenants::TenantRuntime,
};

/// Longest token accepted from a link (ours are 43 characters); longer is refused unhashed.
const MAX_TOKEN_LEN: usize = 128;

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
    /// Changing the email without sending the current password.
    #[error("changing the email needs the current password")]
    PasswordRequired,
    /// A reset or verification link that is unknown, used, expired or superseded.
    #[error("this link is invalid, used or expired; ask for a new one")]
    TokenInvalid,
    #[error("the email address is already verified")]
    AlreadyVerified,
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
    /// Sends the tenant's reset and verification mails (through [`Self::mailer`]).
    pub notifier: &'a Arc<Notifier>,
    pub runtime: &'a TenantRuntime,
}

/// When a link issued now for `ttl` stops working.
fn expiry(ttl: std::time::Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::minutes(30))
}

/// The page a mailed link opens, on the store's origin (`https://shop.example.com`). The
/// token is in the query, not the path: request logs record paths only.
fn link(origin: &str, page: &str, token: &str) -> String {
    format!("{origin}/{page}?token={token}")
}

fn limit_key(tenant: &str, kind: &str, value: &str) -> String {
    // Hash the email so Redis never holds it in clear.
    let digest = Sha256::digest(value.as_bytes());
    let short: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("emporium:login:{tenant}:{kind}:{short}")
}

impl<U: CustomerStore, S: SessionStore, C: CartStore> Accounts<'_, U, S, C> {
    fn mailer(&self) -> AccountMailer {
        AccountMailer::new(self.notifier.clone(), self.runtime)
    }

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

    /// Creates the account, signs it in and mails a verification link (to a page on `origin`);
    /// `ip` is the client's, for the rate limit.
    pub async fn register(
        &self,
        ip: &str,
        origin: &str,
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
        self.send_verification(customer.id, &customer.email, false, origin)
            .await?;
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

    /// Changes the name, and asks for an email change: a new address needs the current
    /// password, and takes effect only once the link mailed to it is used (until then it is
    /// the customer's `pending_email`). The mail counts against the mail limits of `ip` and of
    /// the new address.
    pub async fn update_profile(
        &self,
        ip: &str,
        origin: &str,
        customer: Uuid,
        change: ProfileChange<'_>,
    ) -> Result<Customer, AccountError> {
        let email = change.email.map(accounts::normalize_email).transpose()?;
        let name = change.name.map(str::trim);
        if let Some(n) = name {
            accounts::check_name(n)?;
        }
        let found = self
            .customers
            .by_id(customer)
            .await?
            .ok_or(AccountError::Unauthenticated)?;
        let new_email = email.filter(|e| *e != found.customer.email);
        if let Some(new) = &new_email {
            let password = change
                .current_password
                .ok_or(AccountError::PasswordRequired)?;
            if password.len() > 1024
                || !passwords::verify(password, Some(found.password_hash.clone())).await
            {
                return Err(AccountError::WrongPassword);
            }
            if self.customers.by_email(new).await?.is_some() {
                return Err(AccountError::EmailInUse);
            }
            self.limit_mail(ip, new).await?;
        }
        let mut updated = found.customer;
        if name.is_some() {
            updated = self
                .customers
                .update_profile(customer, None, name)
                .await?
                .map_err(|_| AccountError::EmailInUse)?
                .ok_or(AccountError::Unauthenticated)?;
        }
        if let Some(new) = new_email {
            updated = self.send_verification(customer, &new, true, origin).await?;
        }
        Ok(updated)
    }

    /// Issues a verification link for `email` and mails it in the background. `pending`: the
    /// address is a requested change (stored as `pending_email`), not the current one.
    async fn send_verification(
        &self,
        customer: Uuid,
        email: &str,
        pending: bool,
        origin: &str,
    ) -> Result<Customer, AccountError> {
        let token = new_session_token();
        let hash = session_token_hash(&token);
        let ttl = self.settings.verification_ttl;
        let updated = if pending {
            self.customers
                .request_email_change(customer, email, &hash, expiry(ttl))
                .await?
        } else {
            self.customers
                .issue_token(
                    customer,
                    TokenPurpose::VerifyEmail,
                    email,
                    &hash,
                    expiry(ttl),
                )
                .await?;
            self.customers.by_id(customer).await?.map(|f| f.customer)
        };
        let updated = updated.ok_or(AccountError::Unauthenticated)?;
        self.mailer().spawn(
            AccountMail::VerifyEmail,
            email.to_owned(),
            link(origin, "verify-email", &token),
            ttl,
        );
        Ok(updated)
    }

    /// Mails a new verification link: to the pending address if there is one, else to the
    /// current one while it is unverified.
    pub async fn resend_verification(
        &self,
        ip: &str,
        origin: &str,
        customer: Uuid,
    ) -> Result<(), AccountError> {
        let c = self
            .customers
            .by_id(customer)
            .await?
            .ok_or(AccountError::Unauthenticated)?
            .customer;
        let (to, pending) = match (c.pending_email, c.email_verified) {
            (Some(p), _) => (p, true),
            (None, false) => (c.email, false),
            (None, true) => return Err(AccountError::AlreadyVerified),
        };
        self.limit_mail(ip, &to).await?;
        self.send_verification(customer, &to, pending, origin)
            .await
            .map(|_| ())
    }

    /// Uses a verification link: the address it went to becomes the customer's verified email.
    pub async fn verify_email(&self, token: &str) -> Result<Customer, AccountError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AccountError::TokenInvalid);
        }
        self.customers
            .verify_email(&session_token_hash(token))
            .await?
            .map_err(|_| AccountError::EmailInUse)?
            .ok_or(AccountError::TokenInvalid)
    }

    /// Uses a password-reset link: sets the new password and ends every session of the
    /// customer (here, in the sessions table, and on the other replicas through the bus).
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: String,
    ) -> Result<(), AccountError> {
        accounts::check_password("new_password", &new_password)?;
        if token.len() > MAX_TOKEN_LEN {
            return Err(AccountError::TokenInvalid);
        }
        let token_hash = session_token_hash(token);
        // Refuse a dead link before paying for argon2.
        if self
            .customers
            .token_holder(&token_hash, TokenPurpose::PasswordReset)
            .await?
            .is_none()
        {
            return Err(AccountError::TokenInvalid);
        }
        let hash = passwords::hash(new_password).await?;
        let customer = self
            .customers
            .reset_password(&token_hash, &hash)
            .await?
            .ok_or(AccountError::TokenInvalid)?;
        for ended in self.sessions.delete_others(customer, None).await? {
            self.revoke(&ended).await;
        }
        Ok(())
    }

    /// Whether a password-reset link still works (the page it opens says so before asking
    /// for a new password).
    pub async fn reset_link_live(&self, token: &str) -> Result<bool, AccountError> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(false);
        }
        Ok(self
            .customers
            .token_holder(&session_token_hash(token), TokenPurpose::PasswordReset)
            .await?
            .is_some())
    }

    /// Counts one account mail against the limits of the client IP and of the address.
    async fn limit_mail(&self, ip: &str, email: &str) -> Result<(), AccountError> {
        let s = self.settings;
        let window = s.account_mail_window.as_secs().max(1);
        for (kind, value, limit) in [
            ("mail-ip", ip, s.account_mail_limit_per_ip),
            ("mail-email", email, s.account_mail_limit_per_email),
        ] {
            if let Err(retry_after_secs) = self
                .limiter
                .hit(&limit_key(self.tenant, kind, value), limit, window)
                .await
            {
                return Err(AccountError::RateLimited { retry_after_secs });
            }
        }
        Ok(())
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

/// What a profile update may change.
#[derive(Debug, Default)]
pub struct ProfileChange<'a> {
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    /// Needed when `email` is a new address.
    pub current_password: Option<String>,
}

impl<U: CustomerStore + Clone + 'static, S: SessionStore, C: CartStore> Accounts<'_, U, S, C> {
    /// Asks for a password-reset link for `email`. The answer is the same whether or not the
    /// address has an account, and takes the same time: after the rate limits (counted for
    /// every address alike) the lookup, the link and the mail happen in the background.
    pub async fn request_password_reset(
        &self,
        ip: &str,
        origin: &str,
        email: &str,
    ) -> Result<(), AccountError> {
        let email = accounts::normalize_email(email)?;
        self.limit_mail(ip, &email).await?;
        let customers = self.customers.clone();
        let mailer = self.mailer();
        let ttl = self.settings.password_reset_ttl;
        let origin = origin.to_owned();
        tokio::spawn(async move {
            let found = match customers.by_email(&email).await {
                Ok(Some(found)) => found,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "password reset not issued");
                    return;
                }
            };
            let token = new_session_token();
            if let Err(e) = customers
                .issue_token(
                    found.customer.id,
                    TokenPurpose::PasswordReset,
                    &email,
                    &session_token_hash(&token),
                    expiry(ttl),
                )
                .await
            {
                tracing::warn!(error = %e, "password reset not issued");
                return;
            }
            mailer
                .send(
                    AccountMail::PasswordReset,
                    &email,
                    &link(&origin, "reset-password", &token),
                    ttl,
                )
                .await;
        });
        Ok(())
    }
}
