//! No oversell under concurrency: many shoppers checking out the last units at once, repeatedly,
//! with single- and multi-SKU carts. Rounds: `CHECKOUT_ROUNDS` (default 20).

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
        .unwrap_or(20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_shoppers_twenty_units_exactly_twenty_orders() {
    let t = store("rush", None).await;
    let app = Arc::new(
        TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await,
    );
    stock_skus(&app, &t, &[("RUSH-1", 100, 0)]).await;
    let h = host(&t).to_owned();
    // One cart per shopper, reused each round with a fresh Idempotency-Key.
    let mut carts = Vec::with_capacity(SHOPPERS);
    for _ in 0..SHOPPERS {
        carts.push(cart(&app, &h, &[("RUSH-1", 1)]).await);
    }
    for round in 0..rounds() {
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
    let mut carts = Vec::new();
    for i in 0..60 {
        let lines: Vec<(&str, u32)> = shapes[i % shapes.len()].iter().map(|s| (*s, 1)).collect();
        carts.push((cart(&app, &h, &lines).await, shapes[i % shapes.len()]));
    }
    for round in 0..rounds() {
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
