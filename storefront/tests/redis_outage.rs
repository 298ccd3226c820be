//! Redis gone (issue 8): the runtime keeps serving shoppers — catalog, carts, checkout, sign-in —
//! with login limits counted per replica, readiness stays 200 and says `degraded`, nothing hangs
//! when Redis stops answering, and Redis is used again once it is back.
//!
//! Runs a private `redis-server` (the shared stack's serves every other test) that the test
//! kills, restarts and pauses with SIGSTOP.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{TestApp, host, test_settings, unique};
use emporium_integration_tests::{eventually, free_port};
use emporium_storefront::Settings;
use reqwest::Method;
use serde_json::{Value, json};
use support::{cart, checkout, stock, stock_skus, store};

/// A `redis-server` child on 127.0.0.1:`port`, killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let mut redis = Self { port, child: None };
        redis.restart();
        redis
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (scripts/install-tools.sh installs it)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis running").id();
        let ok = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {signal} {pid}");
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal("-CONT");
        }
        self.kill();
    }
}

/// Everything a shopper does works: browse, register, sign in, cart, checkout.
async fn shopper_journey(app: &TestApp, h: &str, sku: &str, round: &str) {
    let (s, list, _) = app
        .call(Method::GET, h, "/api/v1/products", None, None)
        .await;
    assert_eq!(s, 200, "{list}");
    assert!(list.to_string().contains(sku), "{list}");
    let email = format!("{round}@example.com");
    assert_eq!(
        app.register(h, &email, "correct horse battery").await.0,
        201,
        "register ({round})"
    );
    let (s, b) = app.login(h, &email, "correct horse battery", None).await;
    assert_eq!(s, 200, "login ({round}): {b}");
    let c = cart(app, h, &[(sku, 1)]).await;
    let (s, b, _) = checkout(
        app,
        h,
        &c,
        Some(&format!("key-{round}")),
        Some(json!({"email": email})),
    )
    .await;
    assert_eq!(s, 201, "checkout ({round}): {b}");
}

/// Six wrong passwords for one email: the sixth is refused with 429 (limit 5 per email).
async fn brute_force_is_limited(app: &TestApp, h: &str, email: &str) {
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(app.login(h, email, "wrong password!", None).await.0);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429], "wrong logins");
}

async fn readiness(app: &TestApp) -> (u16, Value) {
    let (s, b, _) = app
        .call(Method::GET, "anything", "/readyz", None, None)
        .await;
    (s, b)
}

#[tokio::test]
async fn the_runtime_serves_while_redis_is_gone_and_uses_it_again_when_back() {
    let port = free_port();
    let mut redis = PrivateRedis::start(port);
    let t = store("redis-outage", None).await;
    let h = host(&t).to_owned();
    let settings = Settings {
        redis_url: format!("redis://127.0.0.1:{port}/"),
        login_limit_per_email: 5,
        ..test_settings()
    };
    let app = TestApp::start(settings, std::slice::from_ref(&t)).await;
    let sku = unique("RDS-");
    stock_skus(&app, &t, &[(&sku, 1500, 100)]).await;

    shopper_journey(&app, &h, &sku, "before").await;
    let (s, b) = readiness(&app).await;
    assert_eq!((s, b["degraded"].clone()), (200, json!([])), "{b}");

    // Redis killed: connections are refused.
    redis.kill();
    shopper_journey(&app, &h, &sku, "killed").await;
    brute_force_is_limited(&app, &h, "victim-killed@example.com").await;
    let (s, b) = readiness(&app).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["degraded"].to_string().contains("redis"), "{b}");

    // Back on the same port: limits are shared through Redis again.
    redis.restart();
    eventually(
        "readiness no longer reports redis",
        Duration::from_secs(30),
        || async {
            let (_, b) = readiness(&app).await;
            Ok((b["degraded"] == json!([])).then_some(()))
        },
    )
    .await
    .unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(
        app.login(&h, "nobody@example.com", "wrong password!", None)
            .await
            .0,
        401
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("emporium:login:*")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        !keys.is_empty(),
        "login attempts are counted in Redis again"
    );
    drop(conn);

    // Redis paused: it accepts connections but never answers. Nothing may hang on it.
    redis.signal("-STOP");
    shopper_journey(&app, &h, &sku, "paused").await;
    brute_force_is_limited(&app, &h, "victim-paused@example.com").await;
    let (s, b) = readiness(&app).await;
    assert_eq!(s, 200, "{b}");
    assert!(b["degraded"].to_string().contains("redis"), "{b}");
    redis.signal("-CONT");

    // Each of the three journeys checked out one unit: none lost, none doubled.
    assert_eq!(stock(&app, &t, &sku).await, 97);
}
