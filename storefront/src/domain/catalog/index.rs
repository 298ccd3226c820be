//! The in-memory catalog a snapshot serves from: each product's compact [`Item`] (its
//! pre-serialised JSON and what lists read), and lookups by id and SKU, the precomputed sort
//! orders and the facet codes, all built once per snapshot.

use std::{cmp::Ordering, collections::HashMap};

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
/// full [`Product`] is parsed back from that JSON only where a page needs its fields. Cloning
/// one shares its JSON (what an incremental update does for every product it leaves alone).
#[derive(Debug, Clone)]
pub struct Item {
    pub id: Uuid,
    pub(super) created_micros: i64,
    /// The lowest variant price in minor units (what lists sort and filter by).
    pub(super) price: Option<i64>,
    pub(super) codes: FacetCodes,
    json: Bytes,
}

impl Item {
    /// What a deleted product leaves at its position until the next full build: positions are
    /// stable, because the search index maps hits to them.
    fn removed(id: Uuid) -> Self {
        Self {
            id,
            created_micros: 0,
            price: None,
            codes: FacetCodes::default(),
            json: Bytes::new(),
        }
    }

    /// A product's compact form; its facet values are interned in `facets`.
    fn of(p: &Product, facets: &mut FacetTable) -> Self {
        // One exact-size allocation per product: measured lower RSS with mimalloc than
        // one shared buffer for all of a catalog's JSON (docs/decisions/0011-*, Results).
        let json = Bytes::from(
            serde_json::to_vec(p)
                .expect("a Product always serialises")
                .into_boxed_slice(),
        );
        Self {
            id: p.id,
            created_micros: p.created_at.timestamp_micros(),
            price: p.from_price().map(|m| m.amount_minor),
            codes: facets.codes(p),
            json,
        }
    }

    /// True for the place a deleted product held.
    fn is_removed(&self) -> bool {
        self.json.is_empty()
    }

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
///
/// A catalog is built whole ([`Catalog::new`]) or derived from another by what changed
/// ([`Catalog::apply`]), which shares every unchanged product's JSON with its base and leaves
/// the places of deleted products empty, so positions stay stable between the two.
#[derive(Debug, Default)]
pub struct Catalog {
    /// By position; a deleted product's place holds [`Item::removed`].
    pub(super) items: Vec<Item>,
    /// Products in the catalog (items that are not removed).
    live: usize,
    /// Products replaced or deleted since the catalog was built whole: each leaves a little
    /// garbage (facet codes, SKU text, an empty place) behind.
    churn: usize,
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

/// What changed in a catalog since a snapshot: each changed product as it is now (`None`:
/// deleted), and each changed category likewise. An id may appear more than once (the last
/// state wins).
#[derive(Debug, Default)]
pub struct CatalogDelta {
    pub products: Vec<(Uuid, Option<Product>)>,
    pub categories: Vec<(String, Option<Category>)>,
}

/// A catalog derived by [`Catalog::apply`], and what its search index must do to follow it.
#[derive(Debug)]
pub struct Applied {
    pub catalog: Catalog,
    /// Positions whose indexed document is out of date (products replaced or deleted).
    pub unindexed: Vec<u32>,
    /// Products to index, at their positions (new or replaced).
    pub indexed: Vec<(u32, Product)>,
}

/// `base` (sorted by `cmp`, rows for which `keep` is false left out) merged with `added`, in
/// one pass: the sorted arrays of a catalog are updated in time linear in their length.
fn merged<T: Copy>(
    base: &[T],
    keep: impl Fn(&T) -> bool,
    mut added: Vec<T>,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Vec<T> {
    added.sort_by(&cmp);
    let mut out = Vec::with_capacity(base.len() + added.len());
    let mut new = added.into_iter().peekable();
    for row in base.iter().filter(|r| keep(r)) {
        while let Some(n) = new.next_if(|n| cmp(n, row) != Ordering::Greater) {
            out.push(n);
        }
        out.push(*row);
    }
    out.extend(new);
    out
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

/// Appends the SKU rows of `p` (at `item`) to `rows`, its SKUs to `sku_text`.
fn push_sku_rows(
    p: &Product,
    item: u32,
    sku_text: &mut String,
    currencies: &mut Vec<Box<str>>,
    currency_index: &mut HashMap<Box<str>, u16>,
    rows: &mut Vec<SkuRow>,
) {
    for v in &p.variants {
        // SKUs are validated to 1-64 ASCII characters; longer ones (never written by
        // the admin API) are left out rather than truncated.
        let Ok(len) = u8::try_from(v.sku.len()) else {
            continue;
        };
        let start = u32::try_from(sku_text.len()).unwrap_or(u32::MAX);
        sku_text.push_str(&v.sku);
        rows.push(SkuRow {
            start,
            len,
            currency: intern(currencies, currency_index, &v.price.currency),
            item,
            amount_minor: v.price.amount_minor,
            weight_grams: v.weight_grams,
            requires_shipping: v.requires_shipping,
        });
    }
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
            push_sku_rows(
                &p,
                item,
                &mut sku_text,
                &mut currencies,
                &mut currency_index,
                &mut skus,
            );
            items.push(Item::of(&p, &mut facets));
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
            live: items.len(),
            churn: 0,
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

    /// Heap bytes this catalog holds, counted from its allocations' capacities: every item's
    /// JSON (also when shared with another snapshot: each snapshot is charged in full), the
    /// arrays, the SKU text and the facet table. Allocator rounding and fragmentation are not
    /// in it (docs/decisions/0023-*, *What was measured*, compares it with RSS).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let strings = |v: &[Box<str>]| v.iter().map(|s| s.len()).sum::<usize>();
        self.items.capacity() * size_of::<Item>()
            + self.items.iter().map(|i| i.json.len()).sum::<usize>()
            + self.categories.capacity() * size_of::<Category>()
            + self
                .categories
                .iter()
                .map(|c| {
                    c.id.capacity()
                        + c.name.capacity()
                        + c.parent_id.as_ref().map_or(0, String::capacity)
                })
                .sum::<usize>()
            + self.by_id.capacity() * size_of::<u32>()
            + self.sku_text.capacity()
            + self.skus.capacity() * size_of::<SkuRow>()
            + self.currencies.capacity() * size_of::<Box<str>>()
            + strings(&self.currencies)
            + self
                .orders
                .iter()
                .map(|o| o.capacity() * size_of::<u32>())
                .sum::<usize>()
            + self.facets.heap_bytes()
    }

    /// Products in the catalog.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// The product at `position` (positions come from the sort orders and the search index).
    pub fn item(&self, position: u32) -> Option<&Item> {
        self.items
            .get(position as usize)
            .filter(|i| !i.is_removed())
    }

    /// True once incremental updates have left about as much garbage as the catalog holds:
    /// time to build it whole again.
    pub fn wants_rebuild(&self) -> bool {
        self.churn > self.live.max(1_000)
    }

    /// The position of the product with this id.
    fn position(&self, id: Uuid) -> Option<u32> {
        self.by_id
            .binary_search_by(|&i| self.items[i as usize].id.cmp(&id))
            .ok()
            .map(|k| self.by_id[k])
    }

    /// A catalog that differs from this one by `delta`: unchanged products share their JSON
    /// and keep their positions, replaced ones keep their positions, new ones take the next,
    /// and deleted ones leave theirs empty. The sorted lookups are merged in one pass each, so
    /// the cost is a copy of the catalog's small arrays plus the changed products' work,
    /// whatever the catalog's size (no re-serialisation, no re-sort).
    pub fn apply(&self, delta: CatalogDelta) -> Applied {
        // The last state of each id wins; ids keep the order they first came in.
        let mut order = Vec::new();
        let mut latest: HashMap<Uuid, Option<Product>> = HashMap::new();
        for (id, state) in delta.products {
            if latest.insert(id, state).is_none() {
                order.push(id);
            }
        }
        let mut items = self.items.clone();
        let mut changed = vec![false; items.len()];
        let mut facets = self.facets.clone();
        let mut sku_text = self.sku_text.clone();
        let mut currencies = self.currencies.clone();
        let mut currency_index: HashMap<Box<str>, u16> = currencies
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), u16::try_from(i).unwrap_or(u16::MAX)))
            .collect();
        let (mut live, mut churn) = (self.live, self.churn);
        let (mut unindexed, mut indexed) = (Vec::new(), Vec::new());
        let (mut new_rows, mut new_positions, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
        for id in order {
            let state = latest.remove(&id).flatten();
            let existing = self.position(id);
            if let Some(pos) = existing {
                changed[pos as usize] = true;
                unindexed.push(pos);
                churn += 1;
            }
            let Some(p) = state else {
                if let Some(pos) = existing {
                    items[pos as usize] = Item::removed(id);
                    deleted.push(pos);
                    live -= 1;
                }
                continue;
            };
            let pos = match existing {
                Some(pos) => pos,
                None => {
                    let pos = u32::try_from(items.len()).expect("fewer than 2^32 products");
                    items.push(Item::removed(id));
                    new_positions.push(pos);
                    live += 1;
                    pos
                }
            };
            push_sku_rows(
                &p,
                pos,
                &mut sku_text,
                &mut currencies,
                &mut currency_index,
                &mut new_rows,
            );
            items[pos as usize] = Item::of(&p, &mut facets);
            indexed.push((pos, p));
        }
        let unchanged = |pos: u32| !changed.get(pos as usize).copied().unwrap_or(false);
        let text = |r: &SkuRow| &sku_text[r.start as usize..r.start as usize + r.len as usize];
        // A SKU sold twice (impossible through the admin API): the changed product's row wins.
        let mut added_skus: Vec<&str> = new_rows.iter().map(text).collect();
        added_skus.sort_unstable();
        deleted.sort_unstable();
        let mut skus = merged(
            &self.skus,
            |r| unchanged(r.item) && added_skus.binary_search(&text(r)).is_err(),
            new_rows,
            |a, b| text(a).cmp(text(b)),
        );
        skus.dedup_by(|b, a| text(a) == text(b));
        let by_id = merged(
            &self.by_id,
            |p| deleted.binary_search(p).is_err(),
            new_positions,
            |&a, &b| items[a as usize].id.cmp(&items[b as usize].id),
        );
        let in_order = |sort: Sort, a: u32, b: u32| {
            let (a, b) = (&items[a as usize], &items[b as usize]);
            (sort_key(sort, a), a.id).cmp(&(sort_key(sort, b), b.id))
        };
        let positions: Vec<u32> = indexed.iter().map(|(pos, _)| *pos).collect();
        let orders = [Sort::Newest, Sort::PriceAsc, Sort::PriceDesc].map(|sort| {
            merged(
                &self.orders[super::listing::sort_slot(sort)],
                |&p| unchanged(p),
                positions.clone(),
                |&a, &b| in_order(sort, a, b),
            )
        });
        let mut categories = self.categories.clone();
        for (id, state) in delta.categories {
            categories.retain(|c| c.id != id);
            categories.extend(state);
        }
        categories.sort_by(|a, b| a.id.cmp(&b.id));
        Applied {
            catalog: Self {
                items,
                live,
                churn,
                categories,
                by_id,
                sku_text,
                skus,
                currencies,
                orders,
                facets,
            },
            unindexed,
            indexed,
        }
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
                .any(|i| !i.is_removed() && self.facets.categories_of(i.codes).contains(&code))
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
mod apply_tests {
    use super::*;
    use crate::domain::catalog::{Facets, ListFilter, tests::product};

    /// What a SKU resolves to: (product id, price in minor units, currency).
    type SkuAnswer = Option<(Uuid, i64, String)>;

    /// Everything a shopper or the admin can observe of a catalog, by id (positions differ
    /// between a built and an updated catalog).
    #[derive(Debug, PartialEq)]
    struct Observed {
        len: usize,
        lists: Vec<Vec<Uuid>>,
        products: Vec<(Uuid, Option<Bytes>)>,
        skus: Vec<(String, SkuAnswer)>,
        categories: Vec<Category>,
        facets: Facets,
        in_use: Vec<bool>,
    }

    fn observe(c: &Catalog, ids: &[Uuid], skus: &[String]) -> Observed {
        let filters = [
            ListFilter::default(),
            ListFilter {
                category: Some("c1".into()),
                ..Default::default()
            },
            ListFilter {
                min_price_minor: Some(300),
                max_price_minor: Some(700),
                ..Default::default()
            },
        ];
        let mut lists = Vec::new();
        for f in &filters {
            for sort in [Sort::Newest, Sort::PriceAsc, Sort::PriceDesc] {
                let page = c.list(f, sort, None, 10_000).unwrap();
                lists.push(page.items.iter().map(|i| i.id).collect());
            }
        }
        let all = c.list(&filters[0], Sort::Newest, None, 10_000).unwrap();
        Observed {
            len: c.len(),
            lists,
            products: ids
                .iter()
                .map(|id| (*id, c.get(*id).map(|i| i.json().clone())))
                .collect(),
            skus: skus
                .iter()
                .map(|s| {
                    let v = c
                        .variant(s)
                        .map(|v| (v.item.id, v.amount_minor, v.currency.to_owned()));
                    (s.clone(), v)
                })
                .collect(),
            categories: c.categories().to_vec(),
            facets: c.facet_table().count(
                all.items
                    .iter()
                    .map(|i| (i.facet_codes(), i.from_price_minor())),
            ),
            in_use: ["c0", "c1", "c2", "c3"]
                .iter()
                .map(|id| c.category_in_use(id))
                .collect(),
        }
    }

    fn category(id: &str) -> Category {
        Category {
            id: id.into(),
            name: id.to_uppercase(),
            parent_id: None,
        }
    }

    #[test]
    fn an_updated_catalog_shows_what_a_catalog_built_whole_shows() {
        let mut seed = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut made = 0u32;
        let mut make = |next: &mut dyn FnMut(u64) -> u64| {
            made += 1;
            let cat = format!("c{}", next(3));
            let mut p = product(
                &format!("p{made}"),
                100 * next(10) as i64,
                next(60) as u32,
                &[&cat],
            );
            if next(2) == 0 {
                p.variants[0]
                    .attributes
                    .insert("colour".into(), ["red", "blue"][next(2) as usize].into());
            }
            p
        };
        let mut truth: Vec<Product> = (0..40).map(|_| make(&mut next)).collect();
        let mut categories = vec![category("c0"), category("c1")];
        let mut catalog = Catalog::new(truth.clone(), categories.clone());
        let mut ids: Vec<Uuid> = truth.iter().map(|p| p.id).collect();
        let mut skus: Vec<String> = truth.iter().map(|p| p.variants[0].sku.clone()).collect();
        for round in 0..60 {
            let mut delta = CatalogDelta::default();
            for _ in 0..1 + next(5) {
                match next(5) {
                    0 => {
                        let p = make(&mut next);
                        ids.push(p.id);
                        skus.push(p.variants[0].sku.clone());
                        delta.products.push((p.id, Some(p.clone())));
                        truth.push(p);
                    }
                    1 | 2 if !truth.is_empty() => {
                        let k = next(truth.len() as u64) as usize;
                        let p = &mut truth[k];
                        p.title = format!("{} r{round}", p.title);
                        p.variants[0].price.amount_minor = 100 * next(10) as i64;
                        p.categories = vec![format!("c{}", next(4))];
                        if next(3) == 0 {
                            // A new SKU: the old one must stop resolving.
                            p.variants[0].sku = format!("{}-r{round}", p.variants[0].sku);
                            skus.push(p.variants[0].sku.clone());
                        }
                        delta.products.push((p.id, Some(p.clone())));
                    }
                    3 if !truth.is_empty() => {
                        let k = next(truth.len() as u64) as usize;
                        let p = truth.remove(k);
                        delta.products.push((p.id, None));
                    }
                    _ => delta.products.push((Uuid::new_v4(), None)),
                }
            }
            if next(4) == 0 {
                let id = format!("c{}", next(4));
                if next(2) == 0 {
                    categories.retain(|c| c.id != id);
                    delta.categories.push((id, None));
                } else {
                    let mut c = category(&id);
                    c.name = format!("{} {round}", c.name);
                    categories.retain(|c| c.id != id);
                    categories.push(c.clone());
                    delta.categories.push((id, Some(c)));
                }
            }
            let applied = catalog.apply(delta);
            for (pos, p) in &applied.indexed {
                assert_eq!(applied.catalog.item(*pos).map(|i| i.id), Some(p.id));
            }
            catalog = applied.catalog;
            let built = Catalog::new(truth.clone(), categories.clone());
            assert_eq!(
                observe(&catalog, &ids, &skus),
                observe(&built, &ids, &skus),
                "round {round}"
            );
        }
        assert!(catalog.churn > 0 && !catalog.wants_rebuild());
    }

    #[test]
    fn the_base_catalog_is_unchanged_and_json_is_shared() {
        let products: Vec<Product> = (0..5)
            .map(|i| product(&format!("p{i}"), 100, i, &[]))
            .collect();
        let base = Catalog::new(products.clone(), vec![]);
        let mut renamed = products[1].clone();
        renamed.title = "renamed".into();
        let applied = base.apply(CatalogDelta {
            products: vec![(renamed.id, Some(renamed)), (products[2].id, None)],
            categories: vec![],
        });
        assert_eq!(applied.unindexed, vec![1, 2]);
        assert_eq!(applied.indexed.len(), 1);
        let next = applied.catalog;
        assert_eq!(base.get(products[1].id).unwrap().title(), "p1");
        assert_eq!(next.get(products[1].id).unwrap().title(), "renamed");
        assert!(base.get(products[2].id).is_some() && next.get(products[2].id).is_none());
        assert!(next.item(2).is_none(), "a deleted product's place is empty");
        assert_eq!((base.len(), next.len()), (5, 4));
        // Unchanged products' JSON is the same allocation.
        let json = |c: &Catalog| c.get(products[0].id).unwrap().json().as_ptr();
        assert_eq!(json(&base), json(&next));
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
