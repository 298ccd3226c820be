//! The transactional outbox: order events written in the transaction that changed the order,
//! relayed later (at least once) by [`crate::workers::relay`].

use std::future::Future;

use deadpool_postgres::Transaction as PgTx;
use serde_json::json;
use uuid::Uuid;

use super::{PgOrders, pg_err};
use crate::{
    domain::{
        orders::{Order, OutboxEvent, RelayError},
        ports::{OutboxStore, StoreError},
    },
    storage::postgres::tenant_transaction,
};

impl PgOrders {
    /// Writes `order`'s event of `kind` (`order.created`, `order.paid`, ...) in `tx`.
    pub(super) async fn outbox(
        &self,
        tx: &PgTx<'_>,
        order: &Order,
        kind: &str,
    ) -> Result<(), StoreError> {
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
}

impl OutboxStore for PgOrders {
    /// Hands unsent outbox events (oldest first) to `send`; marks them sent only when it
    /// succeeds, in the same transaction that locked them. Other replicas skip locked rows.
    async fn relay_outbox<F, Fut, E>(&self, limit: i64, send: F) -> Result<usize, RelayError<E>>
    where
        F: FnOnce(Vec<OutboxEvent>) -> Fut + Send,
        Fut: Future<Output = Result<(), E>> + Send,
        E: Send,
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

    async fn outbox_backlog(&self) -> Result<(i64, Option<Uuid>), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT count(*),
                        (SELECT id FROM outbox WHERE tenant_id = $1 AND sent_at IS NULL
                         ORDER BY id LIMIT 1)
                 FROM outbox WHERE tenant_id = $1 AND sent_at IS NULL",
            )
            .await
            .map_err(pg_err)?;
        let row = tx.query_one(&stmt, &[&self.t()]).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok((row.get(0), row.get(1)))
    }
}
