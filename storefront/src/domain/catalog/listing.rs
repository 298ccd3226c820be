//! How shoppers page through a catalog: sort orders, filters, and opaque cursors that resume a
//! list after its last item.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{
    facets::FacetTable,
    index::{Catalog, Item},
};
use crate::domain::Invalid;

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

pub(super) fn sort_key(sort: Sort, item: &Item) -> i64 {
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

pub(super) fn sort_slot(sort: Sort) -> usize {
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

impl Catalog {
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
mod tests {
    use super::*;
    use crate::domain::catalog::{Product, tests::product};

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
}
