//! Tests of the catalog cache's staleness bound, single-flight loads, invalidation and
//! incremental updates from the change feed, against a fake catalog source that counts its
//! reads.

use super::*;
use crate::domain::{
    catalog::{Category, Product, tests::product},
    ports::{CatalogChange, CatalogDocs, ChangedDocs},
};

/// What the fake catalog holds: categories, products, the version counter and the change feed.
#[derive(Default)]
struct Db {
    categories: Vec<Category>,
    products: Vec<Product>,
    version: u64,
    /// (version, what it changed); entries may be trimmed from the front.
    feed: Vec<(u64, CatalogChange)>,
}

/// A catalog whose contents are whatever `db` holds; counts full fetches (each taking
/// `delay`), version reads and change reads.
#[derive(Clone)]
struct Fake {
    tenant: Arc<str>,
    db: Arc<parking_lot::Mutex<Db>>,
    fetches: Arc<AtomicU64>,
    version_reads: Arc<AtomicU64>,
    changed_reads: Arc<AtomicU64>,
    delay: Duration,
}

impl Fake {
    fn new(delay: Duration) -> Self {
        Self::named("t", delay)
    }

    /// A fake catalog of the tenant `tenant`.
    fn named(tenant: &str, delay: Duration) -> Self {
        Self {
            tenant: tenant.into(),
            db: Arc::default(),
            fetches: Arc::default(),
            version_reads: Arc::default(),
            changed_reads: Arc::default(),
            delay,
        }
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    fn version_reads(&self) -> u64 {
        self.version_reads.load(Ordering::SeqCst)
    }

    /// A category write through the admin API: store it, then count it in the feed.
    fn write(&self, id: &str) {
        self.write_uncounted(id);
        self.count(CatalogChange::category(id));
    }

    /// A write counted without a feed entry (as a bulk load that only raises `VERSION`).
    fn write_unfed(&self, id: &str) {
        self.write_uncounted(id);
        self.db.lock().version += 1;
    }

    /// A write that bypassed the version counter (e.g. its bump failed).
    fn write_uncounted(&self, id: &str) {
        self.db.lock().categories.push(Category {
            id: id.to_owned(),
            name: id.to_owned(),
            parent_id: None,
        });
    }

    /// Stores (or replaces) products and counts the change.
    fn put_products(&self, products: &[Product]) {
        let mut db = self.db.lock();
        for p in products {
            db.products.retain(|q| q.id != p.id);
            db.products.push(p.clone());
        }
        drop(db);
        self.count(CatalogChange {
            products: products.iter().map(|p| p.id).collect(),
            categories: Vec::new(),
        });
    }

    fn delete_product(&self, id: uuid::Uuid) {
        self.db.lock().products.retain(|p| p.id != id);
        self.count(CatalogChange::product(id));
    }

    fn count(&self, change: CatalogChange) {
        let mut db = self.db.lock();
        db.version += 1;
        let v = db.version;
        db.feed.push((v, change));
    }

    /// Drops feed entries up to and including `version`.
    fn trim(&self, version: u64) {
        self.db.lock().feed.retain(|(v, _)| *v > version);
    }
}

impl CatalogSource for Fake {
    fn tenant(&self) -> &str {
        &self.tenant
    }

    async fn version(&self) -> Result<u64, StoreError> {
        self.version_reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.db.lock().version)
    }

    async fn fetch(&self) -> Result<CatalogDocs, StoreError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let docs = {
            let db = self.db.lock();
            CatalogDocs {
                products: db
                    .products
                    .iter()
                    .map(|p| serde_json::to_string(p).unwrap())
                    .collect(),
                categories: db
                    .categories
                    .iter()
                    .map(|c| serde_json::to_string(c).unwrap())
                    .collect(),
            }
        };
        tokio::time::sleep(self.delay).await;
        Ok(docs)
    }

    async fn changes(&self, after: u64, upto: u64) -> Result<Option<CatalogChange>, StoreError> {
        let db = self.db.lock();
        let entries: Vec<&(u64, CatalogChange)> = db
            .feed
            .iter()
            .filter(|(v, _)| *v > after && *v <= upto)
            .collect();
        if entries.len() as u64 != upto.saturating_sub(after) {
            return Ok(None);
        }
        let mut merged = CatalogChange::default();
        for (_, c) in entries {
            merged.merge(c.clone());
        }
        Ok(Some(merged))
    }

    async fn fetch_changed(&self, change: &CatalogChange) -> Result<ChangedDocs, StoreError> {
        self.changed_reads.fetch_add(1, Ordering::SeqCst);
        let db = self.db.lock();
        Ok(ChangedDocs {
            products: change
                .products
                .iter()
                .map(|id| {
                    let doc = db.products.iter().find(|p| p.id == *id);
                    (*id, doc.map(|p| serde_json::to_string(p).unwrap()))
                })
                .collect(),
            categories: change
                .categories
                .iter()
                .map(|id| {
                    let doc = db.categories.iter().find(|c| c.id == *id);
                    (id.clone(), doc.map(|c| serde_json::to_string(c).unwrap()))
                })
                .collect(),
        })
    }
}

fn cache(max_staleness: Duration) -> Arc<CatalogCache> {
    Arc::new(CatalogCache::new(max_staleness))
}

async fn categories(cache: &Arc<CatalogCache>, store: &Fake) -> usize {
    cache
        .snapshot(store)
        .await
        .unwrap()
        .catalog
        .categories()
        .len()
}

#[tokio::test]
async fn a_stale_snapshot_is_served_at_once_while_one_reload_runs() {
    let (cache, store) = (
        cache(Duration::from_secs(2)),
        Fake::new(Duration::from_millis(400)),
    );
    let first = cache.snapshot(&store).await.unwrap();
    store.write_unfed("shoes");
    // Past the check point (1–2 s) but before the hard bound (4 s).
    tokio::time::sleep(Duration::from_millis(2100)).await;
    for _ in 0..5 {
        let started = Instant::now();
        let snap = cache.snapshot(&store).await.unwrap();
        assert!(Arc::ptr_eq(&snap, &first), "the stale snapshot is served");
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "without waiting for the load"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.fetches(), 2, "exactly one background reload");
    // Once it is done, the reloaded snapshot replaces the stale one.
    let polled = Instant::now();
    while Arc::ptr_eq(&cache.snapshot(&store).await.unwrap(), &first) {
        assert!(
            polled.elapsed() < Duration::from_millis(1500),
            "reload never landed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(categories(&cache, &store).await, 1);
    assert_eq!(store.fetches(), 2);
}

#[tokio::test]
async fn an_unchanged_catalog_is_checked_not_reloaded() {
    let (cache, store) = (
        cache(Duration::from_millis(100)),
        Fake::new(Duration::from_millis(10)),
    );
    store.write("shoes");
    let first = cache.snapshot(&store).await.unwrap();
    assert_eq!((store.fetches(), store.version_reads()), (1, 1));
    // Past the check point: background checks; past the hard bound: a waited-for check.
    for wait in [120, 250, 120] {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let snap = cache.snapshot(&store).await.unwrap();
        assert!(
            Arc::ptr_eq(&snap, &first),
            "the same snapshot, never rebuilt"
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(store.fetches(), 1, "no catalog read after the first");
    assert!(store.version_reads() >= 3, "but its version was read");
    assert!(cache.checks.get() >= 2);
    // Notices (this tenant, or all after a reconnect) only force a check when the version
    // says nothing changed.
    cache.invalidate("t");
    cache.invalidate_all();
    assert!(Arc::ptr_eq(&cache.snapshot(&store).await.unwrap(), &first));
    assert_eq!(store.fetches(), 1);
}

#[tokio::test]
async fn a_write_that_bypassed_the_counter_shows_after_the_full_reload_interval() {
    let (cache, store) = (cache(Duration::from_millis(50)), Fake::new(Duration::ZERO));
    cache.snapshot(&store).await.unwrap();
    store.write_uncounted("shoes");
    // The full reload is due within 20 × 50 ms = 1 s; keep asking until it lands.
    let started = Instant::now();
    while categories(&cache, &store).await == 0 {
        assert!(started.elapsed() < Duration::from_secs(3), "never reloaded");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(store.fetches() >= 2);
}

#[tokio::test]
async fn concurrent_requests_start_one_load() {
    let (cache, store) = (
        cache(Duration::from_millis(100)),
        Fake::new(Duration::from_millis(200)),
    );
    let wave = || {
        futures::future::join_all((0..8).map(|_| {
            let (cache, store) = (cache.clone(), store.clone());
            async move { cache.snapshot(&store).await.unwrap() }
        }))
    };
    let cold = wave().await;
    assert_eq!(store.fetches(), 1, "a cold tenant is loaded once");
    assert!(cold.iter().all(|s| Arc::ptr_eq(s, &cold[0])));
    // Changed, and past the hard bound (200 ms): everyone waits, for one load.
    store.write_unfed("shoes");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let expired = wave().await;
    assert_eq!(store.fetches(), 2, "an expired tenant is reloaded once");
    assert!(expired.iter().all(|s| Arc::ptr_eq(s, &expired[0])));
    assert!(!Arc::ptr_eq(&expired[0], &cold[0]));
}

#[tokio::test]
async fn past_the_hard_bound_a_request_waits_for_a_reload() {
    let (cache, store) = (
        cache(Duration::from_millis(100)),
        Fake::new(Duration::from_millis(150)),
    );
    cache.snapshot(&store).await.unwrap();
    store.write_unfed("shoes");
    tokio::time::sleep(Duration::from_millis(250)).await;
    let started = Instant::now();
    let snap = cache.snapshot(&store).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "the request waited"
    );
    assert_eq!(
        snap.catalog.categories().len(),
        1,
        "and sees the current catalog"
    );
    assert_eq!(store.fetches(), 2);
}

#[tokio::test]
async fn writes_are_applied_from_the_feed_at_once_after_refresh_or_invalidate() {
    let (cache, store) = (
        cache(Duration::from_secs(60)),
        Fake::new(Duration::from_millis(10)),
    );
    assert_eq!(categories(&cache, &store).await, 0);
    // This replica's admin write: refresh before answering.
    store.write("shoes");
    let refreshed = cache.refresh(&store).await.unwrap();
    assert_eq!(refreshed.catalog.categories().len(), 1);
    let snap = cache.snapshot(&store).await.unwrap();
    assert!(
        Arc::ptr_eq(&snap, &refreshed),
        "the next read sees the write"
    );
    // Another replica's writes: the notice makes the next read check, and apply.
    store.write("hats");
    cache.invalidate("t");
    assert_eq!(categories(&cache, &store).await, 2);
    store.write("socks");
    store.write("belts");
    cache.invalidate_all();
    assert_eq!(categories(&cache, &store).await, 4);
    assert_eq!(store.fetches(), 1, "never loaded whole again");
    assert_eq!(cache.applies.get(), 3);
    assert_eq!(cache.loads.get(), 1);
}

#[tokio::test]
async fn a_renamed_product_is_found_by_its_new_name_and_the_old_snapshot_is_untouched() {
    let (cache, store) = (cache(Duration::from_secs(60)), Fake::new(Duration::ZERO));
    let mug = product("Ceramic mug", 900, 1, &[]);
    let shirt = product("Cotton shirt", 2500, 2, &[]);
    store.put_products(&[mug.clone(), shirt.clone()]);
    let before = cache.snapshot(&store).await.unwrap();
    let mut cup = mug.clone();
    cup.title = "Porcelain cup".into();
    let scarf = product("Wool scarf", 1900, 3, &[]);
    store.put_products(&[cup, scarf.clone()]);
    store.delete_product(shirt.id);
    let after = cache.refresh(&store).await.unwrap();
    let found = |snap: &Snapshot, q: &str| -> Vec<uuid::Uuid> {
        snap.search
            .search(q)
            .unwrap()
            .unwrap()
            .iter()
            .filter_map(|(pos, _)| snap.catalog.item(*pos).map(|i| i.id))
            .collect()
    };
    assert_eq!(found(&after, "porcelain"), vec![mug.id]);
    assert!(found(&after, "ceramic").is_empty());
    assert!(found(&after, "shirt").is_empty());
    assert!(after.catalog.get(shirt.id).is_none());
    assert_eq!(found(&after, "scarf"), vec![scarf.id]);
    assert_eq!(after.catalog.len(), 2);
    assert_eq!(after.version, 3);
    assert_ne!(after.serial, before.serial, "search answers are keyed anew");
    // Requests still holding the old snapshot see the old catalog, consistently.
    assert_eq!(found(&before, "ceramic"), vec![mug.id]);
    assert_eq!(found(&before, "shirt"), vec![shirt.id]);
    assert_eq!(
        (store.fetches(), cache.loads.get(), cache.applies.get()),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_trimmed_feed_falls_back_to_one_full_load() {
    let (cache, store) = (cache(Duration::from_secs(60)), Fake::new(Duration::ZERO));
    store.write("shoes");
    assert_eq!(categories(&cache, &store).await, 1);
    for id in ["hats", "socks", "belts"] {
        store.write(id);
    }
    // The feed keeps only the newest entry: versions 2 and 3 are gone.
    store.trim(3);
    cache.invalidate("t");
    assert_eq!(categories(&cache, &store).await, 4);
    assert_eq!(store.fetches(), 2);
    assert_eq!((cache.feed_gaps.get(), cache.applies.get()), (1, 0));
    // From the full load on, the feed covers it again.
    store.write("scarves");
    cache.invalidate("t");
    assert_eq!(categories(&cache, &store).await, 5);
    assert_eq!((store.fetches(), cache.applies.get()), (2, 1));
}

#[tokio::test]
async fn concurrent_requests_after_a_change_apply_it_once() {
    let (cache, store) = (cache(Duration::from_secs(60)), Fake::new(Duration::ZERO));
    store.write("shoes");
    cache.snapshot(&store).await.unwrap();
    store.put_products(&[product("Lamp", 100, 1, &[])]);
    cache.invalidate("t");
    let snaps = futures::future::join_all((0..8).map(|_| {
        let (cache, store) = (cache.clone(), store.clone());
        async move { cache.snapshot(&store).await.unwrap() }
    }))
    .await;
    assert!(snaps.iter().all(|s| Arc::ptr_eq(s, &snaps[0])));
    assert_eq!(snaps[0].catalog.len(), 1);
    assert_eq!(store.changed_reads.load(Ordering::SeqCst), 1);
    assert_eq!((cache.applies.get(), cache.loads.get()), (1, 1));
}

#[tokio::test]
async fn snapshots_get_distinct_serials_and_check_points_are_jittered() {
    let (cache, store) = (cache(Duration::from_secs(30)), Fake::new(Duration::ZERO));
    let mut serials = Vec::new();
    let mut points = Vec::new();
    for _ in 0..8 {
        let snap = cache.reload(&store).await.unwrap();
        serials.push(snap.serial);
        let cur = CatalogCache::current(&cache.entry("t")).unwrap();
        assert!(cur.check_after >= Duration::from_secs(15));
        assert!(cur.check_after < Duration::from_secs(30));
        assert!(cur.reload_after >= Duration::from_secs(300));
        assert!(cur.reload_after < Duration::from_secs(600));
        points.push(cur.check_after);
    }
    serials.dedup();
    assert_eq!(serials.len(), 8);
    points.dedup();
    assert!(points.len() > 1, "check points differ between loads");
}

/// A tenant `name` holding `n` products (loaded with `delay`).
fn stocked(name: &str, n: usize, delay: Duration) -> Fake {
    let store = Fake::named(name, delay);
    let products: Vec<Product> = (0..n)
        .map(|i| {
            product(
                &format!("{name} chair {i}"),
                100 + i as i64,
                (i % 60) as u32,
                &["seating"],
            )
        })
        .collect();
    store.put_products(&products);
    store
}

#[tokio::test]
async fn a_snapshot_is_charged_about_its_json_plus_the_index() {
    let cache = cache(Duration::from_secs(60));
    let store = stocked("a", 1000, Duration::ZERO);
    let snap = cache.snapshot(&store).await.unwrap();
    let json: usize = store
        .db
        .lock()
        .products
        .iter()
        .map(|p| serde_json::to_vec(p).unwrap().len())
        .sum();
    let index = snap.search.heap_bytes();
    assert!(index > 10_000, "the index is counted: {index} bytes");
    assert!(
        snap.bytes > json + index && snap.bytes < 2 * json + index,
        "{} bytes charged for {json} bytes of JSON and a {index}-byte index",
        snap.bytes
    );
    assert_eq!(cache.held(), snap.bytes);
    assert_eq!(cache.snapshots_loaded.get(), 1);
    // An incremental update re-charges the tenant at its new size, not on top.
    store.put_products(&[product("Lamp", 100, 1, &[])]);
    let after = cache.refresh(&store).await.unwrap();
    assert_eq!(cache.applies.get(), 1);
    assert!(after.bytes > snap.bytes);
    assert_eq!(cache.held(), after.bytes);
    assert_eq!(cache.snapshots_loaded.get(), 1);
}

#[tokio::test]
async fn over_the_budget_the_least_recently_read_tenant_is_evicted_and_reloads_on_its_next_read() {
    let size = {
        let probe = cache(Duration::from_secs(60));
        probe
            .snapshot(&stocked("probe", 200, Duration::ZERO))
            .await
            .unwrap()
            .bytes
    };
    // Room for two tenants of that size, not three.
    let cache = Arc::new(CatalogCache::with_budget(
        Duration::from_secs(60),
        size * 5 / 2,
    ));
    let (a, b, c) = (
        stocked("a", 200, Duration::ZERO),
        stocked("b", 200, Duration::ZERO),
        stocked("c", 200, Duration::ZERO),
    );
    cache.snapshot(&a).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    cache.snapshot(&b).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    // `a` is read again, so `b` is now the least recently read.
    cache.snapshot(&a).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    cache.snapshot(&c).await.unwrap();
    assert_eq!(cache.evictions.get(), 1);
    assert_eq!(cache.snapshots_loaded.get(), 2);
    assert!(
        cache.held() <= cache.budget(),
        "{} > {}",
        cache.held(),
        cache.budget()
    );
    assert_eq!((a.fetches(), b.fetches(), c.fetches()), (1, 1, 1));
    // `a` and `c` are served from memory; `b` loads again (and evicts `c`, now the oldest).
    cache.snapshot(&c).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    cache.snapshot(&a).await.unwrap();
    assert_eq!((a.fetches(), c.fetches()), (1, 1));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let again = cache.snapshot(&b).await.unwrap();
    assert_eq!(again.catalog.len(), 200);
    assert_eq!(b.fetches(), 2, "the evicted tenant was loaded again");
    assert_eq!(cache.evictions.get(), 2);
    assert_eq!(cache.loads.get(), 4);
    cache.snapshot(&a).await.unwrap();
    assert_eq!(a.fetches(), 1, "`a` stayed");
    assert!(cache.held() <= cache.budget());
    // Two reads found their tenant cold: the first of each tenant and `b`'s after eviction.
    assert_eq!(cache.cold_read_count.get(), 4);
    assert_eq!(cache.reads.get(), 8);
}

#[tokio::test]
async fn an_evicted_tenant_reloads_current_data_once_however_many_requests_wait() {
    let cache = Arc::new(CatalogCache::with_budget(Duration::from_secs(60), 1));
    let (a, b) = (
        stocked("a", 50, Duration::from_millis(100)),
        stocked("b", 50, Duration::ZERO),
    );
    cache.snapshot(&a).await.unwrap();
    // Reading `b` evicts `a` (the budget holds one tenant, barely: each exceeds it alone).
    cache.snapshot(&b).await.unwrap();
    assert_eq!(cache.evictions.get(), 1);
    assert_eq!(cache.snapshots_loaded.get(), 1);
    // While `a` is out of memory its catalog changes (no replica follows its feed now).
    a.put_products(&[product("Brass lamp", 4200, 7, &[])]);
    let reads = futures::future::join_all((0..16).map(|_| {
        let (cache, a) = (cache.clone(), a.clone());
        async move { cache.snapshot(&a).await.unwrap() }
    }))
    .await;
    assert_eq!(a.fetches(), 2, "one load for sixteen cold requests");
    assert!(reads.iter().all(|s| Arc::ptr_eq(s, &reads[0])));
    assert_eq!(
        reads[0].catalog.len(),
        51,
        "with the change made while evicted"
    );
    let hits = reads[0].search.search("brass").unwrap().unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(cache.cold_read_count.get(), 2 + 16);
    assert_eq!(cache.snapshots_loaded.get(), 1, "and `b` made room");
}

#[tokio::test]
async fn a_forgotten_tenant_frees_its_share_of_the_budget() {
    let cache = cache(Duration::from_secs(60));
    let a = stocked("a", 20, Duration::ZERO);
    let b = stocked("b", 20, Duration::ZERO);
    cache.snapshot(&a).await.unwrap();
    let held_b = cache.snapshot(&b).await.unwrap().bytes;
    cache.forget("a");
    assert_eq!(cache.held(), held_b);
    assert_eq!(cache.snapshots_loaded.get(), 1);
    assert_eq!(cache.evictions.get(), 0, "forgetting is not evicting");
}
