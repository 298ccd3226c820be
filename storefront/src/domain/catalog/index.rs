//! Products, variants and categories, and how shoppers page through them.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    Invalid, check_len,
    facets::{FacetCodes, FacetTable},
    pricing::Money,
};

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

/// A [`ListFilter`] resolved against one catalog (category slug → its code).
#[derive(Debug, Clone, Copy)]
pub struct Matcher<'a> {
    facets: &'a FacetTable,
    /// `Some(None)`: a category no product is in, so nothing matches.
    category: Option<Option<u32>>,
    min: Option<i64>,
    max: Option<i64>,
}

impl Matcher<'_> {
    pub fn matches(&self, item: &Item) -> bool {
        if let Some(c) = self.category {
            match c {
                Some(code) if self.facets.categories_of(item.codes).contains(&code) => {}
                _ => return false,
            }
        }
        let price = item.price.unwrap_or(0);
        self.min.is_none_or(|min| price >= min) && self.max.is_none_or(|max| price <= max)
    }

    /// True when the filter lets every product through.
    pub fn is_all(&self) -> bool {
        self.category.is_none() && self.min.is_none() && self.max.is_none()
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

fn sort_key(sort: Sort, item: &Item) -> i64 {
    match sort {
        Sort::Newest => -item.created_micros,
        Sort::PriceAsc => item.price.unwrap_or(0),
        Sort::PriceDesc => -item.price.unwrap_or(0),
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

/// One product as a snapshot keeps it: what lists sort and filter by and facets count, plus the
/// product's API representation (its JSON, serialised once when the snapshot is built). The
/// full [`Product`] is parsed back from that JSON only where a page needs its fields.
#[derive(Debug)]
pub struct Item {
    pub id: Uuid,
    created_micros: i64,
    /// The lowest variant price in minor units (what lists sort and filter by).
    price: Option<i64>,
    codes: FacetCodes,
    json: Bytes,
}

impl Item {
    /// The product as the API shows it (`Product` serialised with serde_json).
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The product's lowest variant price in minor units.
    pub fn from_price_minor(&self) -> Option<i64> {
        self.price
    }

    pub fn facet_codes(&self) -> FacetCodes {
        self.codes
    }

    /// The full product.
    pub fn product(&self) -> Product {
        serde_json::from_slice(&self.json).expect("snapshot JSON is a serialised Product")
    }

    /// The product's title, read from its JSON without parsing the rest: `Product` serialises
    /// `id` then `title`, so the title's string literal starts at a fixed offset.
    pub fn title(&self) -> String {
        const TITLE_AT: usize = r#"{"id":"00000000-0000-0000-0000-000000000000","title":"#.len();
        let fast = self.json.get(TITLE_AT..).and_then(|rest| {
            String::deserialize(&mut serde_json::Deserializer::from_slice(rest)).ok()
        });
        fast.unwrap_or_else(|| self.product().title)
    }
}

/// A SKU's row: which product sells it and at what price.
#[derive(Debug, Clone, Copy)]
struct SkuRow {
    /// Byte range of the SKU in [`Catalog::sku_text`].
    start: u32,
    len: u8,
    currency: u16,
    item: u32,
    amount_minor: i64,
}

/// What the catalog says about a SKU.
#[derive(Debug, Clone, Copy)]
pub struct VariantInfo<'a> {
    pub item: &'a Item,
    pub amount_minor: i64,
    pub currency: &'a str,
}

impl VariantInfo<'_> {
    pub fn price(&self) -> Money {
        Money {
            amount_minor: self.amount_minor,
            currency: self.currency.to_owned(),
        }
    }
}

/// An immutable, compact view of one tenant's catalog with the orders lists need precomputed.
/// Memory per product is its JSON plus about a hundred bytes (see docs/benchmarks.md, Runtime).
#[derive(Debug, Default)]
pub struct Catalog {
    items: Vec<Item>,
    categories: Vec<Category>,
    /// Item positions sorted by product id.
    by_id: Vec<u32>,
    /// All SKUs back to back; rows sorted by SKU.
    sku_text: String,
    skus: Vec<SkuRow>,
    currencies: Vec<Box<str>>,
    /// Item positions sorted by (key, id) for each [`Sort`].
    orders: [Vec<u32>; 3],
    facets: FacetTable,
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
    pub items: Vec<&'a Item>,
    pub next_cursor: Option<String>,
}

fn intern(table: &mut Vec<Box<str>>, index: &mut HashMap<Box<str>, u16>, s: &str) -> u16 {
    if let Some(&i) = index.get(s) {
        return i;
    }
    let i = u16::try_from(table.len()).unwrap_or(u16::MAX);
    table.push(s.into());
    index.insert(s.into(), i);
    i
}

impl Catalog {
    /// Builds the snapshot view. Products are consumed one at a time (a load never holds every
    /// parsed product at once): each is kept as its JSON plus the few fields lists, facets and
    /// cart pricing read. An item's position is its index in `products`.
    pub fn new(products: impl IntoIterator<Item = Product>, mut categories: Vec<Category>) -> Self {
        categories.sort_by(|a, b| a.id.cmp(&b.id));
        let mut facets = FacetTable::default();
        let mut currencies = Vec::new();
        let mut currency_index = HashMap::new();
        let mut sku_text = String::new();
        let mut skus = Vec::new();
        let products = products.into_iter();
        let mut items = Vec::with_capacity(products.size_hint().0);
        for (i, p) in products.into_iter().enumerate() {
            let item = u32::try_from(i).expect("fewer than 2^32 products");
            for v in &p.variants {
                // SKUs are validated to 1-64 ASCII characters; longer ones (never written by
                // the admin API) are left out rather than truncated.
                let Ok(len) = u8::try_from(v.sku.len()) else {
                    continue;
                };
                let start = u32::try_from(sku_text.len()).unwrap_or(u32::MAX);
                sku_text.push_str(&v.sku);
                skus.push(SkuRow {
                    start,
                    len,
                    currency: intern(&mut currencies, &mut currency_index, &v.price.currency),
                    item,
                    amount_minor: v.price.amount_minor,
                });
            }
            // One exact-size allocation per product: measured lower RSS with mimalloc than
            // one shared buffer for all of a catalog's JSON (docs/decisions/0011-*, Results).
            let json = Bytes::from(
                serde_json::to_vec(&p)
                    .expect("a Product always serialises")
                    .into_boxed_slice(),
            );
            items.push(Item {
                id: p.id,
                created_micros: p.created_at.timestamp_micros(),
                price: p.from_price().map(|m| m.amount_minor),
                codes: facets.codes(&p),
                json,
            });
        }
        facets.shrink();
        items.shrink_to_fit();
        skus.shrink_to_fit();
        let text = |r: &SkuRow| &sku_text[r.start as usize..r.start as usize + r.len as usize];
        skus.sort_by(|a, b| text(a).cmp(text(b)));
        // A SKU sold twice (impossible through the admin API): one row wins.
        skus.dedup_by(|b, a| text(a) == text(b));
        let positions = || (0..items.len() as u32).collect::<Vec<u32>>();
        let mut by_id = positions();
        by_id.sort_by_key(|&i| items[i as usize].id);
        let order = |sort: Sort| {
            let mut idx = positions();
            idx.sort_by_key(|&i| (sort_key(sort, &items[i as usize]), items[i as usize].id));
            idx
        };
        let orders = [
            order(Sort::Newest),
            order(Sort::PriceAsc),
            order(Sort::PriceDesc),
        ];
        sku_text.shrink_to_fit();
        Self {
            items,
            categories,
            by_id,
            sku_text,
            skus,
            currencies,
            orders,
            facets,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn items(&self) -> &[Item] {
        &self.items
    }

    pub fn item(&self, position: u32) -> Option<&Item> {
        self.items.get(position as usize)
    }

    pub fn categories(&self) -> &[Category] {
        &self.categories
    }

    pub fn facet_table(&self) -> &FacetTable {
        &self.facets
    }

    /// The product with this id.
    pub fn get(&self, id: Uuid) -> Option<&Item> {
        self.by_id
            .binary_search_by(|&i| self.items[i as usize].id.cmp(&id))
            .ok()
            .map(|k| &self.items[self.by_id[k] as usize])
    }

    /// The full product with this id (parsed from the snapshot's JSON).
    pub fn product(&self, id: Uuid) -> Option<Product> {
        self.get(id).map(Item::product)
    }

    pub fn has_category(&self, id: &str) -> bool {
        self.categories
            .binary_search_by(|c| c.id.as_str().cmp(id))
            .is_ok()
    }

    /// True when a product is listed in the category.
    pub fn category_in_use(&self, id: &str) -> bool {
        self.facets.category_code(id).is_some_and(|code| {
            self.items
                .iter()
                .any(|i| self.facets.categories_of(i.codes).contains(&code))
        })
    }

    /// A currency the catalog prices in (the alphabetically first SKU's).
    pub fn some_currency(&self) -> Option<&str> {
        self.skus
            .first()
            .map(|r| &*self.currencies[r.currency as usize])
    }

    /// The product and price of the variant selling `sku`.
    pub fn variant(&self, sku: &str) -> Option<VariantInfo<'_>> {
        let text = |r: &SkuRow| &self.sku_text[r.start as usize..r.start as usize + r.len as usize];
        let k = self.skus.binary_search_by(|r| text(r).cmp(sku)).ok()?;
        let row = self.skus[k];
        Some(VariantInfo {
            item: &self.items[row.item as usize],
            amount_minor: row.amount_minor,
            currency: &self.currencies[row.currency as usize],
        })
    }

    pub fn matcher(&self, filter: &ListFilter) -> Matcher<'_> {
        Matcher {
            facets: &self.facets,
            category: filter
                .category
                .as_deref()
                .map(|c| self.facets.category_code(c)),
            min: filter.min_price_minor,
            max: filter.max_price_minor,
        }
    }

    /// Item positions, newest first (ties by id).
    pub fn newest(&self) -> &[u32] {
        &self.orders[sort_slot(Sort::Newest)]
    }

    /// A page of at most `limit` products matching `filter`, after `cursor` when given.
    pub fn list(
        &self,
        filter: &ListFilter,
        sort: Sort,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<Page<'_>, Invalid> {
        let matcher = self.matcher(filter);
        let order = &self.orders[sort_slot(sort)];
        let start = match cursor {
            None => 0,
            Some(raw) => {
                let c = decode_cursor(raw, sort)?;
                order.partition_point(|&i| {
                    let item = &self.items[i as usize];
                    (sort_key(sort, item), item.id) <= (c.k, c.id)
                })
            }
        };
        let mut items = Vec::with_capacity(limit.min(100));
        let mut more = false;
        for &i in &order[start..] {
            let item = &self.items[i as usize];
            if !matcher.matches(item) {
                continue;
            }
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(item);
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
        let products: Vec<Product> = (0..25)
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
                .all(|p| (200..=300).contains(&p.from_price_minor().unwrap()))
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
    fn lookups_by_id_sku_and_category() {
        let mut products: Vec<Product> = (0..40)
            .map(|i| product(&format!("p{i}"), 100 + i as i64, i, &["mugs"]))
            .collect();
        products[3].title = "A \"quoted\" title with \\ and ünïcode".into();
        products[7].variants[0].price.currency = "USD".into();
        let mut second = products[7].variants[0].clone();
        second.sku = "zz-last".into();
        second.price.amount_minor = 5;
        products[7].variants.push(second);
        products[9].categories = vec!["gifts".into(), "mugs".into()];
        let c = Catalog::new(products.clone(), vec![]);
        assert_eq!(c.len(), 40);
        for p in &products {
            let item = c.get(p.id).unwrap();
            assert_eq!(item.id, p.id);
            assert_eq!(item.title(), p.title);
            assert_eq!(c.product(p.id).as_ref(), Some(p));
            let v = c.variant(&p.variants[0].sku).unwrap();
            assert_eq!(v.item.id, p.id);
            assert_eq!(v.price(), p.variants[0].price);
        }
        assert!(c.get(Uuid::new_v4()).is_none());
        assert!(c.variant("nope").is_none());
        let v = c.variant("zz-last").unwrap();
        assert_eq!(
            (v.item.id, v.amount_minor, v.currency),
            (products[7].id, 5, "USD")
        );
        assert_eq!(c.get(products[7].id).unwrap().from_price_minor(), Some(5));
        assert!(c.category_in_use("gifts") && c.category_in_use("mugs"));
        assert!(!c.category_in_use("hats"));
        // An unknown category matches nothing (rather than everything).
        let hats = ListFilter {
            category: Some("hats".into()),
            ..Default::default()
        };
        assert!(
            c.list(&hats, Sort::Newest, None, 10)
                .unwrap()
                .items
                .is_empty()
        );
        let gifts = ListFilter {
            category: Some("gifts".into()),
            ..Default::default()
        };
        let page = c.list(&gifts, Sort::Newest, None, 10).unwrap();
        assert_eq!(
            page.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![products[9].id]
        );
        assert!(c.matcher(&ListFilter::default()).is_all());
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
