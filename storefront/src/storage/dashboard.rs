//! The merchant dashboard's figures, read straight from the tenant's orders and inventory
//! (PostgreSQL, scoped by row-level security like every other read).

use chrono::{DateTime, Utc};

use super::postgres::{Database, tenant_transaction};
use crate::domain::ports::StoreError;

fn pg_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::caused_by("postgres", e)
}

/// Orders placed since a moment, in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrdersSince {
    pub currency: String,
    /// Every order placed, whatever became of it.
    pub placed: i64,
    /// Orders paid (paid, fulfilled, or later refunded in part).
    pub paid: i64,
    /// What paid orders took, before refunds.
    pub revenue_minor: i64,
}

/// Orders placed since `since`, per currency.
pub async fn orders_since(
    db: &Database,
    tenant: &str,
    since: DateTime<Utc>,
) -> Result<Vec<OrdersSince>, StoreError> {
    let mut client = db.client().await?;
    let tx = tenant_transaction(&mut client, tenant).await?;
    let rows = tx
        .query(
            "SELECT currency, count(*),
                    count(*) FILTER (WHERE status IN ('paid', 'fulfilled', 'refunded')),
                    coalesce(sum(total_minor) FILTER (WHERE status IN ('paid', 'fulfilled', 'refunded')), 0)::bigint
             FROM orders WHERE tenant_id = $1 AND created_at >= $2
             GROUP BY currency ORDER BY currency",
            &[&tenant, &since],
        )
        .await
        .map_err(pg_err)?;
    tx.commit().await.map_err(pg_err)?;
    Ok(rows
        .iter()
        .map(|r| OrdersSince {
            currency: r.get(0),
            placed: r.get(1),
            paid: r.get(2),
            revenue_minor: r.get(3),
        })
        .collect())
}

/// SKUs with at most `threshold` units available, fewest first.
pub async fn low_stock(
    db: &Database,
    tenant: &str,
    threshold: i32,
    limit: i64,
) -> Result<Vec<(String, i32)>, StoreError> {
    let mut client = db.client().await?;
    let tx = tenant_transaction(&mut client, tenant).await?;
    let rows = tx
        .query(
            "SELECT sku, available FROM inventory WHERE tenant_id = $1 AND available <= $2
             ORDER BY available, sku LIMIT $3",
            &[&tenant, &threshold, &limit],
        )
        .await
        .map_err(pg_err)?;
    tx.commit().await.map_err(pg_err)?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
