//! Catalog admin: the merchant's product, category and stock writes. Each catalog write goes to
//! the catalog store, is counted in the tenant's change feed with the ids it changed (what other
//! replicas' freshness checks read and apply), brings this replica's snapshot up to date by that
//! change before answering (so the merchant reads their own write; no full reload) and tells the
//! other replicas.

use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use crate::{
    catalog::{CatalogCache, CatalogSource, Snapshot},
    domain::{
        Invalid,
        catalog::{Category, CategoryDraft, Product, ProductDraft, is_sku},
        inventory::check_stock,
        ports::{CatalogChange, CatalogStore, InventoryStore, StoreError},
    },
    storage::bus::{Bus, Notice},
};

/// Why an admin write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogAdminError {
    /// `product`, `category` or `stock record`.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("category `{id}` exists")]
    CategoryExists { id: String },
    #[error("category `{id}` is still in use")]
    CategoryInUse { id: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A SKU's stock as the merchant set it.
pub struct StockLevel {
    pub sku: String,
    pub available: i32,
}

/// What catalog admin needs: the tenant's catalog store (also the snapshot's source), its
/// inventory, this replica's catalog cache and the notice bus.
pub struct CatalogAdmin<'a, S, I> {
    pub tenant: &'a str,
    pub catalog: &'a S,
    pub inventory: &'a I,
    pub cache: &'a Arc<CatalogCache>,
    pub bus: &'a Bus,
}

fn product_from(draft: ProductDraft, id: Uuid, created_at: chrono::DateTime<Utc>) -> Product {
    Product {
        id,
        title: draft.title.trim().to_owned(),
        description: draft.description,
        categories: draft.categories,
        variants: draft.variants,
        created_at,
        updated_at: Utc::now(),
        handle: None,
    }
}

fn validate(snap: &Snapshot, draft: &ProductDraft, id: Option<Uuid>) -> Result<(), Invalid> {
    draft.validate(
        |c| snap.catalog.has_category(c),
        |sku| {
            snap.catalog
                .variant(sku)
                .is_some_and(|v| Some(v.item.id) != id)
        },
    )
}

fn stock_sku(raw: &str) -> Result<&str, Invalid> {
    if is_sku(raw) {
        Ok(raw)
    } else {
        Err(Invalid::new("sku", "is not a SKU"))
    }
}

impl<S: CatalogStore + CatalogSource, I: InventoryStore> CatalogAdmin<'_, S, I> {
    async fn changed(&self, change: CatalogChange) -> Result<(), StoreError> {
        self.catalog.record_change(&change).await?;
        self.cache.refresh(self.catalog).await?;
        self.bus
            .publish(&Notice::CatalogChanged {
                tenant: self.tenant.to_owned(),
            })
            .await;
        Ok(())
    }

    pub async fn create_product(&self, draft: ProductDraft) -> Result<Product, CatalogAdminError> {
        let snap = self.cache.snapshot(self.catalog).await?;
        validate(&snap, &draft, None)?;
        let product = product_from(draft, Uuid::now_v7(), Utc::now());
        self.catalog.put_product(&product).await?;
        self.changed(CatalogChange::product(product.id)).await?;
        Ok(product)
    }

    /// Creates many products as one change (an import batch): all are validated first (SKUs
    /// unique in the catalog and within the batch), then stored in batched writes, counted once
    /// and applied to the snapshot together. Nothing is stored when one is invalid; the error
    /// names the draft's index.
    pub async fn create_products(
        &self,
        drafts: Vec<ProductDraft>,
    ) -> Result<Vec<Product>, CatalogAdminError> {
        let snap = self.cache.snapshot(self.catalog).await?;
        let mut skus = std::collections::HashSet::new();
        for (i, draft) in drafts.iter().enumerate() {
            let numbered =
                |e: Invalid| Invalid::new(e.field, format!("product {i}: {}", e.message));
            validate(&snap, draft, None).map_err(numbered)?;
            for v in &draft.variants {
                if !skus.insert(v.sku.as_str()) {
                    return Err(numbered(Invalid::new(
                        "variants",
                        format!("SKU `{}` appears twice in the batch", v.sku),
                    ))
                    .into());
                }
            }
        }
        let now = Utc::now();
        let products: Vec<Product> = drafts
            .into_iter()
            .map(|d| product_from(d, Uuid::now_v7(), now))
            .collect();
        if products.is_empty() {
            return Ok(products);
        }
        self.catalog.put_products(&products).await?;
        self.changed(CatalogChange {
            products: products.iter().map(|p| p.id).collect(),
            categories: Vec::new(),
        })
        .await?;
        Ok(products)
    }

    /// Stores an import batch as one change: categories first (so no product names a category
    /// that is not there yet), then the products with batched writes (each already validated
    /// by the import against `snapshot`'s catalog), counted once in the change feed (so other
    /// replicas catch up by these ids) and applied to this replica's snapshot before returning
    /// it. Products keep the ids the import gave them: storing the same batch twice changes
    /// nothing but `updated_at`.
    pub async fn write_batch(
        &self,
        products: &[Product],
        categories: &[Category],
    ) -> Result<Arc<Snapshot>, StoreError> {
        if products.is_empty() && categories.is_empty() {
            return self.cache.snapshot(self.catalog).await;
        }
        for c in categories {
            self.catalog.put_category(c).await?;
        }
        self.catalog.put_products(products).await?;
        self.catalog
            .record_change(&CatalogChange {
                products: products.iter().map(|p| p.id).collect(),
                categories: categories.iter().map(|c| c.id.clone()).collect(),
            })
            .await?;
        let snap = self.cache.refresh(self.catalog).await?;
        self.bus
            .publish(&Notice::CatalogChanged {
                tenant: self.tenant.to_owned(),
            })
            .await;
        Ok(snap)
    }

    pub async fn replace_product(
        &self,
        id: Uuid,
        draft: ProductDraft,
    ) -> Result<Product, CatalogAdminError> {
        let snap = self.cache.snapshot(self.catalog).await?;
        let existing = snap
            .catalog
            .product(id)
            .ok_or(CatalogAdminError::NotFound("product"))?;
        validate(&snap, &draft, Some(id))?;
        let mut product = product_from(draft, id, existing.created_at);
        // The API's drafts carry no handle: an imported product keeps the one it has.
        product.handle = existing.handle;
        self.catalog.put_product(&product).await?;
        self.changed(CatalogChange::product(id)).await?;
        Ok(product)
    }

    pub async fn delete_product(&self, id: Uuid) -> Result<(), CatalogAdminError> {
        if !self.catalog.delete_product(id).await? {
            return Err(CatalogAdminError::NotFound("product"));
        }
        self.changed(CatalogChange::product(id)).await?;
        Ok(())
    }

    pub async fn create_category(
        &self,
        mut draft: CategoryDraft,
    ) -> Result<Category, CatalogAdminError> {
        // An empty parent means none.
        draft.parent_id = draft.parent_id.filter(|p| !p.is_empty());
        let snap = self.cache.snapshot(self.catalog).await?;
        draft.validate(|c| snap.catalog.has_category(c))?;
        if snap.catalog.has_category(&draft.id) {
            return Err(CatalogAdminError::CategoryExists { id: draft.id });
        }
        let category = Category {
            id: draft.id,
            name: draft.name.trim().to_owned(),
            parent_id: draft.parent_id,
        };
        self.catalog.put_category(&category).await?;
        self.changed(CatalogChange::category(category.id.clone()))
            .await?;
        Ok(category)
    }

    /// Replaces an existing category's name and parent.
    pub async fn replace_category(
        &self,
        id: String,
        name: String,
        parent_id: Option<String>,
    ) -> Result<Category, CatalogAdminError> {
        let snap = self.cache.snapshot(self.catalog).await?;
        if !snap.catalog.has_category(&id) {
            return Err(CatalogAdminError::NotFound("category"));
        }
        let draft = CategoryDraft {
            id,
            name,
            parent_id: parent_id.filter(|p| !p.is_empty()),
        };
        draft.validate(|c| snap.catalog.has_category(c))?;
        let category = Category {
            id: draft.id,
            name: draft.name.trim().to_owned(),
            parent_id: draft.parent_id,
        };
        self.catalog.put_category(&category).await?;
        self.changed(CatalogChange::category(category.id.clone()))
            .await?;
        Ok(category)
    }

    /// Deletes a category no product or subcategory uses.
    pub async fn delete_category(&self, id: String) -> Result<(), CatalogAdminError> {
        let snap = self.cache.snapshot(self.catalog).await?;
        let in_use = snap.catalog.category_in_use(&id)
            || snap
                .catalog
                .categories()
                .iter()
                .any(|c| c.parent_id.as_deref() == Some(id.as_str()));
        if in_use {
            return Err(CatalogAdminError::CategoryInUse { id });
        }
        if !self.catalog.delete_category(&id).await? {
            return Err(CatalogAdminError::NotFound("category"));
        }
        self.changed(CatalogChange::category(id)).await?;
        Ok(())
    }

    /// Sets a SKU's available units (not counting units reserved by unpaid orders).
    pub async fn set_stock(
        &self,
        sku: &str,
        available: i64,
    ) -> Result<StockLevel, CatalogAdminError> {
        let sku = stock_sku(sku)?;
        let available = check_stock(available)?;
        self.require_sold(sku).await?;
        let change = self.inventory.set_stock(sku, available).await?;
        Ok(StockLevel {
            sku: change.sku,
            available: change.available,
        })
    }

    /// Stock is kept only for SKUs a product sells: a count for anything else could never be
    /// bought and hides typos. A SKU missing from this replica's snapshot is looked up once more
    /// in the store (another replica may have just created the product).
    async fn require_sold(&self, sku: &str) -> Result<(), CatalogAdminError> {
        if self
            .cache
            .snapshot(self.catalog)
            .await?
            .catalog
            .variant(sku)
            .is_some()
            || self
                .cache
                .refresh(self.catalog)
                .await?
                .catalog
                .variant(sku)
                .is_some()
        {
            return Ok(());
        }
        Err(Invalid::new(
            "sku",
            format!(
                "no product in the catalog sells `{sku}`; create the product (or variant) first"
            ),
        )
        .into())
    }

    /// A SKU's available units.
    pub async fn stock(&self, sku: &str) -> Result<StockLevel, CatalogAdminError> {
        let sku = stock_sku(sku)?;
        let available = self
            .inventory
            .stock(sku)
            .await?
            .ok_or(CatalogAdminError::NotFound("stock record"))?;
        Ok(StockLevel {
            sku: sku.to_owned(),
            available,
        })
    }
}
