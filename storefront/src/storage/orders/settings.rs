//! The merchant's settings documents (`shipping`, ...): one JSON document per name and tenant,
//! and customers' address books, one document per customer; both validated by the domain
//! before they are stored.

use serde_json::Value;

use super::{PgOrders, pg_err};
use crate::{
    domain::ports::{AddressBookStore, SettingsStore, StoreError},
    storage::postgres::tenant_transaction,
};

impl SettingsStore for PgOrders {
    async fn settings(&self, name: &str) -> Result<Option<Value>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached("SELECT doc FROM store_settings WHERE tenant_id = $1 AND name = $2")
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_opt(&stmt, &[&self.t(), &name])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn settings_many(
        &self,
        names: &[&str],
    ) -> Result<std::collections::HashMap<String, Value>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT name, doc FROM store_settings WHERE tenant_id = $1 AND name = ANY($2)",
            )
            .await
            .map_err(pg_err)?;
        let names: Vec<&str> = names.to_vec();
        let rows = tx
            .query(&stmt, &[&self.t(), &names])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn put_settings(&self, name: &str, doc: &Value) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO store_settings (tenant_id, name, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, name) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&self.t(), &name, doc])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }
}

impl AddressBookStore for PgOrders {
    async fn address_book(&self, customer: uuid::Uuid) -> Result<Option<Value>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT doc FROM address_books WHERE tenant_id = $1 AND customer_id = $2",
            )
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_opt(&stmt, &[&self.t(), &customer])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set_address_book(&self, customer: uuid::Uuid, doc: &Value) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO address_books (tenant_id, customer_id, doc) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id, customer_id) DO UPDATE SET doc = EXCLUDED.doc, updated_at = now()",
            )
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&self.t(), &customer, doc])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }
}
