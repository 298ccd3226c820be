//! Tests of the catalog cache's staleness bound, single-flight loads and invalidation, against
//! a fake catalog source that counts its reads.

use super::*;
use crate::domain::{catalog::Category, ports::CatalogDocs};

/// A catalog whose category list is whatever `db` holds, with a version counter bumped by
/// every write; counts fetches (each taking `delay`) and version reads.
#[derive(Clone)]
struct Fake {
    db: Arc<parking_lot::Mutex<Vec<Category>>>,
    version: Arc<AtomicU64>,
    fetches: Arc<AtomicU64>,
    version_reads: Arc<AtomicU64>,
    delay: Duration,
}

impl Fake {
    fn new(delay: Duration) -> Self {
        Self {
            db: Arc::default(),
            version: Arc::default(),
            fetches: Arc::default(),
            version_reads: Arc::default(),
            delay,
        }
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    fn version_reads(&self) -> u64 {
        self.version_reads.load(Ordering::SeqCst)
    }

    /// A write through the admin API: store, then count it.
    fn write(&self, id: &str) {
        self.write_uncounted(id);
        self.version.fetch_add(1, Ordering::SeqCst);
    }

    /// A write that bypassed the version counter (e.g. its bump failed).
    fn write_uncounted(&self, id: &str) {
        self.db.lock().push(Category {
            id: id.to_owned(),
            name: id.to_owned(),
            parent_id: None,
        });
    }
}

impl CatalogSource for Fake {
    fn tenant(&self) -> &str {
        "t"
    }

    async fn version(&self) -> Result<u64, StoreError> {
        self.version_reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.version.load(Ordering::SeqCst))
    }

    async fn fetch(&self) -> Result<CatalogDocs, StoreError> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let categories = self
            .db
            .lock()
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        tokio::time::sleep(self.delay).await;
        Ok(CatalogDocs {
            products: Vec::new(),
            categories,
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
    store.write("shoes");
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
    store.write("shoes");
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
    store.write("shoes");
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
async fn writes_are_visible_at_once_after_reload_or_invalidate() {
    let (cache, store) = (
        cache(Duration::from_secs(60)),
        Fake::new(Duration::from_millis(10)),
    );
    assert_eq!(categories(&cache, &store).await, 0);
    // This replica's admin write: reload before answering.
    store.write("shoes");
    let reloaded = cache.reload(&store).await.unwrap();
    assert_eq!(reloaded.catalog.categories().len(), 1);
    let snap = cache.snapshot(&store).await.unwrap();
    assert!(
        Arc::ptr_eq(&snap, &reloaded),
        "the next read sees the write"
    );
    // Another replica's write: the notice makes the next read check, and reload.
    store.write("hats");
    cache.invalidate("t");
    assert_eq!(categories(&cache, &store).await, 2);
    store.write("socks");
    cache.invalidate_all();
    assert_eq!(categories(&cache, &store).await, 3);
    assert_eq!(store.fetches(), 4);
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
