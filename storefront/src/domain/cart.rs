//! Cart rules: quantities, merging a guest cart into a customer's, and totals priced on the
//! server from the current catalog (a client never sends a price).

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    Invalid,
    pricing::{self, Money},
};

pub const MAX_QUANTITY: u32 = 99;
pub const MAX_LINES: usize = 100;

/// SKU → quantity, as stored.
pub type Lines = BTreeMap<String, u32>;

pub fn check_quantity(quantity: u32) -> Result<(), Invalid> {
    if quantity == 0 || quantity > MAX_QUANTITY {
        return Err(Invalid::new(
            "quantity",
            format!("must be between 1 and {MAX_QUANTITY}"),
        ));
    }
    Ok(())
}

/// Adds the guest cart's lines to the customer's, capping each at [`MAX_QUANTITY`] and dropping
/// lines past [`MAX_LINES`] (the customer's own lines win).
pub fn merge(customer: &Lines, guest: &Lines) -> Lines {
    let mut merged = customer.clone();
    for (sku, qty) in guest {
        let full = merged.len() >= MAX_LINES;
        match merged.get_mut(sku) {
            Some(q) => *q = (*q + qty).min(MAX_QUANTITY),
            None if !full => {
                merged.insert(sku.clone(), (*qty).min(MAX_QUANTITY));
            }
            None => {}
        }
    }
    merged
}

/// What the catalog says about a SKU right now.
#[derive(Debug, Clone)]
pub struct CurrentPrice {
    pub product_id: uuid::Uuid,
    pub title: String,
    pub unit_price: Money,
}

/// A cart line with prices filled in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PricedLine {
    pub sku: String,
    pub quantity: u32,
    /// False when the SKU is no longer sold; such lines do not count towards the total.
    pub available: bool,
    pub product_id: Option<uuid::Uuid>,
    pub title: Option<String>,
    pub unit_price: Option<Money>,
    pub line_total: Option<Money>,
}

/// Prices every line from `lookup`; lines whose SKU vanished stay visible but unpriced.
pub fn price_lines(
    lines: &Lines,
    lookup: impl Fn(&str) -> Option<CurrentPrice>,
) -> Result<(Vec<PricedLine>, Option<Money>), pricing::PricingError> {
    let mut priced = Vec::with_capacity(lines.len());
    for (sku, &quantity) in lines {
        let line = match lookup(sku) {
            Some(cur) => PricedLine {
                sku: sku.clone(),
                quantity,
                available: true,
                product_id: Some(cur.product_id),
                title: Some(cur.title),
                line_total: Some(pricing::line_total(&cur.unit_price, quantity)?),
                unit_price: Some(cur.unit_price),
            },
            None => PricedLine {
                sku: sku.clone(),
                quantity,
                available: false,
                product_id: None,
                title: None,
                unit_price: None,
                line_total: None,
            },
        };
        priced.push(line);
    }
    let total = pricing::sum(priced.iter().filter_map(|l| l.line_total.as_ref()))?;
    Ok((priced, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(items: &[(&str, u32)]) -> Lines {
        items.iter().map(|(s, q)| (s.to_string(), *q)).collect()
    }

    #[test]
    fn merge_adds_quantities_and_caps() {
        let merged = merge(
            &lines(&[("a", 2), ("b", 98)]),
            &lines(&[("b", 5), ("c", 1)]),
        );
        assert_eq!(merged, lines(&[("a", 2), ("b", 99), ("c", 1)]));
    }

    #[test]
    fn totals_come_from_current_prices_and_skip_vanished_skus() {
        let lookup = |sku: &str| {
            (sku == "a").then(|| CurrentPrice {
                product_id: uuid::Uuid::nil(),
                title: "A".into(),
                unit_price: Money {
                    amount_minor: 250,
                    currency: "EUR".into(),
                },
            })
        };
        let (priced, total) = price_lines(&lines(&[("a", 3), ("gone", 1)]), lookup).unwrap();
        assert_eq!(
            total,
            Some(Money {
                amount_minor: 750,
                currency: "EUR".into()
            })
        );
        assert!(!priced.iter().find(|l| l.sku == "gone").unwrap().available);
    }

    #[test]
    fn quantity_bounds() {
        assert!(check_quantity(0).is_err());
        assert!(check_quantity(100).is_err());
        assert!(check_quantity(1).is_ok());
    }
}
