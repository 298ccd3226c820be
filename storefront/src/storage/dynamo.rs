//! DynamoDB adapters for the catalog, sessions and carts. Every partition key starts with the
//! tenant id, so pooled tenants sharing tables never share a key.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    Client,
    error::{DisplayErrorContext, SdkError},
    types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
        ScalarAttributeType, TimeToLiveSpecification,
    },
};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::domain::{
    cart::{Lines, MAX_LINES, MAX_QUANTITY},
    catalog::{Category, Product},
    ports::{
        CartStore, CartWriteError, CatalogDocs, CatalogStore, Session, SessionStore, StoreError,
        StoredCart,
    },
};

fn ddb_err<E: std::error::Error + 'static, R: std::fmt::Debug>(e: SdkError<E, R>) -> StoreError {
    StoreError::new("dynamodb", DisplayErrorContext(e))
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s<'a>(item: &'a HashMap<String, AttributeValue>, key: &str) -> Option<&'a str> {
    item.get(key)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn get_n(item: &HashMap<String, AttributeValue>, key: &str) -> Option<i64> {
    item.get(key)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn epoch(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

fn from_epoch(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or_default()
}

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

/// One tenant's products and categories in its catalog table (partition `<tenant>#CATALOG`: items
/// `PRODUCT#<id>` and `CATEGORY#<id>` holding JSON in `doc`, and the write counter `VERSION`).
#[derive(Clone)]
pub struct DynamoCatalog {
    pub client: Client,
    pub table: String,
    pub tenant: String,
}

impl DynamoCatalog {
    fn pk(&self) -> String {
        format!("{}#CATALOG", self.tenant)
    }

    async fn put_doc(&self, sk: String, doc: String) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.pk()))
            .item("sk", s(sk))
            .item("doc", s(doc))
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }

    async fn delete_doc(&self, sk: String) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(self.pk()))
            .key("sk", s(sk))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }
}

/// The sort key of the catalog's version counter (in the catalog's own partition).
const VERSION_SK: &str = "VERSION";

impl CatalogStore for DynamoCatalog {
    async fn load(&self) -> Result<CatalogDocs, StoreError> {
        let mut docs = CatalogDocs::default();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", s(self.pk()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb_err)?;
            let last = out.last_evaluated_key;
            for mut item in out.items.unwrap_or_default() {
                let Some(sk) = get_s(&item, "sk") else {
                    continue;
                };
                let list = if sk.starts_with("PRODUCT#") {
                    &mut docs.products
                } else if sk.starts_with("CATEGORY#") {
                    &mut docs.categories
                } else {
                    continue;
                };
                if let Some(AttributeValue::S(doc)) = item.remove("doc") {
                    list.push(doc);
                }
            }
            match last {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(docs)
    }

    async fn version(&self) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(self.pk()))
            .key("sk", s(VERSION_SK))
            .consistent_read(true)
            .projection_expression("v")
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| get_n(i, "v"))
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0))
    }

    async fn bump_version(&self) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(self.pk()))
            .key("sk", s(VERSION_SK))
            .update_expression("ADD v :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(out
            .attributes
            .as_ref()
            .and_then(|a| get_n(a, "v"))
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(0))
    }

    async fn put_product(&self, product: &Product) -> Result<(), StoreError> {
        let doc = serde_json::to_string(product).map_err(|e| StoreError::new("dynamodb", e))?;
        self.put_doc(format!("PRODUCT#{}", product.id), doc).await
    }

    async fn delete_product(&self, id: Uuid) -> Result<bool, StoreError> {
        self.delete_doc(format!("PRODUCT#{id}")).await
    }

    async fn put_category(&self, category: &Category) -> Result<(), StoreError> {
        let doc = serde_json::to_string(category).map_err(|e| StoreError::new("dynamodb", e))?;
        self.put_doc(format!("CATEGORY#{}", category.id), doc).await
    }

    async fn delete_category(&self, id: &str) -> Result<bool, StoreError> {
        self.delete_doc(format!("CATEGORY#{id}")).await
    }
}

/// One tenant's sessions. Each session is two items: the session keyed by its token hash (for
/// lookups) and an index item under the customer (so a password change can end the others).
#[derive(Clone)]
pub struct DynamoSessions {
    pub client: Client,
    pub table: String,
    pub tenant: String,
}

impl DynamoSessions {
    fn session_pk(&self, hash: &str) -> String {
        format!("{}#SESSION#{hash}", self.tenant)
    }
    fn customer_pk(&self, customer: Uuid) -> String {
        format!("{}#CUSTOMER#{customer}", self.tenant)
    }

    async fn delete_pair(&self, hash: &str, customer: Uuid) -> Result<(), StoreError> {
        for (pk, sk) in [
            (self.session_pk(hash), "SESSION".to_owned()),
            (self.customer_pk(customer), format!("SESSION#{hash}")),
        ] {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .send()
                .await
                .map_err(ddb_err)?;
        }
        Ok(())
    }
}

impl SessionStore for DynamoSessions {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let exp = n(epoch(session.expires_at));
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.session_pk(&session.token_hash)))
            .item("sk", s("SESSION"))
            .item("customer_id", s(session.customer_id.to_string()))
            .item("expires_at", exp.clone())
            .send()
            .await
            .map_err(ddb_err)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.customer_pk(session.customer_id)))
            .item("sk", s(format!("SESSION#{}", session.token_hash)))
            .item("expires_at", exp)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }

    async fn get(&self, token_hash: &str) -> Result<Option<Session>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(self.session_pk(token_hash)))
            .key("sk", s("SESSION"))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb_err)?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let customer_id = get_s(&item, "customer_id").and_then(|v| Uuid::parse_str(v).ok());
        let expires_at = get_n(&item, "expires_at").map(from_epoch);
        Ok(match (customer_id, expires_at) {
            // DynamoDB deletes expired items lazily (up to days later): check the time here.
            (Some(customer_id), Some(expires_at)) if expires_at > Utc::now() => Some(Session {
                token_hash: token_hash.to_owned(),
                customer_id,
                expires_at,
            }),
            _ => None,
        })
    }

    async fn delete(&self, token_hash: &str, customer_id: Uuid) -> Result<(), StoreError> {
        self.delete_pair(token_hash, customer_id).await
    }

    async fn delete_others(
        &self,
        customer_id: Uuid,
        keep: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let mut hashes = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(self.customer_pk(customer_id)))
                .expression_attribute_values(":prefix", s("SESSION#"))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(ddb_err)?;
            hashes.extend(
                out.items()
                    .iter()
                    .filter_map(|i| get_s(i, "sk"))
                    .filter_map(|sk| sk.strip_prefix("SESSION#"))
                    .map(str::to_owned),
            );
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        hashes.retain(|h| Some(h.as_str()) != keep);
        for hash in &hashes {
            self.delete_pair(hash, customer_id).await?;
        }
        Ok(hashes)
    }
}

/// One tenant's carts: one item per cart, lines in a map attribute so each line change is a
/// single conditional `UpdateItem`.
#[derive(Clone)]
pub struct DynamoCarts {
    pub client: Client,
    pub table: String,
    pub tenant: String,
    pub ttl: std::time::Duration,
}

enum LineChange<'a> {
    Add(&'a str, u32),
    Set(&'a str, u32),
    Remove(&'a str),
}

impl DynamoCarts {
    fn cart_pk(&self, id: Uuid) -> String {
        format!("{}#CART#{id}", self.tenant)
    }
    fn customer_pk(&self, customer: Uuid) -> String {
        format!("{}#CUSTOMER#{customer}", self.tenant)
    }
    fn expiry(&self) -> DateTime<Utc> {
        Utc::now() + Duration::from_std(self.ttl).unwrap_or(Duration::days(7))
    }

    fn parse(&self, id: Uuid, item: &HashMap<String, AttributeValue>) -> Option<StoredCart> {
        let expires_at = from_epoch(get_n(item, "expires_at")?);
        if expires_at <= Utc::now() {
            return None;
        }
        let lines = item
            .get("lines")
            .and_then(|v| v.as_m().ok())
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| {
                        v.as_n()
                            .ok()
                            .and_then(|q| q.parse::<u32>().ok())
                            .map(|q| (k.clone(), q))
                    })
                    .filter(|(_, q)| *q > 0)
                    .collect()
            })
            .unwrap_or_default();
        let owner = get_s(item, "owner").and_then(|o| Uuid::parse_str(o).ok());
        Some(StoredCart {
            id,
            owner,
            lines,
            expires_at,
        })
    }

    async fn change(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        change: LineChange<'_>,
    ) -> Result<StoredCart, CartWriteError> {
        let caller = caller.map(|c| c.to_string()).unwrap_or_default();
        let base = "attribute_exists(pk) AND expires_at > :now AND (attribute_not_exists(#o) OR #o = :caller)";
        let req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(self.cart_pk(id)))
            .key("sk", s("CART"))
            .expression_attribute_names("#l", "lines")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":now", n(Utc::now().timestamp()))
            .expression_attribute_values(":caller", s(caller.clone()))
            .return_values(ReturnValue::AllNew);
        let req = match change {
            LineChange::Add(sku, q) => req
                .expression_attribute_names("#s", sku)
                .update_expression("SET #l.#s = if_not_exists(#l.#s, :zero) + :q, expires_at = :exp")
                .condition_expression(format!(
                    "{base} AND (attribute_not_exists(#l.#s) OR #l.#s <= :maxq) AND (attribute_exists(#l.#s) OR size(#l) < :maxlines)"
                ))
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":q", n(i64::from(q)))
                .expression_attribute_values(":maxq", n(i64::from(MAX_QUANTITY.saturating_sub(q))))
                .expression_attribute_values(":maxlines", n(MAX_LINES as i64))
                .expression_attribute_values(":exp", n(epoch(self.expiry()))),
            LineChange::Set(sku, q) => req
                .expression_attribute_names("#s", sku)
                .update_expression("SET #l.#s = :q, expires_at = :exp")
                .condition_expression(format!("{base} AND attribute_exists(#l.#s)"))
                .expression_attribute_values(":q", n(i64::from(q)))
                .expression_attribute_values(":exp", n(epoch(self.expiry()))),
            LineChange::Remove(sku) => req
                .expression_attribute_names("#s", sku)
                .update_expression("REMOVE #l.#s SET expires_at = :exp")
                .condition_expression(format!("{base} AND attribute_exists(#l.#s)"))
                .expression_attribute_values(":exp", n(epoch(self.expiry()))),
        };
        let is_add = matches!(change, LineChange::Add(..));
        match req.send().await {
            Ok(out) => out
                .attributes
                .as_ref()
                .and_then(|a| self.parse(id, a))
                .ok_or(CartWriteError::NotFound),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                // Rare path: read the cart once to say which condition failed.
                Err(match self.get(id).await? {
                    None => CartWriteError::NotFound,
                    Some(cart) if cart.owner.is_some_and(|o| o.to_string() != caller) => {
                        CartWriteError::NotOwner
                    }
                    Some(_) if is_add => CartWriteError::Limit,
                    Some(_) => CartWriteError::NoLine,
                })
            }
            Err(e) => Err(ddb_err(e).into()),
        }
    }
}

fn lines_attr(lines: &Lines) -> AttributeValue {
    AttributeValue::M(
        lines
            .iter()
            .map(|(k, q)| (k.clone(), n(i64::from(*q))))
            .collect(),
    )
}

impl CartStore for DynamoCarts {
    async fn create(&self, id: Uuid, owner: Option<Uuid>) -> Result<StoredCart, StoreError> {
        let cart = StoredCart {
            id,
            owner,
            lines: Lines::new(),
            expires_at: self.expiry(),
        };
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.cart_pk(id)))
            .item("sk", s("CART"))
            .item("lines", lines_attr(&cart.lines))
            .item("expires_at", n(epoch(cart.expires_at)))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(o) = owner {
            req = req.item("owner", s(o.to_string()));
        }
        req.send().await.map_err(ddb_err)?;
        Ok(cart)
    }

    async fn get(&self, id: Uuid) -> Result<Option<StoredCart>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(self.cart_pk(id)))
            .key("sk", s("CART"))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(out.item.as_ref().and_then(|i| self.parse(id, i)))
    }

    async fn add_line(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
        quantity: u32,
    ) -> Result<StoredCart, CartWriteError> {
        self.change(id, caller, LineChange::Add(sku, quantity))
            .await
    }

    async fn set_line(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
        quantity: u32,
    ) -> Result<StoredCart, CartWriteError> {
        self.change(id, caller, LineChange::Set(sku, quantity))
            .await
    }

    async fn remove_line(
        &self,
        id: Uuid,
        caller: Option<Uuid>,
        sku: &str,
    ) -> Result<StoredCart, CartWriteError> {
        self.change(id, caller, LineChange::Remove(sku)).await
    }

    async fn replace(&self, cart: &StoredCart) -> Result<(), StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.cart_pk(cart.id)))
            .item("sk", s("CART"))
            .item("lines", lines_attr(&cart.lines))
            .item("expires_at", n(epoch(self.expiry())));
        if let Some(o) = cart.owner {
            req = req.item("owner", s(o.to_string()));
        }
        req.send().await.map_err(ddb_err)?;
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(self.cart_pk(id)))
            .key("sk", s("CART"))
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }

    async fn customer_cart(&self, customer: Uuid) -> Result<Option<Uuid>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(self.customer_pk(customer)))
            .key("sk", s("CART"))
            .consistent_read(true)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(out
            .item
            .as_ref()
            .and_then(|i| get_s(i, "cart_id"))
            .and_then(|v| Uuid::parse_str(v).ok()))
    }

    async fn set_customer_cart(&self, customer: Uuid, cart: Uuid) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(self.customer_pk(customer)))
            .item("sk", s("CART"))
            .item("cart_id", s(cart.to_string()))
            .item("expires_at", n(epoch(self.expiry())))
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }
}
