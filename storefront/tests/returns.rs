//! Returns and partial refunds, fulfilment tracking (issue 15 item 6): the merchant refunds
//! chosen lines or an amount with a reason, through the provider (stripe-mock) or by hand,
//! restocking returned units when asked; a retry refunds nothing twice; the order turns
//! refunded once its whole total is back; carrier and tracking number reach the shopper.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::time::Duration;

use common::{TestApp, host};
use emporium_storefront::payments::stripe::sign;
use emporium_tenant_config::TenantConfig;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

fn eur(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "EUR"})
}

async fn refund(
    app: &TestApp,
    t: &TenantConfig,
    order: &str,
    key: &str,
    body: Value,
) -> (u16, Value) {
    let res = app
        .req(
            Method::POST,
            host(t),
            &format!("/api/v1/admin/orders/{order}/refunds"),
        )
        .bearer_auth(&t.admin_key)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = res.status().as_u16();
    (s, res.json().await.unwrap_or(Value::Null))
}

async fn paid_stripe_order(
    app: &TestApp,
    t: &TenantConfig,
    lines: &[(&str, u32)],
    key: &str,
) -> String {
    let b = place_order(app, host(t), lines, key).await;
    let id = b["order"]["id"].as_str().unwrap().to_owned();
    let intent = b["payment"]["reference"].as_str().unwrap();
    let event = json!({"id": format!("evt_{key}"), "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent, "metadata": {"order_id": id}}}})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let res = app
        .req(Method::POST, host(t), "/api/v1/payments/webhook")
        .header(
            "Stripe-Signature",
            format!("t={now},v1={}", sign(WEBHOOK_SECRET, now, event.as_bytes())),
        )
        .body(event)
        .send()
        .await
        .unwrap();
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(outcome["outcome"], "paid", "{outcome}");
    id
}

#[tokio::test]
async fn chosen_lines_then_the_rest_are_refunded_through_stripe_with_restock() {
    let t = store("returns", Some(stripe_payments())).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("RET-A", 1000, 10), ("RET-B", 500, 10)]).await;
    let id = paid_stripe_order(&app, &t, &[("RET-A", 2), ("RET-B", 1)], "ret1").await;
    assert_eq!(stock(&app, &t, "RET-A").await, 8);

    // Bad requests are named.
    let (s, b) = refund(
        &app,
        &t,
        &id,
        "k0",
        json!({"lines": [{"sku": "RET-A", "quantity": 3}], "reason": "damaged"}),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("lines[0].quantity")),
        "{b}"
    );
    let (s, b) = refund(
        &app,
        &t,
        &id,
        "k0",
        json!({"lines": [{"sku": "NOPE", "quantity": 1}], "reason": "x"}),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("lines[0].sku")), "{b}");
    let (s, b) = refund(
        &app,
        &t,
        &id,
        "k0",
        json!({"amount": eur(999_999), "reason": "x"}),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("amount")), "{b}");

    // One unit of A came back damaged: 10.00 refunded at Stripe, put back on sale.
    let body = json!({"lines": [{"sku": "RET-A", "quantity": 1}], "reason": "arrived damaged", "restock": true});
    let (s, o) = refund(&app, &t, &id, "k1", body.clone()).await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["status"], "paid", "partly refunded stays paid");
    assert_eq!(o["refunded"], eur(1000));
    assert_eq!(o["refunds"][0]["reason"], "arrived damaged");
    assert!(
        o["refunds"][0]["provider_ref"]
            .as_str()
            .unwrap()
            .starts_with("re_"),
        "{o}"
    );
    assert_eq!(stock(&app, &t, "RET-A").await, 9);
    // The same request again (a retry): nothing more refunded or restocked.
    let (s, again) = refund(&app, &t, &id, "k1", body).await;
    assert_eq!(s, 200, "{again}");
    assert_eq!(again["refunds"].as_array().map(Vec::len), Some(1));
    assert_eq!(stock(&app, &t, "RET-A").await, 9);

    // The rest as an amount, without restock: the order is refunded.
    let (s, o) = refund(
        &app,
        &t,
        &id,
        "k2",
        json!({"amount": eur(1500), "reason": "goodwill"}),
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(
        (o["status"].as_str(), &o["refunded"]),
        (Some("refunded"), &eur(2500))
    );
    assert_eq!(stock(&app, &t, "RET-B").await, 9, "not restocked");
    let (s, b) = refund(
        &app,
        &t,
        &id,
        "k3",
        json!({"amount": eur(1), "reason": "more"}),
    )
    .await;
    assert_eq!(s, 409, "{b}");
    // The whole-order refund refuses a partly refunded order.
    let id2 = paid_stripe_order(&app, &t, &[("RET-B", 2)], "ret2").await;
    assert_eq!(
        refund(
            &app,
            &t,
            &id2,
            "p1",
            json!({"amount": eur(100), "reason": "late"})
        )
        .await
        .0,
        200
    );
    let (s, b) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{id2}/refund")).await;
    assert_eq!((s, b["field"].as_str()), (422, Some("refunds")), "{b}");
}

#[tokio::test]
async fn the_shopper_sees_carrier_and_tracking_number() {
    let t = store("tracking", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("TRACK-1", 700, 5)]).await;
    let h = host(&t);
    let b = place_order(&app, h, &[("TRACK-1", 1)], "t1").await;
    let id = b["order"]["id"].as_str().unwrap();
    assert_eq!(
        admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/mark-paid"))
            .await
            .0,
        200
    );
    let fulfil = |body: Value| {
        app.req(
            Method::POST,
            h,
            &format!("/api/v1/admin/orders/{id}/fulfil"),
        )
        .bearer_auth(&t.admin_key)
        .json(&body)
        .send()
    };
    let res = fulfil(json!({"carrier": "DHL", "tracking_number": " "}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 422);
    let res = fulfil(json!({"carrier": "DHL", "tracking_number": "00340434161094042557"}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (s, o, _) = app
        .call(Method::GET, h, &format!("/api/v1/orders/{id}"), None, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(o["status"], "fulfilled");
    assert_eq!(o["fulfilment"]["carrier"], "DHL");
    assert_eq!(o["fulfilment"]["tracking_number"], "00340434161094042557");
    assert!(o["fulfilment"]["fulfilled_at"].is_string(), "{o}");

    // A manual-payment refund is recorded (the merchant pays it back themselves).
    let (s, o) = refund(
        &app,
        &t,
        id,
        "m1",
        json!({"amount": eur(200), "reason": "late delivery"}),
    )
    .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["refunds"][0]["provider_ref"], Value::Null);
    assert_eq!(o["status"], "fulfilled");
}
