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
use reqwest::Method;
use serde_json::json;

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

/// A moto of the test's own for SES (the shared one cannot always answer its sent-mail API;
/// see `storefront/tests/common/ses.rs`).
struct SesMoto(std::process::Child, String);

impl SesMoto {
    async fn start() -> Self {
        let port = emporium_integration_tests::free_port();
        let child = std::process::Command::new(workspace_root().join(".venv/bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start .venv/bin/moto_server (scripts/install-tools.sh installs it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{endpoint}/moto-api/")).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        SesMoto(child, endpoint)
    }
}

impl Drop for SesMoto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn a_shopper_resets_a_forgotten_password_in_headless_chromium() {
    ensure_browser();
    let artifacts = workspace_root().join("tests/artifacts/browser/reset");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("create the artifacts directory");
    let ses = SesMoto::start().await;

    let mut tenant = tenant("reset", &app_database().await, &unique("browser-"));
    tenant.display_name = "Reset Goods".into();
    tenant.domains = vec![format!("{}.localhost", tenant.tenant_id)];
    let shop = BrowserStore::start_with(
        &tenant,
        &artifacts,
        &[
            "--mail-from".into(),
            format!("{}@shop.example.com", unique("accounts-")),
            "--ses-endpoint-url".into(),
            ses.1.clone(),
        ],
    )
    .await;
    let email = format!("{}@example.com", unique("erin-"));
    let res = shop
        .client
        .req(Method::POST, "/api/v1/auth/register")
        .json(&json!({"email": email, "password": "erin password 1"}))
        .send()
        .await
        .expect("register");
    assert_eq!(res.status(), 201);

    let (status, output) = run_journey(
        "reset.mjs",
        &[
            "--base",
            &shop.base,
            "--moto",
            &ses.1,
            "--email",
            &email,
            "--password",
            "erin password 1",
            "--new-password",
            "erin password 2",
        ],
        &artifacts,
        JOURNEY_TIMEOUT,
    )
    .await;
    drop(shop);
    assert!(
        status.success(),
        "the reset journey failed ({status}):\n{output}\nScreenshots and the runtime log: {}",
        artifacts.display()
    );
}
