//! Promotions: discount codes (a percentage, a fixed amount, or free shipping), with a validity
//! window, a minimum subtotal and usage limits. Pure: what a code takes off an order and why a
//! code is refused; counting uses under concurrency is storage's (a guarded increment in the
//! order's transaction, like stock).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Invalid, pricing::Money};

/// What a code gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Benefit {
    /// Basis points off the subtotal: 1000 is 10 %.
    Percentage { percent_bp: u32 },
    /// A fixed amount off the subtotal (never more than the subtotal).
    FixedAmount { amount: Money },
    /// Shipping costs nothing.
    FreeShipping,
}

/// A discount code as the merchant sets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromotionDraft {
    pub benefit: Benefit,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    /// Orders the code may discount in all; absent: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// Orders one customer (by account, or by email for guests) may use it for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses_per_customer: Option<u32>,
    /// The subtotal an order needs before the code applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_subtotal: Option<Money>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// A code with how often it was used (orders that hold it; an order that expires, is cancelled
/// or fails gives its use back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Promotion {
    pub code: String,
    /// What the merchant set.
    pub terms: PromotionDraft,
    pub uses: u32,
}

/// Codes are case-insensitive: stored and compared upper case.
pub fn normalise_code(raw: &str) -> Result<String, Invalid> {
    let code = raw.trim().to_ascii_uppercase();
    if (3..=40).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        Ok(code)
    } else {
        Err(Invalid::new(
            "discount_code",
            "must be 3-40 letters, digits, '-' or '_'",
        ))
    }
}

impl PromotionDraft {
    pub fn validate(&self) -> Result<(), Invalid> {
        match &self.benefit {
            Benefit::Percentage { percent_bp } if !(1..=10_000).contains(percent_bp) => {
                return Err(Invalid::new(
                    "benefit.percent_bp",
                    "must be 1 to 10000 (100 %)",
                ));
            }
            Benefit::FixedAmount { amount } => {
                amount.validate("benefit.amount")?;
                if amount.amount_minor == 0 {
                    return Err(Invalid::new(
                        "benefit.amount.amount_minor",
                        "must be more than 0",
                    ));
                }
            }
            _ => {}
        }
        if let (Some(s), Some(e)) = (self.starts_at, self.ends_at)
            && e <= s
        {
            return Err(Invalid::new("ends_at", "must be after starts_at"));
        }
        if self.max_uses == Some(0) {
            return Err(Invalid::new(
                "max_uses",
                "must be at least 1 (or absent: unlimited)",
            ));
        }
        if self.max_uses_per_customer == Some(0) {
            return Err(Invalid::new(
                "max_uses_per_customer",
                "must be at least 1 (or absent)",
            ));
        }
        if let Some(m) = &self.min_subtotal {
            m.validate("min_subtotal")?;
        }
        Ok(())
    }
}

/// Why a code does not apply to this order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeRefused {
    #[error("the code does not exist or is not active")]
    Unknown,
    #[error("the code is not valid yet")]
    NotYet,
    #[error("the code has expired")]
    Expired,
    #[error("the code needs a subtotal of at least {0}")]
    BelowMinimum(String),
    #[error("the code is for orders in {0}")]
    OtherCurrency(String),
    #[error("the code has been used up")]
    UsedUp,
    #[error("you have already used this code")]
    UsedByCustomer,
    #[error("sign in or give an email to use this code")]
    NeedsCustomer,
    #[error("nothing in this order ships, so free shipping does not apply")]
    NothingShips,
}

/// What a code takes off an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Discount {
    /// Off the subtotal, at most the subtotal.
    pub amount_minor: i64,
    pub free_shipping: bool,
}

impl PromotionDraft {
    /// The discount on an order with this subtotal at `now`, or why there is none.
    pub fn discount(
        &self,
        now: DateTime<Utc>,
        subtotal: &Money,
        ships: bool,
    ) -> Result<Discount, CodeRefused> {
        if !self.active {
            return Err(CodeRefused::Unknown);
        }
        if self.starts_at.is_some_and(|s| now < s) {
            return Err(CodeRefused::NotYet);
        }
        if self.ends_at.is_some_and(|e| now >= e) {
            return Err(CodeRefused::Expired);
        }
        if let Some(min) = &self.min_subtotal {
            if min.currency != subtotal.currency {
                return Err(CodeRefused::OtherCurrency(min.currency.clone()));
            }
            if subtotal.amount_minor < min.amount_minor {
                return Err(CodeRefused::BelowMinimum(format!(
                    "{} minor units of {}",
                    min.amount_minor, min.currency
                )));
            }
        }
        let amount_minor = match &self.benefit {
            Benefit::Percentage { percent_bp } => {
                // Half away from zero, like tax.
                let q = (2 * i128::from(subtotal.amount_minor) * i128::from(*percent_bp) + 10_000)
                    / 20_000;
                i64::try_from(q).unwrap_or(i64::MAX)
            }
            Benefit::FixedAmount { amount } => {
                if amount.currency != subtotal.currency {
                    return Err(CodeRefused::OtherCurrency(amount.currency.clone()));
                }
                amount.amount_minor
            }
            Benefit::FreeShipping if !ships => return Err(CodeRefused::NothingShips),
            Benefit::FreeShipping => 0,
        };
        Ok(Discount {
            amount_minor: amount_minor.clamp(0, subtotal.amount_minor),
            free_shipping: matches!(self.benefit, Benefit::FreeShipping),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur(amount_minor: i64) -> Money {
        Money {
            amount_minor,
            currency: "EUR".into(),
        }
    }

    fn draft(benefit: Benefit) -> PromotionDraft {
        PromotionDraft {
            benefit,
            starts_at: None,
            ends_at: None,
            max_uses: None,
            max_uses_per_customer: None,
            min_subtotal: None,
            active: true,
        }
    }

    #[test]
    fn percentage_fixed_and_free_shipping() {
        let now = Utc::now();
        let ten = draft(Benefit::Percentage { percent_bp: 1000 });
        assert_eq!(
            ten.discount(now, &eur(2995), true).unwrap().amount_minor,
            300,
            "299.5 rounds up"
        );
        let five = draft(Benefit::FixedAmount { amount: eur(500) });
        assert_eq!(
            five.discount(now, &eur(300), true).unwrap().amount_minor,
            300,
            "never below zero"
        );
        let free = draft(Benefit::FreeShipping);
        assert!(free.discount(now, &eur(300), true).unwrap().free_shipping);
        assert_eq!(
            free.discount(now, &eur(300), false),
            Err(CodeRefused::NothingShips)
        );
    }

    #[test]
    fn window_minimum_and_currency() {
        let now = Utc::now();
        let mut d = draft(Benefit::Percentage { percent_bp: 1000 });
        d.starts_at = Some(now + chrono::Duration::hours(1));
        assert_eq!(d.discount(now, &eur(100), true), Err(CodeRefused::NotYet));
        d.starts_at = None;
        d.ends_at = Some(now);
        assert_eq!(d.discount(now, &eur(100), true), Err(CodeRefused::Expired));
        d.ends_at = None;
        d.min_subtotal = Some(eur(5000));
        assert!(matches!(
            d.discount(now, &eur(4999), true),
            Err(CodeRefused::BelowMinimum(_))
        ));
        assert!(d.discount(now, &eur(5000), true).is_ok());
        let usd = Money {
            amount_minor: 5000,
            currency: "USD".into(),
        };
        assert!(matches!(
            d.discount(now, &usd, true),
            Err(CodeRefused::OtherCurrency(_))
        ));
    }

    #[test]
    fn codes_are_case_insensitive_and_drafts_validated() {
        assert_eq!(normalise_code(" summer-10 ").unwrap(), "SUMMER-10");
        assert!(normalise_code("a b").is_err());
        let mut d = draft(Benefit::Percentage { percent_bp: 0 });
        assert_eq!(d.validate().unwrap_err().field, "benefit.percent_bp");
        d.benefit = Benefit::FreeShipping;
        d.max_uses = Some(0);
        assert_eq!(d.validate().unwrap_err().field, "max_uses");
    }
}
