//! Bulk import jobs (issue 16 item 3; decision 0028). A merchant posts a file; the job is
//! stored in PostgreSQL with the file itself and answered `202` at once; a runner (any
//! replica's [`crate::workers::imports`]) claims it by lease and works through the file's
//! products in batches of [`BATCH`]: each batch is checked against the current catalog
//! snapshot, written through the catalog's batch path (one change-feed entry per batch, so
//! other replicas catch up by those ids), its stock set, and then its checkpoint committed.
//! A runner that dies leaves the lease to expire; the next runner to claim the job re-reads
//! the file and continues after the checkpoint. Products are matched by SKU and handle, so a
//! batch done twice (a crash between write and checkpoint) or a file imported again changes
//! nothing.

pub mod files;

use std::collections::{HashMap, HashSet};

use chrono::Utc;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use self::files::{Entry, FileError, Format, ImportProduct};
use crate::{
    catalog::Snapshot,
    domain::{
        Invalid,
        catalog::{Category, CategoryDraft, Product, ProductDraft},
        ports::StoreError,
    },
    storage::imports::{BatchDone, ImportJob, NewJob, PgImports, RowError},
};

/// Products per batch: one change-feed entry (its limit is 500 ids) and one checkpoint.
pub const BATCH: usize = 500;
/// Seconds a runner's lease lasts without a committed batch; a job whose runner died is
/// resumed by another after this.
pub const LEASE_SECS: f64 = 30.0;
/// Runs of a job (first run and resumptions) before it is given up as failed.
pub const MAX_ATTEMPTS: i32 = 5;

/// Why an import could not be started, or its job not shown.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the file cannot be imported: {0}")]
    File(#[from] FileError),
    #[error("import job not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The product id an import gives a handle that names no product yet: derived from the tenant
/// and the handle (SHA-256, as a version 8 UUID), so importing the same file again, or
/// resuming a batch that was written but not checkpointed, finds the same product.
pub fn handle_id(tenant: &str, handle: &str) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"emporium-import\0");
    h.update(tenant.as_bytes());
    h.update(b"\0");
    h.update(handle.as_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Starts an import: reads the file once (a file that cannot be imported at all is refused
/// now, with why), stores the job with the file and returns it queued.
pub async fn create(
    jobs: &PgImports,
    snapshot: &Snapshot,
    created_by: &str,
    format: Format,
    body: &[u8],
) -> Result<ImportJob, ImportError> {
    let default_currency = snapshot.catalog.some_currency().map(str::to_owned);
    let parsed = files::parse(format, body, default_currency.as_deref())?;
    let job = jobs
        .insert(&NewJob {
            id: Uuid::now_v7(),
            format: format.as_str(),
            body,
            default_currency: default_currency.as_deref(),
            created_by,
            rows_total: i32::try_from(parsed.rows_total).unwrap_or(i32::MAX),
            products_total: i32::try_from(parsed.entries.len()).unwrap_or(i32::MAX),
            ignored_columns: &parsed.ignored_columns,
        })
        .await?;
    Ok(job)
}

/// What one batch comes to once checked against the catalog.
#[derive(Debug, Default)]
pub struct Plan {
    /// Products to store (new or changed).
    pub products: Vec<Product>,
    /// Categories the products name that do not exist yet.
    pub categories: Vec<Category>,
    /// Stock levels to set.
    pub stock: Vec<(String, i32)>,
    pub errors: Vec<RowError>,
    pub rows_done: i32,
    pub rows_failed: i32,
    pub unchanged: i32,
}

/// Checks a batch of entries against `snap` and says what to write. Pure: the same entries
/// and catalog give the same plan.
pub fn plan(tenant: &str, format: Format, snap: &Snapshot, entries: &[Entry]) -> Plan {
    let mut out = Plan::default();
    let mut new_categories: HashMap<String, Category> = HashMap::new();
    // SKU → the product of this batch that takes it.
    let mut batch_skus: HashMap<String, Uuid> = HashMap::new();
    let now = Utc::now();
    for entry in entries {
        let rows = i32::try_from(entry.rows).unwrap_or(i32::MAX);
        out.rows_done += rows;
        let p = match &entry.product {
            Ok(p) => p,
            Err(e) => {
                out.errors.push(e.clone());
                out.rows_failed += rows;
                continue;
            }
        };
        match plan_product(
            tenant,
            format,
            snap,
            p,
            &mut new_categories,
            &batch_skus,
            now,
        ) {
            Err(e) => {
                out.errors.push(e);
                out.rows_failed += rows;
            }
            Ok((product, categories, changed)) => {
                for v in &product.variants {
                    batch_skus.insert(v.sku.clone(), product.id);
                }
                for c in categories {
                    new_categories.insert(c.id.clone(), c.clone());
                    out.categories.push(c);
                }
                out.stock.extend(
                    p.variants
                        .iter()
                        .filter_map(|v| v.inventory.map(|n| (v.variant.sku.clone(), n))),
                );
                if changed {
                    out.products.push(product);
                } else {
                    out.unchanged += 1;
                }
            }
        }
    }
    out
}

type Planned = (Product, Vec<Category>, bool);

fn plan_product(
    tenant: &str,
    format: Format,
    snap: &Snapshot,
    p: &ImportProduct,
    new_categories: &mut HashMap<String, Category>,
    batch_skus: &HashMap<String, Uuid>,
    now: chrono::DateTime<Utc>,
) -> Result<Planned, RowError> {
    let catalog = &snap.catalog;
    let located = |e: Invalid| -> RowError {
        match format {
            Format::Jsonl => RowError {
                row: p.row,
                field: e.field,
                message: e.message,
            },
            Format::Csv => {
                let (variant, column) = files::csv_column(&e.field);
                RowError {
                    row: variant
                        .and_then(|i| p.variants.get(i))
                        .map_or(p.row, |v| v.row),
                    field: column,
                    message: e.message,
                }
            }
        }
    };
    let sku_field = |i: usize| match format {
        Format::Csv => (p.variants[i].row, files::SKU.to_owned()),
        Format::Jsonl => (p.row, format!("variants[{i}].sku")),
    };
    // Which product this is: the one already selling its SKUs, else the handle's.
    let by_handle = handle_id(tenant, &p.handle);
    let mut owner: Option<Uuid> = None;
    for (i, v) in p.variants.iter().enumerate() {
        let Some(info) = catalog.variant(&v.variant.sku) else {
            continue;
        };
        let id = info.item.id;
        match owner {
            None => owner = Some(id),
            Some(o) if o != id => {
                let (row, field) = sku_field(i);
                return Err(RowError {
                    row,
                    field,
                    message: format!(
                        "SKU `{}` belongs to another product than this row's other SKUs (`{}`)",
                        v.variant.sku,
                        info.item.title()
                    ),
                });
            }
            Some(_) => {}
        }
    }
    let id = owner.unwrap_or(by_handle);
    let existing = catalog.product(id);
    if let Some(e) = &existing
        && let Some(h) = &e.handle
        && h != &p.handle
    {
        return Err(RowError {
            row: p.row,
            field: match format {
                Format::Csv => files::HANDLE.to_owned(),
                Format::Jsonl => "handle".to_owned(),
            },
            message: format!(
                "its SKUs belong to the product with handle `{h}`; use that handle, or new SKUs"
            ),
        });
    }
    if owner.is_some() && owner != Some(by_handle) && catalog.product(by_handle).is_some() {
        return Err(RowError {
            row: p.row,
            field: match format {
                Format::Csv => files::HANDLE.to_owned(),
                Format::Jsonl => "handle".to_owned(),
            },
            message: format!(
                "handle `{}` names another product than the one selling these SKUs",
                p.handle
            ),
        });
    }
    // Categories: existing, made earlier in this batch, or made now (with the name from `Type`).
    let mut made = Vec::new();
    for (i, c) in p.categories.iter().enumerate() {
        if catalog.has_category(c) || new_categories.contains_key(c) {
            continue;
        }
        let draft = CategoryDraft {
            id: c.clone(),
            name: p
                .category_names
                .get(c)
                .cloned()
                .unwrap_or_else(|| c.clone()),
            parent_id: None,
        };
        draft.validate(|_| false).map_err(|e| {
            located(Invalid::new(
                format!("categories[{i}]"),
                format!("category `{c}`: {}", e.message),
            ))
        })?;
        made.push(Category {
            id: draft.id,
            name: draft.name.trim().to_owned(),
            parent_id: None,
        });
    }
    let draft = ProductDraft {
        title: p.title.clone(),
        description: p.description.clone(),
        categories: p.categories.clone(),
        variants: p.variants.iter().map(|v| v.variant.clone()).collect(),
    };
    let made_ids: HashSet<&str> = made.iter().map(|c| c.id.as_str()).collect();
    draft
        .validate(
            |c| catalog.has_category(c) || new_categories.contains_key(c) || made_ids.contains(c),
            |sku| {
                catalog.variant(sku).is_some_and(|v| v.item.id != id)
                    || batch_skus.get(sku).is_some_and(|other| *other != id)
            },
        )
        .map_err(located)?;
    let product = Product {
        id,
        title: draft.title.trim().to_owned(),
        description: draft.description,
        categories: draft.categories,
        variants: draft.variants,
        created_at: existing.as_ref().map_or(now, |e| e.created_at),
        updated_at: now,
        handle: Some(p.handle.clone()),
    };
    let changed = existing.as_ref().is_none_or(|e| {
        e.title != product.title
            || e.description != product.description
            || e.categories != product.categories
            || e.variants != product.variants
            || e.handle != product.handle
    });
    Ok((product, made, changed))
}

/// Why running a job stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another runner holds the lease now (this one was too slow, or presumed dead).
    #[error("the job's lease was taken over by another runner")]
    LeaseLost,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where the batches of a job go: the tenant's catalog (through the catalog admin service)
/// and inventory.
pub struct Sink<'a> {
    pub admin: crate::services::catalog_admin::CatalogAdmin<
        'a,
        crate::storage::dynamo::DynamoCatalog,
        crate::storage::orders::PgOrders,
    >,
    pub orders: &'a crate::storage::orders::PgOrders,
}

/// Runs a claimed job from its checkpoint to its end. A file that can no longer be read ends
/// the job as failed; store errors are returned (the caller releases the lease for a retry).
pub async fn run(
    jobs: &PgImports,
    sink: &Sink<'_>,
    owner: Uuid,
    job: &crate::storage::imports::ClaimedJob,
) -> Result<(), RunError> {
    let Some(format) = Format::parse(&job.format) else {
        jobs.finish(job.id, owner, Some("unknown file format"))
            .await?;
        return Ok(());
    };
    let parsed = match files::parse(format, &job.body, job.default_currency.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            jobs.finish(job.id, owner, Some(&e.to_string())).await?;
            return Ok(());
        }
    };
    let tenant = sink.admin.tenant;
    let mut at = usize::try_from(job.checkpoint).unwrap_or(0);
    let mut snap = sink.admin.cache.snapshot(sink.admin.catalog).await?;
    while at < parsed.entries.len() {
        let end = (at + BATCH).min(parsed.entries.len());
        let planned = plan(tenant, format, &snap, &parsed.entries[at..end]);
        snap = sink
            .admin
            .write_batch(&planned.products, &planned.categories)
            .await?;
        sink.orders.set_stocks(planned.stock).await?;
        let done = BatchDone {
            checkpoint: i32::try_from(end).unwrap_or(i32::MAX),
            rows_done: planned.rows_done,
            rows_failed: planned.rows_failed,
            written: i32::try_from(planned.products.len()).unwrap_or(i32::MAX),
            unchanged: planned.unchanged,
            errors: &planned.errors,
        };
        if !jobs.checkpoint(job.id, owner, LEASE_SECS, &done).await? {
            return Err(RunError::LeaseLost);
        }
        tracing::debug!(tenant, job = %job.id, done = end, of = parsed.entries.len(), "import batch committed");
        at = end;
    }
    jobs.finish(job.id, owner, None).await?;
    Ok(())
}

/// The handle a product is exported with: its own, or its id for products made another way
/// (an id is a valid handle, and importing it back finds the product by its SKUs anyway).
pub fn export_handle(p: &Product) -> String {
    p.handle.clone().unwrap_or_else(|| p.id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_ids_are_stable_and_per_tenant() {
        assert_eq!(handle_id("t1", "mug"), handle_id("t1", "mug"));
        assert_ne!(handle_id("t1", "mug"), handle_id("t2", "mug"));
        assert_ne!(handle_id("t1", "mug"), handle_id("t1", "cup"));
        assert_eq!(handle_id("t1", "mug").get_version_num(), 8);
    }
}
