//! No oversell under concurrency: many shoppers checking out the last units at once, repeatedly,
//! with single- and multi-SKU carts; and one cart checked out under many keys at once becomes
//! one order. Rounds: `CHECKOUT_ROUNDS` (default 10; each round now fills fresh carts, since a
//! cart that became an order is gone, and moto makes 200 carts cost about 2.5 s).

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::{collections::HashMap, sync::Arc, time::Duration};

use common::{TestApp, host};
use support::*;

const SHOPPERS: usize = 200;
const UNITS: i64 = 20;

fn rounds() -> usize {
    std::env::var("CHECKOUT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_shoppers_twenty_units_exactly_twenty_orders() {
    let t = store("rush", None).await;
    let app = Arc::new(
        TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await,
    );
    stock_skus(&app, &t, &[("RUSH-1", 100, 0)]).await;
    let h = host(&t).to_owned();
    for round in 0..rounds() {
        // One fresh cart per shopper each round: a cart that became an order is gone.
        let carts = carts_of(&app, &h, SHOPPERS, |_| vec![("RUSH-1", 1)]).await;
        set_stock(&app, &t, "RUSH-1", UNITS).await;
        let tasks: Vec<_> = carts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (app, h, c) = (app.clone(), h.clone(), c.clone());
                tokio::spawn(async move {
                    checkout(&app, &h, &c, Some(&format!("r{round}-s{i}")), None).await
                })
            })
            .collect();
        let mut by_status: HashMap<u16, usize> = HashMap::new();
        for task in tasks {
            let (status, body, _) = task.await.expect("task");
            if status == 409 {
                assert!(
                    body["detail"].as_str().unwrap_or("").contains("RUSH-1"),
                    "{body}"
                );
            }
            *by_status.entry(status).or_default() += 1;
        }
        assert_eq!(
            by_status.get(&201),
            Some(&(UNITS as usize)),
            "round {round}: {by_status:?}"
        );
        assert_eq!(
            by_status.get(&409),
            Some(&(SHOPPERS - UNITS as usize)),
            "round {round}: {by_status:?}"
        );
        assert_eq!(stock(&app, &t, "RUSH-1").await, 0, "round {round}");
        eprintln!("round {round}: {by_status:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_sku_carts_in_any_order_never_deadlock_or_oversell() {
    let t = store("multi", None).await;
    let app = Arc::new(
        TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await,
    );
    let skus = ["MULTI-A", "MULTI-B", "MULTI-C"];
    stock_skus(
        &app,
        &t,
        &[
            ("MULTI-A", 100, 0),
            ("MULTI-B", 100, 0),
            ("MULTI-C", 100, 0),
        ],
    )
    .await;
    let h = host(&t).to_owned();
    // Carts name the SKUs in different orders and combinations.
    let shapes: [&[&str]; 4] = [
        &["MULTI-A", "MULTI-B", "MULTI-C"],
        &["MULTI-C", "MULTI-B", "MULTI-A"],
        &["MULTI-B", "MULTI-A"],
        &["MULTI-C", "MULTI-A"],
    ];
    let shape = |i: usize| shapes[i % shapes.len()];
    for round in 0..rounds() {
        let carts: Vec<_> = carts_of(&app, &h, 60, |i| shape(i).iter().map(|s| (*s, 1)).collect())
            .await
            .into_iter()
            .enumerate()
            .map(|(i, c)| (c, shape(i)))
            .collect();
        for sku in skus {
            set_stock(&app, &t, sku, UNITS).await;
        }
        let tasks: Vec<_> = carts
            .iter()
            .enumerate()
            .map(|(i, (c, shape))| {
                let (app, h, c, shape) = (app.clone(), h.clone(), c.clone(), *shape);
                tokio::spawn(async move {
                    let (s, b, _) =
                        checkout(&app, &h, &c, Some(&format!("m{round}-{i}")), None).await;
                    (s, b, shape)
                })
            })
            .collect();
        let mut sold: HashMap<&str, i64> = HashMap::new();
        for task in tasks {
            let (status, body, shape) = task.await.expect("task");
            assert!(
                status == 201 || status == 409,
                "round {round}: {status} {body}"
            );
            if status == 201 {
                for sku in shape {
                    *sold.entry(sku).or_default() += 1;
                }
            }
        }
        for sku in skus {
            let left = stock(&app, &t, sku).await;
            let taken = sold.get(sku).copied().unwrap_or(0);
            assert!(
                left >= 0 && taken <= UNITS,
                "round {round} {sku}: {taken} sold, {left} left"
            );
            assert_eq!(
                left + taken,
                UNITS,
                "round {round} {sku}: stock accounts for every sale"
            );
        }
        eprintln!("round {round}: sold {sold:?}");
    }
}

/// `n` guest carts, `lines(i)` in the i-th, created a few at a time (moto is the bottleneck).
async fn carts_of(
    app: &Arc<TestApp>,
    h: &str,
    n: usize,
    lines: impl Fn(usize) -> Vec<(&'static str, u32)>,
) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let all: Vec<_> = (0..n).map(&lines).collect();
    for chunk in all.chunks(8) {
        let made = futures::future::join_all(chunk.iter().map(|l| cart(app, h, l))).await;
        out.extend(made);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cart_checked_out_under_twenty_keys_at_once_becomes_one_order() {
    let t = store("reuse", None).await;
    let app = Arc::new(
        TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await,
    );
    stock_skus(&app, &t, &[("REUSE-1", 100, 1000)]).await;
    let h = host(&t).to_owned();
    const KEYS: usize = 20;
    let rounds = rounds().min(5);
    for round in 0..rounds {
        let c = cart(&app, &h, &[("REUSE-1", 3)]).await;
        let tasks: Vec<_> = (0..KEYS)
            .map(|i| {
                let (app, h, c) = (app.clone(), h.clone(), c.clone());
                tokio::spawn(async move {
                    checkout(&app, &h, &c, Some(&format!("u{round}-k{i}")), None).await
                })
            })
            .collect();
        let (mut created, mut refused) = (Vec::new(), Vec::new());
        for task in tasks {
            let (status, body, _) = task.await.expect("task");
            match status {
                201 => created.push(body["order"]["id"].as_str().unwrap().to_owned()),
                409 => refused.push(body),
                other => panic!("round {round}: {other} {body}"),
            }
        }
        assert_eq!(created.len(), 1, "round {round}: {created:?}");
        assert_eq!(refused.len(), KEYS - 1, "round {round}");
        for b in &refused {
            assert_eq!(b["order_id"], created[0].as_str(), "round {round}: {b}");
        }
        let left = stock(&app, &t, "REUSE-1").await;
        assert_eq!(
            left,
            1000 - 3 * (round as i64 + 1),
            "round {round}: reserved once"
        );
    }
    let (s, list, _) = app
        .call(
            reqwest::Method::GET,
            &h,
            "/api/v1/admin/orders?limit=100",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        list["orders"].as_array().map(Vec::len),
        Some(rounds),
        "{list}"
    );
}
