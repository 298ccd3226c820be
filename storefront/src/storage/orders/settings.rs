//! The merchant's settings documents (`shipping`, `tax`): one JSON document per name and
//! tenant; discount codes with their use counts; and customers' address books, one document per
//! customer; all validated by the domain before they are stored.

use serde_json::Value;

use super::{PgOrders, pg_err};
use crate::{
    domain::{
        ports::{AddressBookStore, PromotionStore, SettingsStore, StoreError},
        promotions::{Promotion, PromotionDraft},
    },
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

fn promotion_from(row: &tokio_postgres::Row) -> Result<Promotion, StoreError> {
    Ok(Promotion {
        code: row.get(0),
        terms: serde_json::from_value(row.get(1)).map_err(pg_err)?,
        uses: u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
    })
}

impl PromotionStore for PgOrders {
    async fn promotion(&self, code: &str) -> Result<Option<Promotion>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT code, doc, uses FROM promotions WHERE tenant_id = $1 AND code = $2",
            )
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_opt(&stmt, &[&self.t(), &code])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        row.as_ref().map(promotion_from).transpose()
    }

    async fn promotions(&self) -> Result<Vec<Promotion>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT code, doc, uses FROM promotions WHERE tenant_id = $1 ORDER BY code LIMIT 1000",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx.query(&stmt, &[&self.t()]).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        rows.iter().map(promotion_from).collect()
    }

    async fn put_promotion(
        &self,
        code: &str,
        draft: &PromotionDraft,
    ) -> Result<Promotion, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, self.t()).await?;
        let doc = serde_json::to_value(draft).map_err(pg_err)?;
        let limit = |n: Option<u32>| n.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let stmt = tx
            .prepare_cached(
                "INSERT INTO promotions (tenant_id, code, doc, max_uses, max_uses_per_customer)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (tenant_id, code) DO UPDATE SET doc = EXCLUDED.doc, max_uses = EXCLUDED.max_uses,
                   max_uses_per_customer = EXCLUDED.max_uses_per_customer, updated_at = now()
                 RETURNING code, doc, uses",
            )
            .await
            .map_err(pg_err)?;
        let row = tx
            .query_one(
                &stmt,
                &[
                    &self.t(),
                    &code,
                    &doc,
                    &limit(draft.max_uses),
                    &limit(draft.max_uses_per_customer),
                ],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        promotion_from(&row)
    }
}
