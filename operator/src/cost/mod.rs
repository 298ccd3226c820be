//! Per-tenant cost: what a Storefront is estimated to cost a month at list prices, shown in
//! `status.cost`, `kubectl get sf -o wide` and `kubectl emporium`. `docs/cost.md` explains the
//! model; `docs/decisions/0027-per-tenant-cost-estimate.md` why it is made this way.
//!
//! [`model`] is the arithmetic (pure), [`prices`] the unit prices (operator configuration).
//! Gathering the quantities (AWS and Kubernetes reads, bounded to one refresh per tenant per
//! [`CostSettings::refresh`]) is the reconcile step `reconcile::cost`.

pub mod model;
pub mod prices;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use self::{
    model::{Component, Estimate, Source, Usage, dollars, estimate},
    prices::{PriceBook, PriceBookError},
};
use crate::crd::{CostLine, CostStatus};

/// How the operator estimates cost.
#[derive(Debug, Clone, PartialEq)]
pub struct CostSettings {
    pub prices: PriceBook,
    /// How old an estimate may get before a reconcile computes it again (AWS reads included).
    /// Zero: no estimates (`status.cost` is left out).
    pub refresh: Duration,
}

impl Default for CostSettings {
    fn default() -> Self {
        Self {
            prices: PriceBook::default(),
            refresh: Duration::from_secs(3600),
        }
    }
}

/// How often a provisional estimate (see [`CostStatus::provisional`]) is made again at most.
pub const PROVISIONAL_REFRESH: Duration = Duration::from_secs(60);

/// The status form of `estimate`, computed at `now` (RFC 3339).
pub fn to_status(
    estimate: &Estimate,
    prices: &PriceBook,
    now: &str,
    provisional: bool,
) -> CostStatus {
    CostStatus {
        provisional,
        currency: prices.currency.clone(),
        monthly_estimate: dollars(estimate.total_cents()),
        price_book: prices.label(),
        computed_at: now.to_owned(),
        breakdown: estimate
            .lines
            .iter()
            .map(|line| CostLine {
                component: line.component.as_str().to_owned(),
                monthly: dollars(line.cents),
                source: line.source.as_str().to_owned(),
                basis: line.basis.clone(),
            })
            .collect(),
    }
}

/// Whether the estimate `previous` (if any) is due for a recomputation at `now`, the tenant's
/// data being `provisional` (still provisioned) or not: there is none, it was made with
/// another price book, its time cannot be read, it was provisional and the data is ready now,
/// or it is older than `refresh` ([`PROVISIONAL_REFRESH`] at most while provisional).
pub fn due(
    previous: Option<&CostStatus>,
    prices: &PriceBook,
    now: k8s_openapi::jiff::Timestamp,
    refresh: Duration,
    provisional: bool,
) -> bool {
    let Some(previous) = previous else {
        return true;
    };
    if previous.price_book != prices.label() || previous.currency != prices.currency {
        return true;
    }
    if previous.provisional && !provisional {
        return true;
    }
    let refresh = if provisional {
        refresh.min(PROVISIONAL_REFRESH)
    } else {
        refresh
    };
    match previous.computed_at.parse::<k8s_openapi::jiff::Timestamp>() {
        Ok(at) => {
            let age = now.as_second().saturating_sub(at.as_second());
            age < 0 || age.unsigned_abs() >= refresh.as_secs()
        }
        Err(_) => true,
    }
}
