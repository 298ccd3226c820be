//! Products, variants and categories, and how shoppers page through them.
//!
//! - [`model`]: the stored types ([`Product`], [`Variant`], [`Category`]).
//! - [`drafts`]: what a merchant sends to create or replace them, and its validation.
//! - [`index`]: the in-memory [`Catalog`] a snapshot serves from (items, lookups by id and SKU,
//!   precomputed sort orders).
//! - [`listing`]: sorting, filtering and cursor pagination over that catalog.
//! - [`facets`]: facet counts over a set of matching products.

pub mod drafts;
pub mod facets;
pub mod index;
pub mod listing;
pub mod model;

pub use drafts::{CategoryDraft, MAX_VARIANTS, ProductDraft, is_sku};
pub use facets::{FacetCount, Facets, PriceBandCount};
pub use index::{Applied, Catalog, CatalogDelta, Item, VariantInfo};
pub use listing::{ListFilter, Matcher, Page, Sort};
pub use model::{Category, Product, Variant};

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use chrono::{DateTime, Utc};
    use uuid::Uuid;

    use super::{Product, Variant};
    use crate::domain::pricing::Money;

    pub(crate) fn product(title: &str, price: i64, minute: u32, categories: &[&str]) -> Product {
        let at = DateTime::parse_from_rfc3339(&format!("2026-01-01T00:{minute:02}:00Z"))
            .unwrap()
            .with_timezone(&Utc);
        Product {
            id: Uuid::new_v4(),
            title: title.into(),
            description: String::new(),
            categories: categories.iter().map(|c| c.to_string()).collect(),
            variants: vec![Variant {
                sku: format!("sku-{title}"),
                price: Money {
                    amount_minor: price,
                    currency: "EUR".into(),
                },
                attributes: BTreeMap::new(),
                images: vec![],
                weight_grams: 0,
                requires_shipping: true,
                tax_class: None,
            }],
            created_at: at,
            updated_at: at,
            handle: None,
        }
    }
}
