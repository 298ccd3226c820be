//! The mission in one test: a platform team onboards two merchants with `kubectl apply` (one
//! pooled, one dedicated), the operator provisions them on the real API server with a real
//! PostgreSQL database and DynamoDB tables on moto, the storefront runtime learns them from the
//! operator's Secrets, shoppers buy on both stores, and `kubectl delete` offboards one while the
//! other keeps serving. Nothing here is in-process: the operator and the runtime are the real
//! binaries, driven only through kubectl and HTTP. Each store's order events reach the SQS queue
//! the operator made for it.

use std::time::Duration;

use emporium_integration_tests::{
    Process, Stack, StoreClient, child_env, eventually, free_port, install_storefront_api, kubectl,
    next_sse_event, operator_args, postgres_admin, storefront_manifest, unique, workspace_root,
    write_manifests,
};
use emporium_tenant_config::{TENANT_CONFIG_KEY, TENANT_SECRET_SELECTOR, TenantConfig};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{Api, api::ListParams};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const READY_TIMEOUT: &str = "180s";
const WAIT: Duration = Duration::from_secs(120);

async fn tenant_config(name: &str) -> TenantConfig {
    let client = Stack::get().kube().await.expect("kube client");
    let secrets: Api<Secret> = Api::all(client);
    let selector = format!("{TENANT_SECRET_SELECTOR},emporium.dev/tenant={name}");
    let secret = eventually("the tenant config Secret", WAIT, || async {
        let list = secrets
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(list.items.into_iter().next())
    })
    .await
    .expect("the operator writes the tenant config Secret");
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TENANT_CONFIG_KEY))
        .map(|b| b.0.clone());
    TenantConfig::from_secret_data(data.as_deref()).expect("a valid tenant config")
}

/// Loads a small catalog and stock through the merchant admin API.
async fn load_catalog(store: &StoreClient, sku_prefix: &str) {
    store
        .admin(
            Method::POST,
            "/api/v1/admin/categories",
            Some(json!({"id": "kitchen", "name": "Kitchen"})),
        )
        .await;
    for (i, (title, description, price)) in [
        ("Ceramic mug", "Holds 350 ml of coffee", 900),
        ("Teapot", "Cast iron, 1 litre", 4500),
        ("Linen towel", "Dries glasses without lint", 1200),
    ]
    .into_iter()
    .enumerate()
    {
        let sku = format!("{sku_prefix}-{i}");
        store
            .admin(
                Method::POST,
                "/api/v1/admin/products",
                Some(json!({
                    "title": title, "description": description, "categories": ["kitchen"],
                    "variants": [{"sku": sku, "price": {"amount_minor": price, "currency": "EUR"},
                                  "attributes": {"colour": "red"}, "images": []}]
                })),
            )
            .await;
        store
            .admin(
                Method::PUT,
                &format!("/api/v1/admin/inventory/{sku}"),
                Some(json!({"available": 5})),
            )
            .await;
    }
}

/// Register, browse, search, cart, checkout, pay, history, live stock: one shopper's journey.
async fn shop(store: &StoreClient, sku_prefix: &str) {
    let sku = format!("{sku_prefix}-0");

    let (status, session) = store
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": "ann@example.com", "password": "correct horse battery", "name": "Ann"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "register: {session}");
    let token = session["token"]
        .as_str()
        .expect("a session token")
        .to_owned();

    let (status, list) = store
        .call(Method::GET, "/api/v1/products?category=kitchen", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list.to_string().matches("\"sku\"").count(), 3, "{list}");

    // A typo still finds the mug.
    let (status, hits) = store
        .call(Method::GET, "/api/v1/search?q=ceramc", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    assert!(hits.to_string().contains("Ceramic mug"), "{hits}");

    let (status, cart) = store
        .call(Method::POST, "/api/v1/carts", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{cart}");
    let cart_id = cart["id"].as_str().expect("cart id").to_owned();
    let (status, cart) = store
        .call(
            Method::POST,
            &format!("/api/v1/carts/{cart_id}/items"),
            Some(&token),
            Some(json!({"sku": sku, "quantity": 2})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cart}");

    // Another shopper watches the live stock while Ann buys.
    let mut stream = store
        .req(Method::GET, "/api/v1/inventory/events")
        .send()
        .await
        .expect("open the inventory stream");
    assert_eq!(stream.status(), StatusCode::OK);

    let checkout = store
        .req(Method::POST, &format!("/api/v1/carts/{cart_id}/checkout"))
        .bearer_auth(&token)
        .header("Idempotency-Key", format!("e2e-{cart_id}"))
        .json(&json!({}))
        .send()
        .await
        .expect("checkout");
    assert_eq!(checkout.status(), StatusCode::CREATED);
    let placed: Value = checkout.json().await.expect("checkout body");
    let order_id = placed["order"]["id"].as_str().expect("order id").to_owned();
    assert_eq!(placed["order"]["status"], "pending_payment", "{placed}");

    let mut buf = String::new();
    let event = tokio::time::timeout(
        Duration::from_secs(5),
        next_sse_event(&mut stream, &mut buf, |e| e.data["sku"] == sku),
    )
    .await
    .expect("a stock event for the purchase")
    .data;
    assert_eq!(event["available"], 3, "{event}");

    // Manual payments: the merchant marks the order paid.
    store
        .admin(
            Method::POST,
            &format!("/api/v1/admin/orders/{order_id}/mark-paid"),
            None,
        )
        .await;
    let (status, order) = store
        .call(
            Method::GET,
            &format!("/api/v1/orders/{order_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{order}");
    assert_eq!(order["status"], "paid", "{order}");

    let (status, history) = store
        .call(Method::GET, "/api/v1/me/orders", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    assert!(history.to_string().contains(&order_id), "{history}");
}

/// A merchant's Storefront for this run (manual payments, teal theme).
fn storefront(name: &str, run: &str, plan: &str, deletion_policy: &str) -> Value {
    let mut sf = storefront_manifest(name, "emporium.dev/e2e", run, plan, deletion_policy);
    sf["spec"]["themeColor"] = json!("#0f766e");
    sf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_team_onboards_two_merchants_and_shoppers_buy() {
    let stack = Stack::get();
    let run = unique("");
    let artifacts = workspace_root().join("tests/artifacts/e2e");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");

    // The API and the plans, as a platform team installs them.
    install_storefront_api();
    let env = child_env();
    let password_key = uuid::Uuid::new_v4().simple().to_string();
    let operator_args = operator_args(
        free_port(),
        &format!("emporium.dev/e2e={run}"),
        &format!("e2e{run}"),
        &format!("e2e-pool-{run}"),
        &password_key,
    );
    let operator = Process::start(
        "emporium-operator",
        &operator_args,
        &artifacts.join("operator.log"),
        &env,
    );

    let port = free_port();
    let runtime_args: Vec<String> = vec![
        format!("--listen=127.0.0.1:{port}"),
        "--watch-secrets".into(),
        "--log-format=json".into(),
        // This test reads the tenants' order-event queues itself, as a platform's own pipeline
        // would; the runtime's consumer of them is covered by storefront/tests/notifications.rs.
        "--notifications-worker=false".into(),
    ];
    let runtime = Process::start(
        "emporium-storefront",
        &runtime_args,
        &artifacts.join("storefront.log"),
        &env,
    );

    // Onboard two merchants.
    let pooled = format!("e2e-bakery-{run}");
    let dedicated = format!("e2e-outfitters-{run}");
    let manifest = artifacts.join(format!("storefronts-{run}.yaml"));
    write_manifests(
        &manifest,
        &[
            storefront(&pooled, &run, "basic", "Delete"),
            storefront(&dedicated, &run, "premium", "Delete"),
        ],
    );
    kubectl(&["apply", "-f", manifest.to_str().unwrap_or_default()]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    operator.assert_running();
    runtime.assert_running();
    for name in [&pooled, &dedicated] {
        kubectl(&[
            "wait",
            "--for=condition=Ready",
            &format!("storefront/{name}"),
            &format!("--timeout={READY_TIMEOUT}"),
        ]);
    }
    let listing = kubectl(&[
        "get",
        "storefronts",
        "-l",
        &format!("emporium.dev/e2e={run}"),
    ]);
    std::fs::write(artifacts.join("kubectl-get-storefronts.txt"), &listing).ok();

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let mut stores = Vec::new();
    let mut secrets = Vec::new();
    let mut queues = Vec::new();
    for name in [&pooled, &dedicated] {
        let config = tenant_config(name).await;
        queues.push((
            config.tenant_id.clone(),
            config
                .order_events_queue_url
                .clone()
                .expect("the operator puts the tenant's order-event queue in its config"),
        ));
        secrets.push(config.admin_key.clone());
        if let Some(password) = url_password(&config.database_url) {
            secrets.push(password);
        }
        stores.push(StoreClient {
            http: http.clone(),
            base: format!("http://127.0.0.1:{port}"),
            host: format!("{name}.localhost"),
            admin_key: config.admin_key,
        });
    }

    // The runtime picks the tenants up from the Secrets without a restart.
    for store in &stores {
        eventually("the runtime serves the new store", WAIT, || async {
            let res = store.req(Method::GET, "/api/v1/products").send().await?;
            Ok((res.status() == StatusCode::OK).then_some(()))
        })
        .await
        .expect("store served");
    }

    runtime.assert_running();
    for (i, store) in stores.iter().enumerate() {
        load_catalog(store, &format!("SKU{i}")).await;
        shop(store, &format!("SKU{i}")).await;
    }

    // Each store's order events arrive in its own queue (made by the operator), none in the
    // other's.
    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await.expect("moto config"));
    for (tenant_id, url) in &queues {
        let kinds = eventually("order events in the tenant's queue", WAIT, || async {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await?;
            let mut kinds = Vec::new();
            for message in out.messages.unwrap_or_default() {
                let body: Value = serde_json::from_str(message.body().unwrap_or("{}"))?;
                assert_eq!(
                    body["tenant"].as_str(),
                    Some(tenant_id.as_str()),
                    "an event of another tenant in {url}"
                );
                kinds.push(body["type"].as_str().unwrap_or_default().to_owned());
            }
            Ok(kinds.iter().any(|k| k == "order.created").then_some(kinds))
        })
        .await
        .expect("the order's event reaches the queue");
        assert!(kinds.iter().all(|k| k.starts_with("order.")), "{kinds:?}");
    }

    // Offboard the dedicated store while the pooled one keeps serving.
    kubectl(&["delete", "storefront", &dedicated, "--wait=false"]);
    let (pooled_store, dedicated_store) = (&stores[0], &stores[1]);
    let outage = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let watcher = {
        let store = pooled_store.clone();
        let outage = outage.clone();
        tokio::spawn(async move {
            loop {
                match store.req(Method::GET, "/api/v1/products").send().await {
                    Ok(res) if res.status() == StatusCode::OK => {}
                    _ => {
                        outage.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    eventually("the deleted store's host answers 404", WAIT, || async {
        let res = dedicated_store
            .req(Method::GET, "/api/v1/products")
            .send()
            .await?;
        Ok((res.status() == StatusCode::NOT_FOUND).then_some(()))
    })
    .await
    .expect("host gone");
    let client = stack.kube().await.expect("kube client");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = format!("store-{dedicated}");
    eventually("the dedicated namespace is deleted", WAIT, || async {
        Ok(namespaces
            .get_opt(&namespace)
            .await?
            .is_none()
            .then_some(()))
    })
    .await
    .expect("namespace gone");
    eventually(
        "the Storefront is gone (finalizer released)",
        WAIT,
        || async {
            let out = kubectl(&[
                "get",
                "storefronts",
                "-l",
                &format!("emporium.dev/e2e={run}"),
                "-o",
                "name",
            ]);
            Ok((!out.contains(&dedicated)).then_some(()))
        },
    )
    .await
    .expect("storefront gone");

    // deletionPolicy: Delete removed its database and tables.
    let pg = postgres_admin().await;
    let left: i64 = pg
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE '%' || $1 || '%'",
            &[&dedicated],
        )
        .await
        .expect("query pg_database")
        .get(0);
    assert_eq!(left, 0, "the dedicated database was dropped");
    let dynamodb = stack.dynamodb().await.expect("dynamodb client");
    let tables = dynamodb
        .list_tables()
        .into_paginator()
        .items()
        .send()
        .collect::<Vec<_>>()
        .await;
    let leftover: Vec<String> = tables
        .into_iter()
        .filter_map(Result::ok)
        .filter(|t| t.contains(&dedicated))
        .collect();
    assert!(leftover.is_empty(), "tables left behind: {leftover:?}");
    let queue_left = sqs
        .get_queue_attributes()
        .queue_url(&queues[1].1)
        .send()
        .await;
    assert!(
        queue_left.is_err(),
        "the dedicated store's order-event queue was deleted"
    );

    watcher.abort();
    assert_eq!(
        outage.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the pooled store kept serving while the other was deleted"
    );
    let (status, _) = pooled_store
        .call(Method::GET, "/api/v1/products", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);

    // No generated password or key in any status, event or log of the run.
    let mut evidence = kubectl(&["get", "storefronts", "-o", "json"]);
    evidence.push_str(&kubectl(&["get", "events", "-A", "-o", "json"]));
    for log in ["operator.log", "storefront.log"] {
        evidence.push_str(&std::fs::read_to_string(artifacts.join(log)).unwrap_or_default());
    }
    for secret in &secrets {
        assert!(
            !evidence.contains(secret.as_str()),
            "a generated secret appears in a status, event or log"
        );
    }

    kubectl(&["delete", "storefront", &pooled, "--wait=false"]);
}

fn url_password(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let userinfo = rest.split_once('@')?.0;
    let password = userinfo.split_once(':')?.1;
    (!password.is_empty()).then(|| password.to_owned())
}
