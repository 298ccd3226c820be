//! Not a test: the measurement behind docs/decisions/0005-storefront-postgres-client.md. Runs the
//! customer lookup hot path (transaction + tenant setting + select by id + commit) against the
//! stack's PostgreSQL with several pool sizes, prepared vs unprepared. Prints, asserts nothing.
//!
//! `cargo test -p emporium-storefront --release --test pg_client_measure -- --ignored --nocapture`

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use emporium_storefront::{
    domain::ports::CustomerStore as _,
    storage::postgres::{Database, PgCustomers, tenant_transaction},
};

async fn run(
    db: Arc<Database>,
    tenant: &str,
    id: uuid::Uuid,
    prepared: bool,
    workers: usize,
    secs: u64,
) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (db, done, stop, tenant) = (db.clone(), done.clone(), stop.clone(), tenant.to_owned());
        tasks.push(tokio::spawn(async move {
            let store = PgCustomers { db: db.clone(), tenant: tenant.as_str().into() };
            while !stop.load(Ordering::Relaxed) {
                if prepared {
                    store.by_id(id).await.unwrap().unwrap();
                } else {
                    let mut client = db.client().await.unwrap();
                    let tx = tenant_transaction(&mut client, &tenant).await.unwrap();
                    tx.query_opt("SELECT id, email, name, created_at, password_hash FROM customers WHERE tenant_id = $1 AND id = $2", &[&tenant, &id])
                        .await
                        .unwrap()
                        .unwrap();
                    tx.commit().await.unwrap();
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, not a test"]
async fn measure_pool_sizes_and_prepared_statements() {
    let dsn = common::app_database().await;
    let tenant = "measure";
    let seed = Arc::new(Database::new(&dsn, 2).unwrap());
    let store = PgCustomers {
        db: seed.clone(),
        tenant: tenant.into(),
    };
    let id = store
        .create("m@example.com", "x", "M")
        .await
        .unwrap()
        .unwrap()
        .id;
    for prepared in [true, false] {
        for size in [2, 4, 6, 8, 16] {
            let db = Arc::new(Database::new(&dsn, size).unwrap());
            let rate = run(db, tenant, id, prepared, 64, 3).await;
            println!("prepared={prepared} pool={size:>2} workers=64: {rate:>7.0} lookups/s");
        }
    }
}
