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

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use emporium_integration_tests::{
    Process, Stack, StoreClient, app_database, eventually, free_port, stack_env, tenant, unique,
    workspace_root,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The artifacts directory name for the store (the tenant id itself is unique per run).
const STORE: &str = "lumen";
const DISPLAY_NAME: &str = "Lumen Goods";
const JOURNEY_TIMEOUT: Duration = Duration::from_secs(300);

/// Chromium and playwright-core, installed by `scripts/install-browser.sh` when missing.
fn ensure_browser(root: &Path) {
    let chromium = Path::new("/usr/bin/chromium");
    let playwright = root.join("tests/browser/node_modules/playwright-core/package.json");
    if chromium.exists() && playwright.exists() {
        return;
    }
    eprintln!("chromium or tests/browser/node_modules missing: running scripts/install-browser.sh");
    let status = Command::new(root.join("scripts/install-browser.sh"))
        .status()
        .expect("run scripts/install-browser.sh");
    assert!(
        status.success() && chromium.exists() && playwright.exists(),
        "scripts/install-browser.sh failed ({status}): the browser test needs Debian's chromium \
         (/usr/bin/chromium) and `npm ci` in tests/browser; run the script by hand to see why"
    );
}

/// A product with one EUR variant and no images (the pages must work offline).
fn product(title: &str, description: &str, category: &str, sku: &str, cents: i64) -> Value {
    json!({
        "title": title,
        "description": description,
        "categories": [category],
        "variants": [{
            "sku": sku,
            "price": { "amount_minor": cents, "currency": "EUR" },
            "attributes": {},
            "images": [],
        }],
    })
}

#[tokio::test]
async fn a_shopper_buys_in_headless_chromium() {
    let root = workspace_root();
    ensure_browser(&root);
    let stack = Stack::get();

    let artifacts = root.join("tests/artifacts/browser").join(STORE);
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("create the artifacts directory");
    let work = std::env::temp_dir().join(unique("emporium-browser-"));
    std::fs::create_dir_all(&work).expect("create a temp directory");

    // One store, unique per run: its id, host, tables and database.
    let mut tenant = tenant("browser", &app_database().await, &unique("browser-"));
    let tenant_id = tenant.tenant_id.clone();
    tenant.display_name = DISPLAY_NAME.into();
    tenant.domains = vec![format!("{tenant_id}.localhost")];
    tenant.theme_color = Some("#0f766e".into());
    let tenants_file = work.join("tenants.json");
    std::fs::write(
        &tenants_file,
        serde_json::to_vec(&[&tenant]).expect("tenant JSON"),
    )
    .expect("write the tenants file");

    // The runtime, as in production: its own process, configured by flags and env.
    let port = free_port();
    let mut env = stack_env(&[
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]);
    env.push(("RUST_LOG".into(), "info".into()));
    let mut command = Process::command("emporium-storefront");
    command
        .args([
            "--listen".to_owned(),
            format!("127.0.0.1:{port}"),
            "--log-format".to_owned(),
            "text".to_owned(),
            "--tenants-file".to_owned(),
            tenants_file.display().to_string(),
            "--redis-url".to_owned(),
            stack.var("REDIS_URL").expect("REDIS_URL").to_owned(),
            "--create-tables".to_owned(),
        ])
        .env_remove("EMPORIUM_WATCH_SECRETS")
        .env_remove("EMPORIUM_TENANTS_FILE")
        .envs(env);
    let runtime = Process::spawn(command, &artifacts.join("runtime.log"));

    let store = StoreClient {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        base: format!("http://127.0.0.1:{port}"),
        host: format!("{tenant_id}.localhost:{port}"),
        admin_key: tenant.admin_key.clone(),
    };
    eventually(
        "the runtime serves the store",
        Duration::from_secs(90),
        || async {
            runtime.assert_running();
            let res = store.req(Method::GET, "/api/v1/products").send().await;
            Ok(res
                .is_ok_and(|r| r.status() == StatusCode::OK)
                .then_some(()))
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}; see {}", artifacts.join("runtime.log").display()));

    // A small catalog through the admin API.
    let sku = unique("MUG-").to_uppercase();
    for (id, name) in [("kitchen", "Kitchen"), ("apparel", "Apparel")] {
        store
            .admin(
                Method::POST,
                "/api/v1/admin/categories",
                Some(json!({ "id": id, "name": name })),
            )
            .await;
    }
    let catalog = [
        (
            "Ceramic Mug",
            "A stoneware mug for slow mornings.\n\nDishwasher safe.",
            "kitchen",
            sku.clone(),
            1250,
            6,
        ),
        (
            "Linen Apron",
            "Washed linen, one size.",
            "apparel",
            unique("APR-").to_uppercase(),
            3400,
            4,
        ),
        (
            "Walnut Coffee Scoop",
            "Carved from one piece of walnut.",
            "kitchen",
            unique("SCP-").to_uppercase(),
            900,
            12,
        ),
    ];
    for (title, description, category, sku, cents, stock) in &catalog {
        store
            .admin(
                Method::POST,
                "/api/v1/admin/products",
                Some(product(title, description, category, sku, *cents)),
            )
            .await;
        store
            .admin(
                Method::PUT,
                &format!("/api/v1/admin/inventory/{sku}"),
                Some(json!({ "available": stock })),
            )
            .await;
    }

    // A German shop: parcels to Germany, prices with 19 % VAT, a welcome code.
    let eur = |amount_minor: i64| json!({ "amount_minor": amount_minor, "currency": "EUR" });
    store
        .admin(
            Method::PUT,
            "/api/v1/admin/shipping",
            Some(
                json!({ "zones": [{ "id": "de", "name": "Germany", "countries": ["DE"], "methods": [
                { "id": "standard", "name": "Standard parcel", "price": eur(490) }] }] }),
            ),
        )
        .await;
    store
        .admin(
            Method::PUT,
            "/api/v1/admin/tax",
            Some(
                json!({ "prices_include_tax": true, "default_country": "DE", "rates": [
                { "country": "DE", "class": "standard", "rate_bp": 1900, "name": "MwSt. 19 %" }] }),
            ),
        )
        .await;
    store
        .admin(
            Method::PUT,
            "/api/v1/admin/promotions/WELCOME10",
            Some(json!({ "benefit": { "type": "percentage", "percent_bp": 1000 } })),
        )
        .await;

    // The journey in chromium.
    let mut node = tokio::process::Command::new("node");
    node.current_dir(&root)
        .arg("tests/browser/journey.mjs")
        .args(["--base", &format!("http://{tenant_id}.localhost:{port}")])
        .arg("--artifacts")
        .arg(&artifacts)
        .args(["--search", "ceramik"])
        .args(["--product", "Ceramic Mug"])
        .args(["--sku", &sku])
        .args(["--store", DISPLAY_NAME])
        .args(["--admin-key", &tenant.admin_key])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(JOURNEY_TIMEOUT, node.output())
        .await
        .unwrap_or_else(|_| panic!("the browser journey took longer than {JOURNEY_TIMEOUT:?}"))
        .expect("run node (is Node.js installed?)");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::write(artifacts.join("journey.log"), &output);
    println!("{output}");
    drop(runtime);
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        out.status.success(),
        "the browser journey failed ({}):\n{output}\nScreenshots and the runtime log: {}",
        out.status,
        artifacts.display()
    );
    let shots = std::fs::read_dir(&artifacts)
        .expect("artifacts")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert!(shots >= 10, "expected a screenshot per step, found {shots}");
}
