//! Business rules of the storefront. Nothing here knows axum, PostgreSQL or DynamoDB: the use
//! cases in [`crate::services`] call these rules and storage adapters implement the traits in
//! [`ports`].

pub mod accounts;
pub mod cart;
pub mod catalog;
pub mod currency;
pub mod inventory;
pub mod orders;
pub mod ports;
pub mod pricing;
pub mod promotions;
pub mod shipping;
pub mod staff;
pub mod tenancy;
pub mod totals;

/// A rule an input broke, naming the field so a client can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks a free-text field's length in characters.
pub fn check_len(field: &str, value: &str, min: usize, max: usize) -> Result<(), Invalid> {
    let n = value.chars().count();
    if n < min {
        return Err(Invalid::new(
            field,
            format!("must be at least {min} characters"),
        ));
    }
    if n > max {
        return Err(Invalid::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(())
}
