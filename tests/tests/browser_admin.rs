//! The merchant web app in a real browser: headless Debian chromium driven by playwright-core
//! (`tests/browser/admin.mjs`) against the real `emporium-storefront` binary serving one store
//! from a tenants file, on the shared stack's PostgreSQL, Redis and moto. The owner's
//! invitation comes from the admin API as the platform would mint it; the journey accepts it,
//! edits a price and sees it in the shop, invites a clerk with `orders` only, and checks the
//! clerk cannot refund. Screenshots land in `tests/artifacts/browser-admin/`.

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
use serde_json::json;

const JOURNEY_TIMEOUT: Duration = Duration::from_secs(300);

fn ensure_browser(root: &Path) {
    let chromium = Path::new("/usr/bin/chromium");
    let playwright = root.join("tests/browser/node_modules/playwright-core/package.json");
    if chromium.exists() && playwright.exists() {
        return;
    }
    let status = Command::new(root.join("scripts/install-browser.sh"))
        .status()
        .expect("run scripts/install-browser.sh");
    assert!(
        status.success() && chromium.exists() && playwright.exists(),
        "scripts/install-browser.sh failed ({status}): this test needs /usr/bin/chromium and \
         `npm ci` in tests/browser"
    );
}

#[tokio::test]
async fn an_owner_and_a_clerk_run_the_store_in_headless_chromium() {
    let root = workspace_root();
    ensure_browser(&root);
    let stack = Stack::get();
    let artifacts = root.join("tests/artifacts/browser-admin");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("create the artifacts directory");
    let work = std::env::temp_dir().join(unique("emporium-browser-admin-"));
    std::fs::create_dir_all(&work).expect("create a temp directory");

    let mut tenant = tenant("admin", &app_database().await, &unique("browser-admin-"));
    let tenant_id = tenant.tenant_id.clone();
    tenant.display_name = "Harbour Supply".into();
    tenant.domains = vec![format!("{tenant_id}.localhost")];
    tenant.owner_email = Some("olive@example.com".into());
    let tenants_file = work.join("tenants.json");
    std::fs::write(&tenants_file, serde_json::to_vec(&[&tenant]).unwrap()).unwrap();

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
            .unwrap(),
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

    // A product and a paid (manual) order, through the admin API.
    let sku = unique("LAMP-").to_uppercase();
    store
        .admin(
            Method::POST,
            "/api/v1/admin/products",
            Some(
                json!({"title": "Brass Lamp", "description": "Warm light.", "variants": [
                {"sku": sku, "price": {"amount_minor": 4900, "currency": "EUR"}, "images": []}]}),
            ),
        )
        .await;
    store
        .admin(
            Method::PUT,
            &format!("/api/v1/admin/inventory/{sku}"),
            Some(json!({"available": 8})),
        )
        .await;
    let (s, cart) = store.call(Method::POST, "/api/v1/carts", None, None).await;
    assert_eq!(s, StatusCode::CREATED, "{cart}");
    let cart = cart["id"].as_str().unwrap().to_owned();
    let (s, b) = store
        .call(
            Method::POST,
            &format!("/api/v1/carts/{cart}/items"),
            None,
            Some(json!({"sku": sku, "quantity": 1})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let res = store
        .req(Method::POST, &format!("/api/v1/carts/{cart}/checkout"))
        .header("Idempotency-Key", unique("admin-co-"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let placed: serde_json::Value = res.json().await.unwrap();
    let order = placed["order"]["id"].as_str().unwrap().to_owned();
    store
        .admin(
            Method::POST,
            &format!("/api/v1/admin/orders/{order}/mark-paid"),
            None,
        )
        .await;

    // The owner's one-time link, as the platform mints it with the store's admin key.
    let invitation = store
        .admin(Method::POST, "/api/v1/admin/owner-invitation", None)
        .await;
    let link = invitation["url"]
        .as_str()
        .expect("invitation url")
        .to_owned();

    let mut node = tokio::process::Command::new("node");
    node.current_dir(&root)
        .arg("tests/browser/admin.mjs")
        .args(["--base", &format!("http://{tenant_id}.localhost:{port}")])
        .arg("--artifacts")
        .arg(&artifacts)
        .args(["--owner-link", &link])
        .args(["--sku", &sku])
        .args(["--product", "Brass Lamp"])
        .args(["--order", &order])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(JOURNEY_TIMEOUT, node.output())
        .await
        .unwrap_or_else(|_| panic!("the admin journey took longer than {JOURNEY_TIMEOUT:?}"))
        .expect("run node (is Node.js installed?)");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::write(artifacts.join("journey.log"), &output);
    println!("{output}");

    // The journey's price change reached the catalog the API serves.
    let (s, products) = store
        .call(Method::GET, "/api/v1/products", None, None)
        .await;
    drop(runtime);
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        out.status.success(),
        "the admin journey failed ({}):\n{output}\nScreenshots and the runtime log: {}",
        out.status,
        artifacts.display()
    );
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        products["items"][0]["variants"][0]["price"]["amount_minor"], 3175,
        "{products}"
    );
}
