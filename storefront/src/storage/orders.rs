//! PostgreSQL side of checkout: inventory, orders, idempotency keys, payment webhook events, the
//! transactional outbox and the stock event log. One [`Commerce`] is bound to one tenant.
//!
//! Oversell is prevented by a **guarded decrement**:
//! `UPDATE inventory SET available = available - $n WHERE ... AND available >= $n`.
//! The row lock the UPDATE takes serialises concurrent checkouts of one SKU, and each one
//! re-evaluates the guard against the committed value after the lock is granted, so no
//! interleaving can take more than is there (the `CHECK (available >= 0)` backs this up). We
//! chose it over `SELECT ... FOR UPDATE` + compare + write because it is one round trip per
//! SKU and holds the lock for the shortest time. Multi-SKU carts decrement in sorted SKU order
//! ([`reservation_order`]), and every other path that touches several inventory rows uses the
//! same order, so lock waits can never form a cycle (no deadlocks).

use std::{future::Future, sync::Arc};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction as PgTx;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::postgres::{Database, tenant_transaction};
use crate::domain::{
    inventory::{StockChange, reservation_order},
    orders::{IllegalTransition, OrderEvent, OrderStatus, transition},
    ports::StoreError,
    pricing::Money,
};

/// The NOTIFY channel stock changes are published on (payload: [`StockNotice`] JSON).
pub const STOCK_CHANNEL: &str = "emporium_inventory";

fn pg_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::new("postgres", e)
}

/// The NOTIFY payload: a stock change and the tenant it belongs to.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StockNotice {
    pub tenant: String,
    #[serde(flatten)]
    pub change: StockChange,
}

/// A priced order line, frozen at checkout.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub sku: String,
    pub product_id: Uuid,
    pub title: String,
    pub quantity: i32,
    pub unit_price: Money,
}

/// An order as shoppers and merchants see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub status: OrderStatus,
    pub customer_id: Option<Uuid>,
    pub cart_id: Uuid,
    pub email: Option<String>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    /// `manual` or `stripe`.
    pub payment_provider: String,
    /// The provider's payment id (a Stripe PaymentIntent id).
    pub payment_ref: Option<String>,
    /// While `pending_payment`: when the reserved stock is released.
    pub reserved_until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What checkout asks storage to create.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub cart_id: Uuid,
    pub email: Option<String>,
    pub lines: Vec<OrderLine>,
    pub total: Money,
    pub payment_provider: String,
    pub payment_ref: Option<String>,
    pub reserved_until: DateTime<Utc>,
}

/// A stored response for an `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub fingerprint: String,
    pub status: u16,
    pub body: Value,
}

pub enum CheckoutOutcome {
    Created {
        order: Order,
        status: u16,
        body: Value,
    },
    /// The key was used before with the same request: its response.
    Replayed(StoredResponse),
}

#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("not enough stock of `{sku}`")]
    OutOfStock { sku: String },
    #[error("the Idempotency-Key was already used with a different request")]
    KeyReused,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub enum Applied {
    Done(Box<Order>),
    /// The payment event id was handled before; nothing changed.
    Duplicate,
}

/// An outbox row on its way to the queue.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub kind: String,
    pub payload: Value,
}

/// Orders and inventory of one tenant.
#[derive(Clone)]
pub struct Commerce {
    pub db: Arc<Database>,
    pub tenant: Arc<str>,
}

const ORDER_COLUMNS: &str = "id, status, customer_id, cart_id, email, currency, total_minor, payment_provider, payment_ref, reserved_until, created_at, updated_at";

fn order_from(row: &tokio_postgres::Row) -> Result<Order, StoreError> {
    let status: String = row.get(1);
    let currency: String = row.get(5);
    Ok(Order {
        id: row.get(0),
        status: OrderStatus::parse(&status)
            .ok_or_else(|| pg_err(format!("unknown order status `{status}`")))?,
        customer_id: row.get(2),
        cart_id: row.get(3),
        email: row.get(4),
        lines: Vec::new(),
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
}

impl Commerce {
    pub fn new(db: Arc<Database>, tenant: &str) -> Self {
        Self {
            db,
            tenant: tenant.into(),
        }
    }

    fn t(&self) -> &str {
        &self.tenant
    }

    /// Sets a SKU's available units (the merchant's count) and publishes the change.
    pub async fn set_stock(&self, sku: &str, available: i32) -> Result<StockChange, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO inventory (tenant_id, sku, available) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, sku) DO UPDATE SET available = EXCLUDED.available, updated_at = now()",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&self.t(), &sku, &available])
            .await
            .map_err(pg_err)?;
        let mut changes = self
            .record_stock(&tx, vec![(sku.to_owned(), available)])
            .await?;
        tx.commit().await.map_err(pg_err)?;
        changes.pop().ok_or_else(|| pg_err("no stock event"))
    }

    /// Available units of a SKU (`None` when the merchant never set any).
    pub async fn stock(&self, sku: &str) -> Result<Option<i32>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached("SELECT available FROM inventory WHERE tenant_id = $1 AND sku = $2")
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_opt(&stmt, &[&self.t(), &sku])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Stock events after `seq`, oldest first (SSE resume).
    pub async fn stock_events_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<StockChange>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT seq, sku, available FROM inventory_events WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx
            .query(&stmt, &[&self.t(), &seq, &limit])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| StockChange {
                seq: r.get(0),
                sku: r.get(1),
                available: r.get(2),
            })
            .collect())
    }

    /// Numbers the changes (per-tenant sequence, taken last so its lock is held briefly and
    /// always after the inventory rows), logs them and NOTIFYs them on commit.
    async fn record_stock(
        &self,
        tx: &PgTx<'_>,
        changes: Vec<(String, i32)>,
    ) -> Result<Vec<StockChange>, StoreError> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let n = changes.len() as i64;
        let seq_stmt = tx
            .prepare_cached(
                "INSERT INTO inventory_sequences (tenant_id, last_seq) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE SET last_seq = inventory_sequences.last_seq + EXCLUDED.last_seq
                 RETURNING last_seq",
            )
            .await
            .map_err(pg_err)?;
        let last: i64 = tx
            .query_one(&seq_stmt, &[&self.t(), &n])
            .await
            .map_err(pg_err)?
            .get(0);
        let log = tx
            .prepare_cached(
                "INSERT INTO inventory_events (tenant_id, seq, sku, available) VALUES ($1, $2, $3, $4)",
            )
            .await
            .map_err(pg_err)?;
        let notify = tx
            .prepare_cached("SELECT pg_notify($1, $2)")
            .await
            .map_err(pg_err)?;
        let mut out = Vec::with_capacity(changes.len());
        for (i, (sku, available)) in changes.into_iter().enumerate() {
            let seq = last - n + 1 + i as i64;
            tx.execute(&log, &[&self.t(), &seq, &sku, &available])
                .await
                .map_err(pg_err)?;
            let change = StockChange {
                seq,
                sku,
                available,
            };
            let payload = serde_json::to_string(&StockNotice {
                tenant: self.t().to_owned(),
                change: change.clone(),
            })
            .map_err(pg_err)?;
            tx.execute(&notify, &[&STOCK_CHANNEL, &payload])
                .await
                .map_err(pg_err)?;
            out.push(change);
        }
        Ok(out)
    }

    async fn outbox(&self, tx: &PgTx<'_>, order: &Order, kind: &str) -> Result<(), StoreError> {
        let id = Uuid::now_v7();
        let payload = json!({
            "event_id": id,
            "type": kind,
            "tenant": self.t(),
            "order": order,
        });
        let stmt = tx
            .prepare_cached(
                "INSERT INTO outbox (tenant_id, id, kind, payload) VALUES ($1, $2, $3, $4)",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&self.t(), &id, &kind, &payload])
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    /// The stored response for an idempotency key, if any (a cheap check before side effects).
    pub async fn idempotent_response(
        &self,
        key: &str,
    ) -> Result<Option<StoredResponse>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let found = stored_response(&tx, self.t(), key).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(found)
    }

    /// Creates the order, reserves its stock and stores the response under the idempotency key,
    /// all in one transaction: either everything happened or nothing did.
    pub async fn checkout(
        &self,
        key: &str,
        fingerprint: &str,
        new: NewOrder,
        respond: impl FnOnce(&Order) -> (u16, Value),
    ) -> Result<CheckoutOutcome, CheckoutError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;

        // Claim the key first. A concurrent request with the same key blocks here until the
        // first commits (then replays it) or rolls back (then proceeds itself).
        let claim = tx
            .prepare_cached(
                "INSERT INTO idempotency_keys (tenant_id, key, fingerprint) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, key) DO NOTHING",
            )
            .await
            .map_err(pg_err)?;
        if tx
            .execute(&claim, &[&self.t(), &key, &fingerprint])
            .await
            .map_err(pg_err)?
            == 0
        {
            let stored = stored_response(&tx, self.t(), key)
                .await?
                .ok_or_else(|| pg_err("idempotency key vanished"))?;
            tx.rollback().await.map_err(pg_err)?;
            if stored.fingerprint != fingerprint {
                return Err(CheckoutError::KeyReused);
            }
            return Ok(CheckoutOutcome::Replayed(stored));
        }

        // Guarded decrement, SKUs in sorted order (see the module docs).
        let take = tx
            .prepare_cached(
                "UPDATE inventory SET available = available - $3, updated_at = now()
                 WHERE tenant_id = $1 AND sku = $2 AND available >= $3 RETURNING available",
            )
            .await
            .map_err(pg_err)?;
        let wanted = reservation_order(new.lines.iter().map(|l| {
            (
                l.sku.as_str(),
                u32::try_from(l.quantity).unwrap_or(u32::MAX),
            )
        }));
        let mut changes = Vec::with_capacity(wanted.len());
        for (sku, qty) in wanted {
            match tx
                .query_opt(&take, &[&self.t(), &sku, &qty])
                .await
                .map_err(pg_err)?
            {
                Some(row) => changes.push((sku, row.get::<_, i32>(0))),
                None => {
                    tx.rollback().await.map_err(pg_err)?;
                    return Err(CheckoutError::OutOfStock { sku });
                }
            }
        }

        let insert = tx
            .prepare_cached(&format!(
                "INSERT INTO orders (tenant_id, id, customer_id, cart_id, email, status, currency, total_minor,
                                     payment_provider, payment_ref, reserved_until)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {ORDER_COLUMNS}"
            ))
            .await
            .map_err(pg_err)?;
        let status = OrderStatus::PendingPayment.as_str();
        let row = tx
            .query_one(
                &insert,
                &[
                    &self.t(),
                    &new.id,
                    &new.customer_id,
                    &new.cart_id,
                    &new.email,
                    &status,
                    &new.total.currency,
                    &new.total.amount_minor,
                    &new.payment_provider,
                    &new.payment_ref,
                    &new.reserved_until,
                ],
            )
            .await
            .map_err(pg_err)?;
        let mut order = order_from(&row)?;
        let line_stmt = tx
            .prepare_cached(
                "INSERT INTO order_lines (tenant_id, order_id, sku, product_id, title, quantity, unit_minor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .await
            .map_err(pg_err)?;
        for l in &new.lines {
            tx.execute(
                &line_stmt,
                &[
                    &self.t(),
                    &order.id,
                    &l.sku,
                    &l.product_id,
                    &l.title,
                    &l.quantity,
                    &l.unit_price.amount_minor,
                ],
            )
            .await
            .map_err(pg_err)?;
        }
        order.lines = new.lines;
        self.record_stock(&tx, changes).await?;
        self.outbox(&tx, &order, "order.created").await?;

        let (status, body) = respond(&order);
        let save = tx
            .prepare_cached(
                "UPDATE idempotency_keys SET status = $3, response = $4 WHERE tenant_id = $1 AND key = $2",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&save, &[&self.t(), &key, &i32::from(status), &body])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(CheckoutOutcome::Created {
            order,
            status,
            body,
        })
    }

    /// Applies an event to an order: state machine, stock effect, outbox, all in one
    /// transaction. With `payment_event`, the provider's event id is recorded in the same
    /// transaction, and an id seen before changes nothing.
    pub async fn apply(
        &self,
        order_id: Uuid,
        event: OrderEvent,
        payment_event: Option<(&str, &str)>,
    ) -> Result<Applied, TransitionError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        if let Some((event_id, kind)) = payment_event
            && !record_payment_event(&tx, self.t(), event_id, kind).await?
        {
            tx.rollback().await.map_err(pg_err)?;
            return Ok(Applied::Duplicate);
        }
        let lock = tx
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
            ))
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_opt(&lock, &[&self.t(), &order_id])
            .await
            .map_err(pg_err)?
            .ok_or(TransitionError::NotFound)?;
        let mut order = order_from(&row)?;
        order.lines = lines_of(&tx, self.t(), &[order.id])
            .await?
            .remove(&order.id)
            .unwrap_or_default();
        let step = transition(order.status, event)?;

        if step.stock.returns_stock() {
            let give = tx
                .prepare_cached(
                    "INSERT INTO inventory (tenant_id, sku, available) VALUES ($1, $2, $3)
                     ON CONFLICT (tenant_id, sku) DO UPDATE
                       SET available = inventory.available + EXCLUDED.available, updated_at = now()
                     RETURNING available",
                )
                .await
                .map_err(pg_err)?;
            let mut changes = Vec::new();
            // Same sorted order as checkout: no lock cycles.
            for (sku, qty) in reservation_order(order.lines.iter().map(|l| {
                (
                    l.sku.as_str(),
                    u32::try_from(l.quantity).unwrap_or(u32::MAX),
                )
            })) {
                let row = tx
                    .query_one(&give, &[&self.t(), &sku, &qty])
                    .await
                    .map_err(pg_err)?;
                changes.push((sku, row.get::<_, i32>(0)));
            }
            self.record_stock(&tx, changes).await?;
        }
        let update = tx
            .prepare_cached(
                "UPDATE orders SET status = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2 RETURNING updated_at",
            )
            .await
            .map_err(pg_err)?;
        let updated: DateTime<Utc> = tx
            .query_one(&update, &[&self.t(), &order.id, &step.to.as_str()])
            .await
            .map_err(pg_err)?
            .get(0);
        order.status = step.to;
        order.updated_at = updated;
        self.outbox(&tx, &order, &format!("order.{}", step.to.as_str()))
            .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Applied::Done(Box::new(order)))
    }

    /// Records a payment event id without changing any order; false when seen before.
    pub async fn record_payment_event(
        &self,
        event_id: &str,
        kind: &str,
    ) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let fresh = record_payment_event(&tx, self.t(), event_id, kind).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(fresh)
    }

    pub async fn order(&self, id: Uuid) -> Result<Option<Order>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2"
            ))
            .await
            .map_err(pg_err)?;
        let Some(row) = tx
            .query_opt(&stmt, &[&self.t(), &id])
            .await
            .map_err(pg_err)?
        else {
            return Ok(None);
        };
        let mut order = order_from(&row)?;
        order.lines = lines_of(&tx, self.t(), &[id])
            .await?
            .remove(&id)
            .unwrap_or_default();
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(order))
    }

    /// Newest first; `before` is the last id of the previous page.
    pub async fn list(
        &self,
        customer: Option<Uuid>,
        status: Option<OrderStatus>,
        before: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<Order>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1
                   AND ($2::uuid IS NULL OR customer_id = $2)
                   AND ($3::text IS NULL OR status = $3)
                   AND ($4::uuid IS NULL OR id < $4)
                 ORDER BY id DESC LIMIT $5"
            ))
            .await
            .map_err(pg_err)?;
        let status = status.map(OrderStatus::as_str);
        let rows = tx
            .query(&stmt, &[&self.t(), &customer, &status, &before, &limit])
            .await
            .map_err(pg_err)?;
        let mut orders = rows.iter().map(order_from).collect::<Result<Vec<_>, _>>()?;
        let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
        let mut lines = lines_of(&tx, self.t(), &ids).await?;
        for o in &mut orders {
            o.lines = lines.remove(&o.id).unwrap_or_default();
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(orders)
    }

    /// Pending orders whose reservation ran out.
    pub async fn expired_reservations(&self, limit: i64) -> Result<Vec<Uuid>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT id FROM orders WHERE tenant_id = $1 AND status = 'pending_payment' AND reserved_until < now()
                 ORDER BY reserved_until LIMIT $2",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx
            .query(&stmt, &[&self.t(), &limit])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Hands unsent outbox events (oldest first) to `send`; marks them sent only when it
    /// succeeds, in the same transaction that locked them. Other replicas skip locked rows.
    pub async fn relay_outbox<F, Fut, E>(&self, limit: i64, send: F) -> Result<usize, RelayError<E>>
    where
        F: FnOnce(Vec<OutboxEvent>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT id, kind, payload FROM outbox WHERE tenant_id = $1 AND sent_at IS NULL
                 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx
            .query(&stmt, &[&self.t(), &limit])
            .await
            .map_err(pg_err)?;
        if rows.is_empty() {
            tx.commit().await.map_err(pg_err)?;
            return Ok(0);
        }
        let events: Vec<OutboxEvent> = rows
            .iter()
            .map(|r| OutboxEvent {
                id: r.get(0),
                kind: r.get(1),
                payload: r.get(2),
            })
            .collect();
        let ids: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        send(events).await.map_err(RelayError::Send)?;
        let mark = tx
            .prepare_cached(
                "UPDATE outbox SET sent_at = now() WHERE tenant_id = $1 AND id = ANY($2)",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&mark, &[&self.t(), &ids])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(ids.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError<E> {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sending failed")]
    Send(E),
}

async fn stored_response(
    tx: &PgTx<'_>,
    tenant: &str,
    key: &str,
) -> Result<Option<StoredResponse>, StoreError> {
    let stmt = tx
        .prepare_cached(
            "SELECT fingerprint, status, response FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
        )
        .await
        .map_err(pg_err)?;
    let row = tx
        .query_opt(&stmt, &[&tenant, &key])
        .await
        .map_err(pg_err)?;
    Ok(row.map(|r| StoredResponse {
        fingerprint: r.get(0),
        status: u16::try_from(r.get::<_, i32>(1)).unwrap_or(500),
        body: r.get::<_, Option<Value>>(2).unwrap_or(Value::Null),
    }))
}

async fn record_payment_event(
    tx: &PgTx<'_>,
    tenant: &str,
    event_id: &str,
    kind: &str,
) -> Result<bool, StoreError> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO payment_events (tenant_id, event_id, kind) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .await
        .map_err(pg_err)?;
    Ok(tx
        .execute(&stmt, &[&tenant, &event_id, &kind])
        .await
        .map_err(pg_err)?
        == 1)
}

async fn lines_of(
    tx: &PgTx<'_>,
    tenant: &str,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, Vec<OrderLine>>, StoreError> {
    let stmt = tx
        .prepare_cached(
            "SELECT l.order_id, l.sku, l.product_id, l.title, l.quantity, l.unit_minor, o.currency
             FROM order_lines l JOIN orders o ON o.tenant_id = l.tenant_id AND o.id = l.order_id
             WHERE l.tenant_id = $1 AND l.order_id = ANY($2) ORDER BY l.sku",
        )
        .await
        .map_err(pg_err)?;
    let params: [&(dyn ToSql + Sync); 2] = [&tenant, &ids];
    let rows = tx.query(&stmt, &params).await.map_err(pg_err)?;
    let mut out: std::collections::HashMap<Uuid, Vec<OrderLine>> = Default::default();
    for r in rows {
        out.entry(r.get(0)).or_default().push(OrderLine {
            sku: r.get(1),
            product_id: r.get(2),
            title: r.get(3),
            quantity: r.get(4),
            unit_price: Money {
                amount_minor: r.get(5),
                currency: r.get(6),
            },
        });
    }
    Ok(out)
}
