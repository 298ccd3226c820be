//! Products, variants and categories, and how shoppers page through them.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Invalid, check_len, pricing::Money};

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

/// Orders a shopper can list products in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    #[default]
    Newest,
    PriceAsc,
    PriceDesc,
}

/// Filters for a product list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub category: Option<String>,
    pub min_price_minor: Option<i64>,
    pub max_price_minor: Option<i64>,
}

impl ListFilter {
    pub fn matches(&self, p: &Product) -> bool {
        if let Some(c) = &self.category
            && !p.categories.iter().any(|pc| pc == c)
        {
            return false;
        }
        let price = p.from_price().map(|m| m.amount_minor).unwrap_or(0);
        self.min_price_minor.is_none_or(|min| price >= min)
            && self.max_price_minor.is_none_or(|max| price <= max)
    }
}

/// Where the next page starts: the sort key and id of the last item returned. Clients see it
/// only as an opaque string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    s: Sort,
    k: i64,
    id: Uuid,
}

fn sort_key(sort: Sort, p: &Product) -> i64 {
    match sort {
        Sort::Newest => -p.created_at.timestamp_micros(),
        Sort::PriceAsc => p.from_price().map(|m| m.amount_minor).unwrap_or(0),
        Sort::PriceDesc => -p.from_price().map(|m| m.amount_minor).unwrap_or(0),
    }
}

fn encode_cursor(c: &Cursor) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(c).unwrap_or_default())
}

fn decode_cursor(raw: &str, sort: Sort) -> Result<Cursor, Invalid> {
    let bad = || Invalid::new("cursor", "is not a cursor this list returned");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(raw)
        .map_err(|_| bad())?;
    let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if c.s != sort {
        return Err(Invalid::new("cursor", "belongs to a different sort order"));
    }
    Ok(c)
}

/// An immutable view of one tenant's catalog with the orders lists need precomputed.
#[derive(Debug, Default)]
pub struct Catalog {
    products: Vec<Product>,
    categories: Vec<Category>,
    by_id: HashMap<Uuid, usize>,
    by_sku: HashMap<String, (usize, usize)>,
    /// Product positions sorted by (key, id) for each [`Sort`].
    orders: [Vec<usize>; 3],
}

fn sort_slot(sort: Sort) -> usize {
    match sort {
        Sort::Newest => 0,
        Sort::PriceAsc => 1,
        Sort::PriceDesc => 2,
    }
}

/// One page of a list.
#[derive(Debug)]
pub struct Page<'a> {
    pub items: Vec<&'a Product>,
    pub next_cursor: Option<String>,
}

impl Catalog {
    pub fn new(products: Vec<Product>, mut categories: Vec<Category>) -> Self {
        categories.sort_by(|a, b| a.id.cmp(&b.id));
        let by_id = products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.id, i))
            .collect();
        let by_sku = products
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                p.variants
                    .iter()
                    .enumerate()
                    .map(move |(j, v)| (v.sku.clone(), (i, j)))
            })
            .collect();
        let order = |sort: Sort| {
            let mut idx: Vec<usize> = (0..products.len()).collect();
            idx.sort_by_key(|&i| (sort_key(sort, &products[i]), products[i].id));
            idx
        };
        let orders = [
            order(Sort::Newest),
            order(Sort::PriceAsc),
            order(Sort::PriceDesc),
        ];
        Self {
            products,
            categories,
            by_id,
            by_sku,
            orders,
        }
    }

    pub fn products(&self) -> &[Product] {
        &self.products
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    pub fn product(&self, id: Uuid) -> Option<&Product> {
        self.by_id.get(&id).map(|&i| &self.products[i])
    }

    pub fn has_category(&self, id: &str) -> bool {
        self.categories
            .binary_search_by(|c| c.id.as_str().cmp(id))
            .is_ok()
    }

    /// The product and variant selling `sku`.
    pub fn variant(&self, sku: &str) -> Option<(&Product, &Variant)> {
        self.by_sku
            .get(sku)
            .map(|&(i, j)| (&self.products[i], &self.products[i].variants[j]))
    }

    /// A page of at most `limit` products matching `filter`, after `cursor` when given.
    pub fn list(
        &self,
        filter: &ListFilter,
        sort: Sort,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<'_>, Invalid> {
        let order = &self.orders[sort_slot(sort)];
        let start = match cursor {
            None => 0,
            Some(raw) => {
                let c = decode_cursor(raw, sort)?;
                order.partition_point(|&i| {
                    (sort_key(sort, &self.products[i]), self.products[i].id) <= (c.k, c.id)
                })
            }
        };
        let mut items = Vec::with_capacity(limit.min(100));
        let mut more = false;
        for &i in &order[start..] {
            let p = &self.products[i];
            if !filter.matches(p) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(p);
        }
        let next_cursor = match items.last() {
            Some(last) if more => Some(encode_cursor(&Cursor {
                s: sort,
                k: sort_key(sort, last),
                id: last.id,
            })),
            _ => None,
        };
        Ok(Page { items, next_cursor })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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
            }],
            created_at: at,
            updated_at: at,
        }
    }

    fn catalog() -> Catalog {
        let products = (0..25)
            .map(|i| {
                product(
                    &format!("p{i}"),
                    100 * (i % 7) as i64,
                    i,
                    &[if i % 2 == 0 { "even" } else { "odd" }],
                )
            })
            .collect();
        Catalog::new(products, vec![])
    }

    #[test]
    fn cursor_pages_visit_every_match_once_in_order() {
        let c = catalog();
        for sort in [Sort::Newest, Sort::PriceAsc, Sort::PriceDesc] {
            let filter = ListFilter {
                category: Some("even".into()),
                ..Default::default()
            };
            let mut seen = vec![];
            let mut cursor = None;
            loop {
                let page = c.list(&filter, sort, cursor.as_deref(), 4).unwrap();
                seen.extend(page.items.iter().map(|p| (sort_key(sort, p), p.id)));
                match page.next_cursor {
                    Some(n) => cursor = Some(n),
                    None => break,
                }
            }
            assert_eq!(seen.len(), 13, "{sort:?}");
            assert!(
                seen.windows(2).all(|w| w[0] < w[1]),
                "{sort:?} not strictly ordered"
            );
        }
    }

    #[test]
    fn price_filter_and_bad_cursor() {
        let c = catalog();
        let filter = ListFilter {
            min_price_minor: Some(200),
            max_price_minor: Some(300),
            ..Default::default()
        };
        let page = c.list(&filter, Sort::PriceAsc, None, 100).unwrap();
        assert!(
            page.items
                .iter()
                .all(|p| (200..=300).contains(&p.from_price().unwrap().amount_minor))
        );
        assert!(!page.items.is_empty());
        assert_eq!(
            c.list(&filter, Sort::PriceAsc, Some("zzz"), 5)
                .unwrap_err()
                .field,
            "cursor"
        );
        let other = c
            .list(&ListFilter::default(), Sort::Newest, None, 1)
            .unwrap()
            .next_cursor
            .unwrap();
        assert!(
            c.list(&ListFilter::default(), Sort::PriceAsc, Some(&other), 1)
                .is_err()
        );
    }

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
