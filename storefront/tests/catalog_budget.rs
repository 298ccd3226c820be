//! Bounded catalog memory per replica (issue 19 item 1), against the real stack: pooled tenants
//! sharing one set of DynamoDB tables (moto) and Redis, a "pool" replica with a small catalog
//! memory budget and a "writer" replica without one, as two replicas of the pool would be. The
//! pool replica must be ready before it loads any catalog, load a tenant on its first request
//! (once, however many requests arrive together), evict the least recently read tenant when
//! over its budget, reload an evicted tenant with the data written meanwhile, and keep
//! following the change feed for the tenants it holds. The runtime's own `/metrics` tell.

mod common;

use std::time::Duration;

use common::{TestApp, app_database, host, product, tenant, test_settings, unique};
use emporium_integration_tests::eventually;
use emporium_storefront::Settings;
use emporium_tenant_config::TenantConfig;
use reqwest::Method;
use serde_json::Value;

/// A sample of the runtime's `/metrics`: `storefront_<name>` (a counter's `_total`, a gauge, a
/// histogram's `_count`, as named).
async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app
        .req(Method::GET, "anything", "/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    let prefix = format!("storefront_{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
        .trim()
        .parse::<f64>()
        .expect("a number") as u64
}

async fn admin(
    app: &TestApp,
    t: &TenantConfig,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let (s, b, _) = app
        .call(method.clone(), host(t), path, Some(&t.admin_key), body)
        .await;
    assert!((200..300).contains(&s), "{method} {path}: {s} {b}");
    b
}

async fn create(app: &TestApp, t: &TenantConfig, title: &str, sku: &str) -> String {
    let body = product(title, "a product of this test", &[], &[(sku, 1500, &[])]);
    let p = admin(app, t, Method::POST, "/api/v1/admin/products", Some(body)).await;
    p["id"].as_str().expect("id").to_owned()
}

/// The titles `GET /api/v1/products` lists.
async fn titles(app: &TestApp, t: &TenantConfig) -> Vec<String> {
    let (s, body, _) = app
        .call(
            Method::GET,
            host(t),
            "/api/v1/products?limit=100",
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let mut titles: Vec<String> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["title"].as_str().expect("title").to_owned())
        .collect();
    titles.sort();
    titles
}

/// Three pooled tenants on one set of tables, each with `products` products written through
/// the writer replica.
async fn pooled_tenants(writer_of: &str, products: usize) -> (TestApp, Vec<TenantConfig>) {
    let dsn = app_database().await;
    let tables = unique(&format!("sf-{writer_of}-"));
    let tenants: Vec<TenantConfig> = ["ash", "birch", "cedar"]
        .iter()
        .map(|name| tenant(name, &dsn, &tables))
        .collect();
    let writer = TestApp::start(test_settings(), &tenants).await;
    for t in &tenants {
        for i in 0..products {
            create(
                &writer,
                t,
                &format!("{} chair {i}", t.display_name),
                &format!("{}-{i}", t.display_name.to_uppercase()),
            )
            .await;
        }
    }
    (writer, tenants)
}

fn pool_settings(budget: usize) -> Settings {
    Settings {
        catalog_memory_bytes: budget,
        ..test_settings()
    }
}

#[tokio::test]
async fn a_replica_is_ready_before_any_catalog_is_loaded_and_loads_a_tenant_on_its_first_request() {
    let (_writer, tenants) = pooled_tenants("ready", 3).await;
    let pool = TestApp::start(pool_settings(64 << 20), &tenants).await;
    let (s, body, _) = pool
        .call(Method::GET, "anything", "/readyz", None, None)
        .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(metric(&pool, "catalog_snapshots_loaded").await, 0);
    assert_eq!(metric(&pool, "catalog_bytes_held").await, 0);
    assert_eq!(metric(&pool, "catalog_memory_budget_bytes").await, 64 << 20);

    assert_eq!(titles(&pool, &tenants[0]).await.len(), 3);
    assert_eq!(metric(&pool, "catalog_snapshots_loaded").await, 1);
    assert!(metric(&pool, "catalog_bytes_held").await > 3 * 300);
    assert_eq!(metric(&pool, "catalog_loads_total").await, 1);
    assert_eq!(metric(&pool, "catalog_cold_read_seconds_count").await, 1);
    // The next request is served from memory.
    titles(&pool, &tenants[0]).await;
    assert_eq!(metric(&pool, "catalog_cold_read_seconds_count").await, 1);
}

#[tokio::test]
async fn concurrent_first_requests_to_a_cold_tenant_load_its_catalog_once() {
    let (_writer, tenants) = pooled_tenants("cold", 5).await;
    let pool = TestApp::start(pool_settings(64 << 20), &tenants).await;
    let t = &tenants[1];
    let pages = futures::future::join_all((0..32).map(|_| titles(&pool, t))).await;
    assert!(pages.iter().all(|p| p.len() == 5 && *p == pages[0]));
    assert_eq!(metric(&pool, "catalog_loads_total").await, 1, "one load");
    assert_eq!(metric(&pool, "catalog_snapshots_loaded").await, 1);
    let cold = metric(&pool, "catalog_cold_read_seconds_count").await;
    assert!(
        (2..=32).contains(&cold),
        "{cold} requests found the tenant cold: several waited for that one load"
    );
}

#[tokio::test]
async fn over_its_budget_a_replica_evicts_the_least_recently_read_tenant_and_reloads_it_current() {
    let (writer, tenants) = pooled_tenants("evict", 4).await;
    let [ash, birch, cedar] = [&tenants[0], &tenants[1], &tenants[2]];
    // What one tenant's snapshot is charged, measured on a replica without a budget.
    let probe = TestApp::start(test_settings(), &tenants).await;
    titles(&probe, ash).await;
    let one = metric(&probe, "catalog_bytes_held").await as usize;
    // Room for two of the three (which differ a little in size), not for all three.
    let budget = one * 27 / 10;
    let pool = TestApp::start(pool_settings(budget), &tenants).await;
    titles(&pool, ash).await;
    titles(&pool, birch).await;
    assert_eq!(metric(&pool, "catalog_evictions_total").await, 0);
    titles(&pool, ash).await;
    // Cedar's first request takes the replica over its budget: birch, the least recently
    // read, goes.
    titles(&pool, cedar).await;
    assert_eq!(metric(&pool, "catalog_evictions_total").await, 1);
    assert_eq!(metric(&pool, "catalog_snapshots_loaded").await, 2);
    assert!(metric(&pool, "catalog_bytes_held").await as usize <= budget);
    assert_eq!(metric(&pool, "catalog_loads_total").await, 3);

    // Ash stays loaded and follows the change feed: a write on the other replica reaches it
    // as an incremental apply, without a full load.
    let applies = metric(&pool, "catalog_incremental_applies_total").await;
    create(&writer, ash, "ash lamp", "ASH-LAMP").await;
    eventually(
        "the pool replica shows ash's new product",
        Duration::from_secs(10),
        || async {
            Ok(titles(&pool, ash)
                .await
                .contains(&"ash lamp".to_owned())
                .then_some(()))
        },
    )
    .await
    .unwrap();
    assert_eq!(metric(&pool, "catalog_loads_total").await, 3);
    assert!(metric(&pool, "catalog_incremental_applies_total").await > applies);

    // Birch changes while evicted; its next request loads it whole, with the change, once.
    let renamed = create(&writer, birch, "birch stool", "BIRCH-STOOL").await;
    let before = titles(&probe, birch).await;
    assert!(before.contains(&"birch stool".to_owned()));
    let cold = metric(&pool, "catalog_cold_read_seconds_count").await;
    let page = titles(&pool, birch).await;
    assert_eq!(page, before, "the evicted tenant reloads current data");
    assert_eq!(metric(&pool, "catalog_loads_total").await, 4);
    assert_eq!(
        metric(&pool, "catalog_cold_read_seconds_count").await,
        cold + 1
    );
    // Loading birch evicted cedar (read before ash's catch-up reads), never another tenant's
    // data in birch's answer.
    assert_eq!(metric(&pool, "catalog_evictions_total").await, 2);
    assert!(page.iter().all(|t| t.starts_with("birch ")), "{page:?}");
    assert!(metric(&pool, "catalog_bytes_held").await as usize <= budget);
    let (s, _, _) = pool
        .call(
            Method::GET,
            host(birch),
            &format!("/api/v1/products/{renamed}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
}
