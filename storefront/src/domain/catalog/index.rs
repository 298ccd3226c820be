//! The in-memory catalog a snapshot serves from: each product's compact [`Item`] (its
//! pre-serialised JSON and what lists read), and lookups by id and SKU, the precomputed sort
//! orders and the facet codes, all built once per snapshot.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use uuid::Uuid;

use super::{
    facets::{FacetCodes, FacetTable},
    listing::{Sort, sort_key},
    model::{Category, Product},
};
use crate::domain::pricing::Money;

/// One product as a snapshot keeps it: what lists sort and filter by and facets count, plus the
/// product's API representation (its JSON, serialised once when the snapshot is built). The
/// full [`Product`] is parsed back from that JSON only where a page needs its fields.
#[derive(Debug)]
pub struct Item {
    pub id: Uuid,
    pub(super) created_micros: i64,
    /// The lowest variant price in minor units (what lists sort and filter by).
    pub(super) price: Option<i64>,
    pub(super) codes: FacetCodes,
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
    /// Shipping weight; with the flag below it fits the row's padding (no memory per SKU).
    weight_grams: u32,
    requires_shipping: bool,
}

/// What the catalog says about a SKU.
#[derive(Debug, Clone, Copy)]
pub struct VariantInfo<'a> {
    pub item: &'a Item,
    pub amount_minor: i64,
    pub currency: &'a str,
    pub weight_grams: u32,
    pub requires_shipping: bool,
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
    pub(super) items: Vec<Item>,
    categories: Vec<Category>,
    /// Item positions sorted by product id.
    by_id: Vec<u32>,
    /// All SKUs back to back; rows sorted by SKU.
    sku_text: String,
    skus: Vec<SkuRow>,
    currencies: Vec<Box<str>>,
    /// Item positions sorted by (key, id) for each [`Sort`].
    pub(super) orders: [Vec<u32>; 3],
    pub(super) facets: FacetTable,
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
                    weight_grams: v.weight_grams,
                    requires_shipping: v.requires_shipping,
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
            weight_grams: row.weight_grams,
            requires_shipping: row.requires_shipping,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::{ListFilter, tests::product};

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
}

#[cfg(test)]
mod row_size {
    /// A SKU row is 24 bytes: weight and shipping flag live in what was padding.
    #[test]
    fn a_sku_row_stays_24_bytes() {
        assert_eq!(std::mem::size_of::<super::SkuRow>(), 24);
    }
}
