//! Checkout: claims the `Idempotency-Key` and the cart, reserves the stock (guarded decrement,
//! sorted SKUs), creates the order and records the reply for retries, in one transaction.
//!
//! A cart becomes an order once: `cart_orders` has one row per checked-out cart, inserted in the
//! order's transaction. A concurrent checkout of the same cart under another key blocks on that
//! row until the first commits (then it is refused, naming the order) or rolls back (then it
//! proceeds). Locks are always taken in the same order: key, cart, inventory rows by SKU.

use deadpool_postgres::Transaction as PgTx;
use serde_json::Value;
use uuid::Uuid;

use super::{ORDER_COLUMNS, PgOrders, order_from, pg_err};
use crate::{
    domain::{
        inventory::reservation_order,
        orders::{CheckoutError, CheckoutOutcome, NewOrder, Order, OrderStatus, PromotionClaim},
        ports::{CheckoutStore, StoreError},
        promotions::CodeRefused,
    },
    http::idempotency::StoredResponse,
    storage::postgres::tenant_transaction,
};

impl CheckoutStore for PgOrders {
    type Reply = StoredResponse;

    /// The stored response for an idempotency key, if any (a cheap check before side effects).
    async fn replay(
        &self,
        key: &str,
        fingerprint: &str,
        cart: Uuid,
    ) -> Result<Option<StoredResponse>, CheckoutError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let found = stored_response(&tx, self.t(), key).await?;
        let ordered = match &found {
            Some(_) => None,
            None => order_of_cart(&tx, self.t(), cart).await?,
        };
        tx.commit().await.map_err(pg_err)?;
        match (found, ordered) {
            (Some(stored), _) if stored.fingerprint != fingerprint => Err(CheckoutError::KeyReused),
            (_, Some(order_id)) => Err(CheckoutError::CartCheckedOut { order_id }),
            (found, None) => Ok(found),
        }
    }

    /// Creates the order, reserves its stock and stores the response under the idempotency key,
    /// all in one transaction: either everything happened or nothing did.
    async fn checkout(
        &self,
        key: &str,
        fingerprint: &str,
        new: NewOrder,
        reply: impl FnOnce(&Order) -> Self::Reply + Send,
    ) -> Result<CheckoutOutcome<StoredResponse>, CheckoutError> {
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
                .ok_or_else(|| StoreError::new("postgres", "idempotency key vanished"))?;
            tx.rollback().await.map_err(pg_err)?;
            if stored.fingerprint != fingerprint {
                return Err(CheckoutError::KeyReused);
            }
            return Ok(CheckoutOutcome::Replayed(stored));
        }

        // Claim the cart: a second checkout of it (another key) waits here for the first.
        let claim_cart = tx
            .prepare_cached(
                "INSERT INTO cart_orders (tenant_id, cart_id, order_id) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, cart_id) DO NOTHING",
            )
            .await
            .map_err(pg_err)?;
        if tx
            .execute(&claim_cart, &[&self.t(), &new.cart_id, &new.id])
            .await
            .map_err(pg_err)?
            == 0
        {
            let order_id = order_of_cart(&tx, self.t(), new.cart_id)
                .await?
                .ok_or_else(|| StoreError::new("postgres", "cart claim vanished"))?;
            tx.rollback().await.map_err(pg_err)?;
            return Err(CheckoutError::CartCheckedOut { order_id });
        }

        // Redeem the code: a guarded increment, like stock (the row lock serialises redemptions
        // of one code, so the per-customer count below sees every committed one).
        if let Some(claim) = &new.promotion
            && let Err(refused) = redeem(&tx, self.t(), new.id, claim).await?
        {
            tx.rollback().await.map_err(pg_err)?;
            return Err(CheckoutError::Code(refused));
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
                                     payment_provider, payment_ref, reserved_until, subtotal_minor, shipping,
                                     shipping_address, billing_address, discount_minor, tax, discount_code)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
                 RETURNING {ORDER_COLUMNS}"
            ))
            .await
            .map_err(pg_err)?;
        let status = OrderStatus::PendingPayment.as_str();
        let json = |v: Option<serde_json::Result<Value>>| v.transpose().map_err(pg_err);
        let shipping = json(new.shipping.as_ref().map(serde_json::to_value))?;
        let shipping_address = json(new.shipping_address.as_ref().map(serde_json::to_value))?;
        let billing_address = json(new.billing_address.as_ref().map(serde_json::to_value))?;
        let tax = json(Some(serde_json::to_value(&new.tax)))?;
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
                    &new.subtotal.amount_minor,
                    &shipping,
                    &shipping_address,
                    &billing_address,
                    &new.discount.amount_minor,
                    &tax,
                    &new.promotion.as_ref().map(|p| p.code.as_str()),
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

        let reply = reply(&order);
        let save = tx
            .prepare_cached(
                "UPDATE idempotency_keys SET status = $3, response = $4 WHERE tenant_id = $1 AND key = $2",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(
            &save,
            &[&self.t(), &key, &i32::from(reply.status), &reply.body],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(CheckoutOutcome::Created {
            order: Box::new(order),
            reply,
        })
    }
}

/// Counts one use of the code for `order`, within its limits; the refusal when a limit is hit.
async fn redeem(
    tx: &PgTx<'_>,
    tenant: &str,
    order: Uuid,
    claim: &PromotionClaim,
) -> Result<Result<(), CodeRefused>, StoreError> {
    let take = tx
        .prepare_cached(
            "UPDATE promotions SET uses = uses + 1, updated_at = now()
             WHERE tenant_id = $1 AND code = $2 AND (max_uses IS NULL OR uses < max_uses)
             RETURNING max_uses_per_customer",
        )
        .await
        .map_err(pg_err)?;
    let Some(row) = tx
        .query_opt(&take, &[&tenant, &claim.code])
        .await
        .map_err(pg_err)?
    else {
        return Ok(Err(CodeRefused::UsedUp));
    };
    if let Some(limit) = row.get::<_, Option<i32>>(0) {
        let Some(who) = &claim.customer_key else {
            return Ok(Err(CodeRefused::NeedsCustomer));
        };
        let count = tx
            .prepare_cached(
                "SELECT count(*) FROM promotion_redemptions
                 WHERE tenant_id = $1 AND code = $2 AND customer_key = $3",
            )
            .await
            .map_err(pg_err)?;
        let used: i64 = tx
            .query_one(&count, &[&tenant, &claim.code, who])
            .await
            .map_err(pg_err)?
            .get(0);
        if used >= i64::from(limit) {
            return Ok(Err(CodeRefused::UsedByCustomer));
        }
    }
    let record = tx
        .prepare_cached(
            "INSERT INTO promotion_redemptions (tenant_id, order_id, code, customer_key)
             VALUES ($1, $2, $3, $4)",
        )
        .await
        .map_err(pg_err)?;
    tx.execute(
        &record,
        &[&tenant, &order, &claim.code, &claim.customer_key],
    )
    .await
    .map_err(pg_err)?;
    Ok(Ok(()))
}

/// The order a cart became, if it was checked out.
async fn order_of_cart(
    tx: &PgTx<'_>,
    tenant: &str,
    cart: Uuid,
) -> Result<Option<Uuid>, StoreError> {
    let stmt = tx
        .prepare_cached("SELECT order_id FROM cart_orders WHERE tenant_id = $1 AND cart_id = $2")
        .await
        .map_err(pg_err)?;
    Ok(tx
        .query_opt(&stmt, &[&tenant, &cart])
        .await
        .map_err(pg_err)?
        .map(|r| r.get(0)))
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
