//! Stock levels: the merchant's counts, reads, and the numbered change log that live stock
//! feeds replay and hear (NOTIFY on commit).

use deadpool_postgres::Transaction as PgTx;

use super::{PgOrders, pg_err};
use crate::{
    domain::{
        inventory::{StockChange, StockNotice},
        ports::{InventoryStore, StoreError},
    },
    storage::postgres::tenant_transaction,
};

/// The NOTIFY channel stock changes are published on (payload: [`StockNotice`] JSON).
pub const STOCK_CHANNEL: &str = "emporium_inventory";

impl InventoryStore for PgOrders {
    /// Sets a SKU's available units (the merchant's count) and publishes the change.
    async fn set_stock(&self, sku: &str, available: i32) -> Result<StockChange, StoreError> {
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
        changes
            .pop()
            .ok_or_else(|| StoreError::new("postgres", "no stock event"))
    }

    /// Available units of a SKU (`None` when the merchant never set any).
    async fn stock(&self, sku: &str) -> Result<Option<i32>, StoreError> {
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
    async fn stock_events_after(
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
}

impl PgOrders {
    /// Sets many SKUs' available units in one transaction (an import batch), in sorted SKU
    /// order like every multi-row inventory write. Only counts that differ from the stored ones
    /// are written, logged and published, so setting the same counts again changes nothing.
    /// Returns how many changed.
    pub async fn set_stocks(&self, mut levels: Vec<(String, i32)>) -> Result<usize, StoreError> {
        if levels.is_empty() {
            return Ok(0);
        }
        levels.sort();
        levels.dedup_by(|a, b| a.0 == b.0);
        let (skus, counts): (Vec<String>, Vec<i32>) = levels.into_iter().unzip();
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO inventory (tenant_id, sku, available)
                 SELECT $1, sku, available FROM unnest($2::text[], $3::int[]) AS l(sku, available)
                 ORDER BY sku
                 ON CONFLICT (tenant_id, sku) DO UPDATE SET available = EXCLUDED.available, updated_at = now()
                 WHERE inventory.available IS DISTINCT FROM EXCLUDED.available
                 RETURNING sku, available",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx
            .query(&stmt, &[&self.t(), &skus, &counts])
            .await
            .map_err(pg_err)?;
        let mut changed: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        changed.sort();
        let n = changed.len();
        if n == 0 {
            tx.commit().await.map_err(pg_err)?;
            return Ok(0);
        }
        // As `record_stock` does, but with one statement for the log and one for the NOTIFYs
        // rather than two per SKU: an import batch sets hundreds.
        let seq_stmt = tx
            .prepare_cached(
                "INSERT INTO inventory_sequences (tenant_id, last_seq) VALUES ($1, $2)
                 ON CONFLICT (tenant_id) DO UPDATE SET last_seq = inventory_sequences.last_seq + EXCLUDED.last_seq
                 RETURNING last_seq",
            )
            .await
            .map_err(pg_err)?;
        let last: i64 = tx
            .query_one(&seq_stmt, &[&self.t(), &(n as i64)])
            .await
            .map_err(pg_err)?
            .get(0);
        let seqs: Vec<i64> = (0..n as i64).map(|i| last - n as i64 + 1 + i).collect();
        let (skus, counts): (Vec<String>, Vec<i32>) = changed.into_iter().unzip();
        let payloads = seqs
            .iter()
            .zip(skus.iter().zip(&counts))
            .map(|(seq, (sku, available))| {
                serde_json::to_string(&StockNotice {
                    tenant: self.t().to_owned(),
                    change: StockChange {
                        seq: *seq,
                        sku: sku.clone(),
                        available: *available,
                    },
                })
                .map_err(pg_err)
            })
            .collect::<Result<Vec<String>, StoreError>>()?;
        let log = tx
            .prepare_cached(
                "INSERT INTO inventory_events (tenant_id, seq, sku, available)
                 SELECT $1, seq, sku, available FROM unnest($2::bigint[], $3::text[], $4::int[]) AS e(seq, sku, available)",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&log, &[&self.t(), &seqs, &skus, &counts])
            .await
            .map_err(pg_err)?;
        let notify = tx
            .prepare_cached("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .await
            .map_err(pg_err)?;
        tx.execute(&notify, &[&STOCK_CHANNEL, &payloads])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(n)
    }

    /// The available units of each of `skus` that has a stock record.
    pub async fn stocks(
        &self,
        skus: &[String],
    ) -> Result<std::collections::HashMap<String, i32>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT sku, available FROM inventory WHERE tenant_id = $1 AND sku = ANY($2)",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx.query(&stmt, &[&self.t(), &skus]).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Numbers the changes (per-tenant sequence, taken last so its lock is held briefly and
    /// always after the inventory rows), logs them and NOTIFYs them on commit.
    pub(super) async fn record_stock(
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
}
