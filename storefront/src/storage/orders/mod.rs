//! PostgreSQL side of checkout, one file per aggregate: [`inventory`] (stock levels and their
//! change log), [`checkout`] (idempotency keys and order creation), [`lifecycle`] (order lookups,
//! transitions, payment events) and [`outbox`] (order events on their way to the queue). One
//! [`PgOrders`] is bound to one tenant and implements the order ports of
//! [`crate::domain::ports`].
//!
//! Oversell is prevented by a **guarded decrement**:
//! `UPDATE inventory SET available = available - $n WHERE ... AND available >= $n`.
//! The row lock the UPDATE takes serialises concurrent checkouts of one SKU, and each one
//! re-evaluates the guard against the committed value after the lock is granted, so no
//! interleaving can take more than is there (the `CHECK (available >= 0)` backs this up). We
//! chose it over `SELECT ... FOR UPDATE` + compare + write because it is one round trip per
//! SKU and holds the lock for the shortest time. Multi-SKU carts decrement in sorted SKU order
//! ([`reservation_order`](crate::domain::inventory::reservation_order)), and every other path
//! that touches several inventory rows uses the same order, so lock waits can never form a
//! cycle (no deadlocks).

mod checkout;
mod inventory;
mod lifecycle;
mod outbox;
mod refunds;
mod settings;

use std::sync::Arc;

pub use inventory::STOCK_CHANNEL;

use super::postgres::Database;
use crate::domain::{
    orders::{Order, OrderStatus},
    ports::StoreError,
    pricing::Money,
};

fn pg_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::caused_by("postgres", e)
}

/// Orders and inventory of one tenant.
#[derive(Clone)]
pub struct PgOrders {
    pub db: Arc<Database>,
    pub tenant: Arc<str>,
}

impl PgOrders {
    pub fn new(db: Arc<Database>, tenant: &str) -> Self {
        Self {
            db,
            tenant: tenant.into(),
        }
    }

    fn t(&self) -> &str {
        &self.tenant
    }
}

const ORDER_COLUMNS: &str = "id, status, customer_id, cart_id, email, currency, total_minor, payment_provider, payment_ref, reserved_until, created_at, updated_at, subtotal_minor, shipping, shipping_address, billing_address, discount_minor, tax, discount_code, fulfilment";

/// A JSON column read back into its type.
fn json_column<T: serde::de::DeserializeOwned>(
    row: &tokio_postgres::Row,
    idx: usize,
) -> Result<Option<T>, StoreError> {
    row.get::<_, Option<serde_json::Value>>(idx)
        .map(serde_json::from_value)
        .transpose()
        .map_err(pg_err)
}

fn order_from(row: &tokio_postgres::Row) -> Result<Order, StoreError> {
    let status: String = row.get(1);
    let currency: String = row.get(5);
    Ok(Order {
        id: row.get(0),
        status: OrderStatus::parse(&status).ok_or_else(|| {
            StoreError::new("postgres", format!("unknown order status `{status}`"))
        })?,
        customer_id: row.get(2),
        cart_id: row.get(3),
        email: row.get(4),
        lines: Vec::new(),
        subtotal: Money {
            amount_minor: row.get::<_, Option<i64>>(12).unwrap_or_else(|| row.get(6)),
            currency: currency.clone(),
        },
        shipping: json_column(row, 13)?,
        shipping_address: json_column(row, 14)?,
        billing_address: json_column(row, 15)?,
        discount: Money {
            amount_minor: row.get::<_, Option<i64>>(16).unwrap_or(0),
            currency: currency.clone(),
        },
        tax_total: Money {
            amount_minor: 0,
            currency: currency.clone(),
        },
        tax: json_column(row, 17)?.unwrap_or_default(),
        discount_code: row.get(18),
        fulfilment: json_column(row, 19)?,
        refunds: Vec::new(),
        refunded: Money {
            amount_minor: 0,
            currency: currency.clone(),
        },
        total: Money {
            amount_minor: row.get(6),
            currency,
        },
        payment_provider: row.get(7),
        payment_ref: row.get(8),
        reserved_until: row.get(9),
        created_at: row.get(10),
        updated_at: row.get(11),
    })
    .map(|mut o: Order| {
        o.tax_total.amount_minor = o.tax.lines.iter().map(|l| l.amount.amount_minor).sum();
        o
    })
}
