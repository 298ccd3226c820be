//! Checkout, orders, payments and stock against the real stack: PostgreSQL (app role with RLS),
//! moto (DynamoDB, SQS) and stripe-mock.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::time::Duration;

use common::{TestApp, host, unique};
use emporium_integration_tests::{Stack, eventually};
use emporium_storefront::{payments::stripe::sign, workers};
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

const TTL: Duration = Duration::from_secs(900);

#[tokio::test]
async fn idempotent_checkout_replays_and_refuses_a_different_body() {
    let t = store("idem", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("IDEM-1", 1250, 5)]).await;
    let h = host(&t);
    let c = cart(&app, h, &[("IDEM-1", 2)]).await;

    // No key: refused, naming the header.
    let (s, b, _) = checkout(&app, h, &c, None, None).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["field"], "Idempotency-Key");

    let body = json!({"email": "ann@example.com"});
    let (s1, first, replay1) = checkout(&app, h, &c, Some("key-1"), Some(body.clone())).await;
    assert_eq!(s1, 201, "{first}");
    assert!(!replay1);
    assert_eq!(first["order"]["status"], "pending_payment");
    assert_eq!(
        first["order"]["total"],
        json!({"amount_minor": 2500, "currency": "EUR"})
    );
    assert_eq!(
        first["order"]["lines"][0]["unit_price"]["amount_minor"],
        1250
    );
    assert_eq!(first["payment"]["provider"], "manual");

    // Same key, same body: the same response, and no second reservation.
    let (s2, second, replay2) = checkout(&app, h, &c, Some("key-1"), Some(body)).await;
    assert_eq!(s2, 201);
    assert!(replay2);
    assert_eq!(second, first);
    assert_eq!(stock(&app, &t, "IDEM-1").await, 3);

    // Same key, different body: 422.
    let (s3, b3, _) = checkout(
        &app,
        h,
        &c,
        Some("key-1"),
        Some(json!({"email": "bob@example.com"})),
    )
    .await;
    assert_eq!(s3, 422, "{b3}");
    assert_eq!(b3["field"], "Idempotency-Key");
    assert_eq!(stock(&app, &t, "IDEM-1").await, 3);

    // The order is visible to the guest by id and to the merchant.
    let id = first["order"]["id"].as_str().unwrap();
    let (s, o, _) = app
        .call(Method::GET, h, &format!("/api/v1/orders/{id}"), None, None)
        .await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(o["id"], id);
    let (s, list, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/admin/orders?status=pending_payment",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn out_of_stock_names_the_sku_and_takes_nothing() {
    let t = store("oos", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("OOS-A", 100, 5), ("OOS-B", 100, 1)]).await;
    let h = host(&t);
    let c = cart(&app, h, &[("OOS-A", 2), ("OOS-B", 2)]).await;
    let (s, b, _) = checkout(&app, h, &c, Some("k"), None).await;
    assert_eq!(s, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("OOS-B"), "{b}");
    assert_eq!(
        stock(&app, &t, "OOS-A").await,
        5,
        "partial reservation rolled back"
    );
    assert_eq!(stock(&app, &t, "OOS-B").await, 1);
    // Counted for the chart's stock-out alert (`EmporiumStockOut`).
    let metrics = app
        .req(Method::GET, "anything", "/metrics")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    assert!(
        metrics.contains("storefront_checkouts_total{outcome=\"out_of_stock\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn manual_lifecycle_cancel_refund_and_illegal_transitions() {
    let t = store("life", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("LIFE-1", 500, 10)]).await;
    let h = host(&t);
    let order = |b: &Value| b["order"]["id"].as_str().unwrap().to_owned();

    // Cancel an unpaid order: the reservation is released.
    let b = place_order(&app, h, &[("LIFE-1", 3)], "a").await;
    assert_eq!(stock(&app, &t, "LIFE-1").await, 7);
    let (s, b) = admin_post(
        &app,
        &t,
        &format!("/api/v1/admin/orders/{}/cancel", order(&b)),
    )
    .await;
    assert_eq!((s, b["status"].as_str()), (200, Some("cancelled")), "{b}");
    assert_eq!(stock(&app, &t, "LIFE-1").await, 10);
    // Cancelling twice is an illegal transition.
    let (s, b2) = admin_post(
        &app,
        &t,
        &format!("/api/v1/admin/orders/{}/cancel", b["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(s, 409, "{b2}");

    // Paid, then refunded before shipping: the units go back on sale.
    let b = place_order(&app, h, &[("LIFE-1", 4)], "b").await;
    let id = order(&b);
    let (s, p) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/mark-paid")).await;
    assert_eq!((s, p["status"].as_str()), (200, Some("paid")), "{p}");
    assert_eq!(
        stock(&app, &t, "LIFE-1").await,
        6,
        "payment commits, stock stays taken"
    );
    let (s, _) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/cancel")).await;
    assert_eq!(s, 409, "a paid order is refunded, not cancelled");
    let (s, r) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/refund")).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("refunded")), "{r}");
    assert_eq!(stock(&app, &t, "LIFE-1").await, 10);

    // Fulfilled, then refunded: shipped units do not come back.
    let b = place_order(&app, h, &[("LIFE-1", 1)], "c").await;
    let id = order(&b);
    assert_eq!(
        admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/mark-paid"))
            .await
            .0,
        200
    );
    assert_eq!(
        admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/fulfil"))
            .await
            .0,
        200
    );
    assert_eq!(
        admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/mark-paid"))
            .await
            .0,
        409
    );
    assert_eq!(
        admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/refund"))
            .await
            .0,
        200
    );
    assert_eq!(stock(&app, &t, "LIFE-1").await, 9);

    let (s, list, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/admin/orders?status=refunded&limit=1",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["orders"].as_array().unwrap().len(), 1);
    let cursor = list["next_cursor"].as_str().expect("a second page");
    let (s, next, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/admin/orders?status=refunded&limit=1&cursor={cursor}"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200, "{next}");
    assert_eq!(next["orders"].as_array().unwrap().len(), 1);
    assert_ne!(next["orders"][0]["id"], list["orders"][0]["id"]);
}

#[tokio::test]
async fn shopper_sees_own_orders_only() {
    let t = store("mine", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("MINE-1", 100, 10)]).await;
    let h = host(&t);
    let mut tokens = Vec::new();
    for email in ["ann@example.com", "bob@example.com"] {
        let (s, b) = app.register(h, email, "long-enough-pw").await;
        assert_eq!(s, 201, "{b}");
        let (s, b) = app.login(h, email, "long-enough-pw", None).await;
        assert_eq!(s, 200, "{b}");
        tokens.push(b["token"].as_str().expect("token").to_owned());
    }
    let (s, c, _) = app
        .call(Method::POST, h, "/api/v1/carts", Some(&tokens[0]), None)
        .await;
    assert!(s == 201 || s == 200, "{c}");
    let cart_id = c["id"].as_str().unwrap();
    let (s, _, _) = app
        .call(
            Method::POST,
            h,
            &format!("/api/v1/carts/{cart_id}/items"),
            Some(&tokens[0]),
            Some(json!({"sku": "MINE-1", "quantity": 1})),
        )
        .await;
    assert_eq!(s, 200);
    let res = app
        .req(
            Method::POST,
            h,
            &format!("/api/v1/carts/{cart_id}/checkout"),
        )
        .bearer_auth(&tokens[0])
        .header("Idempotency-Key", "mine-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let order: Value = res.json().await.unwrap();
    let id = order["order"]["id"].as_str().unwrap();

    let (s, mine, _) = app
        .call(Method::GET, h, "/api/v1/me/orders", Some(&tokens[0]), None)
        .await;
    assert_eq!(s, 200, "{mine}");
    assert_eq!(mine["orders"][0]["id"], id);
    let (s, theirs, _) = app
        .call(Method::GET, h, "/api/v1/me/orders", Some(&tokens[1]), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(theirs["orders"].as_array().unwrap().len(), 0);
    let (s, _, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/orders/{id}"),
            Some(&tokens[1]),
            None,
        )
        .await;
    assert_eq!(s, 404, "another customer's order is not found");
    let (s, _, _) = app
        .call(Method::GET, h, "/api/v1/me/orders", None, None)
        .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn expired_reservations_are_released_by_the_sweeper() {
    let t = store("exp", None).await;
    // Manual orders hold their stock until the merchant acts, unless a hold is set.
    let hold = emporium_storefront::Settings {
        manual_payment_hold: Some(Duration::from_secs(1)),
        ..settings(TTL)
    };
    let app = TestApp::start(hold, std::slice::from_ref(&t)).await;
    let sweeper = workers::sweeper::spawn(app.state.tenants.clone());
    stock_skus(&app, &t, &[("EXP-1", 100, 3)]).await;
    let h = host(&t);
    let b = place_order(&app, h, &[("EXP-1", 3)], "e").await;
    assert_eq!(stock(&app, &t, "EXP-1").await, 0);
    let id = b["order"]["id"].as_str().unwrap().to_owned();
    let status = eventually("order expires", Duration::from_secs(10), || {
        let (app, t, id) = (&app, &t, &id);
        async move {
            let o = admin_order(app, t, id).await;
            Ok((o["status"] == "expired").then_some(o["status"].clone()))
        }
    })
    .await
    .unwrap();
    assert_eq!(status, "expired");
    assert_eq!(stock(&app, &t, "EXP-1").await, 3);
    // A late payment for an expired order is refused.
    assert_eq!(
        admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/mark-paid"))
            .await
            .0,
        409
    );
    sweeper.abort();
}

fn signed(body: &str, t: i64) -> String {
    format!("t={t},v1={}", sign(WEBHOOK_SECRET, t, body.as_bytes()))
}

async fn webhook(app: &TestApp, h: &str, body: &str, signature: Option<String>) -> (u16, Value) {
    let mut req = app
        .req(Method::POST, h, "/api/v1/payments/webhook")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("Stripe-Signature", s);
    }
    let res = req.send().await.unwrap();
    let s = res.status().as_u16();
    (s, res.json().await.unwrap_or(Value::Null))
}

fn event(id: &str, kind: &str, order: &str) -> String {
    json!({"id": id, "type": kind, "data": {"object": {"id": "pi_x", "metadata": {"order_id": order}}}}).to_string()
}

/// The kinds of the tenant's unsent outbox events about `order`, oldest first (marks them sent).
async fn outbox_kinds(app: &TestApp, order: &str) -> Vec<String> {
    use emporium_storefront::domain::ports::OutboxStore as _;
    let tenant = app.state.tenants.all().into_iter().next().unwrap();
    let kinds = std::sync::Mutex::new(Vec::new());
    tenant
        .orders
        .relay_outbox(1000, |events| {
            for e in events {
                if e.payload["order"]["id"] == order {
                    kinds.lock().unwrap().push(e.kind);
                }
            }
            async { Ok::<(), std::convert::Infallible>(()) }
        })
        .await
        .unwrap();
    kinds.into_inner().unwrap()
}

#[tokio::test]
async fn stripe_payments_and_signed_webhooks() {
    let t = store("stripe", Some(stripe_payments())).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("STR-1", 999, 10)]).await;
    let h = host(&t);
    let now = chrono::Utc::now().timestamp();

    // Checkout starts a PaymentIntent at stripe-mock.
    let b = place_order(&app, h, &[("STR-1", 2)], "s1").await;
    assert_eq!(b["payment"]["provider"], "stripe");
    assert!(
        b["payment"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("pi_"),
        "{b}"
    );
    assert!(b["payment"]["client_secret"].as_str().is_some(), "{b}");
    let failed_order = b["order"]["id"].as_str().unwrap().to_owned();
    assert_eq!(stock(&app, &t, "STR-1").await, 8);

    // Bad, missing, expired signatures: 400, and nothing changes.
    let body = event("evt_fail_1", "payment_intent.payment_failed", &failed_order);
    let bad = format!("t={now},v1={}", "0".repeat(64));
    assert_eq!(webhook(&app, h, &body, Some(bad)).await.0, 400);
    assert_eq!(webhook(&app, h, &body, None).await.0, 400);
    assert_eq!(
        webhook(&app, h, &body, Some(signed(&body, now - 3600)))
            .await
            .0,
        400,
        "replayed outside tolerance"
    );
    assert_eq!(
        admin_order(&app, &t, &failed_order).await["status"],
        "pending_payment"
    );

    // Payment failure releases the stock.
    let (s, r) = webhook(&app, h, &body, Some(signed(&body, now))).await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (200, Some("payment_failed")),
        "{r}"
    );
    assert_eq!(stock(&app, &t, "STR-1").await, 10);

    // Success pays; the same event again is acknowledged and changes nothing.
    let b = place_order(&app, h, &[("STR-1", 1)], "s2").await;
    let paid_order = b["order"]["id"].as_str().unwrap().to_owned();
    let ok = event("evt_ok_1", "payment_intent.succeeded", &paid_order);
    let (s, r) = webhook(&app, h, &ok, Some(signed(&ok, now))).await;
    assert_eq!((s, r["outcome"].as_str()), (200, Some("paid")), "{r}");
    let (s, r) = webhook(&app, h, &ok, Some(signed(&ok, now + 1))).await;
    assert_eq!((s, r["outcome"].as_str()), (200, Some("duplicate")), "{r}");
    assert_eq!(stock(&app, &t, "STR-1").await, 9);
    // A Stripe order is not marked paid by hand.
    assert_eq!(
        admin_post(
            &app,
            &t,
            &format!("/api/v1/admin/orders/{failed_order}/mark-paid")
        )
        .await
        .0,
        409
    );

    // Refund goes through Stripe (stripe-mock) and restocks.
    let (s, r) = admin_post(
        &app,
        &t,
        &format!("/api/v1/admin/orders/{paid_order}/refund"),
    )
    .await;
    assert_eq!((s, r["status"].as_str()), (200, Some("refunded")), "{r}");
    assert_eq!(stock(&app, &t, "STR-1").await, 10);
}

#[tokio::test]
async fn stripe_client_confirm_and_capture_against_stripe_mock() {
    let base = Stack::get().var("STRIPE_API_BASE").unwrap();
    let client = emporium_storefront::payments::stripe::StripeClient::new(
        reqwest::Client::new(),
        Some(base),
        "sk_test_123",
    );
    let intent = client
        .create_intent(1000, "EUR", "order-1", &unique("idem-"))
        .await
        .unwrap();
    assert!(intent.id.starts_with("pi_"));
    let confirmed = client
        .confirm_intent(&intent.id, "pm_card_visa")
        .await
        .unwrap();
    assert!(!confirmed.status.is_empty());
    let captured = client.capture_intent(&intent.id).await.unwrap();
    assert!(!captured.status.is_empty());
    let refund = client.refund(&intent.id, &unique("refund-")).await.unwrap();
    assert!(refund.id.starts_with("re_"));
    let cancelled = client.cancel_intent(&intent.id).await.unwrap();
    assert!(cancelled.id.starts_with("pi_"));
}

/// Reads SSE frames until one `stock` event for `sku` arrives; returns its (id, data).
async fn next_stock_event(
    res: &mut reqwest::Response,
    buf: &mut String,
    sku: &str,
) -> (i64, Value) {
    let event = emporium_integration_tests::next_sse_event(res, buf, |e| {
        e.id.is_some() && e.data["sku"] == sku
    })
    .await;
    (event.id.unwrap_or_default(), event.data)
}

#[tokio::test]
async fn stock_changes_stream_to_other_replicas_within_a_second_and_resume() {
    let t = store("sse", None).await;
    let replica_a = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    let replica_b = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&replica_b, &t, &[("SSE-1", 100, 5)]).await;
    let h = host(&t);
    let c = cart(&replica_b, h, &[("SSE-1", 2)]).await;

    let mut stream = replica_a
        .req(Method::GET, h, "/api/v1/inventory/events")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    // Another shopper buys on the other replica.
    let started = std::time::Instant::now();
    let (s, b, _) = checkout(&replica_b, h, &c, Some("sse"), None).await;
    assert_eq!(s, 201, "{b}");
    let mut buf = String::new();
    let (id, data) = tokio::time::timeout(
        Duration::from_secs(1),
        next_stock_event(&mut stream, &mut buf, "SSE-1"),
    )
    .await
    .expect("stock event within 1 s");
    assert_eq!(data["available"], 3);
    assert!(started.elapsed() < Duration::from_secs(1));

    // Resume after an earlier id: the missed event is replayed first.
    let mut resumed = replica_b
        .req(Method::GET, h, "/api/v1/inventory/events")
        .header("Last-Event-ID", (id - 1).to_string())
        .send()
        .await
        .unwrap();
    let mut buf = String::new();
    let (rid, rdata) = tokio::time::timeout(
        Duration::from_secs(2),
        next_stock_event(&mut resumed, &mut buf, "SSE-1"),
    )
    .await
    .expect("replayed event");
    assert_eq!((rid, rdata["available"].clone()), (id, json!(3)));

    // A stream of another tenant never sees this tenant's changes.
    let (s, b, _) = replica_a
        .call(
            Method::GET,
            "nobody.test",
            "/api/v1/inventory/events",
            None,
            None,
        )
        .await;
    assert_eq!(s, 404, "{b}");
}

#[tokio::test]
async fn outbox_events_reach_sqs_even_when_the_relay_starts_late() {
    let t = store("obx", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("OBX-1", 100, 5)]).await;
    let h = host(&t);
    // Orders are committed while no relay runs (as if the runtime crashed right after).
    let b = place_order(&app, h, &[("OBX-1", 1)], "o1").await;
    let order_id = b["order"]["id"].as_str().unwrap().to_owned();

    // A runtime started later relays what was left behind.
    let later = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    let relay = workers::relay::spawn(later.state.relay.clone(), later.state.tenants.clone());
    let sqs = aws_sdk_sqs::Client::new(&Stack::get().aws().await.unwrap());
    let url = eventually("queue exists", Duration::from_secs(10), || {
        let sqs = sqs.clone();
        let name = workers::relay::queue_name(&t.tenant_id);
        async move {
            Ok(sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .ok()
                .and_then(|o| o.queue_url))
        }
    })
    .await
    .unwrap();
    let message = eventually("order.created arrives", Duration::from_secs(10), || {
        let (sqs, url) = (sqs.clone(), url.clone());
        async move {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .message_attribute_names("All")
                .max_number_of_messages(10)
                .send()
                .await?;
            Ok(out.messages.unwrap_or_default().into_iter().next())
        }
    })
    .await
    .unwrap();
    let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
    assert_eq!(body["type"], "order.created");
    assert_eq!(body["order"]["id"], order_id.as_str());
    let event_id = message.message_attributes().unwrap()["event_id"]
        .string_value()
        .unwrap()
        .to_owned();
    assert_eq!(
        body["event_id"],
        event_id.as_str(),
        "consumers dedupe by event id"
    );
    relay.abort();
}

#[tokio::test]
async fn order_tables_show_nothing_without_the_tenant_setting() {
    let t = store("rls", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("RLS-1", 100, 5)]).await;
    let h = host(&t);
    place_order(&app, h, &[("RLS-1", 1)], "r").await;
    // The app role, without `app.tenant_id`: every new table looks empty.
    let (client, conn) = tokio_postgres::connect(&t.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    for table in [
        "inventory",
        "inventory_events",
        "inventory_sequences",
        "orders",
        "order_lines",
        "idempotency_keys",
        "outbox",
        "payment_events",
    ] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} visible without the tenant setting");
    }
    // With another tenant's id: still nothing.
    client
        .batch_execute("SET app.tenant_id = 'someone-else'")
        .await
        .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[tokio::test]
async fn outbox_keeps_events_while_sqs_is_down_and_delivers_them_all_after() {
    let t = store("sqsdown", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("DOWN-1", 100, 10)]).await;
    let h = host(&t);
    let mut orders = std::collections::BTreeSet::new();
    for i in 0..4 {
        let c = cart(&app, h, &[("DOWN-1", 1)]).await;
        let (s, b, _) = checkout(&app, h, &c, Some(&format!("d{i}")), None).await;
        assert_eq!(s, 201, "{b}");
        orders.insert(b["order"]["id"].as_str().unwrap().to_owned());
    }
    let tenant = app.state.tenants.all().into_iter().next().unwrap();

    // SQS unreachable: the relay fails and keeps every event.
    let down = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "x", "x", None, None, "test",
        ))
        .load()
        .await;
    let mut offline = app.state.clone();
    offline.relay = std::sync::Arc::new(workers::relay::OutboxRelay::new(&down));
    assert!(
        workers::relay::relay_tenant(&offline.relay, &tenant)
            .await
            .is_err()
    );

    // SQS back: everything arrives, each order once by event id.
    let sent = workers::relay::relay_tenant(&app.state.relay, &tenant)
        .await
        .unwrap();
    assert_eq!(sent, 4);
    assert_eq!(
        workers::relay::relay_tenant(&app.state.relay, &tenant)
            .await
            .unwrap(),
        0,
        "nothing sent twice"
    );
    let sqs = aws_sdk_sqs::Client::new(&Stack::get().aws().await.unwrap());
    let url = sqs
        .get_queue_url()
        .queue_name(workers::relay::queue_name(&t.tenant_id))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while seen.len() < orders.len() && std::time::Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in out.messages.unwrap_or_default() {
            let body: Value = serde_json::from_str(m.body().unwrap_or("{}")).unwrap();
            seen.insert(body["order"]["id"].as_str().unwrap_or("").to_owned());
        }
    }
    assert_eq!(seen, orders);
}

#[tokio::test]
async fn a_webhook_lost_to_a_crash_is_applied_on_redelivery() {
    let t = store("crash", Some(stripe_payments())).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("CRASH-1", 100, 5)]).await;
    let h = host(&t);
    let b = place_order(&app, h, &[("CRASH-1", 2)], "c").await;
    let id = b["order"]["id"].as_str().unwrap().to_owned();

    // A replica that dies before its transaction commits (here: cannot reach its database)
    // answers 5xx and records nothing, so Stripe redelivers.
    let mut broken = t.clone();
    broken.database_url = "host=127.0.0.1 port=9 user=x password=x dbname=x".into();
    let dying = TestApp::start(settings(TTL), std::slice::from_ref(&broken)).await;
    let now = chrono::Utc::now().timestamp();
    let ok = event("evt_crash_1", "payment_intent.succeeded", &id);
    let (s, _) = webhook(&dying, h, &ok, Some(signed(&ok, now))).await;
    assert!(s >= 500, "{s}");
    assert_eq!(
        admin_order(&app, &t, &id).await["status"],
        "pending_payment"
    );

    // The redelivery reaches a healthy replica: paid once, stock consistent.
    let (s, r) = webhook(&app, h, &ok, Some(signed(&ok, now + 30))).await;
    assert_eq!((s, r["outcome"].as_str()), (200, Some("paid")), "{r}");
    let (s, r) = webhook(&app, h, &ok, Some(signed(&ok, now + 60))).await;
    assert_eq!((s, r["outcome"].as_str()), (200, Some("duplicate")), "{r}");
    assert_eq!(admin_order(&app, &t, &id).await["status"], "paid");
    assert_eq!(stock(&app, &t, "CRASH-1").await, 3);
}

#[tokio::test]
async fn made_up_currencies_and_stock_for_unsold_skus_are_refused() {
    let t = store("strict-cat", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    let h = host(&t);
    let mut draft = common::product("Odd", "", &[], &[("ODD-1", 100, &[])]);
    draft["variants"][0]["price"]["currency"] = json!("XYZ");
    let (s, b, ct) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/products",
            Some(&t.admin_key),
            Some(draft),
        )
        .await;
    assert_eq!((s, ct.as_str()), (422, "application/problem+json"), "{b}");
    assert_eq!(b["field"], "variants[0].price.currency", "{b}");
    assert!(b["detail"].as_str().unwrap().contains("ISO 4217"), "{b}");
    let (_, list, _) = app
        .call(Method::GET, h, "/api/v1/products", None, None)
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");

    // A real currency with no decimals is fine.
    let mut yen = common::product("Yen", "", &[], &[("YEN-1", 1500, &[])]);
    yen["variants"][0]["price"]["currency"] = json!("JPY");
    let (s, b, _) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/products",
            Some(&t.admin_key),
            Some(yen),
        )
        .await;
    assert_eq!(s, 201, "{b}");

    // Stock only for SKUs a product sells.
    let (s, b, _) = app
        .call(
            Method::PUT,
            h,
            "/api/v1/admin/inventory/NOBODY-SELLS-1",
            Some(&t.admin_key),
            Some(json!({"available": 5})),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["field"], "sku", "{b}");
    let (s, _, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/admin/inventory/NOBODY-SELLS-1",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 404, "nothing was recorded");
    set_stock(&app, &t, "YEN-1", 3).await;
    assert_eq!(stock(&app, &t, "YEN-1").await, 3);
}

#[tokio::test]
async fn refused_order_changes_are_explained_without_internal_event_names() {
    let t = store("words", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("WORDS-1", 500, 5)]).await;
    let b = place_order(&app, host(&t), &[("WORDS-1", 1)], "w").await;
    let id = b["order"]["id"].as_str().unwrap();
    let path = format!("/api/v1/admin/orders/{id}/mark-paid");
    assert_eq!(admin_post(&app, &t, &path).await.0, 200);
    let (s, again) = admin_post(&app, &t, &path).await;
    assert_eq!(s, 409, "{again}");
    let detail = again["detail"].as_str().unwrap();
    assert_eq!(
        detail, "the order is paid and cannot be marked paid",
        "{again}"
    );
    let (s, cancel) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/cancel")).await;
    assert_eq!(s, 409);
    assert_eq!(
        cancel["detail"], "the order is paid and cannot be cancelled",
        "{cancel}"
    );
}

#[tokio::test]
async fn a_cart_becomes_an_order_once_and_is_then_gone() {
    let t = store("once", None).await;
    let app = TestApp::start(settings(TTL), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("ONCE-1", 700, 10)]).await;
    let h = host(&t);
    let c = cart(&app, h, &[("ONCE-1", 2)]).await;
    let (s, first, _) = checkout(&app, h, &c, Some("once-a"), None).await;
    assert_eq!(s, 201, "{first}");
    let order_id = first["order"]["id"].as_str().unwrap().to_owned();

    // The same key again is a replay, not a conflict.
    let (s, again, replayed) = checkout(&app, h, &c, Some("once-a"), None).await;
    assert_eq!((s, replayed), (201, true), "{again}");
    assert_eq!(again, first);

    // Another key: 409 naming the order, and nothing more is reserved.
    let (s, b, _) = checkout(&app, h, &c, Some("once-b"), None).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(
        b["type"], "https://emporium.dev/problems/cart-checked-out",
        "{b}"
    );
    assert_eq!(b["field"], "cart", "{b}");
    assert_eq!(b["order_id"], order_id.as_str(), "{b}");
    assert!(b["detail"].as_str().unwrap().contains(&order_id), "{b}");
    assert_eq!(stock(&app, &t, "ONCE-1").await, 8);

    // The cart itself is gone: the order holds the lines.
    let (s, _, _) = app
        .call(Method::GET, h, &format!("/api/v1/carts/{c}"), None, None)
        .await;
    assert_eq!(s, 404);
    let (s, list, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/admin/orders",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(list["orders"].as_array().map(Vec::len), Some(1), "{list}");
}

#[tokio::test]
async fn manual_orders_hold_their_stock_until_the_merchant_marks_them_paid() {
    let t = store("hold", None).await;
    // Provider payments expire after 1 s here; a manual order does not expire at all.
    let app = TestApp::start(settings(Duration::from_secs(1)), std::slice::from_ref(&t)).await;
    let sweeper = workers::sweeper::spawn(app.state.tenants.clone());
    stock_skus(&app, &t, &[("HOLD-1", 100, 3)]).await;
    let b = place_order(&app, host(&t), &[("HOLD-1", 2)], "h").await;
    assert_eq!(b["order"]["reserved_until"], Value::Null, "{b}");
    let id = b["order"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        admin_order(&app, &t, &id).await["status"],
        "pending_payment"
    );
    assert_eq!(stock(&app, &t, "HOLD-1").await, 1, "still held");
    let (s, p) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/mark-paid")).await;
    assert_eq!((s, p["status"].as_str()), (200, Some("paid")), "{p}");
    sweeper.abort();
}

#[tokio::test]
async fn a_payment_for_an_expired_order_is_refunded_with_an_order_event() {
    let t = store("late", Some(stripe_payments())).await;
    let app = TestApp::start(settings(Duration::from_secs(1)), std::slice::from_ref(&t)).await;
    let sweeper = workers::sweeper::spawn(app.state.tenants.clone());
    stock_skus(&app, &t, &[("LATE-1", 100, 3)]).await;
    let h = host(&t);
    let b = place_order(&app, h, &[("LATE-1", 3)], "l").await;
    assert!(b["order"]["reserved_until"].is_string(), "{b}");
    let id = b["order"]["id"].as_str().unwrap().to_owned();
    let intent = b["payment"]["reference"].as_str().unwrap().to_owned();
    eventually("order expires", Duration::from_secs(10), || {
        let (app, t, id) = (&app, &t, &id);
        async move { Ok((admin_order(app, t, id).await["status"] == "expired").then_some(())) }
    })
    .await
    .unwrap();
    sweeper.abort();
    assert_eq!(stock(&app, &t, "LATE-1").await, 3);

    // The shopper's payment lands anyway: the money goes back (a refund at stripe-mock).
    let now = chrono::Utc::now().timestamp();
    let late = json!({"id": "evt_late_1", "type": "payment_intent.succeeded",
        "data": {"object": {"id": intent, "metadata": {"order_id": id}}}})
    .to_string();
    let (s, r) = webhook(&app, h, &late, Some(signed(&late, now))).await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (200, Some("late_payment_refunded")),
        "{r}"
    );
    let (s, r) = webhook(&app, h, &late, Some(signed(&late, now + 1))).await;
    assert_eq!((s, r["outcome"].as_str()), (200, Some("duplicate")), "{r}");
    assert_eq!(admin_order(&app, &t, &id).await["status"], "expired");
    assert_eq!(
        stock(&app, &t, "LATE-1").await,
        3,
        "no stock taken by the late payment"
    );
    let kinds = outbox_kinds(&app, &id).await;
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "order.late_payment_refunded")
            .count(),
        1,
        "{kinds:?}"
    );

    // A cancelled Stripe order cancels its intent (stripe-mock accepts it) and takes no payment.
    let b = place_order(&app, h, &[("LATE-1", 1)], "l2").await;
    let id = b["order"]["id"].as_str().unwrap().to_owned();
    let (s, c) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/cancel")).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    let paid = event("evt_late_2", "payment_intent.succeeded", &id);
    let (s, r) = webhook(&app, h, &paid, Some(signed(&paid, now))).await;
    assert_eq!(
        (s, r["outcome"].as_str()),
        (200, Some("late_payment_refunded")),
        "{r}"
    );
}
