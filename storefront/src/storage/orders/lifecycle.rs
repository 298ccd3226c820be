//! Order lookups and the life cycle: events applied through the state machine with their stock
//! effect and outbox event, and payment provider event ids recorded once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction as PgTx;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{ORDER_COLUMNS, PgOrders, order_from, pg_err};
use crate::{
    domain::{
        inventory::reservation_order,
        orders::{Applied, Order, OrderEvent, OrderLine, OrderStatus, TransitionError, transition},
        ports::{OrderStore, StoreError},
        pricing::Money,
    },
    storage::postgres::tenant_transaction,
};

impl OrderStore for PgOrders {
    /// Applies an event to an order: state machine, stock effect, outbox, all in one
    /// transaction. With `payment_event`, the provider's event id is recorded in the same
    /// transaction, and an id seen before changes nothing.
    async fn apply(
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
        super::refunds::attach_refunds(&tx, self.t(), std::slice::from_mut(&mut order)).await?;
        let step = transition(order.status, event)?;

        // An order that will never be paid gives its discount code's use back. Before the
        // inventory rows: checkout locks a code, then inventory; so must every other path.
        if step.to.never_paid() {
            release_code(&tx, self.t(), order.id).await?;
        }

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

    /// Records the provider's refund of a payment that arrived for an order that can no longer
    /// take it, with the payment event id and an `order.late_payment_refunded` outbox event, in
    /// one transaction; false when the event was handled before.
    async fn record_late_refund(
        &self,
        order_id: Uuid,
        event_id: &str,
        kind: &str,
    ) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        if !record_payment_event(&tx, self.t(), event_id, kind).await? {
            tx.rollback().await.map_err(pg_err)?;
            return Ok(false);
        }
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2"
            ))
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_one(&stmt, &[&self.t(), &order_id])
            .await
            .map_err(pg_err)?;
        let mut order = order_from(&row)?;
        order.lines = lines_of(&tx, self.t(), &[order_id])
            .await?
            .remove(&order_id)
            .unwrap_or_default();
        self.outbox(&tx, &order, "order.late_payment_refunded")
            .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    /// Points the order at the provider payment that pays it (a Checkout Session makes its own
    /// PaymentIntent): refunds go to that one.
    async fn set_payment_ref(&self, order_id: Uuid, reference: &str) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "UPDATE orders SET payment_ref = $3, updated_at = now()
                 WHERE tenant_id = $1 AND id = $2 AND payment_ref IS DISTINCT FROM $3",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&self.t(), &order_id, &reference])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(())
    }

    /// Records a payment event id without changing any order; false when seen before.
    async fn record_payment_event(&self, event_id: &str, kind: &str) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let fresh = record_payment_event(&tx, self.t(), event_id, kind).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(fresh)
    }

    async fn order(&self, id: Uuid) -> Result<Option<Order>, StoreError> {
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
        super::refunds::attach_refunds(&tx, self.t(), std::slice::from_mut(&mut order)).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(order))
    }

    /// Newest first; `before` is the last id of the previous page.
    async fn list(
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
        super::refunds::attach_refunds(&tx, self.t(), &mut orders).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(orders)
    }

    /// Pending orders whose reservation ran out.
    async fn expired_reservations(&self, limit: i64) -> Result<Vec<Uuid>, StoreError> {
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
}

async fn release_code(tx: &PgTx<'_>, tenant: &str, order: Uuid) -> Result<(), StoreError> {
    let unredeem = tx
        .prepare_cached(
            "DELETE FROM promotion_redemptions WHERE tenant_id = $1 AND order_id = $2 RETURNING code",
        )
        .await
        .map_err(pg_err)?;
    if let Some(row) = tx
        .query_opt(&unredeem, &[&tenant, &order])
        .await
        .map_err(pg_err)?
    {
        let code: String = row.get(0);
        let give_back = tx
            .prepare_cached(
                "UPDATE promotions SET uses = uses - 1, updated_at = now()
                 WHERE tenant_id = $1 AND code = $2 AND uses > 0",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&give_back, &[&tenant, &code])
            .await
            .map_err(pg_err)?;
    }
    Ok(())
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

pub(super) async fn lines_of(
    tx: &PgTx<'_>,
    tenant: &str,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<OrderLine>>, StoreError> {
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
    let mut out: HashMap<Uuid, Vec<OrderLine>> = Default::default();
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
