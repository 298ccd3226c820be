//! The runtime against the real stack: PostgreSQL (as a non-superuser app role), Redis and moto.

mod common;

use std::time::Duration;

use common::{TestApp, app_database, host, product, tenant, test_settings, unique};
use emporium_integration_tests::eventually;
use reqwest::Method;
use serde_json::{Value, json};

async fn admin_create(
    app: &TestApp,
    t: &emporium_tenant_config::TenantConfig,
    path: &str,
    body: Value,
) -> Value {
    let (s, b, _) = app
        .call(Method::POST, host(t), path, Some(&t.admin_key), Some(body))
        .await;
    assert_eq!(s, 201, "{path}: {b}");
    b
}

#[tokio::test]
async fn tenants_are_isolated_by_host() {
    let dsn = app_database().await;
    let tables = unique("sf-iso-");
    let (a, b) = (
        tenant("alpha", &dsn, &tables),
        tenant("beta", &dsn, &tables),
    );
    let app = TestApp::start(test_settings(), &[a.clone(), b.clone()]).await;

    // Unknown host: 404 problem+json, on API paths and on any other path.
    for path in ["/api/v1/products", "/anything"] {
        let (s, body, ct) = app.call(Method::GET, "nobody.test", path, None, None).await;
        assert_eq!(s, 404);
        assert_eq!(ct, "application/problem+json");
        assert_eq!(body["type"], "https://emporium.dev/problems/unknown-host");
    }

    // The same email registers in both stores.
    assert_eq!(
        app.register(host(&a), "same@example.com", "password-one")
            .await
            .0,
        201
    );
    let (s, b_session) = app
        .register(host(&b), "same@example.com", "password-two")
        .await;
    assert_eq!(s, 201);
    assert_eq!(
        app.register(host(&a), "SAME@example.com", "password-one")
            .await
            .0,
        409,
        "unique per tenant"
    );

    // A's product is invisible through B's host.
    let p = admin_create(
        &app,
        &a,
        "/api/v1/admin/products",
        product("Alpha mug", "", &[], &[("A-1", 500, &[])]),
    )
    .await;
    let id = p["id"].as_str().unwrap();
    let (_, list, _) = app
        .call(Method::GET, host(&b), "/api/v1/products", None, None)
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);
    let (s, _, _) = app
        .call(
            Method::GET,
            host(&b),
            &format!("/api/v1/products/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 404);
    let (_, found, _) = app
        .call(Method::GET, host(&b), "/api/v1/search?q=alpha", None, None)
        .await;
    assert_eq!(found["total"], 0);

    // A's admin key does nothing on B.
    let (s, _, _) = app
        .call(
            Method::POST,
            host(&b),
            "/api/v1/admin/categories",
            Some(&a.admin_key),
            Some(json!({"id": "x", "name": "X"})),
        )
        .await;
    assert_eq!(s, 401);

    // B's session is not a session on A; B's cart is not a cart on A.
    let b_token = b_session["token"].as_str().unwrap();
    let (s, _, _) = app
        .call(Method::GET, host(&a), "/api/v1/me", Some(b_token), None)
        .await;
    assert_eq!(s, 401);
    let (s, cart, _) = app
        .call(Method::POST, host(&b), "/api/v1/carts", None, None)
        .await;
    assert_eq!(s, 201);
    let cart_path = format!("/api/v1/carts/{}", cart["id"].as_str().unwrap());
    let (s, _, _) = app
        .call(Method::GET, host(&a), &cart_path, None, None)
        .await;
    assert_eq!(s, 404);
    let (s, _, _) = app
        .call(
            Method::POST,
            host(&a),
            &format!("{cart_path}/items"),
            None,
            Some(json!({"sku": "A-1", "quantity": 1})),
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn row_level_security_hides_rows_without_the_tenant_setting() {
    let dsn = app_database().await;
    let tables = unique("sf-rls-");
    let (a, b) = (
        tenant("alpha", &dsn, &tables),
        tenant("beta", &dsn, &tables),
    );
    let app = TestApp::start(test_settings(), &[a.clone(), b.clone()]).await;
    assert_eq!(
        app.register(host(&a), "rls@example.com", "password-one")
            .await
            .0,
        201
    );

    // Connect as the app role itself (the tables' owner, not a superuser).
    let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(
        count("SELECT count(*) FROM customers").await,
        0,
        "no setting, no rows"
    );
    let mut client2 = client;
    let tx = client2.transaction().await.unwrap();
    // The customers the transaction sees once its tenant setting is `tenant`.
    let customers_as = |tenant: &str| {
        let (tx, tenant) = (&tx, tenant.to_owned());
        async move {
            tx.execute("SELECT set_config('app.tenant_id', $1, true)", &[&tenant])
                .await
                .unwrap();
            tx.query_one("SELECT count(*) FROM customers", &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(customers_as(&b.tenant_id).await, 0, "other tenant");
    assert_eq!(customers_as(&a.tenant_id).await, 1, "own tenant");
    // Writing a row for another tenant is refused too.
    let err = tx
        .execute(
            "INSERT INTO customers (tenant_id, id, email, password_hash) VALUES ($1, gen_random_uuid(), 'x@example.com', 'x')",
            &[&b.tenant_id],
        )
        .await
        .unwrap_err();
    let message = err
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(message.contains("row-level security"), "{message}");
}

#[tokio::test]
async fn accounts_register_login_logout_and_password_change() {
    let dsn = app_database().await;
    let t = tenant("acct", &dsn, &unique("sf-acct-"));
    let mut settings = test_settings();
    settings.login_limit_per_email = 3;
    let app = TestApp::start(settings, std::slice::from_ref(&t)).await;
    let h = host(&t);

    // Validation names the field.
    let (s, body) = app.register(h, "not-an-email", "password-one").await;
    assert_eq!((s, body["field"].as_str()), (422, Some("email")));
    let (s, body) = app.register(h, "ann@example.com", "short").await;
    assert_eq!((s, body["field"].as_str()), (422, Some("password")));

    let (s, reg) = app.register(h, "Ann@Example.com", "password-one").await;
    assert_eq!(s, 201, "{reg}");
    assert_eq!(reg["customer"]["email"], "ann@example.com");
    assert!(
        reg.to_string().find("password").is_none(),
        "no hash in responses"
    );

    assert_eq!(
        app.login(h, "ann@example.com", "wrong-password", None)
            .await
            .0,
        401
    );
    assert_eq!(
        app.login(h, "nobody@example.com", "password-one", None)
            .await
            .0,
        401
    );
    let (s, first) = app.login(h, "ann@example.com", "password-one", None).await;
    assert_eq!(s, 200);
    let first = first["token"].as_str().unwrap().to_owned();
    let (s, second) = app.login(h, "ann@example.com", "password-one", None).await;
    assert_eq!(s, 200);
    let second = second["token"].as_str().unwrap().to_owned();

    let (s, me, _) = app
        .call(Method::GET, h, "/api/v1/me", Some(&first), None)
        .await;
    assert_eq!((s, me["email"].as_str()), (200, Some("ann@example.com")));
    let (s, me, _) = app
        .call(
            Method::PATCH,
            h,
            "/api/v1/me",
            Some(&first),
            Some(json!({"name": "Ann B"})),
        )
        .await;
    assert_eq!((s, me["name"].as_str()), (200, Some("Ann B")));
    let (s, _, _) = app.call(Method::GET, h, "/api/v1/me", None, None).await;
    assert_eq!(s, 401);

    // Password change keeps this session and ends the other.
    let change = json!({"current_password": "password-one", "new_password": "password-two"});
    let (s, _, _) = app
        .call(
            Method::POST,
            h,
            "/api/v1/me/password",
            Some(&first),
            Some(change),
        )
        .await;
    assert_eq!(s, 204);
    assert_eq!(
        app.call(Method::GET, h, "/api/v1/me", Some(&first), None)
            .await
            .0,
        200
    );
    assert_eq!(
        app.call(Method::GET, h, "/api/v1/me", Some(&second), None)
            .await
            .0,
        401
    );

    // Logout ends the session.
    assert_eq!(
        app.call(Method::POST, h, "/api/v1/auth/logout", Some(&first), None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.call(Method::GET, h, "/api/v1/me", Some(&first), None)
            .await
            .0,
        401
    );

    // Three attempts for this email so far (limit 3): the fourth is refused, even with the right password.
    let (s, _) = app.login(h, "ann@example.com", "password-two", None).await;
    assert_eq!(s, 429);
    let res = app
        .req(Method::POST, h, "/api/v1/auth/login")
        .json(&json!({"email": "ann@example.com", "password": "password-two"}))
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn login_is_rate_limited_per_ip() {
    let dsn = app_database().await;
    let t = tenant("ip", &dsn, &unique("sf-ip-"));
    let mut settings = test_settings();
    settings.login_limit_per_ip = 3;
    let app = TestApp::start(settings, std::slice::from_ref(&t)).await;
    for i in 0..3 {
        let (s, _) = app
            .login(host(&t), &format!("u{i}@example.com"), "password-one", None)
            .await;
        assert_eq!(s, 401);
    }
    let (s, body) = app
        .login(host(&t), "u9@example.com", "password-one", None)
        .await;
    assert_eq!(
        (s, body["type"].as_str()),
        (429, Some("https://emporium.dev/problems/rate-limited"))
    );
}

#[tokio::test]
async fn catalog_admin_crud_pagination_and_filters() {
    let dsn = app_database().await;
    let t = tenant("cat", &dsn, &unique("sf-cat-"));
    let app = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let h = host(&t);

    // The admin key is required and checked.
    let draft = product("Mug", "", &[], &[("MUG-1", 900, &[])]);
    let (s, _, ct) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/products",
            None,
            Some(draft.clone()),
        )
        .await;
    assert_eq!((s, ct.as_str()), (401, "application/problem+json"));
    let (s, _, _) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/products",
            Some("wrong"),
            Some(draft),
        )
        .await;
    assert_eq!(s, 401);

    admin_create(
        &app,
        &t,
        "/api/v1/admin/categories",
        json!({"id": "kitchen", "name": "Kitchen"}),
    )
    .await;
    let (s, _, _) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/categories",
            Some(&t.admin_key),
            Some(json!({"id": "kitchen", "name": "K"})),
        )
        .await;
    assert_eq!(s, 409);

    // Validation names the nested field.
    let mut bad = product("Mug", "", &["kitchen"], &[("M-1", 900, &[])]);
    bad["variants"][0]["price"]["currency"] = json!("euro");
    let (s, body, _) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/products",
            Some(&t.admin_key),
            Some(bad),
        )
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("variants[0].price.currency"))
    );
    let (s, body, _) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/products",
            Some(&t.admin_key),
            Some(product("X", "", &["nope"], &[("X-1", 1, &[])])),
        )
        .await;
    assert_eq!((s, body["field"].as_str()), (422, Some("categories[0]")));

    let mut ids = Vec::new();
    for (i, price) in [700, 300, 1500, 100, 900].into_iter().enumerate() {
        let cats: &[&str] = if i % 2 == 0 { &["kitchen"] } else { &[] };
        let p = admin_create(
            &app,
            &t,
            "/api/v1/admin/products",
            product(
                &format!("P{i}"),
                "",
                cats,
                &[(&format!("P-{i}"), price, &[])],
            ),
        )
        .await;
        ids.push(p["id"].as_str().unwrap().to_owned());
    }
    let (s, body, _) = app
        .call(
            Method::POST,
            h,
            "/api/v1/admin/products",
            Some(&t.admin_key),
            Some(product("Dup", "", &[], &[("P-0", 1, &[])])),
        )
        .await;
    assert_eq!(
        (s, body["field"].as_str()),
        (422, Some("variants[0].sku")),
        "SKUs are unique"
    );

    // Pages of 2, newest first, every product once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/products?limit=2".to_owned();
    loop {
        let (s, page, _) = app.call(Method::GET, h, &path, None, None).await;
        assert_eq!(s, 200, "{page}");
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/api/v1/products?limit=2&cursor={c}"),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    // Filters and sort.
    let prices = |v: &Value| {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["variants"][0]["price"]["amount_minor"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    let (_, page, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/products?sort=price_asc",
            None,
            None,
        )
        .await;
    assert_eq!(prices(&page), vec![100, 300, 700, 900, 1500]);
    let (_, page, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/products?category=kitchen&min_price=800&sort=price_desc",
            None,
            None,
        )
        .await;
    assert_eq!(prices(&page), vec![1500, 900]);
    let (s, body, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/products?min_price=cheap",
            None,
            None,
        )
        .await;
    assert_eq!((s, body["field"].as_str()), (422, Some("min_price")));
    let (s, body, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/products?cursor=garbage",
            None,
            None,
        )
        .await;
    assert_eq!((s, body["field"].as_str()), (422, Some("cursor")));

    // Update and delete.
    let path = format!("/api/v1/admin/products/{}", ids[0]);
    let (s, updated, _) = app
        .call(
            Method::PUT,
            h,
            &path,
            Some(&t.admin_key),
            Some(product("P0 new", "", &[], &[("P-0", 750, &[])])),
        )
        .await;
    assert_eq!((s, updated["title"].as_str()), (200, Some("P0 new")));
    let (_, shown, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/products/{}", ids[0]),
            None,
            None,
        )
        .await;
    assert_eq!(shown["variants"][0]["price"]["amount_minor"], 750);
    assert_eq!(
        app.call(Method::DELETE, h, &path, Some(&t.admin_key), None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.call(
            Method::GET,
            h,
            &format!("/api/v1/products/{}", ids[0]),
            None,
            None
        )
        .await
        .0,
        404
    );
    assert_eq!(
        app.call(Method::DELETE, h, &path, Some(&t.admin_key), None)
            .await
            .0,
        404
    );
    let (_, cats, _) = app
        .call(Method::GET, h, "/api/v1/categories", None, None)
        .await;
    assert_eq!(cats[0]["id"], "kitchen");
    assert_eq!(
        app.call(
            Method::DELETE,
            h,
            "/api/v1/admin/categories/kitchen",
            Some(&t.admin_key),
            None
        )
        .await
        .0,
        409,
        "still used"
    );
}

#[tokio::test]
async fn search_ranks_tolerates_typos_and_counts_facets() {
    let dsn = app_database().await;
    let t = tenant("search", &dsn, &unique("sf-search-"));
    let app = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let h = host(&t);
    admin_create(
        &app,
        &t,
        "/api/v1/admin/categories",
        json!({"id": "kitchen", "name": "Kitchen"}),
    )
    .await;
    admin_create(
        &app,
        &t,
        "/api/v1/admin/categories",
        json!({"id": "decor", "name": "Decor"}),
    )
    .await;
    let mug = admin_create(
        &app,
        &t,
        "/api/v1/admin/products",
        product(
            "Ceramic mug",
            "Holds coffee",
            &["kitchen"],
            &[
                ("MUG-R", 900, &[("colour", "red")]),
                ("MUG-B", 950, &[("colour", "blue")]),
            ],
        ),
    )
    .await;
    let poster = admin_create(
        &app,
        &t,
        "/api/v1/admin/products",
        product(
            "Poster",
            "A drawing of a ceramic mug",
            &["decor"],
            &[("POSTER", 3000, &[("colour", "red")])],
        ),
    )
    .await;
    admin_create(
        &app,
        &t,
        "/api/v1/admin/products",
        product("Teapot", "Porcelain", &["kitchen"], &[("POT", 4500, &[])]),
    )
    .await;

    let (s, res, _) = app
        .call(Method::GET, h, "/api/v1/search?q=ceramic%20mug", None, None)
        .await;
    assert_eq!(s, 200, "{res}");
    let ids: Vec<_> = res["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["product"]["id"].clone())
        .collect();
    assert_eq!(
        ids,
        vec![mug["id"].clone(), poster["id"].clone()],
        "title match ranks first"
    );
    assert_eq!(res["total"], 2);
    assert_eq!(
        res["facets"]["categories"],
        json!([{"value": "decor", "count": 1}, {"value": "kitchen", "count": 1}])
    );
    assert_eq!(
        res["facets"]["attributes"]["colour"],
        json!([{"value": "red", "count": 2}, {"value": "blue", "count": 1}])
    );
    assert_eq!(
        res["facets"]["price_bands"],
        json!([{"min_minor": 0, "max_minor": 1000, "count": 1}, {"min_minor": 2500, "max_minor": 5000, "count": 1}])
    );

    let (_, res, _) = app
        .call(Method::GET, h, "/api/v1/search?q=ceramc", None, None)
        .await;
    assert_eq!(
        res["hits"][0]["product"]["id"], mug["id"],
        "one-letter typo: {res}"
    );
    let (_, res, _) = app
        .call(Method::GET, h, "/api/v1/search?q=porcelian", None, None)
        .await;
    assert_eq!(res["total"], 1, "transposition: {res}");
    let (_, res, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/search?q=&category=kitchen",
            None,
            None,
        )
        .await;
    assert_eq!(res["total"], 2);
    let (s, res, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/search?q={}", "a".repeat(300)),
            None,
            None,
        )
        .await;
    assert_eq!((s, res["field"].as_str()), (422, Some("q")));
}

#[tokio::test]
async fn cart_totals_come_from_server_prices_and_merge_on_login() {
    let dsn = app_database().await;
    let t = tenant("cart", &dsn, &unique("sf-cart-"));
    let app = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let h = host(&t);
    let mug = admin_create(
        &app,
        &t,
        "/api/v1/admin/products",
        product("Mug", "", &[], &[("MUG", 900, &[])]),
    )
    .await;
    admin_create(
        &app,
        &t,
        "/api/v1/admin/products",
        product("Pot", "", &[], &[("POT", 2500, &[])]),
    )
    .await;

    let (s, cart, _) = app.call(Method::POST, h, "/api/v1/carts", None, None).await;
    assert_eq!(s, 201);
    let cart_id = cart["id"].as_str().unwrap().to_owned();
    let items = format!("/api/v1/carts/{cart_id}/items");
    // A client-sent price is refused outright (unknown field), never trusted.
    let (s, body, _) = app
        .call(
            Method::POST,
            h,
            &items,
            None,
            Some(json!({"sku": "MUG", "quantity": 1, "price": 1})),
        )
        .await;
    assert_eq!((s, body["field"].as_str()), (422, Some("price")));
    let (s, body, _) = app
        .call(
            Method::POST,
            h,
            &items,
            None,
            Some(json!({"sku": "NOPE", "quantity": 1})),
        )
        .await;
    assert_eq!((s, body["field"].as_str()), (422, Some("sku")));
    let (s, body, _) = app
        .call(
            Method::POST,
            h,
            &items,
            None,
            Some(json!({"sku": "MUG", "quantity": 0})),
        )
        .await;
    assert_eq!((s, body["field"].as_str()), (422, Some("quantity")));

    app.call(
        Method::POST,
        h,
        &items,
        None,
        Some(json!({"sku": "MUG", "quantity": 2})),
    )
    .await;
    let (s, cart, _) = app
        .call(
            Method::POST,
            h,
            &items,
            None,
            Some(json!({"sku": "MUG", "quantity": 1})),
        )
        .await;
    assert_eq!(s, 200, "{cart}");
    assert_eq!(
        cart["total"],
        json!({"amount_minor": 2700, "currency": "EUR"})
    );
    let (_, cart, _) = app
        .call(
            Method::POST,
            h,
            &items,
            None,
            Some(json!({"sku": "POT", "quantity": 1})),
        )
        .await;
    assert_eq!(cart["total"]["amount_minor"], 5200);
    let (_, cart, _) = app
        .call(
            Method::PUT,
            h,
            &format!("{items}/MUG"),
            None,
            Some(json!({"quantity": 1})),
        )
        .await;
    assert_eq!(cart["total"]["amount_minor"], 3400);

    // The merchant raises the mug's price: the cart follows.
    let path = format!("/api/v1/admin/products/{}", mug["id"].as_str().unwrap());
    let (s, _, _) = app
        .call(
            Method::PUT,
            h,
            &path,
            Some(&t.admin_key),
            Some(product("Mug", "", &[], &[("MUG", 1000, &[])])),
        )
        .await;
    assert_eq!(s, 200);
    let (_, cart, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/carts/{cart_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(cart["total"]["amount_minor"], 3500);
    let (_, cart, _) = app
        .call(Method::DELETE, h, &format!("{items}/POT"), None, None)
        .await;
    assert_eq!(cart["total"]["amount_minor"], 1000);
    assert_eq!(
        app.call(Method::DELETE, h, &format!("{items}/POT"), None, None)
            .await
            .0,
        404
    );

    // A customer with a cart of their own signs in holding the guest cart: one merged cart.
    let (_, reg) = app.register(h, "cart@example.com", "password-one").await;
    let token = reg["token"].as_str().unwrap();
    let (s, own, _) = app
        .call(Method::POST, h, "/api/v1/carts", Some(token), None)
        .await;
    assert_eq!(s, 201);
    let own_id = own["id"].as_str().unwrap().to_owned();
    app.call(
        Method::POST,
        h,
        &format!("/api/v1/carts/{own_id}/items"),
        Some(token),
        Some(json!({"sku": "MUG", "quantity": 2})),
    )
    .await;
    let (s, _, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/carts/{own_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 403, "an owned cart needs its owner's session");

    let (s, session) = app
        .login(h, "cart@example.com", "password-one", Some(&cart_id))
        .await;
    assert_eq!(s, 200);
    assert_eq!(session["cart_id"].as_str(), Some(own_id.as_str()));
    let token = session["token"].as_str().unwrap();
    let (_, merged, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/carts/{own_id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(merged["lines"][0]["quantity"], 3);
    assert_eq!(merged["total"]["amount_minor"], 3000);
    assert_eq!(
        app.call(
            Method::GET,
            h,
            &format!("/api/v1/carts/{cart_id}"),
            None,
            None
        )
        .await
        .0,
        404,
        "guest cart is gone"
    );
}

#[tokio::test]
async fn bad_bodies_get_problem_documents() {
    let dsn = app_database().await;
    let t = tenant("body", &dsn, &unique("sf-body-"));
    let app = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let h = host(&t);
    let send = |body: &'static str| {
        app.req(Method::POST, h, "/api/v1/auth/register")
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let res = send("{\"email\": ").await.unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = send("{\"email\": \"a@example.com\", \"password\": 12}")
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["field"], "password");
    let res = send("{\"password\": \"long enough password\"}")
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["field"], "email");
    let res = app
        .req(Method::POST, h, "/api/v1/auth/register")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(64 * 1024));
    let res = app
        .req(Method::POST, h, "/api/v1/auth/register")
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_price_change_reaches_another_replica_quickly() {
    let dsn = app_database().await;
    let t = tenant("replica", &dsn, &unique("sf-rep-"));
    let one = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let two = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let h = host(&t);
    let p = admin_create(
        &one,
        &t,
        "/api/v1/admin/products",
        product("Lamp", "", &[], &[("LAMP", 4000, &[])]),
    )
    .await;
    let path = format!("/api/v1/products/{}", p["id"].as_str().unwrap());
    // Replica two caches the product...
    assert_eq!(
        two.call(Method::GET, h, &path, None, None).await.1["variants"][0]["price"]["amount_minor"],
        4000
    );
    // ...and sees the new price soon after replica one writes it (pub/sub), far inside the 30 s bound.
    let admin = format!("/api/v1/admin/products/{}", p["id"].as_str().unwrap());
    let (s, _, _) = one
        .call(
            Method::PUT,
            h,
            &admin,
            Some(&t.admin_key),
            Some(product("Lamp", "", &[], &[("LAMP", 4200, &[])])),
        )
        .await;
    assert_eq!(s, 200);
    eventually(
        "replica two sees the new price",
        Duration::from_secs(3),
        || async {
            let (_, body, _) = two.call(Method::GET, h, &path, None, None).await;
            Ok((body["variants"][0]["price"]["amount_minor"] == 4200).then_some(()))
        },
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn ops_endpoints() {
    let dsn = app_database().await;
    let t = tenant("ops", &dsn, &unique("sf-ops-"));
    let app = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let (s, _, _) = app
        .call(Method::GET, "anything", "/healthz", None, None)
        .await;
    assert_eq!(s, 200);
    let (s, body, _) = app
        .call(Method::GET, "anything", "/readyz", None, None)
        .await;
    assert_eq!(s, 200, "{body}");
    app.call(Method::GET, host(&t), "/api/v1/products", None, None)
        .await;
    let res = app
        .req(Method::GET, "anything", "/metrics")
        .send()
        .await
        .unwrap();
    let text = res.text().await.unwrap();
    assert!(text.contains("storefront_http_requests_total{method=\"GET\",route=\"/api/v1/products\",status=\"200\"}"), "{text}");
    let (s, doc, _) = app
        .call(Method::GET, "anything", "/openapi.json", None, None)
        .await;
    assert_eq!(s, 200);
    assert!(doc["paths"]["/api/v1/carts/{id}/items"].is_object());
    let res = app
        .req(Method::GET, host(&t), "/api/v1/products")
        .send()
        .await
        .unwrap();
    assert!(res.headers().contains_key("x-request-id"));
    let (s, body, ct) = app
        .call(Method::DELETE, host(&t), "/api/v1/products", None, None)
        .await;
    assert_eq!(
        (s, ct.as_str()),
        (405, "application/problem+json"),
        "{body}"
    );
    let (s, body, ct) = app
        .call(
            Method::GET,
            host(&t),
            "/api/v1/products?limit=1&limit=2",
            None,
            None,
        )
        .await;
    assert_eq!(
        (s, ct.as_str()),
        (400, "application/problem+json"),
        "{body}"
    );
}
