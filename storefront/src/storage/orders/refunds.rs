//! Refunds of part or all of an order and fulfilment records. A refund is written `pending`
//! under the order's row lock before the provider is asked, so two refunds cannot pass the
//! order's total between them; it turns `succeeded` (with its restock and, once the whole total
//! is back, the order's move to `refunded`) in a second transaction after the provider agreed.

use std::collections::HashMap;

use deadpool_postgres::Transaction as PgTx;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use super::{ORDER_COLUMNS, PgOrders, lifecycle::lines_of, order_from, pg_err};
use crate::{
    domain::{
        inventory::reservation_order,
        orders::{
            Fulfilment, Order, OrderEvent, OrderStatus, PlannedRefund, Refund, RefundError,
            RefundStart, ReturnedLine, transition,
        },
        ports::{RefundStore, StoreError},
        pricing::Money,
    },
    storage::postgres::tenant_transaction,
};

/// Fills in the orders' succeeded refunds and their sum.
pub(super) async fn attach_refunds(
    tx: &PgTx<'_>,
    tenant: &str,
    orders: &mut [Order],
) -> Result<(), StoreError> {
    if orders.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = orders.iter().map(|o| o.id).collect();
    let stmt = tx
        .prepare_cached(
            "SELECT order_id, id, amount_minor, reason, lines, restock, provider_ref, created_at
             FROM order_refunds WHERE tenant_id = $1 AND order_id = ANY($2) AND status = 'succeeded'
             ORDER BY created_at, id",
        )
        .await
        .map_err(pg_err)?;
    let params: [&(dyn ToSql + Sync); 2] = [&tenant, &ids];
    let rows = tx.query(&stmt, &params).await.map_err(pg_err)?;
    let mut by_order: HashMap<Uuid, Vec<Refund>> = HashMap::new();
    let currency: HashMap<Uuid, String> = orders
        .iter()
        .map(|o| (o.id, o.total.currency.clone()))
        .collect();
    for r in rows {
        let order_id: Uuid = r.get(0);
        let lines: Vec<ReturnedLine> = serde_json::from_value(r.get(4)).map_err(pg_err)?;
        by_order.entry(order_id).or_default().push(Refund {
            id: r.get(1),
            amount: Money {
                amount_minor: r.get(2),
                currency: currency.get(&order_id).cloned().unwrap_or_default(),
            },
            reason: r.get(3),
            lines,
            restocked: r.get(5),
            provider_ref: r.get(6),
            created_at: r.get(7),
        });
    }
    for o in orders {
        o.refunds = by_order.remove(&o.id).unwrap_or_default();
        o.refunded.amount_minor = o.refunds.iter().map(|r| r.amount.amount_minor).sum();
    }
    Ok(())
}

async fn lock_order(tx: &PgTx<'_>, tenant: &str, id: Uuid) -> Result<Option<Order>, StoreError> {
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2 FOR UPDATE"
        ))
        .await
        .map_err(pg_err)?;
    let Some(row) = tx.query_opt(&stmt, &[&tenant, &id]).await.map_err(pg_err)? else {
        return Ok(None);
    };
    let mut order = order_from(&row)?;
    order.lines = lines_of(tx, tenant, &[id])
        .await?
        .remove(&id)
        .unwrap_or_default();
    attach_refunds(tx, tenant, std::slice::from_mut(&mut order)).await?;
    Ok(Some(order))
}

impl RefundStore for PgOrders {
    async fn begin_refund(
        &self,
        order_id: Uuid,
        key: &str,
        planned: &PlannedRefund,
        reason: &str,
        restock: bool,
    ) -> Result<RefundStart, RefundError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let order = lock_order(&tx, self.t(), order_id)
            .await?
            .ok_or(RefundError::NotFound)?;
        let existing = tx
            .prepare_cached(
                "SELECT id, status FROM order_refunds WHERE tenant_id = $1 AND order_id = $2 AND idempotency_key = $3",
            )
            .await
            .map_err(pg_err)?;
        if let Some(row) = tx
            .query_opt(&existing, &[&self.t(), &order_id, &key])
            .await
            .map_err(pg_err)?
        {
            let (refund_id, status): (Uuid, String) = (row.get(0), row.get(1));
            tx.commit().await.map_err(pg_err)?;
            return Ok(if status == "succeeded" {
                RefundStart::Done(Box::new(order))
            } else {
                RefundStart::Pending { refund_id }
            });
        }
        transition(order.status, OrderEvent::Refund)?;
        let taken = tx
            .prepare_cached(
                "SELECT coalesce(sum(amount_minor), 0)::bigint FROM order_refunds WHERE tenant_id = $1 AND order_id = $2",
            )
            .await
            .map_err(pg_err)?;
        let taken: i64 = tx
            .query_one(&taken, &[&self.t(), &order_id])
            .await
            .map_err(pg_err)?
            .get(0);
        let remaining = order.total.amount_minor - taken;
        if planned.amount_minor > remaining {
            tx.rollback().await.map_err(pg_err)?;
            return Err(RefundError::TooMuch { remaining });
        }
        let refund_id = Uuid::now_v7();
        let lines = serde_json::to_value(&planned.lines).map_err(pg_err)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO order_refunds (tenant_id, id, order_id, idempotency_key, amount_minor, reason, lines, restock, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(
            &insert,
            &[
                &self.t(),
                &refund_id,
                &order_id,
                &key,
                &planned.amount_minor,
                &reason,
                &lines,
                &restock,
            ],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(RefundStart::Pending { refund_id })
    }

    async fn complete_refund(
        &self,
        order_id: Uuid,
        refund_id: Uuid,
        provider_ref: Option<&str>,
    ) -> Result<Order, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let mut order = lock_order(&tx, self.t(), order_id)
            .await?
            .ok_or_else(|| StoreError::new("postgres", "refunded order vanished"))?;
        let mark = tx
            .prepare_cached(
                "UPDATE order_refunds SET status = 'succeeded', provider_ref = $3
                 WHERE tenant_id = $1 AND id = $2 AND status = 'pending' RETURNING lines, restock",
            )
            .await
            .map_err(pg_err)?;
        let Some(row) = tx
            .query_opt(&mark, &[&self.t(), &refund_id, &provider_ref])
            .await
            .map_err(pg_err)?
        else {
            // Completed by a retry already.
            tx.commit().await.map_err(pg_err)?;
            return Ok(order);
        };
        let lines: Vec<ReturnedLine> = serde_json::from_value(row.get(0)).map_err(pg_err)?;
        if row.get::<_, bool>(1) && !lines.is_empty() {
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
            // Sorted, like every path that touches several inventory rows.
            for (sku, qty) in reservation_order(
                lines
                    .iter()
                    .map(|l| (l.sku.as_str(), u32::try_from(l.quantity).unwrap_or(0))),
            ) {
                let row = tx
                    .query_one(&give, &[&self.t(), &sku, &qty])
                    .await
                    .map_err(pg_err)?;
                changes.push((sku, row.get::<_, i32>(0)));
            }
            self.record_stock(&tx, changes).await?;
        }
        attach_refunds(&tx, self.t(), std::slice::from_mut(&mut order)).await?;
        let whole = order.refunded.amount_minor >= order.total.amount_minor;
        if whole && transition(order.status, OrderEvent::Refund).is_ok() {
            let update = tx
                .prepare_cached(
                    "UPDATE orders SET status = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2",
                )
                .await
                .map_err(pg_err)?;
            tx.execute(
                &update,
                &[&self.t(), &order_id, &OrderStatus::Refunded.as_str()],
            )
            .await
            .map_err(pg_err)?;
            order.status = OrderStatus::Refunded;
        }
        let kind = if whole {
            "order.refunded"
        } else {
            "order.partially_refunded"
        };
        self.outbox(&tx, &order, kind).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(order)
    }

    async fn abandon_refund(&self, refund_id: Uuid) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "DELETE FROM order_refunds WHERE tenant_id = $1 AND id = $2 AND status = 'pending'",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&self.t(), &refund_id])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn set_fulfilment(
        &self,
        order_id: Uuid,
        fulfilment: &Fulfilment,
    ) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let doc = serde_json::to_value(fulfilment).map_err(pg_err)?;
        let stmt = tx
            .prepare_cached(
                "UPDATE orders SET fulfilment = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&self.t(), &order_id, &doc])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }
}
