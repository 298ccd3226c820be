//! The carts adapter: one tenant's carts, one item each with its lines in a map attribute, and
//! each signed-in customer's pointer to their cart.

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, ReturnValue},
};
use chrono::{DateTime, Duration, Utc};
use emporium_tenant_config::item_key_prefix;
use uuid::Uuid;

use super::{
    Table,
    attributes::{Item, customer_pk, ddb_err, epoch, from_epoch, get_n, get_s, n, s},
};
use crate::domain::{
    cart::{Lines, MAX_LINES, MAX_QUANTITY},
    ports::{CartStore, CartWriteError, StoreError, StoredCart},
};

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
    fn items(&self) -> Table<'_> {
        Table::new(&self.client, &self.table)
    }

    fn cart_pk(&self, id: Uuid) -> String {
        format!("{}CART#{id}", item_key_prefix(&self.tenant))
    }

    fn customer_pk(&self, customer: Uuid) -> String {
        customer_pk(&self.tenant, customer)
    }

    fn expiry(&self) -> DateTime<Utc> {
        Utc::now() + Duration::from_std(self.ttl).unwrap_or(Duration::days(7))
    }

    fn parse(&self, id: Uuid, item: &Item) -> Option<StoredCart> {
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
            .items()
            .update(self.cart_pk(id), "CART")
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
            .items()
            .put(self.cart_pk(id), "CART")
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
            .items()
            .get(self.cart_pk(id), "CART")
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
            .items()
            .put(self.cart_pk(cart.id), "CART")
            .item("lines", lines_attr(&cart.lines))
            .item("expires_at", n(epoch(self.expiry())));
        if let Some(o) = cart.owner {
            req = req.item("owner", s(o.to_string()));
        }
        req.send().await.map_err(ddb_err)?;
        Ok(())
    }

    async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        self.items()
            .delete(self.cart_pk(id), "CART")
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }

    async fn customer_cart(&self, customer: Uuid) -> Result<Option<Uuid>, StoreError> {
        let out = self
            .items()
            .get(self.customer_pk(customer), "CART")
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
        self.items()
            .put(self.customer_pk(customer), "CART")
            .item("cart_id", s(cart.to_string()))
            .item("expires_at", n(epoch(self.expiry())))
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(())
    }
}
