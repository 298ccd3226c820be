//! The catalog's stored types: products, their variants, and categories.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::pricing::Money;

/// A sellable variant of a product (size, colour, ...), identified by its SKU.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Variant {
    #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub sku: String,
    pub price: Money,
    /// Attribute name → value, e.g. `colour: red`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Image URLs (http or https).
    #[serde(default)]
    pub images: Vec<String>,
    /// Shipping weight in grams, for rates by weight (0, the default, when it does not matter).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schema(maximum = 1_000_000)]
    pub weight_grams: u32,
    /// False for digital goods: an order of only such variants needs no address and no shipping.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    #[schema(default = true)]
    pub requires_shipping: bool,
    /// The merchant's tax class (`reduced`, ...); absent: `standard`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub tax_class: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

/// A product as the catalog stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    pub id: Uuid,
    pub title: String,
    pub description: String,
    /// Ids of the categories the product is listed in.
    pub categories: Vec<String>,
    pub variants: Vec<Variant>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The product's handle in import files (Shopify's `Handle`): what an import matches a
    /// product by, with its SKUs. Set by imports; absent on products made another way.
    /// (Serialised last: the snapshot reads `title` at a fixed offset after `id`.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handle: Option<String>,
}

impl Product {
    /// The lowest variant price: what lists sort and filter by.
    pub fn from_price(&self) -> Option<&Money> {
        self.variants
            .iter()
            .map(|v| &v.price)
            .min_by_key(|m| m.amount_minor)
    }
}

/// A category shoppers browse by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Category {
    /// A slug: lower-case letters, digits and dashes.
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<String>,
}
