//! One pooled tenant's rows in the shared database: exported as JSON lines and purged, table
//! by table, through the tenant's own connection (its DSN): row-level security shows that
//! connection nothing but the rows of the tenant named by `app.tenant_id`, which every
//! transaction here sets, so the purge cannot touch another tenant's rows.
//!
//! The tables are found, not listed: every table of the runtime's schema with a `tenant_id`
//! column (the runtime's convention, `storefront/migrations/`), ordered so that a table is
//! purged before the tables it references. A table added by a later migration is purged
//! without a change here. Deletes go in batches, each its own transaction, so a purge cut
//! short is resumed by running it again.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant},
};

use tokio_postgres::{Client, NoTls};
use tracing::warn;

use crate::providers::{ProviderError, SecretString};

/// Rows one delete statement removes at most.
const BATCH: i64 = 1000;
/// How long connecting to the pool database may take before the attempt counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How far a purge of the tenant's rows got.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowPurge {
    /// Rows deleted per table.
    pub deleted: BTreeMap<String, u64>,
    /// Whether every table is empty of the tenant's rows (false: the budget ran out).
    pub complete: bool,
}

/// A connection to the tenant's database with its own credentials.
pub struct TenantRows {
    client: Client,
    tenant_id: String,
}

impl TenantRows {
    /// Connects with `dsn` (plain TCP, as the runtime does) for tenant `tenant_id`.
    pub async fn connect(dsn: &SecretString, tenant_id: &str) -> Result<Self, ProviderError> {
        let mut config: tokio_postgres::Config = dsn.expose().parse().map_err(|_| {
            ProviderError::Config(
                "the tenant's database URL is not a valid connection string".into(),
            )
        })?;
        // A pool database the operator cannot reach (no route, a security group that drops
        // its packets) must fail the reconcile, not hang it: it retries with backoff.
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|source| ProviderError::PostgresUnreachable { source })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(error = %e, "tenant database connection ended with an error");
            }
        });
        Ok(Self {
            client,
            tenant_id: tenant_id.to_owned(),
        })
    }

    /// The tables holding tenant rows, each before the tables it references.
    pub async fn tables(&self) -> Result<Vec<String>, ProviderError> {
        let tables: Vec<String> = self
            .client
            .query(
                "SELECT c.table_name::text FROM information_schema.columns c
                 JOIN information_schema.tables t
                   ON t.table_schema = c.table_schema AND t.table_name = c.table_name
                 WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id'
                   AND t.table_type = 'BASE TABLE'
                 ORDER BY 1",
                &[],
            )
            .await
            .map_err(|e| pg_error("listing the tenant tables", e))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let references: Vec<(String, String)> = self
            .client
            .query(
                "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
                 WHERE contype = 'f' AND connamespace = current_schema()::regnamespace",
                &[],
            )
            .await
            .map_err(|e| pg_error("reading the foreign keys", e))?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        Ok(referencing_first(&tables, &references))
    }

    /// The tenant's rows of `table`, one JSON object per line.
    pub async fn export(&mut self, table: &str) -> Result<Vec<String>, ProviderError> {
        let sql = format!(
            "SELECT row_to_json(t)::text FROM {} t WHERE tenant_id = $1",
            quote_ident(table)
        );
        let tx = scoped(&mut self.client, &self.tenant_id).await?;
        let rows = tx
            .query(&sql, &[&self.tenant_id])
            .await
            .map_err(|e| pg_error(&format!("exporting {table}"), e))?;
        tx.commit()
            .await
            .map_err(|e| pg_error(&format!("exporting {table}"), e))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// Deletes the tenant's rows, table by table in batches, until done or `budget` has passed.
    pub async fn purge(&mut self, budget: Duration) -> Result<RowPurge, ProviderError> {
        let started = Instant::now();
        let mut purge = RowPurge::default();
        for table in self.tables().await? {
            let sql = format!(
                "DELETE FROM {t} WHERE ctid IN (SELECT ctid FROM {t} WHERE tenant_id = $1 LIMIT {BATCH})",
                t = quote_ident(&table)
            );
            loop {
                if started.elapsed() > budget {
                    return Ok(purge);
                }
                let tx = scoped(&mut self.client, &self.tenant_id).await?;
                let n = tx
                    .execute(&sql, &[&self.tenant_id])
                    .await
                    .map_err(|e| pg_error(&format!("purging {table}"), e))?;
                tx.commit()
                    .await
                    .map_err(|e| pg_error(&format!("purging {table}"), e))?;
                *purge.deleted.entry(table.clone()).or_default() += n;
                if n < BATCH as u64 {
                    break;
                }
            }
        }
        purge.complete = true;
        Ok(purge)
    }
}

/// A transaction that row-level security scopes to `tenant_id`.
async fn scoped<'c>(
    client: &'c mut Client,
    tenant_id: &str,
) -> Result<tokio_postgres::Transaction<'c>, ProviderError> {
    let tx = client
        .transaction()
        .await
        .map_err(|e| pg_error("opening a transaction", e))?;
    tx.execute(
        "SELECT set_config('app.tenant_id', $1, true)",
        &[&tenant_id],
    )
    .await
    .map_err(|e| pg_error("scoping the transaction to the tenant", e))?;
    Ok(tx)
}

/// `tables` ordered so that each comes before every table it references (`(from, to)` pairs);
/// otherwise by name. Cycles (none in the schema) fall back to name order.
fn referencing_first(tables: &[String], references: &[(String, String)]) -> Vec<String> {
    let mut remaining: BTreeSet<&String> = tables.iter().collect();
    let mut ordered = Vec::with_capacity(tables.len());
    while !remaining.is_empty() {
        // A table may go once no remaining table references it.
        let next = remaining
            .iter()
            .find(|t| {
                !references
                    .iter()
                    .any(|(from, to)| to == **t && from != **t && remaining.contains(from))
            })
            .copied()
            .or_else(|| remaining.iter().next().copied());
        let Some(next) = next else { break };
        remaining.remove(next);
        ordered.push(next.clone());
    }
    ordered
}

fn pg_error(action: &str, e: tokio_postgres::Error) -> ProviderError {
    match e.as_db_error() {
        Some(db) => ProviderError::Postgres {
            action: action.to_owned(),
            message: format!("{} ({})", db.message(), db.code().code()),
            source: e,
        },
        None => ProviderError::PostgresUnreachable { source: e },
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_is_purged_before_the_tables_it_references() {
        let tables: Vec<String> = ["customers", "order_lines", "orders", "outbox"]
            .map(String::from)
            .to_vec();
        let references = vec![("order_lines".to_owned(), "orders".to_owned())];
        let ordered = referencing_first(&tables, &references);
        let at = |t: &str| ordered.iter().position(|x| x == t).unwrap();
        assert!(at("order_lines") < at("orders"), "{ordered:?}");
        assert_eq!(ordered.len(), 4);
    }
}
