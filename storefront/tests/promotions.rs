//! Promotions (issue 15 item 3): discount codes (percentage, fixed amount, free shipping) with a
//! validity window, a minimum subtotal and usage limits, enforced under concurrency: no
//! over-redemption in a 200-way race, and one use per customer however many of their checkouts
//! race.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::{collections::HashMap, sync::Arc, time::Duration};

use common::{TestApp, host};
use emporium_tenant_config::TenantConfig;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

fn eur(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "EUR"})
}

async fn put_code(app: &TestApp, t: &TenantConfig, code: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = app
        .call(
            Method::PUT,
            host(t),
            &format!("/api/v1/admin/promotions/{code}"),
            Some(&t.admin_key),
            Some(body),
        )
        .await;
    (s, b)
}

async fn uses(app: &TestApp, t: &TenantConfig, code: &str) -> i64 {
    let (s, b, _) = app
        .call(
            Method::GET,
            host(t),
            "/api/v1/admin/promotions",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200, "{b}");
    b.as_array()
        .unwrap()
        .iter()
        .find(|p| p["code"] == code)
        .expect("the code")["uses"]
        .as_i64()
        .unwrap()
}

async fn carts_of(app: &Arc<TestApp>, h: &str, n: usize, lines: &[(&str, u32)]) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(8);
        out.extend(futures::future::join_all((0..batch).map(|_| cart(app, h, lines))).await);
    }
    out
}

#[tokio::test]
async fn codes_take_a_percentage_an_amount_or_the_shipping_off() {
    let t = store("promo", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("PROMO-1", 1500, 100)]).await;
    let zones = json!({"zones": [{"id": "de", "name": "Germany", "countries": ["DE"], "methods": [
        {"id": "standard", "name": "Parcel", "price": eur(490)}]}]});
    let (s, b, _) = app
        .call(
            Method::PUT,
            host(&t),
            "/api/v1/admin/shipping",
            Some(&t.admin_key),
            Some(zones),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = put_code(
        &app,
        &t,
        "summer10",
        json!({"benefit": {"type": "percentage", "percent_bp": 1000}, "min_subtotal": eur(2000)}),
    )
    .await;
    assert_eq!((s, b["code"].as_str()), (200, Some("SUMMER10")), "{b}");
    assert_eq!(
        put_code(
            &app,
            &t,
            "FIVE-OFF",
            json!({"benefit": {"type": "fixed_amount", "amount": eur(500)}})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        put_code(
            &app,
            &t,
            "FREESHIP",
            json!({"benefit": {"type": "free_shipping"}})
        )
        .await
        .0,
        200
    );
    let past = json!({"benefit": {"type": "free_shipping"}, "ends_at": "2020-01-01T00:00:00Z"});
    assert_eq!(put_code(&app, &t, "OLD", past).await.0, 200);
    let (s, b) = put_code(
        &app,
        &t,
        "BAD",
        json!({"benefit": {"type": "percentage", "percent_bp": 0}}),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("benefit.percent_bp")),
        "{b}"
    );

    let h = host(&t);
    let address = json!({"name": "Ann", "line1": "Hauptstr. 1", "city": "Köln", "country": "DE"});
    let order = |lines: u32, code: &'static str| {
        let (app, address) = (&app, address.clone());
        async move {
            let c = cart(app, h, &[("PROMO-1", lines)]).await;
            let body = json!({"discount_code": code, "shipping_address": address, "shipping_method": "standard"});
            let (s, b, _) =
                checkout(app, h, &c, Some(&format!("{code}-{lines}-{c}")), Some(body)).await;
            (s, b)
        }
    };
    // One item (15.00) is below SUMMER10's minimum; two (30.00) get 3.00 off.
    let (s, b) = order(1, "summer10").await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("discount_code")),
        "{b}"
    );
    let (s, b) = order(2, "summer10").await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (&b["order"]["discount"], &b["order"]["discount_code"]),
        (&eur(300), &json!("SUMMER10"))
    );
    assert_eq!(b["order"]["total"], eur(3000 - 300 + 490));
    let (s, b) = order(1, "five-off").await;
    assert_eq!(
        (s, b["order"]["total"].clone()),
        (201, eur(1500 - 500 + 490)),
        "{b}"
    );
    let (s, b) = order(1, "FREESHIP").await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["order"]["shipping"]["price"], eur(0));
    assert_eq!(b["order"]["total"], eur(1500));
    for code in ["OLD", "NOPE"] {
        let (s, b) = order(1, code).await;
        assert_eq!(
            (s, b["field"].as_str()),
            (422, Some("discount_code")),
            "{code}: {b}"
        );
    }

    // A cancelled order gives its use back.
    assert_eq!(uses(&app, &t, "FIVE-OFF").await, 1);
    let (s, b) = order(1, "five-off").await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(uses(&app, &t, "FIVE-OFF").await, 2);
    let id = b["order"]["id"].as_str().unwrap();
    assert_eq!(
        admin_post(&app, &t, &format!("/api/v1/admin/orders/{id}/cancel"))
            .await
            .0,
        200
    );
    assert_eq!(uses(&app, &t, "FIVE-OFF").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_shoppers_race_for_a_code_good_for_twenty() {
    let t = store("promorace", None).await;
    let app = Arc::new(
        TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await,
    );
    stock_skus(&app, &t, &[("RACE-1", 1000, 10_000)]).await;
    assert_eq!(
        put_code(
            &app,
            &t,
            "FIRST20",
            json!({"benefit": {"type": "percentage", "percent_bp": 2000}, "max_uses": 20})
        )
        .await
        .0,
        200
    );
    let h = host(&t).to_owned();
    let carts = carts_of(&app, &h, 200, &[("RACE-1", 1)]).await;
    let tasks: Vec<_> = carts
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (app, h) = (app.clone(), h.clone());
            tokio::spawn(async move {
                checkout(
                    &app,
                    &h,
                    &c,
                    Some(&format!("race-{i}")),
                    Some(json!({"discount_code": "FIRST20"})),
                )
                .await
            })
        })
        .collect();
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    for task in tasks {
        let (s, b, _) = task.await.unwrap();
        match s {
            201 => assert_eq!(b["order"]["discount"], eur(200), "{b}"),
            409 => assert_eq!(b["field"], "discount_code", "{b}"),
            other => panic!("{other}: {b}"),
        }
        *by_status.entry(s).or_default() += 1;
    }
    assert_eq!(by_status.get(&201), Some(&20), "{by_status:?}");
    assert_eq!(by_status.get(&409), Some(&180), "{by_status:?}");
    assert_eq!(uses(&app, &t, "FIRST20").await, 20);
    assert_eq!(
        stock(&app, &t, "RACE-1").await,
        10_000 - 20,
        "refused checkouts reserved nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_use_per_customer_even_when_their_checkouts_race() {
    let t = store("promoonce", None).await;
    let app = Arc::new(
        TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await,
    );
    stock_skus(&app, &t, &[("ONCE-P", 1000, 1000)]).await;
    assert_eq!(put_code(&app, &t, "WELCOME", json!({"benefit": {"type": "fixed_amount", "amount": eur(100)}, "max_uses_per_customer": 1})).await.0, 200);
    let h = host(&t).to_owned();
    // A guest needs an email for a per-customer code.
    let c = cart(&app, &h, &[("ONCE-P", 1)]).await;
    let (s, b, _) = checkout(
        &app,
        &h,
        &c,
        Some("anon"),
        Some(json!({"discount_code": "WELCOME"})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("discount_code")),
        "{b}"
    );
    let carts = carts_of(&app, &h, 10, &[("ONCE-P", 1)]).await;
    let tasks: Vec<_> = carts
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let (app, h) = (app.clone(), h.clone());
            // The same shopper, by email, in any letter case.
            let email = if i % 2 == 0 {
                "Ann@Example.com"
            } else {
                "ann@example.com"
            };
            tokio::spawn(async move {
                checkout(
                    &app,
                    &h,
                    &c,
                    Some(&format!("once-{i}")),
                    Some(json!({"discount_code": "welcome", "email": email})),
                )
                .await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let (s, b, _) = task.await.unwrap();
        match s {
            201 => created += 1,
            409 => assert_eq!(b["detail"], "you have already used this code", "{b}"),
            other => panic!("{other}: {b}"),
        }
    }
    assert_eq!(created, 1);
    assert_eq!(uses(&app, &t, "WELCOME").await, 1);
}
