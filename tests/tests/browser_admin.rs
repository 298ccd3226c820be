//! The merchant web app in a real browser: headless Debian chromium driven by playwright-core
//! (`tests/browser/admin.mjs`) against the real `emporium-storefront` binary serving one store
//! from a tenants file, on the shared stack's PostgreSQL, Redis and moto. The owner's
//! invitation comes from the admin API as the platform would mint it; the journey accepts it,
//! edits a price and sees it in the shop, imports a CSV with a bad row (the row error shown,
//! the good product in the list), invites a clerk with `orders` only, and checks the
//! clerk cannot refund. Screenshots land in `tests/artifacts/browser-admin/`.

use std::time::Duration;

use emporium_integration_tests::{
    BrowserStore, app_database, ensure_browser, run_journey, tenant, unique, workspace_root,
};
use reqwest::{Method, StatusCode};
use serde_json::json;

const JOURNEY_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn an_owner_and_a_clerk_run_the_store_in_headless_chromium() {
    ensure_browser();
    let artifacts = workspace_root().join("tests/artifacts/browser-admin");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("create the artifacts directory");

    let mut tenant = tenant("admin", &app_database().await, &unique("browser-admin-"));
    tenant.display_name = "Harbour Supply".into();
    tenant.domains = vec![format!("{}.localhost", tenant.tenant_id)];
    tenant.owner_email = Some("olive@example.com".into());
    let shop = BrowserStore::start(&tenant, &artifacts).await;
    let store = &shop.client;

    // A product and a paid (manual) order, through the admin API.
    let sku = unique("LAMP-").to_uppercase();
    store
        .admin(
            Method::POST,
            "/api/v1/admin/products",
            Some(
                json!({"title": "Brass Lamp", "description": "Warm light.", "variants": [
                {"sku": sku, "price": {"amount_minor": 4900, "currency": "EUR"}, "images": []}]}),
            ),
        )
        .await;
    store
        .admin(
            Method::PUT,
            &format!("/api/v1/admin/inventory/{sku}"),
            Some(json!({"available": 8})),
        )
        .await;
    let (s, cart) = store.call(Method::POST, "/api/v1/carts", None, None).await;
    assert_eq!(s, StatusCode::CREATED, "{cart}");
    let cart = cart["id"].as_str().unwrap().to_owned();
    let (s, b) = store
        .call(
            Method::POST,
            &format!("/api/v1/carts/{cart}/items"),
            None,
            Some(json!({"sku": sku, "quantity": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let res = store
        .req(Method::POST, &format!("/api/v1/carts/{cart}/checkout"))
        .header("Idempotency-Key", unique("admin-co-"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let placed: serde_json::Value = res.json().await.unwrap();
    let order = placed["order"]["id"].as_str().unwrap().to_owned();
    store
        .admin(
            Method::POST,
            &format!("/api/v1/admin/orders/{order}/mark-paid"),
            None,
        )
        .await;

    // The owner's one-time link, as the platform mints it with the store's admin key.
    let invitation = store
        .admin(Method::POST, "/api/v1/admin/owner-invitation", None)
        .await;
    let link = invitation["url"]
        .as_str()
        .expect("invitation url")
        .to_owned();

    let (status, output) = run_journey(
        "admin.mjs",
        &[
            "--base",
            &shop.base,
            "--owner-link",
            &link,
            "--sku",
            &sku,
            "--product",
            "Brass Lamp",
            "--order",
            &order,
        ],
        &artifacts,
        JOURNEY_TIMEOUT,
    )
    .await;

    // The journey's price change and its import reached the catalog the API serves.
    let (s, products) = store
        .call(Method::GET, "/api/v1/products", None, None)
        .await;
    drop(shop);
    assert!(
        status.success(),
        "the admin journey failed ({status}):\n{output}\nScreenshots and the runtime log: {}",
        artifacts.display()
    );
    assert_eq!(s, StatusCode::OK);
    let titled = |title: &str| {
        products["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["title"] == title)
            .cloned()
            .unwrap_or_else(|| panic!("no {title} in {products}"))
    };
    assert_eq!(
        titled("Brass Lamp")["variants"][0]["price"]["amount_minor"],
        3175
    );
    // The journey's import: the good row is a product, the bad one is not.
    assert_eq!(titled("Imported Vase")["handle"], "imported-vase");
    assert!(!products.to_string().contains("BROKEN-1"), "{products}");
}
