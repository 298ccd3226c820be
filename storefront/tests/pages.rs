//! The shopper web pages against the real stack, driven like a browser without JavaScript:
//! plain GETs and form POSTs, cookies kept by hand, redirects not followed.

mod common;

use std::collections::BTreeMap;

use common::{TestApp, app_database, host, product, tenant, test_settings, unique};
use emporium_tenant_config::TenantConfig;
use reqwest::{Method, header, redirect::Policy};
use serde_json::{Value, json};

/// A cookie-keeping client for one store's host.
struct Browser {
    http: reqwest::Client,
    base: String,
    host: String,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new(app: &TestApp, host: &str) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            base: app.base.clone(),
            host: host.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, method: Method, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(header::HOST, &self.host);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let res = req.send().await.expect("request");
        for set in res.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().expect("ascii cookie");
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Lax"),
                "{set}"
            );
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').expect("name=value");
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        let status = res.status().as_u16();
        let location = res
            .headers()
            .get(header::LOCATION)
            .map(|v| v.to_str().expect("location").to_owned());
        let body = res.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(Method::POST, path, Some(form)).await
    }

    /// The CSRF token the last page's forms carry.
    fn csrf(page: &Page) -> String {
        page.field("csrf")
    }

    /// Posts the cart form: `action` (`add` or `update`) `quantity` of `sku`, with `csrf`.
    async fn cart_form(&mut self, csrf: &str, action: &str, sku: &str, quantity: &str) -> Page {
        let form = [
            ("csrf", csrf),
            ("action", action),
            ("sku", sku),
            ("quantity", quantity),
        ];
        self.post("/cart", &form).await
    }
}

impl Page {
    /// The value of the page's form field `name` (a hidden input).
    fn field(&self, name: &str) -> String {
        let marker = format!(r#"name="{name}" value=""#);
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("a form with a {name} field"))
            + marker.len();
        let len = self.body[start..].find('"').expect("closing quote");
        self.body[start..start + len].to_owned()
    }
}

async fn admin(
    app: &TestApp,
    t: &TenantConfig,
    method: Method,
    path: &str,
    body: Value,
) -> (u16, Value, String) {
    app.call(method, host(t), path, Some(&t.admin_key), Some(body))
        .await
}

/// A store with one category and one product whose title is hostile HTML, 5 in stock.
async fn store(app: &TestApp, t: &TenantConfig) -> (String, String) {
    let (s, b, _) = admin(
        app,
        t,
        Method::POST,
        "/api/v1/admin/categories",
        json!({"id": "mugs", "name": "Mugs"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let sku = unique("MUG-");
    let (s, b, _) = admin(
        app,
        t,
        Method::POST,
        "/api/v1/admin/products",
        product(
            "<script>alert(1)</script> Mug",
            "A mug & a \"quote\".",
            &["mugs"],
            &[(&sku, 1250, &[("colour", "red")])],
        ),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let id = b["id"].as_str().expect("product id").to_owned();
    let (s, b, _) = admin(
        app,
        t,
        Method::PUT,
        &format!("/api/v1/admin/inventory/{sku}"),
        json!({"available": 5}),
    )
    .await;
    assert!(s == 200 || s == 204, "set stock: {s} {b}");
    (id, sku)
}

async fn start() -> (TestApp, TenantConfig) {
    let dsn = app_database().await;
    let mut t = tenant("lumen", &dsn, &unique("sf-pages-"));
    t.display_name = "Lumen Goods".into();
    t.theme_color = Some("#ffd700".into());
    let app = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    (app, t)
}

#[tokio::test]
async fn every_page_renders_for_its_tenant_and_escapes_merchant_text() {
    let (app, t) = start().await;
    let (id, sku) = store(&app, &t).await;
    let mut browser = Browser::new(&app, host(&t));

    for path in [
        "/".to_owned(),
        "/?category=mugs".to_owned(),
        format!("/products/{id}"),
        "/search?q=mug".to_owned(),
        "/search?q=mgu&category=mugs".to_owned(),
        "/cart".to_owned(),
        "/checkout".to_owned(),
        "/signin".to_owned(),
        "/register".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        assert!(page.body.contains("Lumen Goods"), "{path} names the store");
        assert!(
            page.body.contains(r#"<main id="main""#),
            "{path} has a main landmark"
        );
        assert!(
            !page.body.contains("<script>alert(1)"),
            "{path} escapes the title"
        );
    }
    let product_page = browser.get(&format!("/products/{id}")).await;
    assert!(
        product_page
            .body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; Mug")
    );
    assert!(product_page.body.contains("5 in stock"));
    assert!(
        product_page
            .body
            .contains(r#"<script src="/assets/stock.js""#)
    );
    let search = browser.get("/search?q=mugg").await;
    assert!(
        search.body.contains("1 product"),
        "typo-tolerant search: {}",
        search.body
    );
    assert!(search.body.contains("Mugs (1)"), "category facet");

    // Live stock: the page marks the figure, the script listens for `stock` events, and the
    // stream it subscribes to carries a change of this SKU.
    assert!(
        product_page
            .body
            .contains(&format!(r#"data-stock-sku="{sku}""#))
    );
    assert!(
        browser
            .get("/assets/stock.js")
            .await
            .body
            .contains(r#"addEventListener("stock""#)
    );
    let mut events = app
        .req(Method::GET, host(&t), "/api/v1/inventory/events")
        .send()
        .await
        .expect("event stream");
    assert_eq!(events.status().as_u16(), 200);
    let (s, b, _) = admin(
        &app,
        &t,
        Method::PUT,
        &format!("/api/v1/admin/inventory/{sku}"),
        json!({"available": 7}),
    )
    .await;
    assert!(s == 200 || s == 204, "{b}");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(seen.contains(&sku) && seen.contains("\"available\":7")) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("a stock event within 10 s")
            .expect("stream")
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: stock"), "{seen}");
    assert!(
        browser
            .get(&format!("/products/{id}"))
            .await
            .body
            .contains("7 in stock")
    );

    // Signed out, the account page sends the shopper to sign in.
    let account = browser.get("/account").await;
    assert_eq!(
        (account.status, account.location.as_deref()),
        (303, Some("/signin"))
    );

    // The theme: yellow gets black text (contrast), served from this host.
    let theme = browser.get("/assets/theme.css").await;
    assert!(
        theme.body.contains("--brand:#ffd700") && theme.body.contains("--on-brand:#000000"),
        "{}",
        theme.body
    );
    assert_eq!(browser.get("/assets/storefront.css").await.status, 200);

    // An unknown host is 404 and shows no store.
    let mut stranger = Browser::new(&app, "nobody.test");
    for path in ["/", "/cart", "/signin"] {
        let page = stranger.get(path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(!page.body.contains("Lumen Goods"));
    }
    assert_eq!(browser.get("/products/not-a-uuid").await.status, 404);
}

#[tokio::test]
async fn a_shopper_registers_signs_in_buys_and_sees_the_order() {
    let (app, t) = start().await;
    let (id, sku) = store(&app, &t).await;
    let mut b = Browser::new(&app, host(&t));
    let email = format!("{}@example.com", unique("ann"));

    // As a guest, put one in the cart; registering keeps it.
    let form = b.get("/register").await;
    let csrf = Browser::csrf(&form);
    let added = b.cart_form(&csrf, "add", &sku, "1").await;
    assert_eq!(added.status, 303, "{}", added.body);
    assert!(b.cookies.contains_key("sf_cart"));

    // Register: signed in straight away.
    let done = b
        .post(
            "/register",
            &[
                ("csrf", &csrf),
                ("name", "Ann"),
                ("email", &email),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(
        (done.status, done.location.as_deref()),
        (303, Some("/account")),
        "{}",
        done.body
    );
    assert!(b.cookies.contains_key("sf_session"));
    let account = b.get("/account").await;
    assert_eq!(account.status, 200);
    assert!(
        account.body.contains("Lumen Goods")
            && account.body.contains(&email)
            && account.body.contains("no orders yet")
    );

    // Sign out, then sign in again through the form.
    let out = b.post("/signout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert!(!b.cookies.contains_key("sf_session"));
    let wrong = b
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", &email),
                ("password", "not the password"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let signed_in = b
        .post(
            "/signin",
            &[
                ("csrf", &csrf),
                ("email", &email),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(
        (signed_in.status, signed_in.location.as_deref()),
        (303, Some("/account"))
    );

    // The guest cart came along; change the quantity, check out.
    assert!(
        b.get("/cart").await.body.contains("12.50 EUR"),
        "guest cart adopted"
    );
    let updated = b.cart_form(&csrf, "update", &sku, "2").await;
    assert_eq!(updated.status, 303, "{}", updated.body);
    let cart = b.get("/cart").await;
    assert!(
        cart.body
            .contains("&lt;script&gt;alert(1)&lt;/script&gt; Mug")
    );
    assert!(cart.body.contains("25.00 EUR"), "2 × 12.50: {}", cart.body);
    let too_many = b.cart_form(&csrf, "update", &sku, "500").await;
    assert_eq!(
        too_many.status, 422,
        "the API's limit shows as a form error"
    );

    let checkout = b.get("/checkout").await;
    assert_eq!(checkout.status, 200);
    let key = checkout.field("key");
    let placed = b
        .post(
            "/checkout",
            &[("csrf", &csrf), ("key", &key), ("email", &email)],
        )
        .await;
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert!(
        placed.body.contains("your order is placed") && placed.body.contains("Awaiting payment")
    );
    assert!(b.get("/cart").await.body.contains("Your cart is empty"));

    // The order is in the account, and the product page shows the reserved stock gone.
    let account = b.get("/account").await;
    assert!(
        account.body.contains("Awaiting payment") && account.body.contains("25.00 EUR"),
        "{}",
        account.body
    );
    assert!(
        b.get(&format!("/products/{id}"))
            .await
            .body
            .contains("3 in stock")
    );
}

#[tokio::test]
async fn form_posts_without_the_csrf_token_are_refused() {
    let (app, t) = start().await;
    let (_id, sku) = store(&app, &t).await;
    let mut b = Browser::new(&app, host(&t));

    // No cookie and no token at all.
    let page = b
        .post(
            "/cart",
            &[("action", "add"), ("sku", &sku), ("quantity", "1")],
        )
        .await;
    assert_eq!(page.status, 403);
    // The cookie, but a wrong or missing token.
    let csrf = Browser::csrf(&b.get("/signin").await);
    for token in ["", "forged-token-forged-token-forged-token-123"] {
        let page = b.cart_form(token, "add", &sku, "1").await;
        assert_eq!(page.status, 403, "token {token:?}");
    }
    let page = b
        .post(
            "/signin",
            &[("email", "a@example.com"), ("password", "whatever-long")],
        )
        .await;
    assert_eq!(page.status, 403);
    assert!(
        b.get("/cart").await.body.contains("Your cart is empty"),
        "nothing was added"
    );

    // A cross-site Origin is refused even with the right token.
    let res = app
        .req(Method::POST, host(&t), "/cart")
        .header(header::COOKIE, format!("sf_csrf={csrf}"))
        .header(header::ORIGIN, "https://evil.example")
        .form(&[
            ("csrf", csrf.as_str()),
            ("action", "add"),
            ("sku", &sku),
            ("quantity", "1"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 403);

    // With the token it works.
    let page = b.cart_form(&csrf, "add", &sku, "1").await;
    assert_eq!(page.status, 303);
}

#[tokio::test]
async fn a_guest_checks_out_with_an_email() {
    let (app, t) = start().await;
    let (_id, sku) = store(&app, &t).await;
    let mut b = Browser::new(&app, host(&t));
    let csrf = Browser::csrf(&b.get("/signin").await);
    let added = b.cart_form(&csrf, "add", &sku, "1").await;
    assert_eq!(added.status, 303);
    let checkout = b.get("/checkout").await;
    assert!(checkout.body.contains(r#"name="email""#) && checkout.body.contains("required"));
    let (key, cart) = (checkout.field("key"), checkout.field("cart"));
    let form = [
        ("csrf", csrf.as_str()),
        ("key", key.as_str()),
        ("cart", cart.as_str()),
        ("email", "guest@example.com"),
    ];
    let placed = b.post("/checkout", &form).await;
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert!(placed.body.contains("your order is placed"));
    assert!(!b.cookies.contains_key("sf_cart"), "a fresh cart next time");
    // Submitting the same form again (a double click) shows the same order, not a second one.
    let order_id = |body: &str| {
        let start = body.find("Order <strong>").expect("order id") + "Order <strong>".len();
        body[start..start + 36].to_owned()
    };
    let again = b.post("/checkout", &form).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(order_id(&again.body), order_id(&placed.body));
}

#[tokio::test]
async fn a_stripe_store_pays_on_stripe_checkout_and_the_webhook_confirms() {
    let dsn = app_database().await;
    let mut t = tenant("stripy", &dsn, &unique("sf-pages-"));
    t.payments = emporium_tenant_config::Payments {
        provider: emporium_tenant_config::PaymentProvider::Stripe,
        secret_key: Some("sk_test_123".into()),
        webhook_secret: Some("whsec_test".into()),
        api_base: Some(
            emporium_integration_tests::Stack::get()
                .var("STRIPE_API_BASE")
                .expect("STRIPE_API_BASE")
                .to_owned(),
        ),
    };
    let app = TestApp::start(test_settings(), std::slice::from_ref(&t)).await;
    let (_id, sku) = store(&app, &t).await;
    let mut b = Browser::new(&app, host(&t));
    let csrf = Browser::csrf(&b.get("/register").await);
    let email = format!("{}@example.com", unique("bo"));
    let form = [
        ("csrf", csrf.as_str()),
        ("email", email.as_str()),
        ("password", "correct horse battery"),
    ];
    assert_eq!(b.post("/register", &form).await.status, 303);
    let form = [
        ("csrf", csrf.as_str()),
        ("action", "add"),
        ("sku", sku.as_str()),
    ];
    assert_eq!(b.post("/cart", &form).await.status, 303);
    let checkout = b.get("/checkout").await;
    assert!(checkout.body.contains("Stripe"), "{}", checkout.body);
    let key = uuid::Uuid::new_v4().to_string();
    let placed = b
        .post(
            "/checkout",
            &[("csrf", csrf.as_str()), ("key", key.as_str())],
        )
        .await;
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert!(
        placed.body.contains("Payment reference: pi_"),
        "{}",
        placed.body
    );
    let order = placed.field("order");
    assert!(placed.body.contains("Pay with card"), "{}", placed.body);
    assert!(
        !placed.body.contains("test card"),
        "no test-mode shortcut in the pages"
    );

    // Someone else's form (no CSRF) cannot pay it; the shopper is sent to Stripe's hosted page.
    let mut other = Browser::new(&app, host(&t));
    assert_eq!(
        other
            .post("/checkout/pay", &[("order", &order)])
            .await
            .status,
        403
    );
    let pay = b
        .post(
            "/checkout/pay",
            &[("csrf", csrf.as_str()), ("order", order.as_str())],
        )
        .await;
    assert_eq!(pay.status, 303, "{}", pay.body);
    let to = pay.location.expect("a redirect to Stripe");
    assert!(to.starts_with("https://"), "{to}");

    // Back from Stripe before the webhook: waiting; after it: paid.
    let back = format!("/checkout/complete?order={order}");
    let waiting = b.get(&back).await;
    assert_eq!(waiting.status, 200, "{}", waiting.body);
    assert!(
        waiting.body.contains("Waiting for your payment"),
        "{}",
        waiting.body
    );
    let event = json!({"id": unique("evt_cs_"), "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_1", "payment_status": "paid",
                            "payment_intent": "pi_from_session", "metadata": {"order_id": order}}}})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let signature = format!(
        "t={now},v1={}",
        emporium_storefront::payments::stripe::sign("whsec_test", now, event.as_bytes())
    );
    let res = app
        .req(Method::POST, host(&t), "/api/v1/payments/webhook")
        .header("Stripe-Signature", signature)
        .body(event)
        .send()
        .await
        .unwrap();
    let outcome: Value = res.json().await.unwrap();
    assert_eq!(outcome["outcome"], "paid", "{outcome}");
    let done = b.get(&back).await;
    assert!(done.body.contains("received your payment"), "{}", done.body);
    let (_, o, _) = app
        .call(
            Method::GET,
            host(&t),
            &format!("/api/v1/admin/orders/{order}"),
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(
        o["payment_ref"], "pi_from_session",
        "refunds go to the session's payment"
    );
}

#[tokio::test]
async fn a_shopper_gives_an_address_and_picks_a_shipping_method() {
    let (app, t) = start().await;
    let (_id, sku) = store(&app, &t).await;
    let zones = json!({"zones": [{"id": "de", "name": "Germany", "countries": ["DE"], "methods": [
        {"id": "standard", "name": "Standard parcel", "price": {"amount_minor": 490, "currency": "EUR"}}]}]});
    let (s, b, _) = admin(&app, &t, Method::PUT, "/api/v1/admin/shipping", zones).await;
    assert_eq!(s, 200, "{b}");
    let mut b = Browser::new(&app, host(&t));
    let csrf = Browser::csrf(&b.get("/signin").await);
    assert_eq!(b.cart_form(&csrf, "add", &sku, "2").await.status, 303);
    let checkout = b.get("/checkout").await;
    assert!(
        checkout.body.contains(r#"name="ship_line1""#),
        "{}",
        checkout.body
    );
    assert!(
        checkout.body.contains("Standard parcel"),
        "{}",
        checkout.body
    );
    let (key, cart) = (checkout.field("key"), checkout.field("cart"));
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("key", key.as_str()),
        ("cart", cart.as_str()),
        ("email", "guest@example.com"),
        ("ship_name", "Ann Example"),
        ("ship_line1", "Hauptstr. 1"),
        ("ship_city", "Berlin"),
        ("ship_country", "fr"),
        ("shipping_method", "standard"),
    ];
    // A country the store does not ship to: the form comes back, filled in, saying why.
    let refused = b.post("/checkout", &form).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(
        refused.body.contains("does not ship to FR"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(r#"value="Hauptstr. 1""#),
        "{}",
        refused.body
    );
    form[7] = ("ship_country", "de");
    let placed = b.post("/checkout", &form).await;
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert!(
        placed.body.contains("Shipping (Standard parcel): 4.90 EUR"),
        "{}",
        placed.body
    );
    assert!(
        placed.body.contains("Ships to Ann Example"),
        "{}",
        placed.body
    );
    assert!(placed.body.contains("Total: 29.90 EUR"), "{}", placed.body);
}
