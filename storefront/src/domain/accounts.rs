//! Customer accounts: what a valid email, password and profile are, and session tokens.

use base64::Engine as _;
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{Invalid, check_len};

/// A customer as shoppers see themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Customer {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Whether the customer used a link mailed to `email` (verification or password reset).
    pub email_verified: bool,
    /// A new address waiting for its verification link; `email` stays in effect (and is the
    /// one to sign in with) until the link is used.
    pub pending_email: Option<String>,
}

/// What a mailed single-use link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    PasswordReset,
    VerifyEmail,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::VerifyEmail => "verify_email",
        }
    }
}

/// Lower-cases and trims an email and checks it looks like one. Uniqueness is per tenant.
pub fn normalize_email(raw: &str) -> Result<String, Invalid> {
    let email = raw.trim().to_lowercase();
    check_len("email", &email, 3, 254)?;
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
                && !domain.contains('@')
        }
        None => false,
    };
    if !valid {
        return Err(Invalid::new("email", "is not an email address"));
    }
    Ok(email)
}

/// 10–128 characters; longer inputs would let a client make argon2 work for nothing.
pub fn check_password(field: &str, password: &str) -> Result<(), Invalid> {
    check_len(field, password, 10, 128)
}

pub fn check_name(name: &str) -> Result<(), Invalid> {
    check_len("name", name, 0, 100)
}

/// A new opaque session token (256 random bits) to hand the client once.
pub fn new_session_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What is stored instead of the token, so a leaked table does not leak sessions.
pub fn session_token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalize_email("  Ann@Example.COM ").unwrap(),
            "ann@example.com"
        );
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a b@example.com",
            "a@b@c.com",
        ] {
            assert_eq!(normalize_email(bad).unwrap_err().field, "email", "{bad}");
        }
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_session_token(), new_session_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(session_token_hash(&a).len(), 64);
        assert_ne!(session_token_hash(&a), a);
    }

    #[test]
    fn password_length() {
        assert!(check_password("password", "short").is_err());
        assert!(check_password("password", "long enough pw").is_ok());
    }
}
