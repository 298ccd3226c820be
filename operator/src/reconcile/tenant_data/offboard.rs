//! Offboarding a pooled tenant's data: its rows in the pool database and its items in the pool
//! tables, per `spec.database.deletionPolicy`. (A dedicated tenant's data goes with its own
//! database and tables, which the providers delete, back up or retain.)
//!
//! - `Retain`: nothing is touched. The rows and items stay under the tenant's data key
//!   ([`crate::reconcile::identity`]), which no later Storefront gets, so no tenant reaches them.
//! - `Snapshot`: everything is exported to the snapshot bucket (JSON lines per table, then a
//!   manifest), then purged as with `Delete`. Without a bucket configured the data is retained
//!   and the summary says so: nothing is deleted that was not exported.
//! - `Delete`: purged, table by table in batches.
//!
//! Every step is idempotent and the whole is re-run until done: an export with a manifest is
//! not redone, and a purge finds only what is left. Each call works for a bounded time and
//! answers `Progressing` while anything is left, so the finalizer stays until the purge is
//! complete.

use std::time::Duration;

use emporium_tenant_config::item_key_prefix;
use kube::ResourceExt as _;
use serde_json::json;

use super::requests::{database_request, tables_request};
use crate::{
    crd::{DeletionPolicy, Storefront, Tier},
    providers::{Deletion, Outcome, ProviderError, SnapshotStore, TableKind, database::TenantRows},
    reconcile::Context,
};

/// How long one call purges before answering `Progressing` (per store).
const PURGE_BUDGET: Duration = Duration::from_secs(20);
const MANIFEST: &str = "manifest.json";

/// Offboards the pooled tenant `tenant_id` per its deletion policy; `Ready` means done.
pub(super) async fn offboard_pooled(
    ctx: &Context,
    storefront: &Storefront,
    tenant_id: &str,
) -> Result<Outcome<Deletion>, ProviderError> {
    let policy = storefront.spec.database.deletion_policy;
    let snapshots = ctx.providers.snapshots.as_deref();
    match (policy, snapshots) {
        (DeletionPolicy::Retain, _) => {
            return Ok(Outcome::Ready(Deletion::new(format!(
                "rows and items retained under tenant id {tenant_id}, which no new Storefront gets"
            ))));
        }
        (DeletionPolicy::Snapshot, None) => {
            return Ok(Outcome::Ready(Deletion::new(format!(
                "deletionPolicy Snapshot, but the operator has no snapshot bucket (--snapshot-bucket): rows and items retained under tenant id {tenant_id}, which no new Storefront gets"
            ))));
        }
        (DeletionPolicy::Snapshot, Some(store)) => {
            if let Outcome::Progressing { reason, message } =
                export(ctx, storefront, tenant_id, store).await?
            {
                return Ok(Outcome::Progressing { reason, message });
            }
        }
        (DeletionPolicy::Delete, _) => {}
    }
    purge(ctx, storefront, tenant_id).await
}

/// The tenant's connection to the pool database (`None` without a database provider), or
/// the provider's non-ready outcome.
async fn tenant_rows<U>(
    ctx: &Context,
    storefront: &Storefront,
    tenant_id: &str,
) -> Result<Option<Result<TenantRows, Outcome<U>>>, ProviderError> {
    let Some(provider) = &ctx.providers.database else {
        return Ok(None);
    };
    let request = database_request(storefront, Tier::Pooled, None)
        .map_err(|e| ProviderError::Config(e.to_string()))?;
    Ok(Some(match provider.ensure(&request).await? {
        Outcome::Ready(connection) => Ok(TenantRows::connect(&connection.dsn, tenant_id).await?),
        Outcome::Progressing { reason, message } => Err(Outcome::Progressing { reason, message }),
        Outcome::Terminal { reason, message } => Err(Outcome::Terminal { reason, message }),
    }))
}

/// The pool table names, if a tables provider is configured.
fn pool_tables(ctx: &Context, storefront: &Storefront) -> Vec<(TableKind, String)> {
    let Some(provider) = &ctx.providers.tables else {
        return Vec::new();
    };
    let names = provider.table_names(&tables_request(storefront, Tier::Pooled, None));
    vec![
        (TableKind::Catalog, names.catalog),
        (TableKind::Carts, names.carts),
        (TableKind::Sessions, names.sessions),
    ]
}

/// Exports every row and item of the tenant, unless a complete export (one with a manifest)
/// is there already.
async fn export(
    ctx: &Context,
    storefront: &Storefront,
    tenant_id: &str,
    store: &SnapshotStore,
) -> Result<Outcome<()>, ProviderError> {
    let name = storefront.name_any();
    let manifest_key = store.key(&name, tenant_id, MANIFEST);
    if store.exists(&manifest_key).await? {
        return Ok(Outcome::Ready(()));
    }
    let mut files = Vec::new();
    if let Some(rows) = tenant_rows(ctx, storefront, tenant_id).await? {
        let mut rows = match rows {
            Ok(rows) => rows,
            Err(waiting) => return Ok(waiting),
        };
        for table in rows.tables().await? {
            let lines = rows.export(&table).await?;
            let key = store.key(&name, tenant_id, &format!("postgres/{table}.jsonl"));
            files.push(
                json!({"key": key, "source": "postgres", "table": table, "records": lines.len()}),
            );
            store
                .put(&key, json_lines(lines), "application/x-ndjson")
                .await?;
        }
    }
    if let Some(provider) = &ctx.providers.tables {
        let prefix = item_key_prefix(tenant_id);
        for (kind, table) in pool_tables(ctx, storefront) {
            let lines = provider.export_tenant_items(&table, &prefix).await?;
            let key = store.key(
                &name,
                tenant_id,
                &format!("dynamodb/{}.jsonl", kind.suffix()),
            );
            files.push(
                json!({"key": key, "source": "dynamodb", "table": table, "records": lines.len()}),
            );
            store
                .put(&key, json_lines(lines), "application/x-ndjson")
                .await?;
        }
    }
    let manifest = json!({
        "storefront": name,
        "tenantId": tenant_id,
        "uid": storefront.uid(),
        "exportedAt": k8s_openapi::jiff::Timestamp::now().to_string(),
        "files": files,
    });
    store
        .put(
            &manifest_key,
            manifest.to_string().into_bytes(),
            "application/json",
        )
        .await?;
    tracing::info!(location = %store.location(&manifest_key), "exported the offboarded tenant's data");
    Ok(Outcome::Ready(()))
}

/// Deletes the tenant's rows and items, for a bounded time per call.
async fn purge(
    ctx: &Context,
    storefront: &Storefront,
    tenant_id: &str,
) -> Result<Outcome<Deletion>, ProviderError> {
    let mut summary = Vec::new();
    let mut complete = true;
    if let Some(rows) = tenant_rows(ctx, storefront, tenant_id).await? {
        let mut rows = match rows {
            Ok(rows) => rows,
            Err(waiting) => return Ok(waiting),
        };
        let purge = rows.purge(PURGE_BUDGET).await?;
        complete &= purge.complete;
        let total: u64 = purge.deleted.values().sum();
        summary.push(format!("{total} rows purged from the pool database"));
    }
    if let Some(provider) = &ctx.providers.tables {
        let prefix = item_key_prefix(tenant_id);
        let mut total = 0;
        for (_, table) in pool_tables(ctx, storefront) {
            let purge = provider
                .purge_tenant_items(&table, &prefix, PURGE_BUDGET)
                .await?;
            total += purge.deleted;
            complete &= purge.complete;
        }
        summary.push(format!("{total} items purged from the pool tables"));
    }
    let summary = format!("tenant id {tenant_id}: {}", summary.join(", "));
    if complete {
        Ok(Outcome::Ready(Deletion::new(summary)))
    } else {
        Ok(Outcome::progressing(
            "Purging",
            format!("{summary} so far; more is left"),
        ))
    }
}

fn json_lines(lines: Vec<String>) -> Vec<u8> {
    let mut body = lines.join("\n").into_bytes();
    if !body.is_empty() {
        body.push(b'\n');
    }
    body
}
