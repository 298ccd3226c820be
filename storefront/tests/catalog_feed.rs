//! Incremental catalog updates across replicas (issue 16 item 4), against the real stack: two
//! runtimes serving one tenant from the same DynamoDB tables (moto) and Redis. A write on one
//! must reach the other through the change feed (the changed products re-read and applied to
//! its snapshot, no full catalog load), search must follow renames and deletes, and a replica
//! the feed has been trimmed past must load the whole catalog once and then follow the feed
//! again. The runtimes' own counters (`/metrics`) tell full loads from incremental applies.

mod common;

use std::time::Duration;

use common::{TestApp, app_database, host, product, tenant, test_settings, unique};
use emporium_integration_tests::eventually;
use emporium_tenant_config::TenantConfig;
use reqwest::Method;
use serde_json::Value;

/// A counter of the runtime's `/metrics` (`storefront_<name>_total`).
async fn counter(app: &TestApp, name: &str) -> u64 {
    let text = app
        .req(Method::GET, "anything", "/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    let prefix = format!("storefront_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
        .trim()
        .parse::<f64>()
        .expect("a number") as u64
}

/// (full loads, incremental applies, feed gaps) of a runtime.
async fn loads(app: &TestApp) -> (u64, u64, u64) {
    (
        counter(app, "catalog_loads").await,
        counter(app, "catalog_incremental_applies").await,
        counter(app, "catalog_feed_gaps").await,
    )
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
    let body = product(title, "", &[], &[(sku, 1500, &[])]);
    let p = admin(app, t, Method::POST, "/api/v1/admin/products", Some(body)).await;
    p["id"].as_str().expect("id").to_owned()
}

/// The ids `GET /api/v1/search?q=` finds.
async fn search(app: &TestApp, t: &TenantConfig, q: &str) -> Vec<String> {
    let (s, body, _) = app
        .call(
            Method::GET,
            host(t),
            &format!("/api/v1/search?q={q}&limit=100"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["product"]["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The number of products `GET /api/v1/products` lists.
async fn listed(app: &TestApp, t: &TenantConfig) -> usize {
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
    body["items"].as_array().expect("items").len()
}

#[tokio::test]
async fn a_write_on_one_replica_reaches_the_other_through_the_feed_without_a_full_load() {
    let dsn = app_database().await;
    let t = tenant("feed", &dsn, &unique("sf-feed-"));
    let one = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let two = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let lamp = create(&one, &t, "Brass lamp", "LAMP-1").await;
    let mug = create(&one, &t, "Ceramic mug", "MUG-1").await;
    // Replica two loads the catalog once.
    assert_eq!(search(&two, &t, "brass").await, vec![lamp.clone()]);
    let (two_loads, two_applies, _) = loads(&two).await;
    assert_eq!(two_loads, 1);

    let (one_loads, one_applies, _) = loads(&one).await;
    assert_eq!(one_loads, 1, "the first write loaded the empty catalog");
    // Replica one renames the lamp, deletes the mug and adds a scarf.
    let body = product("Copper kettle", "", &[], &[("LAMP-1", 1500, &[])]);
    admin(
        &one,
        &t,
        Method::PUT,
        &format!("/api/v1/admin/products/{lamp}"),
        Some(body),
    )
    .await;
    admin(
        &one,
        &t,
        Method::DELETE,
        &format!("/api/v1/admin/products/{mug}"),
        None,
    )
    .await;
    let scarf = create(&one, &t, "Wool scarf", "SCARF-1").await;
    // The writer answered each write from its own snapshot, updated in place.
    assert_eq!(search(&one, &t, "kettle").await, vec![lamp.clone()]);
    assert_eq!(
        loads(&one).await,
        (1, one_applies + 3, 0),
        "no full load: each write applied"
    );

    // Replica two hears of the change (Redis notice) and catches up from the feed.
    eventually(
        "replica two finds the scarf",
        Duration::from_secs(10),
        || async { Ok((search(&two, &t, "scarf").await == vec![scarf.clone()]).then_some(())) },
    )
    .await
    .unwrap();
    assert_eq!(
        search(&two, &t, "kettle").await,
        vec![lamp.clone()],
        "by its new name"
    );
    assert!(
        search(&two, &t, "brass").await.is_empty(),
        "not by its old one"
    );
    assert!(
        search(&two, &t, "ceramic").await.is_empty(),
        "the deleted mug is gone"
    );
    let (s, _, _) = two
        .call(
            Method::GET,
            host(&t),
            &format!("/api/v1/products/{mug}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(listed(&two, &t).await, 2);
    let (loads_after, applies_after, gaps) = loads(&two).await;
    assert_eq!(loads_after, two_loads, "no full load on replica two");
    assert!(applies_after > two_applies, "it applied the feed");
    assert_eq!(gaps, 0);
}

#[tokio::test]
async fn concurrent_writes_on_two_replicas_all_reach_both() {
    let dsn = app_database().await;
    let t = tenant("feed-race", &dsn, &unique("sf-feedr-"));
    let one = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let two = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    assert_eq!(listed(&one, &t).await, 0);
    assert_eq!(listed(&two, &t).await, 0);
    let writes = (0..12).map(|i| {
        let (app, t) = (if i % 2 == 0 { &one } else { &two }, &t);
        async move { create(app, t, &format!("Item {i}"), &format!("RACE-{i}")).await }
    });
    let ids = futures::future::join_all(writes).await;
    assert_eq!(ids.len(), 12);
    for app in [&one, &two] {
        eventually(
            "every write on both replicas",
            Duration::from_secs(10),
            || async { Ok((listed(app, &t).await == 12).then_some(())) },
        )
        .await
        .unwrap();
        let (full, applies, gaps) = loads(app).await;
        assert_eq!((full, gaps), (1, 0), "no full load after the first");
        assert!(applies >= 1, "{applies} applies");
    }
}

#[tokio::test]
async fn a_replica_the_feed_was_trimmed_past_loads_the_whole_catalog_once() {
    let dsn = app_database().await;
    let t = tenant("feed-trim", &dsn, &unique("sf-feedt-"));
    // The writer keeps only the two newest feed entries.
    let short_feed = emporium_storefront::Settings {
        catalog_feed_len: 2,
        ..test_settings()
    };
    let one = TestApp::start(short_feed, std::slice::from_ref(&t)).await;
    let two = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    create(&one, &t, "First", "TRIM-0").await;
    assert_eq!(listed(&two, &t).await, 1);
    assert_eq!(loads(&two).await.0, 1);
    // Four more writes while replica two serves nobody: the entries it needs are trimmed.
    for i in 1..5 {
        create(&one, &t, &format!("Next {i}"), &format!("TRIM-{i}")).await;
    }
    eventually(
        "replica two shows all five",
        Duration::from_secs(10),
        || async { Ok((listed(&two, &t).await == 5).then_some(())) },
    )
    .await
    .unwrap();
    let (full, applies, gaps) = loads(&two).await;
    assert_eq!(
        (full, applies, gaps),
        (2, 0, 1),
        "one full load for the gap"
    );
    // Then it follows the feed again.
    let last = create(&one, &t, "Last", "TRIM-5").await;
    eventually(
        "replica two finds the last product",
        Duration::from_secs(10),
        || async { Ok((search(&two, &t, "last").await == vec![last.clone()]).then_some(())) },
    )
    .await
    .unwrap();
    let (full, applies, _) = loads(&two).await;
    assert_eq!((full, applies), (2, 1));
}

#[tokio::test]
async fn an_import_batch_is_one_change_applied_on_both_replicas() {
    let dsn = app_database().await;
    let t = tenant("feed-batch", &dsn, &unique("sf-feedb-"));
    let one = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let two = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    create(&one, &t, "Existing", "BATCH-X").await;
    assert_eq!(listed(&two, &t).await, 1);
    let drafts: Vec<emporium_storefront::domain::catalog::ProductDraft> = (0..40)
        .map(|i| {
            let sku = format!("BATCH-{i}");
            serde_json::from_value(product(
                &format!("Imported {i}"),
                "",
                &[],
                &[(&sku, 900, &[])],
            ))
            .expect("a draft")
        })
        .collect();
    let runtime = one.state.tenants.resolve(host(&t)).expect("tenant");
    let (_, applies_before, _) = loads(&one).await;
    let created = one
        .state
        .catalog_admin(&runtime)
        .create_products(drafts.clone())
        .await
        .expect("batch");
    assert_eq!(created.len(), 40);
    assert_eq!(
        listed(&one, &t).await,
        41,
        "the writer reads its batch at once"
    );
    assert_eq!(
        loads(&one).await,
        (1, applies_before + 1, 0),
        "one apply for the batch"
    );
    // The same SKUs again: refused as a whole, nothing stored.
    let again = one
        .state
        .catalog_admin(&runtime)
        .create_products(drafts)
        .await;
    assert!(again.is_err());
    eventually(
        "replica two shows the batch",
        Duration::from_secs(10),
        || async { Ok((listed(&two, &t).await == 41).then_some(())) },
    )
    .await
    .unwrap();
    assert_eq!(search(&two, &t, "imported").await.len(), 40);
    let (full, _, gaps) = loads(&two).await;
    assert_eq!((full, gaps), (1, 0));
}
