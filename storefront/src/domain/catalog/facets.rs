//! Facet counts over a set of matching products: categories, attribute values, price bands.
//!
//! A catalog snapshot interns every category id and (attribute name, value) pair its products
//! use ([`FacetTable`]) and keeps per product only the small integer codes it has
//! ([`FacetCodes`]), so counting a search's matches is a few array increments per product with
//! no allocation per match.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::model::Product;
use crate::domain::pricing::{PriceBand, price_band};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PriceBandCount {
    #[serde(flatten)]
    pub band: PriceBand,
    pub count: u64,
}

/// Counts of matching products per facet value; a product counts once per value it has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Facets {
    pub categories: Vec<FacetCount>,
    /// Attribute name → value counts.
    pub attributes: BTreeMap<String, Vec<FacetCount>>,
    pub price_bands: Vec<PriceBandCount>,
}

/// One product's facet values: where its codes sit in its catalog's [`FacetTable`] (its
/// distinct categories, then its distinct (attribute name, value) pairs).
#[derive(Debug, Clone, Copy, Default)]
pub struct FacetCodes {
    start: u32,
    categories: u16,
    pairs: u16,
}

/// The distinct facet values of one catalog, and every product's codes back to back (one
/// allocation per catalog rather than one per product). An incremental update clones the table
/// and appends the changed products' codes; codes of replaced products stay until the next full
/// build.
#[derive(Debug, Clone, Default)]
pub struct FacetTable {
    categories: Vec<Box<str>>,
    category_index: HashMap<Box<str>, u32>,
    /// Attribute names, and per pair code its (name code, value).
    names: Vec<Box<str>>,
    pairs: Vec<(u32, Box<str>)>,
    pair_index: HashMap<(u32, Box<str>), u32>,
    name_index: HashMap<Box<str>, u32>,
    codes: Vec<u32>,
}

fn code_of(len: usize) -> u32 {
    u32::try_from(len).expect("fewer than 2^32 facet values")
}

impl FacetTable {
    /// Interns the product's facet values and returns where its codes are.
    pub fn codes(&mut self, p: &Product) -> FacetCodes {
        let categories: BTreeSet<&str> = p.categories.iter().map(String::as_str).collect();
        let pairs: BTreeSet<(&str, &str)> = p
            .variants
            .iter()
            .flat_map(|v| v.attributes.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let start = code_of(self.codes.len());
        let counts = FacetCodes {
            start,
            categories: u16::try_from(categories.len()).unwrap_or(u16::MAX),
            pairs: u16::try_from(pairs.len()).unwrap_or(u16::MAX),
        };
        for c in categories.into_iter().take(usize::from(counts.categories)) {
            let next = code_of(self.categories.len());
            let code = *self.category_index.entry(c.into()).or_insert(next);
            if code == next {
                self.categories.push(c.into());
            }
            self.codes.push(code);
        }
        for (k, v) in pairs.into_iter().take(usize::from(counts.pairs)) {
            let next = code_of(self.names.len());
            let name = *self.name_index.entry(k.into()).or_insert(next);
            if name == next {
                self.names.push(k.into());
            }
            let next = code_of(self.pairs.len());
            let code = *self.pair_index.entry((name, v.into())).or_insert(next);
            if code == next {
                self.pairs.push((name, v.into()));
            }
            self.codes.push(code);
        }
        counts
    }

    /// Heap bytes of the table: its arrays, interned strings and hash indexes (a hash map is
    /// charged its capacity in keys and values plus a control byte each, as hashbrown lays
    /// them out).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        fn map<K, V>(m: &HashMap<K, V>) -> usize {
            m.capacity() * (size_of::<K>() + size_of::<V>() + 1)
        }
        let strings = |v: &[Box<str>]| v.iter().map(|s| s.len()).sum::<usize>();
        // Each interned string is held twice: in its array and as its index's key.
        2 * (strings(&self.categories) + strings(&self.names))
            + 2 * self.pairs.iter().map(|(_, v)| v.len()).sum::<usize>()
            + (self.categories.capacity() + self.names.capacity()) * size_of::<Box<str>>()
            + self.pairs.capacity() * size_of::<(u32, Box<str>)>()
            + map(&self.category_index)
            + map(&self.pair_index)
            + map(&self.name_index)
            + self.codes.capacity() * size_of::<u32>()
    }

    /// Frees spare capacity once every product is in.
    pub fn shrink(&mut self) {
        self.codes.shrink_to_fit();
    }

    /// The category codes of a product.
    pub fn categories_of(&self, c: FacetCodes) -> &[u32] {
        let start = c.start as usize;
        &self.codes[start..start + usize::from(c.categories)]
    }

    /// The (attribute name, value) pair codes of a product.
    pub fn pairs_of(&self, c: FacetCodes) -> &[u32] {
        let start = c.start as usize + usize::from(c.categories);
        &self.codes[start..start + usize::from(c.pairs)]
    }

    /// The code of a category id some product is listed in.
    pub fn category_code(&self, id: &str) -> Option<u32> {
        self.category_index.get(id).copied()
    }

    /// Counts facet values over `matches`: each product's codes and lowest price.
    pub fn count(&self, matches: impl IntoIterator<Item = (FacetCodes, Option<i64>)>) -> Facets {
        let mut categories = vec![0u64; self.categories.len()];
        let mut pairs = vec![0u64; self.pairs.len()];
        let mut bands: BTreeMap<i64, (PriceBand, u64)> = BTreeMap::new();
        for (codes, price) in matches {
            for &c in self.categories_of(codes) {
                categories[c as usize] += 1;
            }
            for &c in self.pairs_of(codes) {
                pairs[c as usize] += 1;
            }
            if let Some(price) = price {
                let band = price_band(price);
                bands.entry(band.min_minor).or_insert((band, 0)).1 += 1;
            }
        }
        let mut attributes: BTreeMap<String, Vec<FacetCount>> = BTreeMap::new();
        for (code, &count) in pairs.iter().enumerate() {
            if count > 0 {
                let (name, value) = &self.pairs[code];
                attributes
                    .entry(self.names[*name as usize].to_string())
                    .or_default()
                    .push(FacetCount {
                        value: value.to_string(),
                        count,
                    });
            }
        }
        Facets {
            categories: ranked(
                categories
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(code, &count)| FacetCount {
                        value: self.categories[code].to_string(),
                        count,
                    })
                    .collect(),
            ),
            attributes: attributes
                .into_iter()
                .map(|(k, v)| (k, ranked(v)))
                .collect(),
            price_bands: bands
                .into_values()
                .map(|(band, count)| PriceBandCount { band, count })
                .collect(),
        }
    }
}

fn ranked(mut v: Vec<FacetCount>) -> Vec<FacetCount> {
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::tests::product;

    fn count(products: &[&Product]) -> Facets {
        let mut table = FacetTable::default();
        let codes: Vec<_> = products
            .iter()
            .map(|p| (table.codes(p), p.from_price().map(|m| m.amount_minor)))
            .collect();
        table.count(codes.iter().map(|(c, p)| (*c, *p)))
    }

    #[test]
    fn counts_each_value_once_per_product() {
        let mut a = product("a", 500, 1, &["mugs", "gifts", "mugs"]);
        a.variants[0]
            .attributes
            .insert("colour".into(), "red".into());
        let mut extra = a.variants[0].clone();
        extra.sku = "a2".into();
        a.variants.push(extra);
        let b = product("b", 3_000, 2, &["mugs"]);
        let f = count(&[&a, &b]);
        assert_eq!(
            f.categories,
            vec![
                FacetCount {
                    value: "mugs".into(),
                    count: 2
                },
                FacetCount {
                    value: "gifts".into(),
                    count: 1
                }
            ]
        );
        assert_eq!(
            f.attributes["colour"],
            vec![FacetCount {
                value: "red".into(),
                count: 1
            }]
        );
        assert_eq!(f.price_bands.len(), 2);
        assert_eq!(f.price_bands[0].band.max_minor, Some(1_000));
    }

    #[test]
    fn values_no_match_has_are_left_out_and_ties_rank_by_value() {
        let mut a = product("a", 500, 1, &["b-cat"]);
        a.variants[0].attributes.insert("size".into(), "M".into());
        let mut b = product("b", 700, 2, &["a-cat"]);
        b.variants[0].attributes.insert("size".into(), "L".into());
        let c = product("c", 900, 3, &["unused"]);
        let mut table = FacetTable::default();
        let codes: Vec<_> = [&a, &b, &c]
            .iter()
            .map(|p| (table.codes(p), p.from_price().map(|m| m.amount_minor)))
            .collect();
        let f = table.count(codes[..2].iter().map(|(c, p)| (*c, *p)));
        let values: Vec<_> = f.categories.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(values, ["a-cat", "b-cat"], "ties by value; unused left out");
        let sizes: Vec<_> = f.attributes["size"]
            .iter()
            .map(|c| c.value.as_str())
            .collect();
        assert_eq!(sizes, ["L", "M"]);
        assert_eq!(table.category_code("unused"), Some(2));
        assert_eq!(table.count([]), Facets::default());
    }
}
