//! Money and price arithmetic: integer minor units, one ISO 4217 currency per amount.

use serde::{Deserialize, Serialize};

use super::Invalid;

/// An amount in minor units (cents) of an ISO 4217 currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Money {
    /// Minor units, e.g. 1999 for 19.99 EUR.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub amount_minor: i64,
    /// ISO 4217 code, upper case, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub currency: String,
}

/// Largest single price accepted: 10 million major units, far below overflow in any total.
pub const MAX_PRICE_MINOR: i64 = 1_000_000_000;

impl Money {
    pub fn validate(&self, field: &str) -> Result<(), Invalid> {
        if !(0..=MAX_PRICE_MINOR).contains(&self.amount_minor) {
            return Err(Invalid::new(
                format!("{field}.amount_minor"),
                format!("must be between 0 and {MAX_PRICE_MINOR}"),
            ));
        }
        if !super::currency::is_currency(&self.currency) {
            return Err(Invalid::new(
                format!("{field}.currency"),
                format!(
                    "`{}` is not a current ISO 4217 currency code (such as EUR, USD, JPY)",
                    self.currency.chars().take(8).collect::<String>()
                ),
            ));
        }
        Ok(())
    }
}

/// Why a sum could not be formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("amounts in {0} and {1} cannot be added")]
    MixedCurrency(String, String),
    #[error("the total is too large")]
    Overflow,
}

/// `unit × quantity`, refusing overflow.
pub fn line_total(unit: &Money, quantity: u32) -> Result<Money, PricingError> {
    let amount_minor = unit
        .amount_minor
        .checked_mul(i64::from(quantity))
        .ok_or(PricingError::Overflow)?;
    Ok(Money {
        amount_minor,
        currency: unit.currency.clone(),
    })
}

/// Sums amounts of one currency; `None` for an empty list.
pub fn sum<'a>(
    amounts: impl IntoIterator<Item = &'a Money>,
) -> Result<Option<Money>, PricingError> {
    let mut total: Option<Money> = None;
    for m in amounts {
        total = Some(match total {
            None => m.clone(),
            Some(t) if t.currency != m.currency => {
                return Err(PricingError::MixedCurrency(t.currency, m.currency.clone()));
            }
            Some(t) => Money {
                amount_minor: t
                    .amount_minor
                    .checked_add(m.amount_minor)
                    .ok_or(PricingError::Overflow)?,
                currency: t.currency,
            },
        });
    }
    Ok(total)
}

/// Upper bounds (exclusive, minor units) of the price bands search facets count; the last band
/// is open-ended.
pub const PRICE_BAND_LIMITS: [i64; 4] = [1_000, 2_500, 5_000, 10_000];

/// A half-open price range `[min, max)`; `max: None` is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PriceBand {
    pub min_minor: i64,
    pub max_minor: Option<i64>,
}

/// The band a price falls in.
pub fn price_band(amount_minor: i64) -> PriceBand {
    let mut min_minor = 0;
    for limit in PRICE_BAND_LIMITS {
        if amount_minor < limit {
            return PriceBand {
                min_minor,
                max_minor: Some(limit),
            };
        }
        min_minor = limit;
    }
    PriceBand {
        min_minor,
        max_minor: None,
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

    #[test]
    fn totals_add_up_in_one_currency() {
        let lines = [
            line_total(&eur(250), 3).unwrap(),
            line_total(&eur(1999), 1).unwrap(),
        ];
        assert_eq!(sum(&lines).unwrap(), Some(eur(2749)));
        assert_eq!(sum(&[]).unwrap(), None);
    }

    #[test]
    fn mixed_currencies_and_overflow_are_refused() {
        let usd = Money {
            amount_minor: 1,
            currency: "USD".into(),
        };
        assert!(matches!(
            sum(&[eur(1), usd]),
            Err(PricingError::MixedCurrency(..))
        ));
        assert_eq!(line_total(&eur(i64::MAX), 2), Err(PricingError::Overflow));
    }

    #[test]
    fn money_validation_names_the_field() {
        assert_eq!(
            eur(-1).validate("price").unwrap_err().field,
            "price.amount_minor"
        );
        let bad = Money {
            amount_minor: 1,
            currency: "eur".into(),
        };
        assert_eq!(bad.validate("price").unwrap_err().field, "price.currency");
        let made_up = Money {
            amount_minor: 1,
            currency: "XYZ".into(),
        };
        assert_eq!(
            made_up.validate("price").unwrap_err().field,
            "price.currency"
        );
    }

    #[test]
    fn bands_cover_every_price() {
        assert_eq!(
            price_band(0),
            PriceBand {
                min_minor: 0,
                max_minor: Some(1_000)
            }
        );
        assert_eq!(
            price_band(1_000),
            PriceBand {
                min_minor: 1_000,
                max_minor: Some(2_500)
            }
        );
        assert_eq!(
            price_band(99_999),
            PriceBand {
                min_minor: 10_000,
                max_minor: None
            }
        );
    }
}
