//! A shopper's journey in a real browser: headless Debian chromium, driven by playwright-core
//! (`tests/browser/journey.mjs`), against the real `emporium-storefront` binary serving one store
//! from a tenants file, with PostgreSQL, Redis and DynamoDB (moto) from the shared local stack.
//!
//! The store answers on `http://<tenant>.localhost:<port>` (Chromium resolves `*.localhost` to
//! loopback). Screenshots of every step are kept in `tests/artifacts/browser/<store>/`, with the
//! runtime's log and the journey's output beside them.
//!
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules`: runs `scripts/install-browser.sh`
//! when either is missing, and fails saying so when that does not help.

use std::time::Duration;

use emporium_integration_tests::{
    BrowserStore, app_database, ensure_browser, run_journey, seed_journey_shop, tenant, unique,
    workspace_root,
};

const STORE: &str = "lumen";
const DISPLAY_NAME: &str = "Lumen Goods";
const JOURNEY_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_shopper_buys_in_headless_chromium() {
    ensure_browser();
    let artifacts = workspace_root().join("tests/artifacts/browser").join(STORE);
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("create the artifacts directory");

    // One store, unique per run: its id, host, tables and database.
    let mut tenant = tenant("browser", &app_database().await, &unique("browser-"));
    tenant.display_name = DISPLAY_NAME.into();
    tenant.domains = vec![format!("{}.localhost", tenant.tenant_id)];
    tenant.theme_color = Some("#0f766e".into());
    let shop = BrowserStore::start(&tenant, &artifacts).await;
    let store = &shop.client;

    // The journey's shop: a small catalog, German shipping and VAT, a welcome code.
    let sku = seed_journey_shop(store).await;

    // The journey in chromium.
    let (status, output) = run_journey(
        "journey.mjs",
        &[
            "--base",
            &shop.base,
            "--search",
            "ceramik",
            "--product",
            "Ceramic Mug",
            "--sku",
            &sku,
            "--store",
            DISPLAY_NAME,
            "--admin-key",
            &tenant.admin_key,
        ],
        &artifacts,
        JOURNEY_TIMEOUT,
    )
    .await;
    drop(shop);
    assert!(
        status.success(),
        "the browser journey failed ({status}):\n{output}\nScreenshots and the runtime log: {}",
        artifacts.display()
    );
    let shots = std::fs::read_dir(&artifacts)
        .expect("artifacts")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert!(shots >= 10, "expected a screenshot per step, found {shots}");
}
