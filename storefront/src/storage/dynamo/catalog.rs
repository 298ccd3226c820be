//! The catalog adapter: one tenant's products and categories as JSON documents in its catalog
//! table, the version counter every admin write raises, and the change feed that says what each
//! version changed.
//!
//! The feed: a write is stored first, then claims the next version by creating the feed entry
//! `CHANGE#<version>` (a conditional put that fails if a concurrent write claimed it, which then
//! tries the next one), then raises `VERSION` to it (never lowers it). So when `VERSION` reads
//! `v`, every entry up to `v` exists (or was trimmed), and every product a replica re-reads after
//! seeing `v` is at least as new as the writes counted up to `v`. Each claim deletes the entry
//! `feed_len` versions older, which bounds the feed; a replica further behind than that (or
//! behind a version counted without an entry, as the bench's bulk loader does with `ADD v 1`)
//! finds a gap and loads the whole catalog instead.

use std::{collections::HashMap, time::Duration};

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, KeysAndAttributes, PutRequest, ReturnValue, WriteRequest},
};
use emporium_tenant_config::item_key_prefix;
use uuid::Uuid;

use super::{
    Table,
    attributes::{Item, ddb_err, get_count, get_n, get_s, n, s},
};
use crate::domain::{
    catalog::{Category, Product},
    ports::{CatalogChange, CatalogDocs, CatalogStore, ChangedDocs, StoreError},
};

/// One tenant's products and categories in its catalog table (partition `<tenant>#CATALOG`: items
/// `PRODUCT#<id>` and `CATEGORY#<id>` holding JSON in `doc`, the write counter `VERSION`, and
/// the change feed `CHANGE#<version>`).
#[derive(Clone)]
pub struct DynamoCatalog {
    pub client: Client,
    pub table: String,
    pub tenant: String,
    /// Feed entries kept (older ones are deleted as new ones are written).
    pub feed_len: u64,
}

/// The sort key of the catalog's version counter (in the catalog's own partition).
const VERSION_SK: &str = "VERSION";
/// Feed entries kept by default: at one entry per admin write, a replica can fall this many
/// writes behind and still catch up without a full load.
pub const DEFAULT_FEED_LEN: u64 = 1_000;
/// A replica further behind than this many versions loads the whole catalog rather than
/// reading that many feed entries.
const MAX_CATCH_UP: u64 = 256;
/// Product ids per feed entry (an entry of 500 UUIDs is about 20 KB; items are limited to 400).
const IDS_PER_ENTRY: usize = 500;
/// Attempts to claim a version before giving up (each failure means a concurrent write claimed
/// that version, so this bounds how many writes may race for one tenant).
const CLAIM_ATTEMPTS: u32 = 64;
/// Keys per BatchGetItem (DynamoDB's limit) and items per BatchWriteItem (likewise).
const BATCH_GET: usize = 100;
const BATCH_WRITE: usize = 25;
/// BatchWriteItem calls one batch of products keeps in flight.
const PARALLEL_WRITES: usize = 4;
/// Rounds of retrying what DynamoDB left unprocessed in a batch (it throttles that way).
const BATCH_ROUNDS: u32 = 10;

fn change_sk(version: u64) -> String {
    format!("CHANGE#{version:020}")
}

fn product_sk(id: Uuid) -> String {
    format!("PRODUCT#{id}")
}

fn category_sk(id: &str) -> String {
    format!("CATEGORY#{id}")
}

fn string_list(items: impl IntoIterator<Item = String>) -> AttributeValue {
    AttributeValue::L(items.into_iter().map(AttributeValue::S).collect())
}

fn strings_of(item: &Item, key: &str) -> Vec<String> {
    match item.get(key) {
        Some(AttributeValue::L(l)) => l.iter().filter_map(|v| v.as_s().ok().cloned()).collect(),
        _ => Vec::new(),
    }
}

/// A change as feed entries of at most [`IDS_PER_ENTRY`] product ids each (categories go with
/// the first).
fn entries(change: &CatalogChange) -> Vec<CatalogChange> {
    let mut out: Vec<CatalogChange> = change
        .products
        .chunks(IDS_PER_ENTRY)
        .map(|ids| CatalogChange {
            products: ids.to_vec(),
            categories: Vec::new(),
        })
        .collect();
    match out.first_mut() {
        Some(first) => first.categories = change.categories.clone(),
        None => out.push(change.clone()),
    }
    out
}

/// Backoff before retrying unprocessed batch items: 10, 20, 40 ... ms.
async fn batch_backoff(round: u32) {
    tokio::time::sleep(Duration::from_millis(10 << round.min(6))).await;
}

impl DynamoCatalog {
    fn items(&self) -> Table<'_> {
        Table::new(&self.client, &self.table)
    }

    fn pk(&self) -> String {
        format!("{}CATALOG", item_key_prefix(&self.tenant))
    }

    async fn put_doc(&self, sk: String, doc: String) -> Result<(), StoreError> {
        self.items()
            .put(self.pk(), sk)
            .item("doc", s(doc))
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }

    /// Gives `change` the next free version (see the module doc), raises the counter to it and
    /// trims the feed.
    async fn record_entry(&self, change: &CatalogChange) -> Result<u64, StoreError> {
        let mut version = CatalogStore::version(self).await? + 1;
        let mut attempts = 0;
        loop {
            let claimed = self
                .items()
                .put(self.pk(), change_sk(version))
                .item("v", n(i64::try_from(version).unwrap_or(i64::MAX)))
                .item(
                    "p",
                    string_list(change.products.iter().map(Uuid::to_string)),
                )
                .item("c", string_list(change.categories.iter().cloned()))
                .condition_expression("attribute_not_exists(sk)")
                .send()
                .await;
            match claimed {
                Ok(_) => break,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
                {
                    attempts += 1;
                    if attempts >= CLAIM_ATTEMPTS {
                        return Err(StoreError::new(
                            "dynamodb",
                            format!(
                                "catalog change feed: no free version after {CLAIM_ATTEMPTS} attempts (too many concurrent writes)"
                            ),
                        ));
                    }
                    version += 1;
                }
                Err(e) => return Err(ddb_err(e)),
            }
        }
        let raised = self
            .items()
            .update(self.pk(), VERSION_SK)
            .update_expression("SET v = :v")
            .condition_expression("attribute_not_exists(v) OR v < :v")
            .expression_attribute_values(":v", n(i64::try_from(version).unwrap_or(i64::MAX)))
            .send()
            .await;
        match raised {
            Ok(_) => {}
            // A later version was counted meanwhile: the counter is already past this one.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) => {}
            Err(e) => return Err(ddb_err(e)),
        }
        if let Some(old) = version.checked_sub(self.feed_len.max(1)).filter(|v| *v > 0) {
            // Best effort: an entry left behind costs a few bytes, never correctness.
            if let Err(e) = self.items().delete(self.pk(), change_sk(old)).send().await {
                tracing::debug!(tenant = %self.tenant, error = %ddb_err(e), "catalog feed entry not trimmed");
            }
        }
        Ok(version)
    }

    /// Consistent reads of many items of the catalog's partition by sort key: sort key → item.
    async fn get_many(&self, sks: Vec<String>) -> Result<HashMap<String, Item>, StoreError> {
        let mut found = HashMap::new();
        for chunk in sks.chunks(BATCH_GET) {
            let mut keys: Vec<Item> = chunk
                .iter()
                .map(|sk| {
                    HashMap::from([("pk".to_owned(), s(self.pk())), ("sk".to_owned(), s(sk))])
                })
                .collect();
            let mut round = 0;
            while !keys.is_empty() {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(std::mem::take(&mut keys)))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::new("dynamodb", e))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(ddb_err)?;
                for item in out
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(sk) = get_s(&item, "sk") {
                        found.insert(sk.to_owned(), item);
                    }
                }
                keys = out
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if !keys.is_empty() {
                    round += 1;
                    if round > BATCH_ROUNDS {
                        return Err(StoreError::new(
                            "dynamodb",
                            "catalog read: keys still unprocessed after retries",
                        ));
                    }
                    batch_backoff(round).await;
                }
            }
        }
        Ok(found)
    }

    /// One BatchWriteItem of at most [`BATCH_WRITE`] products, retrying what DynamoDB left
    /// unprocessed.
    async fn put_chunk(&self, chunk: &[Product]) -> Result<(), StoreError> {
        let mut writes = chunk
            .iter()
            .map(|p| {
                let doc = serde_json::to_string(p).map_err(|e| StoreError::new("dynamodb", e))?;
                let put = PutRequest::builder()
                    .item("pk", s(self.pk()))
                    .item("sk", s(product_sk(p.id)))
                    .item("doc", s(doc))
                    .build()
                    .map_err(|e| StoreError::new("dynamodb", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        let mut round = 0;
        while !writes.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut writes))
                .send()
                .await
                .map_err(ddb_err)?;
            writes = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
                .unwrap_or_default();
            if !writes.is_empty() {
                round += 1;
                if round > BATCH_ROUNDS {
                    return Err(StoreError::new(
                        "dynamodb",
                        "catalog write: items still unprocessed after retries",
                    ));
                }
                batch_backoff(round).await;
            }
        }
        Ok(())
    }

    async fn delete_doc(&self, sk: String) -> Result<bool, StoreError> {
        let out = self
            .items()
            .delete(self.pk(), sk)
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

impl CatalogStore for DynamoCatalog {
    async fn load(&self) -> Result<CatalogDocs, StoreError> {
        let mut docs = CatalogDocs::default();
        self.items()
            .query_each(&self.pk(), None, |mut item| {
                let Some(sk) = get_s(&item, "sk") else {
                    return;
                };
                let list = if sk.starts_with("PRODUCT#") {
                    &mut docs.products
                } else if sk.starts_with("CATEGORY#") {
                    &mut docs.categories
                } else {
                    return;
                };
                if let Some(AttributeValue::S(doc)) = item.remove("doc") {
                    list.push(doc);
                }
            })
            .await?;
        Ok(docs)
    }

    async fn version(&self) -> Result<u64, StoreError> {
        let out = self
            .items()
            .get(self.pk(), VERSION_SK)
            .projection_expression("v")
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(get_count(out.item.as_ref(), "v"))
    }

    async fn record_change(&self, change: &CatalogChange) -> Result<u64, StoreError> {
        let mut version = 0;
        for entry in entries(change) {
            version = self.record_entry(&entry).await?;
        }
        Ok(version)
    }

    async fn changes(&self, after: u64, upto: u64) -> Result<Option<CatalogChange>, StoreError> {
        let mut merged = CatalogChange::default();
        if upto <= after {
            return Ok(Some(merged));
        }
        if upto - after > MAX_CATCH_UP {
            return Ok(None);
        }
        let mut expected = after + 1;
        let mut contiguous = true;
        self.items()
            .query_range(
                &self.pk(),
                &change_sk(after + 1),
                &change_sk(upto),
                |item| {
                    let v = get_n(&item, "v").and_then(|v| u64::try_from(v).ok());
                    if v != Some(expected) {
                        contiguous = false;
                        return;
                    }
                    expected += 1;
                    merged.merge(CatalogChange {
                        products: strings_of(&item, "p")
                            .iter()
                            .filter_map(|id| id.parse().ok())
                            .collect(),
                        categories: strings_of(&item, "c"),
                    });
                },
            )
            .await?;
        Ok((contiguous && expected == upto + 1).then_some(merged))
    }

    async fn fetch_changed(&self, change: &CatalogChange) -> Result<ChangedDocs, StoreError> {
        let sks = change
            .products
            .iter()
            .map(|id| product_sk(*id))
            .chain(change.categories.iter().map(|id| category_sk(id)))
            .collect();
        let mut found = self.get_many(sks).await?;
        let mut doc = |sk: String| {
            found
                .remove(&sk)
                .and_then(|mut item| match item.remove("doc") {
                    Some(AttributeValue::S(doc)) => Some(doc),
                    _ => None,
                })
        };
        Ok(ChangedDocs {
            products: change
                .products
                .iter()
                .map(|id| (*id, doc(product_sk(*id))))
                .collect(),
            categories: change
                .categories
                .iter()
                .map(|id| (id.clone(), doc(category_sk(id))))
                .collect(),
        })
    }

    async fn put_product(&self, product: &Product) -> Result<(), StoreError> {
        let doc = serde_json::to_string(product).map_err(|e| StoreError::new("dynamodb", e))?;
        self.put_doc(product_sk(product.id), doc).await
    }

    async fn put_products(&self, products: &[Product]) -> Result<(), StoreError> {
        use futures::{StreamExt as _, TryStreamExt as _};
        // Several BatchWriteItem calls in flight at once: an import batch of 500 products is
        // 20 calls, and sequentially their round trips dominate an import's time.
        // (Futures made up front: a closure in the stream trips the `Send` check of the trait.)
        let writes: Vec<_> = products
            .chunks(BATCH_WRITE)
            .map(|chunk| self.put_chunk(chunk))
            .collect();
        futures::stream::iter(writes)
            .buffer_unordered(PARALLEL_WRITES)
            .try_collect::<()>()
            .await
    }

    async fn delete_product(&self, id: Uuid) -> Result<bool, StoreError> {
        self.delete_doc(product_sk(id)).await
    }

    async fn put_category(&self, category: &Category) -> Result<(), StoreError> {
        let doc = serde_json::to_string(category).map_err(|e| StoreError::new("dynamodb", e))?;
        self.put_doc(category_sk(&category.id), doc).await
    }

    async fn delete_category(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_doc(category_sk(id)).await
    }
}
