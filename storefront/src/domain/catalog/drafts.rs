//! What a merchant sends to create or replace products and categories, and the rules it must
//! follow before it is stored.

use serde::Deserialize;

use super::model::Variant;
use crate::domain::{Invalid, check_len};

/// Heaviest variant accepted, in grams.
pub const MAX_WEIGHT_GRAMS: u32 = 1_000_000;

/// What a merchant sends to create or replace a product.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductDraft {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub title: String,
    #[serde(default)]
    #[schema(max_length = 10000)]
    pub description: String,
    /// Ids of existing categories.
    #[serde(default)]
    pub categories: Vec<String>,
    #[schema(min_items = 1, max_items = 100)]
    pub variants: Vec<Variant>,
}

pub const MAX_VARIANTS: usize = 100;

fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A SKU: 1–64 of letters, digits, `-`, `_`, `.`.
pub fn is_sku(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl ProductDraft {
    /// Checks the draft on its own; `known_category` tells whether a category id exists and
    /// `sku_taken` whether another product already sells a SKU.
    pub fn validate(
        &self,
        known_category: impl Fn(&str) -> bool,
        sku_taken: impl Fn(&str) -> bool,
    ) -> Result<(), Invalid> {
        check_len("title", self.title.trim(), 1, 200)?;
        check_len("description", &self.description, 0, 10_000)?;
        for (i, c) in self.categories.iter().enumerate() {
            if !known_category(c) {
                return Err(Invalid::new(
                    format!("categories[{i}]"),
                    format!("no category `{c}`"),
                ));
            }
        }
        if self.variants.is_empty() || self.variants.len() > MAX_VARIANTS {
            return Err(Invalid::new(
                "variants",
                format!("must hold 1 to {MAX_VARIANTS} variants"),
            ));
        }
        let currency = &self.variants[0].price.currency;
        let mut seen = std::collections::HashSet::new();
        for (i, v) in self.variants.iter().enumerate() {
            let at = format!("variants[{i}]");
            if !is_sku(&v.sku) {
                return Err(Invalid::new(
                    format!("{at}.sku"),
                    "must be 1-64 letters, digits, '-', '_' or '.'",
                ));
            }
            if !seen.insert(v.sku.as_str()) || sku_taken(&v.sku) {
                return Err(Invalid::new(
                    format!("{at}.sku"),
                    format!("SKU `{}` is already in use", v.sku),
                ));
            }
            v.price.validate(&format!("{at}.price"))?;
            if let Some(class) = &v.tax_class {
                crate::domain::totals::check_class(&format!("{at}.tax_class"), class)?;
            }
            if v.weight_grams > MAX_WEIGHT_GRAMS {
                return Err(Invalid::new(
                    format!("{at}.weight_grams"),
                    format!("must be at most {MAX_WEIGHT_GRAMS} (1 tonne)"),
                ));
            }
            if &v.price.currency != currency {
                return Err(Invalid::new(
                    format!("{at}.price.currency"),
                    "all variants must share one currency",
                ));
            }
            if v.attributes.len() > 20 {
                return Err(Invalid::new(
                    format!("{at}.attributes"),
                    "at most 20 attributes",
                ));
            }
            for (k, val) in &v.attributes {
                check_len(&format!("{at}.attributes.{k}"), k, 1, 64)?;
                check_len(&format!("{at}.attributes.{k}"), val, 1, 200)?;
            }
            for (j, url) in v.images.iter().enumerate() {
                let ok = (url.starts_with("https://") || url.starts_with("http://"))
                    && url.len() <= 2048;
                if !ok {
                    return Err(Invalid::new(
                        format!("{at}.images[{j}]"),
                        "must be an http(s) URL",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a merchant sends to create or replace a category.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryDraft {
    #[schema(pattern = "^[a-z0-9-]{1,64}$")]
    pub id: String,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    pub parent_id: Option<String>,
}

impl CategoryDraft {
    pub fn validate(&self, known_category: impl Fn(&str) -> bool) -> Result<(), Invalid> {
        if !is_slug(&self.id) {
            return Err(Invalid::new(
                "id",
                "must be 1-64 lower-case letters, digits or '-'",
            ));
        }
        check_len("name", self.name.trim(), 1, 100)?;
        if let Some(parent) = &self.parent_id
            && (parent == &self.id || !known_category(parent))
        {
            return Err(Invalid::new("parent_id", format!("no category `{parent}`")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::tests::product;

    #[test]
    fn drafts_name_the_offending_field() {
        let mut d = ProductDraft {
            title: "Mug".into(),
            description: String::new(),
            categories: vec!["kitchen".into()],
            variants: vec![product("mug", 500, 1, &[]).variants.remove(0)],
        };
        assert_eq!(
            d.validate(|_| false, |_| false).unwrap_err().field,
            "categories[0]"
        );
        assert!(d.validate(|_| true, |_| false).is_ok());
        assert_eq!(
            d.validate(|_| true, |_| true).unwrap_err().field,
            "variants[0].sku"
        );
        d.variants[0].images.push("javascript:alert(1)".into());
        assert_eq!(
            d.validate(|_| true, |_| false).unwrap_err().field,
            "variants[0].images[0]"
        );
    }
}
