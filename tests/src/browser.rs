//! What the browser tests share: Debian's chromium and playwright-core installed, one store
//! served by the real `emporium-storefront` binary from a tenants file, and a journey script
//! under `tests/browser/` run by Node.js with a time limit.

use std::{
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    time::Duration,
};

use emporium_tenant_config::TenantConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    Process, Stack, StoreClient, eventually, free_port, stack_env, unique, workspace_root,
};

/// Installs chromium and playwright-core (`scripts/install-browser.sh`) when either is missing.
pub fn ensure_browser() {
    let root = workspace_root();
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

/// One store served by its own runtime process, as in production: configured by flags and env,
/// on the shared stack's PostgreSQL, Redis and moto. Dropping it stops the runtime and removes
/// its work directory.
pub struct BrowserStore {
    pub client: StoreClient,
    /// `http://<tenant domain>:<port>`, the address the browser opens.
    pub base: String,
    work: PathBuf,
    runtime: Option<Process>,
}

impl BrowserStore {
    /// Starts the runtime for `tenant` (its first domain is the browser's host), logging to
    /// `<artifacts>/runtime.log`, and waits until it serves the store's products.
    pub async fn start(tenant: &TenantConfig, artifacts: &Path) -> Self {
        Self::start_with(tenant, artifacts, &[]).await
    }

    /// [`start`](Self::start) with more runtime flags (`--mail-from`, `--ses-endpoint-url`, ...).
    pub async fn start_with(
        tenant: &TenantConfig,
        artifacts: &Path,
        extra_args: &[String],
    ) -> Self {
        let stack = Stack::get();
        let work = std::env::temp_dir().join(unique("emporium-browser-"));
        std::fs::create_dir_all(&work).expect("create a temp directory");
        let tenants_file = work.join("tenants.json");
        std::fs::write(
            &tenants_file,
            serde_json::to_vec(&[tenant]).expect("tenant JSON"),
        )
        .expect("write the tenants file");

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
            .args(extra_args)
            .env_remove("EMPORIUM_WATCH_SECRETS")
            .env_remove("EMPORIUM_TENANTS_FILE")
            .envs(env);
        let runtime = Process::spawn(command, &artifacts.join("runtime.log"));

        let domain = tenant.domains.first().expect("the tenant has a domain");
        let client = StoreClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("http client"),
            base: format!("http://127.0.0.1:{port}"),
            host: format!("{domain}:{port}"),
            admin_key: tenant.admin_key.clone(),
        };
        eventually(
            "the runtime serves the store",
            Duration::from_secs(90),
            || async {
                runtime.assert_running();
                let res = client.req(Method::GET, "/api/v1/products").send().await;
                Ok(res
                    .is_ok_and(|r| r.status() == StatusCode::OK)
                    .then_some(()))
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e:#}; see {}", artifacts.join("runtime.log").display()));
        Self {
            client,
            base: format!("http://{domain}:{port}"),
            work,
            runtime: Some(runtime),
        }
    }
}

impl Drop for BrowserStore {
    fn drop(&mut self) {
        drop(self.runtime.take());
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Runs `node tests/browser/<script> <args>` from the workspace root for at most `timeout`;
/// its output (stdout then stderr) is printed and written to `<artifacts>/journey.log`.
pub async fn run_journey(
    script: &str,
    args: &[&str],
    artifacts: &Path,
    timeout: Duration,
) -> (ExitStatus, String) {
    let mut node = tokio::process::Command::new("node");
    node.current_dir(workspace_root())
        .arg(format!("tests/browser/{script}"))
        .args(args)
        .arg("--artifacts")
        .arg(artifacts)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(timeout, node.output())
        .await
        .unwrap_or_else(|_| panic!("{script} took longer than {timeout:?}"))
        .expect("run node (is Node.js installed?)");
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::write(artifacts.join("journey.log"), &output);
    println!("{output}");
    (out.status, output)
}

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

/// Stocks `store` for `tests/browser/journey.mjs` through its admin API: two categories, three
/// products with stock, German shipping and 19 % VAT, and the code WELCOME10. Returns the SKU of
/// the journey's product, "Ceramic Mug" (search "ceramik" finds it).
pub async fn seed_journey_shop(store: &StoreClient) -> String {
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
    sku
}
