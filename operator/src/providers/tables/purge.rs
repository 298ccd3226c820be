//! One pooled tenant's items in a shared table: exported as JSON lines and purged, found by
//! the prefix every partition key of the tenant starts with
//! ([`emporium_tenant_config::item_key_prefix`]).
//!
//! Both scan the table with a `begins_with(pk, prefix)` filter, reading keys only when
//! purging, and delete in `BatchWriteItem`s of 25. A purge cut short (crash, time budget) is
//! simply run again: what is deleted is not found twice, so it is resumable and idempotent.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{DynamoTables, PARTITION_KEY, SORT_KEY, build_error};
use crate::providers::{ProviderError, aws::sdk_error};

/// Most items one `BatchWriteItem` may delete.
const BATCH: usize = 25;

/// How far a purge of one table got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemPurge {
    pub deleted: u64,
    /// Whether the whole table was scanned (false: the time budget ran out; run again).
    pub complete: bool,
}

type Item = HashMap<String, AttributeValue>;

impl DynamoTables {
    /// Every item of `table` whose partition key starts with `key_prefix`, one DynamoDB-JSON
    /// object per line (`{"pk":{"S":"..."},...}`, the format of DynamoDB's own exports).
    pub(super) async fn export_tenant_items(
        &self,
        table: &str,
        key_prefix: &str,
    ) -> Result<Vec<String>, ProviderError> {
        let mut lines = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(table)
                .filter_expression("begins_with(#pk, :prefix)")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_values(":prefix", AttributeValue::S(key_prefix.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "Scan", table, e))?;
            for item in out.items() {
                lines.push(item_json(item).to_string());
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(lines),
            }
        }
    }

    /// Deletes the items of `table` whose partition key starts with `key_prefix`, until done
    /// or `budget` has passed.
    pub(super) async fn purge_tenant_items(
        &self,
        table: &str,
        key_prefix: &str,
        budget: Duration,
    ) -> Result<ItemPurge, ProviderError> {
        let started = Instant::now();
        let mut deleted = 0;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(table)
                .filter_expression("begins_with(#pk, :prefix)")
                .projection_expression("#pk, #sk")
                .expression_attribute_names("#pk", PARTITION_KEY)
                .expression_attribute_names("#sk", SORT_KEY)
                .expression_attribute_values(":prefix", AttributeValue::S(key_prefix.to_owned()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "Scan", table, e))?;
            for keys in out.items().chunks(BATCH) {
                deleted += self.delete_batch(table, keys).await?;
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => {
                    return Ok(ItemPurge {
                        deleted,
                        complete: true,
                    });
                }
            }
            if started.elapsed() > budget {
                return Ok(ItemPurge {
                    deleted,
                    complete: false,
                });
            }
        }
    }

    /// Deletes one batch of keys, resending what DynamoDB left unprocessed (throttling).
    async fn delete_batch(&self, table: &str, keys: &[Item]) -> Result<u64, ProviderError> {
        let mut requests = keys
            .iter()
            .map(|key| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key.clone()))
                    .build()
                    .map_err(build_error)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, ProviderError>>()?;
        let mut pause = Duration::from_millis(50);
        while !requests.is_empty() {
            let out = self
                .client
                .batch_write_item()
                .request_items(table, requests)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "BatchWriteItem", table, e))?;
            requests = out
                .unprocessed_items
                .and_then(|mut left| left.remove(table))
                .unwrap_or_default();
            if !requests.is_empty() {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
        Ok(keys.len() as u64)
    }
}

/// An item in DynamoDB JSON.
fn item_json(item: &Item) -> Value {
    let mut sorted: Vec<_> = item.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    Value::Object(
        sorted
            .into_iter()
            .map(|(name, value)| (name.clone(), attribute_json(value)))
            .collect::<Map<_, _>>(),
    )
}

/// One attribute value in DynamoDB JSON (`{"S": "..."}`, `{"N": "1"}`, binary as base64).
fn attribute_json(value: &AttributeValue) -> Value {
    let b64 = |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    match value {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": b64(b.as_ref()) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(_) => json!({ "NULL": true }),
        AttributeValue::Ss(v) => json!({ "SS": v }),
        AttributeValue::Ns(v) => json!({ "NS": v }),
        AttributeValue::Bs(v) => {
            json!({ "BS": v.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::L(v) => json!({ "L": v.iter().map(attribute_json).collect::<Vec<_>>() }),
        AttributeValue::M(m) => {
            json!({ "M": item_json(m) })
        }
        // A type added to DynamoDB after this SDK: keep its presence, not its value.
        _ => json!({ "UNKNOWN": true }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_become_dynamodb_json() {
        let item: Item = [
            ("pk".to_owned(), AttributeValue::S("t#CART#1".into())),
            ("expires_at".to_owned(), AttributeValue::N("17".into())),
            (
                "lines".to_owned(),
                AttributeValue::M([("sku".to_owned(), AttributeValue::N("2".into()))].into()),
            ),
            ("raw".to_owned(), AttributeValue::B(vec![1u8, 2, 3].into())),
        ]
        .into();
        assert_eq!(
            item_json(&item),
            json!({
                "expires_at": {"N": "17"},
                "lines": {"M": {"sku": {"N": "2"}}},
                "pk": {"S": "t#CART#1"},
                "raw": {"B": "AQID"},
            })
        );
    }
}
