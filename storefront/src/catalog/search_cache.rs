//! A bounded cache of search answers (the ranked, filtered matches and their rendered facet
//! counts), so a query repeated against an unchanged catalog costs a lookup instead of a tantivy
//! search and a facet count.
//!
//! - **Keys** are a snapshot's process-unique serial, a NUL, then the normalised query (its
//!   analysed words and filters as JSON). A snapshot belongs to one tenant and a serial is never reused, so an
//!   answer can only be found by requests reading that very snapshot: no tenant sees another's,
//!   and a reloaded catalog never sees an answer from before the reload (entries of replaced
//!   snapshots are simply never hit again and age out).
//! - **Bound**: the sum of entry costs (key and value bytes plus a fixed overhead per entry) stays
//!   at or below the budget after every insert; an answer costing more than an eighth of the
//!   budget is not cached at all. Eviction is CLOCK (second chance): an entry hit since the hand
//!   last passed survives one more round.
//! - Pagination (`offset`, `limit`) is not part of the key: every page of a query shares one
//!   entry.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use bytes::Bytes;
use parking_lot::{Mutex, MutexGuard};
use prometheus_client::metrics::counter::Counter;

/// A cached answer: every match (product position in the snapshot, score) in ranking order,
/// and the facet counts over them as JSON.
#[derive(Debug)]
pub struct SearchAnswer {
    pub matches: Box<[(u32, f32)]>,
    pub facets: Bytes,
}

impl SearchAnswer {
    fn bytes(&self) -> usize {
        self.matches.len() * std::mem::size_of::<(u32, f32)>() + self.facets.len()
    }
}

struct Slot {
    answer: Arc<SearchAnswer>,
    cost: usize,
    referenced: bool,
}

#[derive(Default)]
struct Inner {
    slots: HashMap<Arc<str>, Slot>,
    /// The CLOCK: every key in `slots` once, the hand at the front.
    clock: VecDeque<Arc<str>>,
    bytes: usize,
}

pub struct SearchCache {
    inner: Mutex<Inner>,
    budget: usize,
    pub hits: Counter,
    pub misses: Counter,
}

/// Bookkeeping per entry on top of its key and answer (map and clock slots, allocations).
const ENTRY_OVERHEAD: usize = 160;

impl SearchCache {
    /// A cache holding at most `budget` bytes of entries (0 disables it).
    pub fn new(budget: usize) -> Self {
        Self {
            inner: Mutex::default(),
            budget,
            hits: Counter::default(),
            misses: Counter::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// The key of a query's answer on the snapshot with this serial.
    pub fn key(serial: u64, query: &str) -> String {
        let mut key = String::with_capacity(query.len() + 21);
        key.push_str(&serial.to_string());
        key.push('\0');
        key.push_str(query);
        key
    }

    pub fn get(&self, key: &str) -> Option<Arc<SearchAnswer>> {
        if self.budget == 0 {
            return None;
        }
        let found = self.lock().slots.get_mut(key).map(|slot| {
            slot.referenced = true;
            slot.answer.clone()
        });
        if found.is_some() {
            self.hits.inc();
        } else {
            self.misses.inc();
        }
        found
    }

    /// Caches `answer` unless it is too large for the budget; evicts to stay within it.
    pub fn insert(&self, key: String, answer: Arc<SearchAnswer>) {
        let cost = ENTRY_OVERHEAD + key.len() + answer.bytes();
        if cost > self.budget / 8 {
            return;
        }
        let key: Arc<str> = key.into();
        let mut inner = self.lock();
        if inner.slots.contains_key(&key) {
            return;
        }
        inner.clock.push_back(key.clone());
        inner.slots.insert(
            key,
            Slot {
                answer,
                cost,
                referenced: false,
            },
        );
        inner.bytes += cost;
        while inner.bytes > self.budget {
            let Some(key) = inner.clock.pop_front() else {
                break;
            };
            let Some(slot) = inner.slots.get_mut(&key) else {
                continue;
            };
            if slot.referenced {
                slot.referenced = false;
                inner.clock.push_back(key);
            } else if let Some(slot) = inner.slots.remove(&key) {
                inner.bytes -= slot.cost;
            }
        }
    }

    /// Bytes accounted to entries now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(matches: usize) -> Arc<SearchAnswer> {
        Arc::new(SearchAnswer {
            matches: (0..matches as u32).map(|i| (i, 1.0)).collect(),
            facets: Bytes::from_static(b"{}"),
        })
    }

    #[test]
    fn answers_are_found_only_under_their_snapshot_and_query() {
        let cache = SearchCache::new(1 << 20);
        cache.insert(SearchCache::key(1, "wool"), answer(3));
        assert_eq!(
            cache
                .get(&SearchCache::key(1, "wool"))
                .unwrap()
                .matches
                .len(),
            3
        );
        assert!(
            cache.get(&SearchCache::key(2, "wool")).is_none(),
            "another snapshot's serial"
        );
        assert!(cache.get(&SearchCache::key(1, "woo")).is_none());
        assert!(
            cache.get(&SearchCache::key(11, "wool")).is_none(),
            "serials are delimited"
        );
        assert_eq!(cache.hits.get(), 1);
        assert_eq!(cache.misses.get(), 3);
    }

    #[test]
    fn the_byte_budget_holds_after_every_insert() {
        let budget = 64 * 1024;
        let cache = SearchCache::new(budget);
        for i in 0..2_000u64 {
            cache.insert(
                SearchCache::key(i % 7, &format!("query {i}")),
                answer((i % 300) as usize),
            );
            assert!(cache.bytes() <= budget, "{} > {budget}", cache.bytes());
        }
        assert!(cache.len() > 10, "and it still holds entries");
        // Too large for an eighth of the budget: never cached.
        cache.insert(SearchCache::key(99, "huge"), answer(budget / 8));
        assert!(cache.get(&SearchCache::key(99, "huge")).is_none());
    }

    #[test]
    fn recently_hit_entries_survive_eviction() {
        let one = ENTRY_OVERHEAD + SearchCache::key(1, "q00").len() + 8 + 2;
        let cache = SearchCache::new(one * 8 * 4);
        for i in 0..4 {
            cache.insert(SearchCache::key(1, &format!("q{i:02}")), answer(1));
        }
        // Keep q00 hot while many others come and go.
        for i in 4..60 {
            assert!(
                cache.get(&SearchCache::key(1, "q00")).is_some(),
                "hot entry evicted at {i}"
            );
            cache.insert(SearchCache::key(1, &format!("q{i:02}")), answer(1));
        }
        assert!(
            cache.get(&SearchCache::key(1, "q01")).is_none(),
            "cold entries were evicted"
        );
    }

    #[test]
    fn a_zero_budget_disables_the_cache() {
        let cache = SearchCache::new(0);
        cache.insert(SearchCache::key(1, "wool"), answer(1));
        assert!(cache.get(&SearchCache::key(1, "wool")).is_none());
        assert!(cache.is_empty());
    }
}
