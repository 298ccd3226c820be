//! PostgreSQL storage of import jobs (migration 0131) and the pages of orders and customers an
//! export streams. Every statement runs in a transaction scoped to the tenant by row-level
//! security, and names the tenant too.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio_postgres::{Row, types::ToSql};
use uuid::Uuid;

use super::postgres::{Database, tenant_transaction};
use crate::domain::ports::StoreError;

fn pg_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::caused_by("postgres", e)
}

/// Row errors kept per job (later ones are counted in `rows_failed` only).
pub const MAX_KEPT_ERRORS: i32 = 1_000;

/// A job as the API shows it (without its file).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ImportJob {
    pub id: Uuid,
    /// `csv` or `jsonl`.
    pub format: String,
    /// `queued`, `running`, `succeeded` (every row was handled; some may have failed) or
    /// `failed` (the job as a whole: see `failure`).
    pub status: String,
    pub created_by: String,
    pub rows_total: i32,
    /// Rows handled so far, failed ones included.
    pub rows_done: i32,
    pub rows_failed: i32,
    pub products_total: i32,
    /// Products created or changed.
    pub products_written: i32,
    /// Products the file describes exactly as the catalog already holds them.
    pub products_unchanged: i32,
    /// The first 1,000 row errors.
    #[schema(value_type = Vec<RowError>)]
    pub errors: serde_json::Value,
    /// Columns of the file the import does not map to anything (Shopify's `Vendor`, ...).
    pub ignored_columns: Vec<String>,
    pub failure: Option<String>,
    /// Times a runner started (or resumed) the job.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// What went wrong with one row of an import file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row's line number in the file (the CSV header is line 1).
    pub row: u32,
    /// The column (CSV) or JSON path (JSON lines) at fault.
    pub field: String,
    pub message: String,
}

const JOB_COLUMNS: &str = "id, format, status, created_by, rows_total, rows_done, rows_failed, \
    products_total, products_written, products_unchanged, errors, ignored_columns, failure, \
    attempts, created_at, started_at, updated_at, finished_at";

fn job(row: &Row) -> ImportJob {
    ImportJob {
        id: row.get(0),
        format: row.get(1),
        status: row.get(2),
        created_by: row.get(3),
        rows_total: row.get(4),
        rows_done: row.get(5),
        rows_failed: row.get(6),
        products_total: row.get(7),
        products_written: row.get(8),
        products_unchanged: row.get(9),
        errors: row.get(10),
        ignored_columns: row.get(11),
        failure: row.get(12),
        attempts: row.get(13),
        created_at: row.get(14),
        started_at: row.get(15),
        updated_at: row.get(16),
        finished_at: row.get(17),
    }
}

/// A new job.
pub struct NewJob<'a> {
    pub id: Uuid,
    pub format: &'a str,
    pub body: &'a [u8],
    pub default_currency: Option<&'a str>,
    pub created_by: &'a str,
    pub rows_total: i32,
    pub products_total: i32,
    pub ignored_columns: &'a [String],
}

/// A job a runner holds the lease of: what it needs to (re)run it.
pub struct ClaimedJob {
    pub id: Uuid,
    pub format: String,
    pub body: Vec<u8>,
    pub default_currency: Option<String>,
    pub checkpoint: i32,
    pub attempts: i32,
}

/// A committed batch's counts.
pub struct BatchDone<'a> {
    pub checkpoint: i32,
    pub rows_done: i32,
    pub rows_failed: i32,
    pub written: i32,
    pub unchanged: i32,
    pub errors: &'a [RowError],
}

/// Import jobs of one tenant.
#[derive(Clone)]
pub struct PgImports {
    pub db: Arc<Database>,
    pub tenant: Arc<str>,
}

impl PgImports {
    pub fn new(db: Arc<Database>, tenant: &str) -> Self {
        Self {
            db,
            tenant: tenant.into(),
        }
    }

    async fn rows(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let stmt = tx.prepare_cached(sql).await.map_err(pg_err)?;
        let rows = tx.query(&stmt, params).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows)
    }

    pub async fn insert(&self, new: &NewJob<'_>) -> Result<ImportJob, StoreError> {
        let sql = format!(
            "INSERT INTO import_jobs (tenant_id, id, format, body, default_currency, created_by, \
             rows_total, products_total, ignored_columns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             RETURNING {JOB_COLUMNS}"
        );
        let rows = self
            .rows(
                &sql,
                &[
                    &&*self.tenant,
                    &new.id,
                    &new.format,
                    &new.body,
                    &new.default_currency,
                    &new.created_by,
                    &new.rows_total,
                    &new.products_total,
                    &new.ignored_columns,
                ],
            )
            .await?;
        rows.first()
            .map(job)
            .ok_or_else(|| StoreError::new("postgres", "import job not stored"))
    }

    pub async fn get(&self, id: Uuid) -> Result<Option<ImportJob>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE tenant_id = $1 AND id = $2");
        Ok(self
            .rows(&sql, &[&&*self.tenant, &id])
            .await?
            .first()
            .map(job))
    }

    /// The newest jobs first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<ImportJob>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM import_jobs WHERE tenant_id = $1 ORDER BY created_at DESC LIMIT $2"
        );
        Ok(self
            .rows(&sql, &[&&*self.tenant, &limit])
            .await?
            .iter()
            .map(job)
            .collect())
    }

    /// Takes the lease of the oldest job that is queued, or running under an expired lease
    /// (its runner died), for `lease_secs`. `SKIP LOCKED`: replicas claiming at once get
    /// different jobs, or none.
    pub async fn claim(
        &self,
        owner: Uuid,
        lease_secs: f64,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let rows = self
            .rows(
                "UPDATE import_jobs SET status = 'running', lease_owner = $2,
                        lease_until = now() + make_interval(secs => $3), attempts = attempts + 1,
                        started_at = coalesce(started_at, now()), updated_at = now()
                 WHERE tenant_id = $1 AND id = (
                     SELECT id FROM import_jobs
                     WHERE tenant_id = $1 AND status IN ('queued', 'running')
                       AND (lease_until IS NULL OR lease_until < now())
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, format, body, default_currency, checkpoint, attempts",
                &[&&*self.tenant, &owner, &lease_secs],
            )
            .await?;
        Ok(rows.first().map(|r| ClaimedJob {
            id: r.get(0),
            format: r.get(1),
            body: r.get(2),
            default_currency: r.get(3),
            checkpoint: r.get(4),
            attempts: r.get(5),
        }))
    }

    /// Commits a batch's checkpoint and counts and renews the lease; false when `owner` no
    /// longer holds it (another runner took the job over: stop).
    pub async fn checkpoint(
        &self,
        id: Uuid,
        owner: Uuid,
        lease_secs: f64,
        done: &BatchDone<'_>,
    ) -> Result<bool, StoreError> {
        let errors = serde_json::to_value(done.errors)
            .map_err(|e| StoreError::new("postgres", e.to_string()))?;
        let rows = self
            .rows(
                "UPDATE import_jobs SET checkpoint = $4, rows_done = rows_done + $5,
                        rows_failed = rows_failed + $6, products_written = products_written + $7,
                        products_unchanged = products_unchanged + $8,
                        errors = CASE WHEN jsonb_array_length(errors) >= $10 THEN errors
                                      ELSE errors || (SELECT coalesce(jsonb_agg(e), '[]'::jsonb) FROM
                                          (SELECT e FROM jsonb_array_elements($9::jsonb) e
                                           LIMIT greatest($10 - jsonb_array_length(errors), 0)) x) END,
                        lease_until = now() + make_interval(secs => $3), updated_at = now()
                 WHERE tenant_id = $1 AND id = $2 AND lease_owner = $11 AND status = 'running'
                 RETURNING id",
                &[
                    &&*self.tenant,
                    &id,
                    &lease_secs,
                    &done.checkpoint,
                    &done.rows_done,
                    &done.rows_failed,
                    &done.written,
                    &done.unchanged,
                    &errors,
                    &MAX_KEPT_ERRORS,
                    &owner,
                ],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    /// Ends the job: `succeeded`, or `failed` with why.
    pub async fn finish(
        &self,
        id: Uuid,
        owner: Uuid,
        failure: Option<&str>,
    ) -> Result<(), StoreError> {
        let status = if failure.is_some() {
            "failed"
        } else {
            "succeeded"
        };
        self.rows(
            "UPDATE import_jobs SET status = $3, failure = $4, finished_at = now(), updated_at = now(),
                    lease_owner = NULL, lease_until = NULL
             WHERE tenant_id = $1 AND id = $2 AND lease_owner = $5",
            &[&&*self.tenant, &id, &status, &failure, &owner],
        )
        .await?;
        Ok(())
    }

    /// Gives the lease back early (a backing service failed): another attempt may claim the job
    /// after `retry_secs`.
    pub async fn release(&self, id: Uuid, owner: Uuid, retry_secs: f64) -> Result<(), StoreError> {
        self.rows(
            "UPDATE import_jobs SET lease_until = now() + make_interval(secs => $3), updated_at = now()
             WHERE tenant_id = $1 AND id = $2 AND lease_owner = $4",
            &[&&*self.tenant, &id, &retry_secs, &owner],
        )
        .await?;
        Ok(())
    }

    /// A page of orders after `after` (by id), with their lines: for exports.
    pub async fn orders_page(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ExportOrder>, StoreError> {
        let rows = self
            .rows(
                "SELECT o.id, o.created_at, o.status, o.email, o.customer_id, o.currency, o.total_minor,
                        o.payment_provider,
                        coalesce((SELECT jsonb_agg(jsonb_build_object('sku', l.sku, 'product_id', l.product_id,
                                    'title', l.title, 'quantity', l.quantity, 'unit_minor', l.unit_minor) ORDER BY l.sku)
                                  FROM order_lines l WHERE l.tenant_id = o.tenant_id AND l.order_id = o.id), '[]'::jsonb)
                 FROM orders o
                 WHERE o.tenant_id = $1 AND ($2::uuid IS NULL OR o.id > $2)
                 ORDER BY o.id LIMIT $3",
                &[&&*self.tenant, &after, &limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let lines: serde_json::Value = r.get(8);
                Ok(ExportOrder {
                    id: r.get(0),
                    created_at: r.get(1),
                    status: r.get(2),
                    email: r.get(3),
                    customer_id: r.get(4),
                    currency: r.get(5),
                    total_minor: r.get(6),
                    payment_provider: r.get(7),
                    lines: serde_json::from_value(lines)
                        .map_err(|e| StoreError::new("postgres", e.to_string()))?,
                })
            })
            .collect()
    }

    /// A page of customers after `after` (by id): id, email, name, created_at, never the
    /// password hash.
    pub async fn customers_page(
        &self,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<ExportCustomer>, StoreError> {
        let rows = self
            .rows(
                "SELECT id, email, name, created_at FROM customers
                 WHERE tenant_id = $1 AND ($2::uuid IS NULL OR id > $2)
                 ORDER BY id LIMIT $3",
                &[&&*self.tenant, &after, &limit],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ExportCustomer {
                id: r.get(0),
                email: r.get(1),
                name: r.get(2),
                created_at: r.get(3),
            })
            .collect())
    }
}

/// An order as exports write it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportOrder {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub email: Option<String>,
    pub customer_id: Option<Uuid>,
    pub currency: String,
    pub total_minor: i64,
    pub payment_provider: String,
    pub lines: Vec<ExportOrderLine>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ExportOrderLine {
    pub sku: String,
    pub product_id: Uuid,
    pub title: String,
    pub quantity: i32,
    pub unit_minor: i64,
}

/// A customer as exports write it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportCustomer {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
}
