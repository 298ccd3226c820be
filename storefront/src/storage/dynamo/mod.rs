//! DynamoDB adapters for the catalog, sessions and carts. Every partition key starts with the
//! tenant's data key ([`emporium_tenant_config::item_key_prefix`]), so pooled tenants sharing
//! tables never share a key, and the operator can find and purge an offboarded tenant's items.
//!
//! - [`catalog`]: [`DynamoCatalog`], products, categories and the catalog's version counter.
//! - [`sessions`]: [`DynamoSessions`], sessions and their index per customer.
//! - [`carts`]: [`DynamoCarts`], carts and each customer's cart pointer.
//! - [`attributes`]: the attribute values, key formats and error the three share.
//!
//! This module holds what concerns a table as a whole: creating one in development
//! ([`ensure_table`]) and the keyed requests (`Table`) every adapter builds on.

mod attributes;
pub mod carts;
pub mod catalog;
pub mod sessions;

use aws_sdk_dynamodb::{
    Client,
    error::DisplayErrorContext,
    operation::{
        delete_item::builders::DeleteItemFluentBuilder, get_item::builders::GetItemFluentBuilder,
        put_item::builders::PutItemFluentBuilder, update_item::builders::UpdateItemFluentBuilder,
    },
    types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        TimeToLiveSpecification,
    },
};

use self::attributes::{Item, ddb_err, s};
pub use self::{carts::DynamoCarts, catalog::DynamoCatalog, sessions::DynamoSessions};
use crate::domain::ports::StoreError;

/// Creates a table with the key schema the operator uses (`pk`, `sk`, both strings) when it is
/// missing, and turns on TTL on `expires_at` when asked. Development only: in clusters the
/// operator owns the tables.
pub async fn ensure_table(client: &Client, name: &str, ttl: bool) -> Result<(), StoreError> {
    if client
        .describe_table()
        .table_name(name)
        .send()
        .await
        .is_ok()
    {
        return Ok(());
    }
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| StoreError::new("dynamodb", e))
    };
    let key = |n: &str, t| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| StoreError::new("dynamodb", e))
    };
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .send()
        .await;
    if let Err(e) = created {
        let in_use = e
            .as_service_error()
            .is_some_and(|e| e.is_resource_in_use_exception());
        if !in_use {
            return Err(ddb_err(e));
        }
    }
    if ttl {
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name("expires_at")
            .build()
            .map_err(|e| StoreError::new("dynamodb", e))?;
        // Already enabled is fine; anything else is reported.
        if let Err(e) = client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(spec)
            .send()
            .await
        {
            tracing::debug!(table = name, error = %DisplayErrorContext(e), "TTL not changed");
        }
    }
    tracing::info!(table = name, "created DynamoDB table (--create-tables)");
    Ok(())
}

/// Requests on one table's items, keyed by partition (`pk`) and sort key (`sk`) as the operator
/// creates every table, so each adapter states only what differs between its requests.
#[derive(Clone, Copy)]
struct Table<'a> {
    client: &'a Client,
    name: &'a str,
}

impl<'a> Table<'a> {
    fn new(client: &'a Client, name: &'a str) -> Self {
        Self { client, name }
    }

    /// A consistent read of the item at (`pk`, `sk`).
    fn get(self, pk: String, sk: impl Into<String>) -> GetItemFluentBuilder {
        self.client
            .get_item()
            .table_name(self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
    }

    /// Writes the item at (`pk`, `sk`); the caller adds its other attributes.
    fn put(self, pk: String, sk: impl Into<String>) -> PutItemFluentBuilder {
        self.client
            .put_item()
            .table_name(self.name)
            .item("pk", s(pk))
            .item("sk", s(sk))
    }

    fn update(self, pk: String, sk: impl Into<String>) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    fn delete(self, pk: String, sk: impl Into<String>) -> DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(self.name)
            .key("pk", s(pk))
            .key("sk", s(sk))
    }

    /// Hands `each` every item of partition `pk` whose sort key is in `from ..= to`, in sort key
    /// order, one page of consistent reads at a time.
    async fn query_range(
        self,
        pk: &str,
        from: &str,
        to: &str,
        mut each: impl FnMut(Item),
    ) -> Result<(), StoreError> {
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(self.name)
                .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                .expression_attribute_values(":pk", s(pk))
                .expression_attribute_values(":from", s(from))
                .expression_attribute_values(":to", s(to))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb_err)?;
            out.items
                .unwrap_or_default()
                .into_iter()
                .for_each(&mut each);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(())
    }

    /// Hands `each` every item of partition `pk` (only those whose sort key starts with
    /// `sk_prefix`, when given), one page of consistent reads at a time.
    async fn query_each(
        self,
        pk: &str,
        sk_prefix: Option<&str>,
        mut each: impl FnMut(Item),
    ) -> Result<(), StoreError> {
        let condition = match sk_prefix {
            Some(_) => "pk = :pk AND begins_with(sk, :prefix)",
            None => "pk = :pk",
        };
        let mut start = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(self.name)
                .key_condition_expression(condition)
                .expression_attribute_values(":pk", s(pk))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if let Some(prefix) = sk_prefix {
                req = req.expression_attribute_values(":prefix", s(prefix));
            }
            let out = req.send().await.map_err(ddb_err)?;
            out.items
                .unwrap_or_default()
                .into_iter()
                .for_each(&mut each);
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(())
    }
}
