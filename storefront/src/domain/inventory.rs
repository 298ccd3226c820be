//! Inventory and checkout rules: stock levels, reservation order and expiry, and what makes two
//! checkout requests "the same" for an `Idempotency-Key`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::Invalid;

/// Most units a merchant may record for one SKU.
pub const MAX_STOCK: i32 = 1_000_000_000;
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

pub fn check_stock(available: i64) -> Result<i32, Invalid> {
    i32::try_from(available)
        .ok()
        .filter(|n| (0..=MAX_STOCK).contains(n))
        .ok_or_else(|| Invalid::new("available", format!("must be between 0 and {MAX_STOCK}")))
}

pub fn check_idempotency_key(key: Option<&str>) -> Result<&str, Invalid> {
    let key = key.map(str::trim).unwrap_or("");
    if key.is_empty() {
        return Err(Invalid::new(
            "Idempotency-Key",
            "the header is required on checkout",
        ));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Invalid::new(
            "Idempotency-Key",
            format!("must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"),
        ));
    }
    Ok(key)
}

/// The order in which a checkout takes stock: by SKU, ascending, one entry per SKU.
///
/// Every transaction that touches several inventory rows (checkout, release, restock) visits them
/// in this one order, so two transactions never wait on each other's rows in a cycle: no
/// deadlock, whatever order the shoppers put the lines in their carts.
pub fn reservation_order<'a>(
    lines: impl IntoIterator<Item = (&'a str, u32)>,
) -> Vec<(String, i32)> {
    let mut by_sku: BTreeMap<&str, i64> = BTreeMap::new();
    for (sku, qty) in lines {
        *by_sku.entry(sku).or_default() += i64::from(qty);
    }
    by_sku
        .into_iter()
        .filter(|(_, q)| *q > 0)
        .map(|(sku, q)| (sku.to_owned(), i32::try_from(q).unwrap_or(i32::MAX)))
        .collect()
}

/// When a reservation made `now` stops holding stock.
pub fn reservation_expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    now + Duration::from_std(ttl).unwrap_or(Duration::minutes(15))
}

/// Identifies a checkout request for idempotency: the cart and the exact body.
pub fn checkout_fingerprint(cart_id: &uuid::Uuid, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(cart_id.as_bytes());
    h.update(b"\n");
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A stock level changed: what SSE subscribers and other replicas hear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StockChange {
    /// Per-tenant event number, dense and in commit order; the SSE event id.
    pub seq: i64,
    pub sku: String,
    pub available: i32,
}

/// A stock change and the tenant it belongs to: what replicas tell each other about stock.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StockNotice {
    pub tenant: String,
    #[serde(flatten)]
    pub change: StockChange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservation_order_is_sorted_and_merged() {
        let order = reservation_order([("b", 1), ("a", 2), ("b", 3)]);
        assert_eq!(order, vec![("a".into(), 2), ("b".into(), 4)]);
        let reversed = reservation_order([("b", 4), ("a", 2)]);
        assert_eq!(order, reversed);
    }

    #[test]
    fn stock_bounds() {
        assert_eq!(check_stock(0).unwrap(), 0);
        assert!(check_stock(-1).is_err());
        assert!(check_stock(i64::from(MAX_STOCK) + 1).is_err());
    }

    #[test]
    fn idempotency_keys() {
        assert!(check_idempotency_key(None).is_err());
        assert!(check_idempotency_key(Some("  ")).is_err());
        assert!(check_idempotency_key(Some("a b")).is_err());
        assert_eq!(check_idempotency_key(Some("k-1")).unwrap(), "k-1");
        let cart = uuid::Uuid::nil();
        assert_eq!(
            checkout_fingerprint(&cart, b"{}"),
            checkout_fingerprint(&cart, b"{}")
        );
        assert_ne!(
            checkout_fingerprint(&cart, b"{}"),
            checkout_fingerprint(&cart, b"{\"a\":1}")
        );
    }
}
