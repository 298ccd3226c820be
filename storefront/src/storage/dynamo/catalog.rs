//! The catalog adapter: one tenant's products and categories as JSON documents in its catalog
//! table, and the version counter every admin write bumps.

use aws_sdk_dynamodb::{
    Client,
    types::{AttributeValue, ReturnValue},
};
use emporium_tenant_config::item_key_prefix;
use uuid::Uuid;

use super::{
    Table,
    attributes::{ddb_err, get_count, get_s, n, s},
};
use crate::domain::{
    catalog::{Category, Product},
    ports::{CatalogDocs, CatalogStore, StoreError},
};

/// One tenant's products and categories in its catalog table (partition `<tenant>#CATALOG`: items
/// `PRODUCT#<id>` and `CATEGORY#<id>` holding JSON in `doc`, and the write counter `VERSION`).
#[derive(Clone)]
pub struct DynamoCatalog {
    pub client: Client,
    pub table: String,
    pub tenant: String,
}

/// The sort key of the catalog's version counter (in the catalog's own partition).
const VERSION_SK: &str = "VERSION";

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

    async fn bump_version(&self) -> Result<u64, StoreError> {
        let out = self
            .items()
            .update(self.pk(), VERSION_SK)
            .update_expression("ADD v :one")
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(ddb_err)?;
        Ok(get_count(out.attributes.as_ref(), "v"))
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
