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
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use emporium_integration_tests::{Stack, workspace_root};
use emporium_tenant_config::{PaymentProvider, Payments, Tables, TenantConfig, Tier};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_postgres::NoTls;

/// The artifacts directory name for the store (the tenant id itself is unique per run).
const STORE: &str = "lumen";
const DISPLAY_NAME: &str = "Lumen Goods";
const JOURNEY_TIMEOUT: Duration = Duration::from_secs(300);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// The runtime as a child process; SIGTERM (then SIGKILL) when dropped, pass or fail.
struct Runtime {
    child: Child,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/<profile>/`, where cargo puts the workspace's binaries (the test runs from `deps/`).
fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target directory")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

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

/// A fresh database owned by a fresh non-superuser role (so row-level security applies), as a
/// connection string for that role.
async fn app_database() -> String {
    let admin_url = Stack::get().var("DATABASE_URL").expect("DATABASE_URL");
    let (client, conn) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .expect("connect to the stack's PostgreSQL as its superuser");
    tokio::spawn(conn);
    let (role, db, password) = (unique("br_app_"), unique("br_test_"), unique("pw"));
    client
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
        ))
        .await
        .expect("create role");
    client
        .batch_execute(&format!("CREATE DATABASE {db} OWNER {role}"))
        .await
        .expect("create database");
    let cfg: tokio_postgres::Config = admin_url.parse().expect("DATABASE_URL parses");
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!("host={host} port={port} user={role} password={password} dbname={db}")
}

/// An HTTP client for the store's host.
struct Store {
    http: reqwest::Client,
    base: String,
    host: String,
    admin_key: String,
}

impl Store {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("Host", &self.host)
            .bearer_auth(&self.admin_key);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request to the runtime");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn admin(&self, method: Method, path: &str, body: Value) -> Value {
        let (status, answer) = self.call(method.clone(), path, Some(body)).await;
        assert!(
            status.is_success(),
            "admin {method} {path}: {status} {answer}"
        );
        answer
    }
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
    let binary = binaries_dir().join("emporium-storefront");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build -p emporium-storefront` (make test builds it)",
        binary.display()
    );

    let artifacts = root.join("tests/artifacts/browser").join(STORE);
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).expect("create the artifacts directory");
    let work = std::env::temp_dir().join(unique("emporium-browser-"));
    std::fs::create_dir_all(&work).expect("create a temp directory");

    // One store, unique per run: its id, host, tables and database.
    let tenant_id = unique("browser-");
    let tenant = TenantConfig {
        tenant_id: tenant_id.clone(),
        display_name: DISPLAY_NAME.into(),
        domains: vec![format!("{tenant_id}.localhost")],
        tier: Tier::Pooled,
        theme_color: Some("#0f766e".into()),
        database_url: app_database().await,
        tables: Tables {
            catalog: format!("{tenant_id}-catalog"),
            carts: format!("{tenant_id}-carts"),
            sessions: format!("{tenant_id}-sessions"),
        },
        admin_key: unique("admin_"),
        payments: Payments {
            provider: PaymentProvider::Manual,
            secret_key: None,
            webhook_secret: None,
            api_base: None,
        },
    };
    let tenants_file = work.join("tenants.json");
    std::fs::write(
        &tenants_file,
        serde_json::to_vec(&[&tenant]).expect("tenant JSON"),
    )
    .expect("write the tenants file");

    // The runtime, as in production: its own process, configured by flags and env.
    let port = free_port();
    let mut env: Vec<(String, String)> = [
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]
    .iter()
    .filter_map(|k| stack.var(k).ok().map(|v| (k.to_string(), v.to_owned())))
    .collect();
    env.push(("RUST_LOG".into(), "info".into()));
    let log = std::fs::File::create(artifacts.join("runtime.log")).expect("runtime log");
    let child = Command::new(&binary)
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
        .envs(env)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
    let mut runtime = Runtime { child };

    let store = Store {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client"),
        base: format!("http://127.0.0.1:{port}"),
        host: format!("{tenant_id}.localhost:{port}"),
        admin_key: tenant.admin_key.clone(),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(exit)) = runtime.child.try_wait() {
            panic!(
                "the runtime exited ({exit}) before serving; see {}",
                artifacts.join("runtime.log").display()
            );
        }
        let ready = store
            .http
            .get(format!("{}/api/v1/products", store.base))
            .header("Host", &store.host)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK);
        if ready {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the runtime did not serve the store within 90 s; see {}",
            artifacts.join("runtime.log").display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A small catalog through the admin API.
    let sku = unique("MUG-").to_uppercase();
    for (id, name) in [("kitchen", "Kitchen"), ("apparel", "Apparel")] {
        store
            .admin(
                Method::POST,
                "/api/v1/admin/categories",
                json!({ "id": id, "name": name }),
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
                product(title, description, category, sku, *cents),
            )
            .await;
        store
            .admin(
                Method::PUT,
                &format!("/api/v1/admin/inventory/{sku}"),
                json!({ "available": stock }),
            )
            .await;
    }

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
