//! Facet counts over a set of matching products: categories, attribute values, price bands.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::{
    catalog::Product,
    pricing::{PriceBand, price_band},
};

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

fn ranked(counts: HashMap<String, u64>) -> Vec<FacetCount> {
    let mut v: Vec<_> = counts
        .into_iter()
        .map(|(value, count)| FacetCount { value, count })
        .collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    v
}

pub fn count<'a>(products: impl IntoIterator<Item = &'a Product>) -> Facets {
    let mut categories: HashMap<String, u64> = HashMap::new();
    let mut attributes: HashMap<String, HashMap<String, u64>> = HashMap::new();
    let mut bands: BTreeMap<i64, (PriceBand, u64)> = BTreeMap::new();
    for p in products {
        for c in p.categories.iter().collect::<BTreeSet<_>>() {
            *categories.entry(c.clone()).or_default() += 1;
        }
        let pairs: BTreeSet<(&String, &String)> = p
            .variants
            .iter()
            .flat_map(|v| v.attributes.iter())
            .collect();
        for (k, v) in pairs {
            *attributes
                .entry(k.clone())
                .or_default()
                .entry(v.clone())
                .or_default() += 1;
        }
        if let Some(price) = p.from_price() {
            let band = price_band(price.amount_minor);
            bands.entry(band.min_minor).or_insert((band, 0)).1 += 1;
        }
    }
    Facets {
        categories: ranked(categories),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::catalog::tests::product;

    #[test]
    fn counts_each_value_once_per_product() {
        let mut a = product("a", 500, 1, &["mugs", "gifts"]);
        a.variants[0]
            .attributes
            .insert("colour".into(), "red".into());
        let mut extra = a.variants[0].clone();
        extra.sku = "a2".into();
        a.variants.push(extra);
        let b = product("b", 3_000, 2, &["mugs"]);
        let f = count([&a, &b]);
        assert_eq!(
            f.categories[0],
            FacetCount {
                value: "mugs".into(),
                count: 2
            }
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
}
