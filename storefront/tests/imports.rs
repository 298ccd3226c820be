//! Bulk import and export (issue 16 item 3), through the real runtime on the stack's
//! PostgreSQL, Redis and moto: a Shopify CSV with bad rows (per-row errors, good rows in), the
//! same file again (nothing changes), JSON lines, exports that import back as the same catalog
//! into an empty store, permissions (403 without catalog), tenant isolation of jobs and
//! exports, the import route's own body limit, and a job left running by a dead runner resumed
//! by a new runtime from its checkpoint.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use common::{TestApp, host, tenant, unique};
use emporium_storefront::{
    domain::ports::InventoryStore as _, storage::postgres::tenant_transaction, workers,
};
use emporium_tenant_config::TenantConfig;
use reqwest::{Method, header};
use serde_json::{Value, json};
use support::*;

/// Posts a file to the import API.
async fn import(
    app: &TestApp,
    t: &TenantConfig,
    token: &str,
    mime: &str,
    body: &str,
) -> (u16, Value) {
    let res = app
        .req(Method::POST, host(t), "/api/v1/admin/imports")
        .bearer_auth(token)
        .header(header::CONTENT_TYPE, mime)
        .body(body.to_owned())
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert_eq!(ct, "application/problem+json", "{body}");
    }
    (status, body)
}

/// Waits until the job is no longer queued or running.
async fn finished(app: &TestApp, t: &TenantConfig, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, b, _) = app
            .call(
                Method::GET,
                host(t),
                &format!("/api/v1/admin/imports/{id}"),
                Some(&t.admin_key),
                None,
            )
            .await;
        assert_eq!(s, 200, "{b}");
        if !matches!(b["status"].as_str(), Some("queued" | "running")) {
            return b;
        }
        assert!(Instant::now() < deadline, "job still {}: {b}", b["status"]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn import_and_wait(app: &TestApp, t: &TenantConfig, mime: &str, body: &str) -> Value {
    let (s, job) = import(app, t, &t.admin_key, mime, body).await;
    assert_eq!(s, 202, "{job}");
    finished(app, t, job["id"].as_str().unwrap()).await
}

async fn export(app: &TestApp, t: &TenantConfig, token: &str, path: &str) -> (u16, String, String) {
    let res = app
        .req(Method::GET, host(t), path)
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, res.text().await.unwrap())
}

/// The tenant's catalog as this replica holds it: handle → (title, description, categories,
/// variants as JSON), plus the stock of each SKU.
async fn catalog_of(
    app: &TestApp,
    t: &TenantConfig,
) -> (BTreeMap<String, Value>, BTreeMap<String, i64>) {
    let rt = app.state.tenants.resolve(host(t)).expect("tenant");
    let snap = app
        .state
        .catalog
        .refresh(&rt.catalog)
        .await
        .expect("snapshot");
    let mut products = BTreeMap::new();
    let mut stock = BTreeMap::new();
    for &p in snap.catalog.newest() {
        let p = snap.catalog.item(p).unwrap().product();
        for v in &p.variants {
            if let Some(n) = rt.orders.stock(&v.sku).await.expect("stock") {
                stock.insert(v.sku.clone(), i64::from(n));
            }
        }
        products.insert(
            p.handle.clone().unwrap_or_else(|| p.id.to_string()),
            json!({"title": p.title, "description": p.description, "categories": p.categories, "variants": p.variants}),
        );
    }
    (products, stock)
}

const SHOP_CSV: &str = "\
Handle,Title,Body (HTML),Vendor,Type,Tags,Option1 Name,Option1 Value,Option2 Name,Option2 Value,Variant SKU,Variant Grams,Variant Inventory Qty,Variant Price,Variant Compare At Price,Variant Currency,Variant Requires Shipping,Variant Tax Code,Image Src,Variant Image
blue-mug,Blue Mug,<p>A <b>blue</b> mug</p>,Acme,Kitchen,\"mug, blue\",Size,Small,Colour,Blue,MUG-S,300,5,12.50,15.00,EUR,TRUE,,https://img.example.com/mug.jpg,
blue-mug,,,,,,,Large,,Blue,MUG-L,450,3,14.00,,EUR,TRUE,,,https://img.example.com/mug-l.jpg
blue-mug,,,,,,,,,,,,,,,,,,https://img.example.com/mug-l-2.jpg,
e-book,Cookbook (e-book),,Acme,Books,,Title,Default Title,,,EBOOK-1,0,,9.99,,EUR,FALSE,reduced,,
bad-price,Bad Price,,,,,,,,,BAD-1,,,12.5.0,,EUR,,,,
,Orphan,,,,,,,,,ORPHAN-1,,,1.00,,EUR,,,,
dup-sku,Duplicate,,,,,,,,,MUG-S,,,3.00,,EUR,,,,
no-title,,,,,,,,,,NT-1,,,3.00,,EUR,,,,
bad-stock,Bad Stock,,,,,,,,,BS-1,,-4,3.00,,EUR,,,,
tea,Tea,Green tea,,Kitchen,,Weight,100 g,,,TEA-100,100,20,4.20,,EUR,,,,
tea,,,,,,,250 g,,,TEA-250,250,10,9.00,,EUR,,,,
";

#[tokio::test]
async fn a_shopify_csv_imports_good_rows_reports_bad_ones_and_imports_again_as_nothing() {
    let t = store("import-csv", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    let runner = workers::imports::spawn(app.state.clone());

    let job = import_and_wait(&app, &t, "text/csv", SHOP_CSV).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["rows_total"], 11);
    assert_eq!(job["rows_done"], 11);
    assert_eq!(job["rows_failed"], 5, "{job}");
    assert_eq!(job["products_written"], 3, "{job}");
    assert_eq!(
        job["ignored_columns"],
        json!(["Vendor", "Tags", "Variant Compare At Price"])
    );
    let errors: Vec<(u64, String)> = job["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (6, "Variant Price".to_owned()),
            (7, "Handle".to_owned()),
            (8, "Variant SKU".to_owned()),
            (9, "Title".to_owned()),
            (10, "Variant Inventory Qty".to_owned()),
        ],
        "{job}"
    );
    let dup = &job["errors"][2]["message"];
    assert!(dup.as_str().unwrap().contains("MUG-S"), "{dup}");

    // The good rows are in the catalog, the shop's API, and stock.
    let (products, stock) = catalog_of(&app, &t).await;
    assert_eq!(
        products.keys().collect::<Vec<_>>(),
        ["blue-mug", "e-book", "tea"]
    );
    let mug = &products["blue-mug"];
    assert_eq!(mug["title"], "Blue Mug");
    assert_eq!(mug["description"], "<p>A <b>blue</b> mug</p>");
    assert_eq!(mug["categories"], json!(["kitchen"]));
    assert_eq!(mug["variants"][0]["sku"], "MUG-S");
    assert_eq!(
        mug["variants"][0]["price"],
        json!({"amount_minor": 1250, "currency": "EUR"})
    );
    assert_eq!(
        mug["variants"][0]["attributes"],
        json!({"Colour": "Blue", "Size": "Small"})
    );
    assert_eq!(mug["variants"][0]["weight_grams"], 300);
    assert_eq!(
        mug["variants"][1]["images"],
        json!([
            "https://img.example.com/mug-l.jpg",
            "https://img.example.com/mug-l-2.jpg"
        ])
    );
    let book = &products["e-book"];
    assert_eq!(book["variants"][0]["attributes"], json!({}));
    assert_eq!(book["variants"][0]["requires_shipping"], false);
    assert_eq!(book["variants"][0]["tax_class"], "reduced");
    assert_eq!(products["tea"]["variants"].as_array().unwrap().len(), 2);
    assert_eq!(stock.get("MUG-S"), Some(&5));
    assert_eq!(stock.get("TEA-250"), Some(&10));
    assert_eq!(stock.get("EBOOK-1"), None);
    let (s, listed, _) = app
        .call(Method::GET, host(&t), "/api/v1/categories", None, None)
        .await;
    assert_eq!(s, 200);
    assert!(
        listed.to_string().contains("\"name\":\"Kitchen\""),
        "{listed}"
    );

    // The same file again: the same rows fail, nothing is written, the catalog is unchanged.
    let rt = app.state.tenants.resolve(host(&t)).unwrap();
    let version = app
        .state
        .catalog
        .refresh(&rt.catalog)
        .await
        .unwrap()
        .version;
    let again = import_and_wait(&app, &t, "text/csv; charset=utf-8", SHOP_CSV).await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert_eq!(again["rows_failed"], 5);
    assert_eq!(again["products_written"], 0, "{again}");
    assert_eq!(again["products_unchanged"], 3, "{again}");
    assert_eq!(
        app.state
            .catalog
            .refresh(&rt.catalog)
            .await
            .unwrap()
            .version,
        version,
        "a re-run counts no catalog change"
    );
    assert_eq!(catalog_of(&app, &t).await, (products, stock));

    // A changed price and stock for one SKU update that product only.
    let changed = SHOP_CSV.replace("MUG-L,450,3,14.00", "MUG-L,450,7,16.00");
    let third = import_and_wait(&app, &t, "text/csv", &changed).await;
    assert_eq!(third["products_written"], 1, "{third}");
    assert_eq!(third["products_unchanged"], 2, "{third}");
    let (after, stock) = catalog_of(&app, &t).await;
    assert_eq!(
        after["blue-mug"]["variants"][1]["price"]["amount_minor"],
        1600
    );
    assert_eq!(stock.get("MUG-L"), Some(&7));

    // Bodies the import cannot take: unknown type (415), no usable header (422 naming body).
    let (s, b) = import(&app, &t, &t.admin_key, "application/pdf", "x").await;
    assert_eq!(s, 415, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("text/csv"), "{b}");
    let (s, b) = import(&app, &t, &t.admin_key, "text/csv", "Name,Price\nx,1\n").await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["field"], "body");
    assert!(b["detail"].as_str().unwrap().contains("Handle"), "{b}");
    runner.abort();
}

#[tokio::test]
async fn json_lines_import_and_exports_round_trip_into_an_empty_store() {
    let a = store("import-jsonl", None).await;
    let dsn = a.database_url.clone();
    let empty_csv = tenant("import-copy-csv", &dsn, &unique("sf-imp-"));
    let empty_jsonl = tenant("import-copy-jsonl", &dsn, &unique("sf-imp-"));
    let app = TestApp::start(
        settings(Duration::from_secs(900)),
        &[a.clone(), empty_csv.clone(), empty_jsonl.clone()],
    )
    .await;
    let runner = workers::imports::spawn(app.state.clone());

    let lines = [
        json!({"handle": "lamp", "title": "Desk lamp", "description": "Bright,\n\"warm\" light", "categories": ["lighting"],
               "variants": [
                   {"sku": "LAMP-B", "price": {"amount_minor": 4500, "currency": "EUR"}, "attributes": {"colour": "black", "finish": "matt", "plug": "EU", "size": "S"},
                    "images": ["https://img.example.com/l1.jpg", "https://img.example.com/l2.jpg"], "weight_grams": 1200, "inventory": 4},
                   {"sku": "LAMP-W", "price": {"amount_minor": 4700, "currency": "EUR"}, "attributes": {"colour": "white"}, "inventory": 0}]}),
        json!({"handle": "gift-card", "title": "Gift card", "variants": [
                   {"sku": "GIFT-25", "price": {"amount_minor": 2500, "currency": "EUR"}, "requires_shipping": false, "tax_class": "exempt"}]}),
        json!({"handle": "bad", "title": "Bad", "variants": [{"sku": "has space", "price": {"amount_minor": 1, "currency": "EUR"}}]}),
    ];
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect::<String>() + "{not json}\n";
    let job = import_and_wait(&app, &a, "application/x-ndjson", &body).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(
        (job["rows_total"].as_u64(), job["rows_failed"].as_u64()),
        (Some(4), Some(2)),
        "{job}"
    );
    assert_eq!(job["errors"][0]["row"], 3);
    assert_eq!(job["errors"][0]["field"], "variants[0].sku");
    assert_eq!(job["errors"][1]["row"], 4);
    let original = catalog_of(&app, &a).await;
    assert_eq!(original.0.len(), 2);
    assert_eq!(original.1.get("LAMP-B"), Some(&4));
    assert_eq!(original.1.get("LAMP-W"), Some(&0));

    // Products export, both formats, import into empty stores: the same catalog and stock.
    let (s, ct, csv) = export(
        &app,
        &a,
        &a.admin_key,
        "/api/v1/admin/exports/products?format=csv",
    )
    .await;
    assert_eq!(s, 200, "{csv}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(
        csv.starts_with("Handle,Title,Body (HTML),Type,Categories,Option1 Name"),
        "{csv}"
    );
    let copied = import_and_wait(&app, &empty_csv, "text/csv", &csv).await;
    assert_eq!(copied["rows_failed"], 0, "{copied}");
    assert_eq!(
        catalog_of(&app, &empty_csv).await,
        original,
        "CSV round trip"
    );

    let (s, ct, jsonl) = export(
        &app,
        &a,
        &a.admin_key,
        "/api/v1/admin/exports/products?format=jsonl",
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ct, "application/x-ndjson");
    let copied = import_and_wait(&app, &empty_jsonl, "application/x-ndjson", &jsonl).await;
    assert_eq!(copied["rows_failed"], 0, "{copied}");
    assert_eq!(
        catalog_of(&app, &empty_jsonl).await,
        original,
        "JSON lines round trip"
    );
    // Exporting the copy gives the same lines (in an order of its own: ids differ per store).
    let (_, _, again) = export(
        &app,
        &empty_jsonl,
        &empty_jsonl.admin_key,
        "/api/v1/admin/exports/products?format=jsonl",
    )
    .await;
    let sorted = |s: &str| {
        let mut l: Vec<String> = s.lines().map(str::to_owned).collect();
        l.sort();
        l
    };
    assert_eq!(sorted(&again), sorted(&jsonl));

    let (s, _, b) = export(
        &app,
        &a,
        &a.admin_key,
        "/api/v1/admin/exports/products?format=xml",
    )
    .await;
    assert_eq!(s, 422, "{b}");
    assert!(b.contains("\"field\":\"format\""), "{b}");
    runner.abort();
}

#[tokio::test]
async fn orders_and_customers_export_without_secrets_and_permissions_and_tenants_hold() {
    let a = store("import-perm-a", None).await;
    let b = tenant("import-perm-b", &a.database_url, &unique("sf-imp-"));
    let app = TestApp::start(settings(Duration::from_secs(900)), &[a.clone(), b.clone()]).await;
    let runner = workers::imports::spawn(app.state.clone());
    stock_skus(&app, &a, &[("EXP-1", 1999, 10)]).await;
    let (s, _) = app
        .register(host(&a), "exporter@example.com", "a long password 1")
        .await;
    assert_eq!(s, 201);
    let placed = place_order(&app, host(&a), &[("EXP-1", 2)], "exp-1").await;
    let order_id = placed["order"]["id"].as_str().unwrap().to_owned();

    let (s, ct, csv) = export(&app, &a, &a.admin_key, "/api/v1/admin/exports/orders").await;
    assert_eq!(s, 200, "{csv}");
    assert!(ct.starts_with("text/csv"));
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("Order ID,Created At,Status,Email")
    );
    let row = lines.next().expect("an order row");
    assert!(row.starts_with(&order_id), "{row}");
    assert!(
        row.contains(",EXP-1,") && row.ends_with(",2,19.99"),
        "{row}"
    );
    let (s, _, jsonl) = export(
        &app,
        &a,
        &a.admin_key,
        "/api/v1/admin/exports/orders?format=jsonl",
    )
    .await;
    assert_eq!(s, 200);
    let order: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(order["lines"][0]["quantity"], 2);
    assert!(order.get("payment_ref").is_none());

    let (s, _, customers) = export(
        &app,
        &a,
        &a.admin_key,
        "/api/v1/admin/exports/customers?format=jsonl",
    )
    .await;
    assert_eq!(s, 200);
    assert!(customers.contains("exporter@example.com"), "{customers}");
    assert!(
        !customers.contains("argon2") && !customers.contains("password"),
        "{customers}"
    );
    let (_, _, customers_csv) =
        export(&app, &a, &a.admin_key, "/api/v1/admin/exports/customers").await;
    assert!(
        customers_csv.starts_with("ID,Email,Name,Created At\n"),
        "{customers_csv}"
    );
    assert!(!customers_csv.contains("argon2"));

    // A token with orders but not catalog: exports orders, may not import or export products.
    let (s, tok, _) = app
        .call(
            Method::POST,
            host(&a),
            "/api/v1/admin/tokens",
            Some(&a.admin_key),
            Some(json!({"name": "orders only", "permissions": ["orders"]})),
        )
        .await;
    assert_eq!(s, 201, "{tok}");
    let orders_only = tok["secret"].as_str().unwrap().to_owned();
    let (s, problem) = import(&app, &a, &orders_only, "text/csv", SHOP_CSV).await;
    assert_eq!(s, 403, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("catalog"),
        "{problem}"
    );
    let job = import_and_wait(&app, &a, "text/csv", SHOP_CSV).await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/admin/imports/{job_id}");
    let (s, _, _) = app
        .call(Method::GET, host(&a), &path, Some(&orders_only), None)
        .await;
    assert_eq!(s, 403);
    let (s, _, _) = export(&app, &a, &orders_only, "/api/v1/admin/exports/products").await;
    assert_eq!(s, 403);
    let (s, _, _) = export(&app, &a, &orders_only, "/api/v1/admin/exports/orders").await;
    assert_eq!(s, 200);

    // Tenant B (same database) cannot see A's job, and exports none of A's data; A's key
    // means nothing on B's host.
    let (s, _, _) = app
        .call(Method::GET, host(&b), &path, Some(&b.admin_key), None)
        .await;
    assert_eq!(s, 404);
    let (s, list, _) = app
        .call(
            Method::GET,
            host(&b),
            "/api/v1/admin/imports",
            Some(&b.admin_key),
            None,
        )
        .await;
    assert_eq!((s, list), (200, json!([])));
    for kind in ["products", "orders", "customers"] {
        let (s, _, body) = export(
            &app,
            &b,
            &b.admin_key,
            &format!("/api/v1/admin/exports/{kind}?format=jsonl"),
        )
        .await;
        assert_eq!((s, body.as_str()), (200, ""), "{kind}");
    }
    let (s, _, _) = app
        .call(Method::GET, host(&b), &path, Some(&a.admin_key), None)
        .await;
    assert_eq!(s, 401);
    runner.abort();
}

#[tokio::test]
async fn a_job_left_running_by_a_dead_runner_is_resumed_from_its_checkpoint_by_a_new_runtime() {
    let t = store("import-resume", None).await;
    // The first runtime stores the job but has no runner: it "dies" before running it.
    let first = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    let csv = "Handle,Title,Variant SKU,Variant Price,Variant Currency,Variant Inventory Qty\n\
               one,One,R-1,1.00,EUR,1\ntwo,Two,R-2,2.00,EUR,2\nthree,Three,R-3,3.00,EUR,3\n";
    let (s, job) = import(&first, &t, &t.admin_key, "text/csv", csv).await;
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["status"], "queued");
    let id: uuid::Uuid = job["id"].as_str().unwrap().parse().unwrap();

    // As a runner that committed the first two products and died would leave it: running,
    // checkpoint 2, its lease expired.
    let rt = first.state.tenants.resolve(host(&t)).unwrap();
    let mut client = rt.db.client().await.unwrap();
    let tx = tenant_transaction(&mut client, rt.id()).await.unwrap();
    let n = tx
        .execute(
            "UPDATE import_jobs SET status = 'running', checkpoint = 2, rows_done = 2, attempts = 1,
                    lease_owner = gen_random_uuid(), lease_until = now() - interval '1 second'
             WHERE tenant_id = $1 AND id = $2",
            &[&rt.id(), &id],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    tx.commit().await.unwrap();
    drop(client);

    // A new runtime process (its own state and runner) picks it up and finishes it from there.
    let second = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    let runner = workers::imports::spawn(second.state.clone());
    let done = finished(&second, &t, &id.to_string()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["rows_done"], 3, "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(
        done["products_written"], 1,
        "only the product after the checkpoint: {done}"
    );
    let (products, stock) = catalog_of(&second, &t).await;
    assert_eq!(products.keys().collect::<Vec<_>>(), ["three"]);
    assert_eq!(stock.get("R-3"), Some(&3));
    // The first replica follows through the change feed.
    let (from_first, _) = catalog_of(&first, &t).await;
    assert_eq!(from_first.keys().collect::<Vec<_>>(), ["three"]);
    runner.abort();
}

#[tokio::test]
async fn the_import_route_takes_larger_bodies_than_other_routes_up_to_its_own_limit() {
    let t = store("import-limit", None).await;
    let settings = emporium_storefront::Settings {
        import_body_limit_bytes: 64 * 1024,
        ..settings(Duration::from_secs(900))
    };
    let general = settings.body_limit_bytes;
    let app = TestApp::start(settings, std::slice::from_ref(&t)).await;
    let rows: String = (0..1000)
        .map(|i| format!("p-{i},Product {i},LIM-{i},1.00,EUR\n"))
        .collect();
    let csv = format!("Handle,Title,Variant SKU,Variant Price,Variant Currency\n{rows}");
    assert!(
        csv.len() > general && csv.len() < 64 * 1024,
        "{}",
        csv.len()
    );
    let (s, job) = import(&app, &t, &t.admin_key, "text/csv", &csv).await;
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["rows_total"], 1000);
    // Other routes keep the general limit.
    let (s, b, ct) = app
        .call(
            Method::POST,
            host(&t),
            "/api/v1/admin/products",
            Some(&t.admin_key),
            Some(json!({"title": "x", "description": "d".repeat(general), "variants": []})),
        )
        .await;
    assert_eq!((s, ct.as_str()), (413, "application/problem+json"), "{b}");
    // Past the import limit: 413 naming the body.
    let (s, b) = import(&app, &t, &t.admin_key, "text/csv", &csv.repeat(3)).await;
    assert_eq!(s, 413, "{b}");
    assert_eq!(b["field"], "body");
}
