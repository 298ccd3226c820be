//! Checkout test support: a store with products and stock, carts, checkout calls.
#![allow(dead_code)]

use std::time::Duration;

use emporium_integration_tests::Stack;
use emporium_storefront::Settings;
use emporium_tenant_config::{PaymentProvider, Payments, TenantConfig};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestApp, app_database, host, product, tenant, test_settings, unique};

pub const WEBHOOK_SECRET: &str = "whsec_emporium_test";

pub fn stripe_payments() -> Payments {
    Payments {
        provider: PaymentProvider::Stripe,
        secret_key: Some("sk_test_123".into()),
        webhook_secret: Some(WEBHOOK_SECRET.into()),
        api_base: Some(
            Stack::get()
                .var("STRIPE_API_BASE")
                .expect("STRIPE_API_BASE")
                .to_owned(),
        ),
    }
}

/// A fresh database and tenant (manual payments unless `payments` says otherwise).
pub async fn store(name: &str, payments: Option<Payments>) -> TenantConfig {
    let dsn = app_database().await;
    let mut t = tenant(name, &dsn, &unique("sf-co-"));
    if let Some(p) = payments {
        t.payments = p;
    }
    t
}

pub fn settings(reservation_ttl: Duration) -> Settings {
    Settings {
        reservation_ttl,
        pg_pool_size: 8,
        ..test_settings()
    }
}

/// Creates one product per SKU at `price` cents and sets its stock.
pub async fn stock_skus(app: &TestApp, t: &TenantConfig, skus: &[(&str, i64, i64)]) {
    for (sku, price, available) in skus {
        let (s, b, _) = app
            .call(
                Method::POST,
                host(t),
                "/api/v1/admin/products",
                Some(&t.admin_key),
                Some(product(
                    &format!("Item {sku}"),
                    "A thing",
                    &[],
                    &[(sku, *price, &[])],
                )),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        set_stock(app, t, sku, *available).await;
    }
}

pub async fn set_stock(app: &TestApp, t: &TenantConfig, sku: &str, available: i64) {
    let (s, b, _) = app
        .call(
            Method::PUT,
            host(t),
            &format!("/api/v1/admin/inventory/{sku}"),
            Some(&t.admin_key),
            Some(json!({ "available": available })),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

pub async fn stock(app: &TestApp, t: &TenantConfig, sku: &str) -> i64 {
    let (s, b, _) = app
        .call(
            Method::GET,
            host(t),
            &format!("/api/v1/admin/inventory/{sku}"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b["available"].as_i64().expect("available")
}

/// A guest cart holding the lines, added in the order given.
pub async fn cart(app: &TestApp, h: &str, lines: &[(&str, u32)]) -> String {
    let (s, b, _) = app.call(Method::POST, h, "/api/v1/carts", None, None).await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().expect("cart id").to_owned();
    for (sku, qty) in lines {
        let (s, b, _) = app
            .call(
                Method::POST,
                h,
                &format!("/api/v1/carts/{id}/items"),
                None,
                Some(json!({"sku": sku, "quantity": qty})),
            )
            .await;
        assert_eq!(s, 200, "{b}");
    }
    id
}

/// `POST carts/{id}/checkout` with the key; returns status, body and whether it was a replay.
pub async fn checkout(
    app: &TestApp,
    h: &str,
    cart: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, bool) {
    let mut req = app.req(Method::POST, h, &format!("/api/v1/carts/{cart}/checkout"));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.expect("checkout request");
    let status = res.status().as_u16();
    let replayed = res.headers().contains_key("idempotent-replayed");
    let text = res.text().await.unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        replayed,
    )
}

/// A guest cart with `lines` checked out with Idempotency-Key `key`: the 201 answer's body.
pub async fn place_order(app: &TestApp, h: &str, lines: &[(&str, u32)], key: &str) -> Value {
    let c = cart(app, h, lines).await;
    let (s, b, _) = checkout(app, h, &c, Some(key), None).await;
    assert_eq!(s, 201, "{b}");
    b
}

pub async fn admin_post(app: &TestApp, t: &TenantConfig, path: &str) -> (u16, Value) {
    let (s, b, _) = app
        .call(Method::POST, host(t), path, Some(&t.admin_key), None)
        .await;
    (s, b)
}

pub async fn admin_order(app: &TestApp, t: &TenantConfig, id: &str) -> Value {
    let (s, b, _) = app
        .call(
            Method::GET,
            host(t),
            &format!("/api/v1/admin/orders/{id}"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b
}
