//! A store name used twice: `hidden-shop` is created, used (a customer, an order, stock, a
//! session), deleted with its data retained, and created again for another merchant on another
//! domain. The new store reaches nothing of the old one: the old session token, the old
//! password, the old orders and stock are all unreachable, because every row and item is keyed
//! by the tenant's identity (its Storefront's UID), not its name. The second store is then
//! deleted with `deletionPolicy: Snapshot`: its rows and items are exported to S3 and purged
//! from the pool database and tables, to the last row and item. The real operator and runtime
//! binaries, driven through kubectl and HTTP.

use std::time::Duration;

use emporium_integration_tests::{
    Process, Stack, StoreClient, child_env, eventually, free_port, install_storefront_api, kubectl,
    kubectl_output, operator_args, postgres_admin_url, storefront_manifest, unique, workspace_root,
    write_manifests,
};
use emporium_tenant_config::{
    TENANT_CONFIG_KEY, TENANT_SECRET_SELECTOR, TenantConfig, item_key_prefix,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{Api, api::ListParams};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(120);
const PASSWORD: &str = "correct horse battery";

/// What the first merchant's shopper left behind.
struct Traces {
    token: String,
    email: String,
    order_id: String,
    sku: String,
}

async fn tenant_config(name: &str, not: Option<&str>) -> TenantConfig {
    let client = Stack::get().kube().await.expect("kube client");
    let secrets: Api<Secret> = Api::all(client);
    let selector = format!("{TENANT_SECRET_SELECTOR},emporium.dev/tenant={name}");
    eventually("the tenant config Secret", WAIT, || async {
        let list = secrets
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(list.items.into_iter().find_map(|secret| {
            let data = secret.data.as_ref()?.get(TENANT_CONFIG_KEY)?.0.clone();
            let config = TenantConfig::from_secret_data(Some(&data)).ok()?;
            (Some(config.tenant_id.as_str()) != not).then_some(config)
        }))
    })
    .await
    .expect("the operator writes the tenant config Secret")
}

fn storefront(name: &str, run: &str, domain: &str, policy: &str) -> Value {
    let mut sf = storefront_manifest(name, "emporium.dev/identity", run, "basic", policy);
    sf["spec"]["domains"] = json!([domain]);
    sf
}

fn uid_of(name: &str) -> String {
    kubectl(&["get", "storefront", name, "-o", "jsonpath={.metadata.uid}"])
}

/// Applies the Storefront, waits for Ready and for the runtime to serve it.
async fn onboard(
    manifest: &Value,
    port: u16,
    http: &reqwest::Client,
    previous: Option<&str>,
) -> (StoreClient, TenantConfig) {
    let name = manifest["metadata"]["name"].as_str().unwrap_or_default();
    let path = workspace_root()
        .join("tests/artifacts/identity")
        .join(format!("{name}-{}.yaml", unique("")));
    write_manifests(&path, std::slice::from_ref(manifest));
    kubectl(&["apply", "-f", path.to_str().unwrap_or_default()]);
    kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("storefront/{name}"),
        "--timeout=180s",
    ]);
    let config = tenant_config(name, previous).await;
    let store = StoreClient {
        http: http.clone(),
        base: format!("http://127.0.0.1:{port}"),
        host: manifest["spec"]["domains"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        admin_key: config.admin_key.clone(),
    };
    eventually("the runtime serves the store", WAIT, || async {
        let res = store.req(Method::GET, "/api/v1/products").send().await?;
        Ok((res.status() == StatusCode::OK).then_some(()))
    })
    .await
    .expect("store served");
    (store, config)
}

/// A product with stock, a registered shopper with a session, and an order.
async fn use_store(store: &StoreClient, sku: &str, email: &str) -> Traces {
    store
        .admin(
            Method::POST,
            "/api/v1/admin/products",
            Some(json!({
                "title": "Hidden lamp", "description": "Brass", "categories": [],
                "variants": [{"sku": sku, "price": {"amount_minor": 2500, "currency": "EUR"},
                              "attributes": {}, "images": []}]
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
    let (status, session) = store
        .call(
            Method::POST,
            "/api/v1/auth/register",
            None,
            Some(json!({"email": email, "password": PASSWORD, "name": "Hilde"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "register: {session}");
    let token = session["token"].as_str().expect("a token").to_owned();
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
    let checkout = store
        .req(Method::POST, &format!("/api/v1/carts/{cart_id}/checkout"))
        .bearer_auth(&token)
        .header("Idempotency-Key", format!("identity-{cart_id}"))
        .json(&json!({}))
        .send()
        .await
        .expect("checkout");
    assert_eq!(checkout.status(), StatusCode::CREATED);
    let placed: Value = checkout.json().await.expect("checkout body");
    let order_id = placed["order"]["id"].as_str().expect("order id").to_owned();
    let (status, me) = store
        .call(Method::GET, "/api/v1/me", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    Traces {
        token,
        email: email.to_owned(),
        order_id,
        sku: sku.to_owned(),
    }
}

/// Rows of `tenant_id` in every tenant table of the pool database `database`.
async fn rows_of(database: &str, tenant_id: &str) -> i64 {
    let mut config: tokio_postgres::Config = postgres_admin_url().parse().expect("the admin URL");
    config.dbname(database);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connect to the pool database");
    tokio::spawn(connection);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'tenant_id'",
            &[],
        )
        .await
        .expect("tenant tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut total = 0;
    for table in &tables {
        // The superuser bypasses row-level security: this sees every tenant's rows.
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM \"{table}\" WHERE tenant_id = $1"),
                &[&tenant_id],
            )
            .await
            .expect("count rows")
            .get(0);
        total += n;
    }
    total
}

/// Items of `tenant_id` in the pool tables.
async fn items_of(tables: &emporium_tenant_config::Tables, tenant_id: &str) -> usize {
    let dynamodb = Stack::get().dynamodb().await.expect("dynamodb");
    let mut total = 0;
    for table in [&tables.catalog, &tables.carts, &tables.sessions] {
        let items = dynamodb
            .scan()
            .table_name(table)
            .filter_expression("begins_with(pk, :p)")
            .expression_attribute_values(
                ":p",
                aws_sdk_dynamodb::types::AttributeValue::S(item_key_prefix(tenant_id)),
            )
            .into_paginator()
            .items()
            .send()
            .collect::<Vec<_>>()
            .await;
        total += items.into_iter().filter(Result::is_ok).count();
    }
    total
}

fn database_of(config: &TenantConfig) -> String {
    let url: tokio_postgres::Config = config.database_url.parse().expect("a DSN");
    url.get_dbname().unwrap_or_default().to_owned()
}

async fn offboard(name: &str) {
    kubectl(&["delete", "storefront", name, "--wait=false"]);
    eventually("the Storefront is gone (data released)", WAIT, || async {
        let (_, out, _) = kubectl_output(&["get", "storefront", name, "-o", "name"]);
        Ok(out.trim().is_empty().then_some(()))
    })
    .await
    .expect("storefront gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recreated_store_reaches_none_of_the_old_stores_data_and_offboarding_purges_it() {
    let stack = Stack::get();
    let run = unique("");
    let artifacts = workspace_root().join("tests/artifacts/identity");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");
    install_storefront_api();

    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&stack.aws().await.expect("aws config"))
            .force_path_style(true)
            .build(),
    );
    let bucket = format!("emporium-snapshots-{run}");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create the snapshot bucket on moto");

    let env = child_env();
    let mut args = operator_args(
        free_port(),
        &format!("emporium.dev/identity={run}"),
        &format!("id{run}"),
        &format!("id-pool-{run}"),
        &uuid::Uuid::new_v4().simple().to_string(),
    );
    args.push(format!("--snapshot-bucket={bucket}"));
    let operator = Process::start(
        "emporium-operator",
        &args,
        &artifacts.join("operator.log"),
        &env,
    );
    let port = free_port();
    let runtime = Process::start(
        "emporium-storefront",
        &[
            format!("--listen=127.0.0.1:{port}"),
            "--watch-secrets".into(),
            "--log-format=json".into(),
        ],
        &artifacts.join("storefront.log"),
        &env,
    );
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client");
    let name = format!("hidden-shop-{run}");

    // First merchant: the store is used, then deleted with its data retained.
    let first = storefront(&name, &run, &format!("{name}.localhost"), "Retain");
    let (store1, config1) = onboard(&first, port, &http, None).await;
    let uid1 = uid_of(&name);
    assert_eq!(
        config1.tenant_id, uid1,
        "the data key is the Storefront's UID"
    );
    let recorded = kubectl(&[
        "get",
        "storefront",
        &name,
        "-o",
        "jsonpath={.status.tenantId}",
    ]);
    assert_eq!(recorded, uid1, "status.tenantId records it");
    let traces = use_store(
        &store1,
        &format!("LAMP-{run}"),
        &format!("hilde-{run}@example.com"),
    )
    .await;
    let database = database_of(&config1);
    let rows_before = rows_of(&database, &uid1).await;
    assert!(
        rows_before >= 4,
        "customer, order, lines, stock: {rows_before} rows"
    );
    assert!(items_of(&config1.tables, &uid1).await >= 3);

    offboard(&name).await;
    // The deleted store's sessions stop working at once: its host is not served any more.
    let (status, _) = store1
        .call(Method::GET, "/api/v1/me", Some(&traces.token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "the old host is gone");
    assert_eq!(
        rows_of(&database, &uid1).await,
        rows_before,
        "Retain keeps every row under the old identity"
    );

    // Second merchant, same name, another domain.
    let second = storefront(&name, &run, &format!("other-{name}.localhost"), "Snapshot");
    let (store2, config2) = onboard(&second, port, &http, Some(&uid1)).await;
    let uid2 = uid_of(&name);
    assert_ne!(uid2, uid1);
    assert_eq!(config2.tenant_id, uid2, "a new identity, not the name");
    assert_eq!(database_of(&config2), database, "the same pool database");

    let (status, me) = store2
        .call(Method::GET, "/api/v1/me", Some(&traces.token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "old session token: {me}");
    let (status, login) = store2
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": traces.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "old password: {login}");
    let orders = store2
        .admin(Method::GET, "/api/v1/admin/orders", None)
        .await;
    assert!(
        !orders.to_string().contains(&traces.order_id),
        "old orders: {orders}"
    );
    let (status, order) = store2
        .call(
            Method::GET,
            &format!("/api/v1/admin/orders/{}", traces.order_id),
            Some(&store2.admin_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "old order by id: {order}");
    let (_, stock) = store2
        .call(
            Method::GET,
            &format!("/api/v1/admin/inventory/{}", traces.sku),
            Some(&store2.admin_key),
            None,
        )
        .await;
    assert_ne!(stock["available"], json!(3), "old stock: {stock}");
    let products = store2.admin(Method::GET, "/api/v1/products", None).await;
    assert!(
        !products.to_string().contains("Hidden lamp"),
        "old catalog: {products}"
    );

    // The second store is used too, then deleted with deletionPolicy Snapshot.
    use_store(
        &store2,
        &format!("DESK-{run}"),
        &format!("otto-{run}@example.com"),
    )
    .await;
    assert!(rows_of(&database, &uid2).await > 0);
    offboard(&name).await;
    assert_eq!(rows_of(&database, &uid2).await, 0, "every row purged");
    assert_eq!(
        items_of(&config2.tables, &uid2).await,
        0,
        "every item purged"
    );
    assert_eq!(
        rows_of(&database, &uid1).await,
        rows_before,
        "the first store's retained rows are untouched"
    );

    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .expect("list the snapshot bucket");
    let keys: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert!(
        keys.iter()
            .any(|k| k.ends_with(&format!("{uid2}/manifest.json"))),
        "{keys:?}"
    );
    let customers_key = keys
        .iter()
        .find(|k| k.contains(&uid2) && k.ends_with("postgres/customers.jsonl"))
        .unwrap_or_else(|| panic!("a customers export among {keys:?}"));
    let body = s3
        .get_object()
        .bucket(&bucket)
        .key(customers_key)
        .send()
        .await
        .expect("get the export")
        .body
        .collect()
        .await
        .expect("read the export")
        .into_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains(&format!("otto-{run}@example.com")), "{text}");
    let sessions_key = keys
        .iter()
        .find(|k| k.contains(&uid2) && k.ends_with("dynamodb/sessions.jsonl"))
        .unwrap_or_else(|| panic!("a sessions export among {keys:?}"));
    assert!(!sessions_key.is_empty());

    operator.assert_running();
    runtime.assert_running();
}
