//! Returns and partial refunds, and fulfilment tracking: what a refund of chosen lines is worth,
//! and the records an order keeps. Pure.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Order;
use crate::domain::{Invalid, check_len, pricing::Money, totals::allocate};

/// Units of one line being returned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnedLine {
    pub sku: String,
    pub quantity: i32,
}

/// What the merchant asks for: lines (what they are worth is computed) or an amount, or both
/// (the amount wins; the lines say what came back), with a reason.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    #[serde(default)]
    pub lines: Vec<ReturnedLine>,
    #[serde(default)]
    pub amount: Option<Money>,
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    /// Put the returned lines' units back on sale.
    #[serde(default)]
    pub restock: bool,
}

/// A refund an order went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Refund {
    pub id: Uuid,
    pub amount: Money,
    pub reason: String,
    pub lines: Vec<ReturnedLine>,
    pub restocked: bool,
    /// The provider's refund id (`re_...`), for manual payments absent.
    pub provider_ref: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How the order was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fulfilment {
    #[schema(min_length = 1, max_length = 100)]
    pub carrier: String,
    #[schema(min_length = 1, max_length = 100)]
    pub tracking_number: String,
    /// Set by the server.
    #[serde(default)]
    pub fulfilled_at: Option<DateTime<Utc>>,
}

impl Fulfilment {
    pub fn validate(&self) -> Result<(), Invalid> {
        check_len("carrier", self.carrier.trim(), 1, 100)?;
        check_len("tracking_number", self.tracking_number.trim(), 1, 100)
    }
}

/// A refund request checked against the order: the amount to give back, in the order's
/// currency, and the lines returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedRefund {
    pub amount_minor: i64,
    pub lines: Vec<ReturnedLine>,
}

/// Refunds so far (amount, and units per SKU).
fn refunded(order: &Order) -> (i64, std::collections::HashMap<&str, i32>) {
    let mut units = std::collections::HashMap::new();
    let mut amount = 0;
    for r in &order.refunds {
        amount += r.amount.amount_minor;
        for l in &r.lines {
            *units.entry(l.sku.as_str()).or_default() += l.quantity;
        }
    }
    (amount, units)
}

/// Checks a refund against what the order was paid and what was returned before. Returned lines
/// are worth their share of what the shopper paid for goods (after discount, with added tax),
/// so refunding every line gives back exactly the goods' part of the total; shipping only
/// comes back as an explicit amount.
pub fn plan_refund(order: &Order, req: &RefundRequest) -> Result<PlannedRefund, Invalid> {
    check_len("reason", req.reason.trim(), 1, 500)?;
    if req.lines.is_empty() && req.amount.is_none() {
        return Err(Invalid::new(
            "lines",
            "name the returned lines, or give an amount",
        ));
    }
    let (already, units) = refunded(order);
    let mut merged: Vec<ReturnedLine> = Vec::new();
    for (i, l) in req.lines.iter().enumerate() {
        let Some(ordered) = order.lines.iter().find(|o| o.sku == l.sku) else {
            return Err(Invalid::new(
                format!("lines[{i}].sku"),
                "is not in the order",
            ));
        };
        let before = units.get(l.sku.as_str()).copied().unwrap_or(0)
            + merged
                .iter()
                .filter(|m| m.sku == l.sku)
                .map(|m| m.quantity)
                .sum::<i32>();
        if l.quantity < 1 || before + l.quantity > ordered.quantity {
            return Err(Invalid::new(
                format!("lines[{i}].quantity"),
                format!(
                    "must be 1 to {} (ordered {}, returned {before})",
                    ordered.quantity - before,
                    ordered.quantity
                ),
            ));
        }
        merged.push(l.clone());
    }
    let remaining = order.total.amount_minor - already;
    let amount_minor = match &req.amount {
        Some(a) => {
            if a.currency != order.total.currency {
                return Err(Invalid::new(
                    "amount.currency",
                    format!("must be {}", order.total.currency),
                ));
            }
            a.amount_minor
        }
        None => {
            // The goods' part of the total, spread over the ordered units.
            let goods = order.total.amount_minor
                - order.shipping.as_ref().map_or(0, |s| s.price.amount_minor);
            let weights: Vec<i64> = order
                .lines
                .iter()
                .map(|l| l.unit_price.amount_minor * i64::from(l.quantity))
                .collect();
            let per_line = allocate(goods.max(0), &weights);
            merged
                .iter()
                .map(|m| {
                    let (idx, line) = order
                        .lines
                        .iter()
                        .enumerate()
                        .find(|(_, o)| o.sku == m.sku)
                        .expect("checked above");
                    per_line[idx] * i64::from(m.quantity) / i64::from(line.quantity)
                })
                .sum()
        }
    };
    if amount_minor < 1 || amount_minor > remaining {
        return Err(Invalid::new(
            "amount",
            format!("must be 1 to {remaining} minor units (what is left to refund)"),
        ));
    }
    Ok(PlannedRefund {
        amount_minor,
        lines: merged,
    })
}
