//! Staff accounts and roles (issue 16 items 1–2), through the real runtime on the stack's
//! PostgreSQL, Redis and moto: the owner's invitation from the admin key, invitations accepted
//! in the merchant web app, permissions enforced on the admin API (403 problem documents) and
//! on the pages, scoped API tokens and their rotation, the admin key retired, the audit log,
//! and the boundaries: a shopper session authorises nothing, one store's staff cookie and
//! tokens mean nothing on another store's host.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::{collections::HashMap, time::Duration};

use common::{TestApp, host, tenant, unique};
use emporium_tenant_config::TenantConfig;
use reqwest::{Method, StatusCode, header, redirect};
use serde_json::{Value, json};
use support::*;

/// A browser of the merchant app: keeps its cookies per host, follows no redirects.
struct Browser<'a> {
    app: &'a TestApp,
    host: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
    /// The raw `Set-Cookie` headers seen, for attribute checks.
    set_cookies: Vec<String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp, host: &str) -> Self {
        Browser {
            app,
            host: host.to_owned(),
            http: reqwest::Client::builder()
                .redirect(redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        form: Option<Vec<(&str, String)>>,
    ) -> Page {
        let mut req = self
            .http
            .request(method, format!("{}{}", self.app.base, path))
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
            req = req.form(&f);
        }
        let res = req.send().await.expect("request");
        for c in res.headers().get_all(header::SET_COOKIE) {
            let c = c.to_str().unwrap().to_owned();
            let (pair, _) = c.split_once(';').unwrap_or((&c, ""));
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
            self.set_cookies.push(c);
        }
        Page {
            status: res.status(),
            location: res
                .headers()
                .get(header::LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            body: res.text().await.unwrap_or_default(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send(Method::GET, path, None).await
    }

    /// Posts a form with the CSRF token of this browser's cookie.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        if !self.cookies.contains_key("sf_staff_csrf") {
            self.get("/admin/signin").await;
        }
        let mut form: Vec<(&str, String)> =
            fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        form.push(("csrf", self.cookies["sf_staff_csrf"].clone()));
        self.send(Method::POST, path, Some(form)).await
    }

    /// Opens an invitation link and accepts it.
    async fn accept(&mut self, url: &str, name: &str, password: &str) -> Page {
        let path = &url[url.find("/admin/accept").expect("accept link")..];
        let shown = self.get(path).await;
        assert_eq!(shown.status, 200, "{}", shown.body);
        let token = path.split("token=").nth(1).unwrap().to_owned();
        self.post(
            "/admin/accept",
            &[("token", &token), ("name", name), ("password", password)],
        )
        .await
    }
}

async fn api(
    app: &TestApp,
    t: &TenantConfig,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    app.call(method, host(t), path, Some(token), body).await
}

/// The value of the invitation link field on the staff page.
fn invitation_link(body: &str) -> String {
    let at = body
        .find("id=\"invitation-link\"")
        .or_else(|| body.find("aria-label=\"Invitation link\""))
        .expect("link shown");
    let start = body[..at].rfind("value=\"").expect("value") + 7;
    let end = start + body[start..].find('"').unwrap();
    body[start..end].replace("&amp;", "&")
}

async fn store_with_owner(name: &str) -> TenantConfig {
    let mut t = store(name, None).await;
    t.owner_email = Some(format!("{}@example.com", unique("owner-")));
    t
}

/// Owner invitation from the admin key, accepted in the web app: returns the owner's browser.
async fn signed_in_owner<'a>(app: &'a TestApp, t: &TenantConfig) -> Browser<'a> {
    let (s, b, _) = api(
        app,
        t,
        Method::POST,
        "/api/v1/admin/owner-invitation",
        &t.admin_key,
        None,
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        b["member"]["email"],
        json!(t.owner_email.as_deref().unwrap())
    );
    assert_eq!(b["member"]["role"], "owner");
    let url = b["url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with(&format!("http://{}/admin/accept?token=", host(t))),
        "{url}"
    );
    let mut owner = Browser::new(app, host(t));
    let accepted = owner.accept(&url, "Olive Owner", "owner password 1").await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    assert_eq!(accepted.location.as_deref(), Some("/admin/"));
    owner
}

#[tokio::test]
async fn a_clerk_without_refunds_cannot_refund_and_the_owner_sees_who_tried() {
    let t = store_with_owner("staff-roles").await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("ROLE-A", 2500, 10)]).await;
    let mut owner = signed_in_owner(&app, &t).await;

    // The session cookie is of the staff realm: HttpOnly, SameSite=Strict, only for /admin.
    let session_cookie = owner
        .set_cookies
        .iter()
        .find(|c| c.starts_with("sf_staff="))
        .expect("staff cookie")
        .clone();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
        assert!(session_cookie.contains(attr), "{session_cookie}");
    }
    let dash = owner.get("/admin/").await;
    assert_eq!(dash.status, 200);
    assert!(dash.body.contains("Olive Owner"), "{}", dash.body);
    // The owner exists now: no second owner invitation.
    let (s, b, _) = api(
        &app,
        &t,
        Method::POST,
        "/api/v1/admin/owner-invitation",
        &t.admin_key,
        None,
    )
    .await;
    assert_eq!(s, 409, "{b}");

    // The owner invites a clerk who may handle orders but not refund them.
    let clerk_email = format!("{}@example.com", unique("clerk-"));
    let invited = owner
        .post(
            "/admin/staff",
            &[("email", &clerk_email), ("perm_orders", "on")],
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let link = invitation_link(&invited.body);
    let mut clerk = Browser::new(&app, host(&t));
    let accepted = clerk.accept(&link, "Clem Clerk", "clerk password 1").await;
    assert_eq!(accepted.status, 303, "{}", accepted.body);
    // The link worked once.
    let mut again = Browser::new(&app, host(&t));
    let path = &link[link.find("/admin/accept").unwrap()..];
    assert_eq!(again.get(path).await.status, 410);
    let token = link.split("token=").nth(1).unwrap();
    let reused = again
        .post(
            "/admin/accept",
            &[
                ("token", token),
                ("name", "X"),
                ("password", "another password"),
            ],
        )
        .await;
    assert_eq!(reused.status, 410, "{}", reused.body);

    // A paid order.
    let placed = place_order(&app, host(&t), &[("ROLE-A", 2)], "role-1").await;
    let order = placed["order"]["id"].as_str().unwrap().to_owned();
    let (s, b) = admin_post(&app, &t, &format!("/api/v1/admin/orders/{order}/mark-paid")).await;
    assert_eq!(s, 200, "{b}");

    // The clerk sees it, without a refund form; posting one anyway is refused.
    let shown = clerk.get(&format!("/admin/orders/{order}")).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert!(
        !shown.body.contains("/refund\""),
        "no refund form for the clerk"
    );
    let refused = clerk
        .post(
            &format!("/admin/orders/{order}/refund"),
            &[
                ("amount", "10.00"),
                ("reason", "damaged"),
                ("key", "clerk-r1"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("refunds"), "{}", refused.body);
    assert_eq!(clerk.get("/admin/staff").await.status, 403);
    assert_eq!(clerk.get("/admin/audit").await.status, 403);
    // Without the form's CSRF token nothing happens at all.
    let forged = clerk
        .send(
            Method::POST,
            &format!("/admin/orders/{order}/fulfil"),
            Some(vec![("carrier", "DHL".into())]),
        )
        .await;
    assert_eq!(forged.status, 403);

    // Through the API: a token scoped to orders can list orders but not refund.
    let (s, b, _) = api(
        &app,
        &t,
        Method::POST,
        "/api/v1/admin/tokens",
        &t.admin_key,
        Some(json!({"name": "warehouse", "permissions": ["orders"]})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let orders_token = b["secret"].as_str().unwrap().to_owned();
    let token_id = b["token"]["id"].as_str().unwrap().to_owned();
    let (s, _, _) = api(
        &app,
        &t,
        Method::GET,
        "/api/v1/admin/orders",
        &orders_token,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let res = app
        .req(
            Method::POST,
            host(&t),
            &format!("/api/v1/admin/orders/{order}/refunds"),
        )
        .bearer_auth(&orders_token)
        .header("Idempotency-Key", "tok-r1")
        .json(&json!({"amount": {"amount_minor": 1000, "currency": "EUR"}, "reason": "damaged"}))
        .send()
        .await
        .unwrap();
    let (s, ct) = (
        res.status().as_u16(),
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned(),
    );
    let b: Value = res.json().await.unwrap();
    assert_eq!((s, ct.as_str()), (403, "application/problem+json"), "{b}");
    assert_eq!(b["type"], "https://emporium.dev/problems/permission-denied");
    assert!(b["detail"].as_str().unwrap().contains("`refunds`"), "{b}");
    let (s, _, _) = api(
        &app,
        &t,
        Method::PUT,
        "/api/v1/admin/inventory/ROLE-A",
        &orders_token,
        Some(json!({"available": 1})),
    )
    .await;
    assert_eq!(s, 403, "catalog needs the catalog permission");
    let (s, _, _) = api(
        &app,
        &t,
        Method::GET,
        "/api/v1/admin/audit",
        &orders_token,
        None,
    )
    .await;
    assert_eq!(s, 403, "tokens never read the audit log");

    // The owner refunds from the page.
    let shown = owner.get(&format!("/admin/orders/{order}")).await;
    let key = {
        let at = shown.body.find("name=\"key\"").expect("refund form");
        let start = at + shown.body[at..].find("value=\"").unwrap() + 7;
        shown.body[start..start + shown.body[start..].find('"').unwrap()].to_owned()
    };
    let refunded = owner
        .post(
            &format!("/admin/orders/{order}/refund"),
            &[("amount", "10.00"), ("reason", "damaged"), ("key", &key)],
        )
        .await;
    assert_eq!(refunded.status, 303, "{}", refunded.body);
    let o = admin_order(&app, &t, &order).await;
    assert_eq!(o["refunded"]["amount_minor"], 1000, "{o}");

    // Rotating the token kills the old secret; the new one works.
    let (s, b, _) = api(
        &app,
        &t,
        Method::POST,
        &format!("/api/v1/admin/tokens/{token_id}/rotate"),
        &t.admin_key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let rotated = b["secret"].as_str().unwrap().to_owned();
    assert_eq!(
        api(
            &app,
            &t,
            Method::GET,
            "/api/v1/admin/orders",
            &orders_token,
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        api(
            &app,
            &t,
            Method::GET,
            "/api/v1/admin/orders",
            &rotated,
            None
        )
        .await
        .0,
        200
    );

    // The audit log says who tried what, including the refusals.
    let (s, b, _) = api(
        &app,
        &t,
        Method::GET,
        "/api/v1/admin/audit?limit=200",
        &t.admin_key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let entries = b["entries"].as_array().unwrap();
    let has = |who: &str, action: &str, outcome: u64| {
        entries.iter().any(|e| {
            e["actor_label"].as_str().is_some_and(|l| l.contains(who))
                && e["action"] == action
                && e["outcome"] == outcome
        })
    };
    assert!(has(&clerk_email, "order.refund", 403), "{b}");
    assert!(
        has(t.owner_email.as_deref().unwrap(), "order.refund", 200),
        "{b}"
    );
    assert!(
        has(t.owner_email.as_deref().unwrap(), "staff.invite", 201),
        "{b}"
    );
    assert!(has(&clerk_email, "staff.accept_invitation", 200), "{b}");
    assert!(
        has("warehouse", "POST /admin/orders/{id}/refunds", 403),
        "{b}"
    );
    assert!(has("admin key", "POST /admin/tokens", 201), "{b}");
    assert!(
        entries
            .iter()
            .all(|e| !e.to_string().contains(&orders_token)),
        "no secret in the log"
    );
    let page = owner.get("/admin/audit").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&clerk_email) && page.body.contains("order.refund"),
        "{}",
        page.body
    );

    // The owner retires the platform's admin key: it stops working; tokens keep working.
    let (s, _, _) = api(
        &app,
        &t,
        Method::DELETE,
        "/api/v1/admin/admin-key",
        &t.admin_key,
        None,
    )
    .await;
    assert_eq!(s, 204);
    assert_eq!(
        api(
            &app,
            &t,
            Method::GET,
            "/api/v1/admin/orders",
            &t.admin_key,
            None
        )
        .await
        .0,
        401
    );
    assert_eq!(
        api(
            &app,
            &t,
            Method::GET,
            "/api/v1/admin/orders",
            &rotated,
            None
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn shopper_sessions_and_other_stores_credentials_authorise_nothing() {
    // Two pooled stores in one database: the boundary is the tenant id, not the database.
    let a = store_with_owner("staff-a").await;
    let mut b = tenant("staff-b", &a.database_url, &unique("sf-staff-b-"));
    b.owner_email = Some(format!("{}@example.com", unique("owner-b-")));
    let app = TestApp::start(settings(Duration::from_secs(900)), &[a.clone(), b.clone()]).await;
    let owner_a = signed_in_owner(&app, &a).await;

    // A's staff cookie on B's host: not a session there (sign-in page), and B's data unseen.
    let mut intruder = Browser::new(&app, host(&b));
    intruder.cookies = owner_a.cookies.clone();
    let page = intruder.get("/admin/").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/admin/signin"));
    assert_eq!(
        intruder.get("/admin/orders").await.location.as_deref(),
        Some("/admin/signin")
    );
    // A's owner's email and password do not sign in on B.
    let signin = intruder
        .post(
            "/admin/signin",
            &[
                ("email", a.owner_email.as_deref().unwrap()),
                ("password", "owner password 1"),
            ],
        )
        .await;
    assert_eq!(signin.status, 401, "{}", signin.body);

    // A's admin key and A's tokens mean nothing on B.
    let (s, tok, _) = api(&app, &a, Method::POST, "/api/v1/admin/tokens", &a.admin_key,
        Some(json!({"name": "all", "permissions": ["catalog", "orders", "refunds", "settings", "staff"]}))).await;
    assert_eq!(s, 201, "{tok}");
    let a_token = tok["secret"].as_str().unwrap();
    for credential in [a.admin_key.as_str(), a_token] {
        let (s, body, _) = api(
            &app,
            &b,
            Method::GET,
            "/api/v1/admin/orders",
            credential,
            None,
        )
        .await;
        assert_eq!(s, 401, "{body}");
    }

    // A shopper's session token is no admin credential, as a bearer or as a cookie.
    let (s, reg) = app
        .register(
            host(&a),
            &format!("{}@example.com", unique("shopper-")),
            "shopper password",
        )
        .await;
    assert_eq!(s, 201, "{reg}");
    let shopper = reg["token"].as_str().unwrap();
    let (s, body, _) = api(&app, &a, Method::GET, "/api/v1/admin/orders", shopper, None).await;
    assert_eq!(s, 401, "{body}");
    let mut shopper_browser = Browser::new(&app, host(&a));
    shopper_browser
        .cookies
        .insert("sf_session".into(), shopper.to_owned());
    assert_eq!(
        shopper_browser.get("/admin/").await.location.as_deref(),
        Some("/admin/signin")
    );
    // And a staff session token is no shopper session either.
    let staff_token = owner_a.cookies["sf_staff"].clone();
    let (s, _, _) = app
        .call(
            Method::GET,
            host(&a),
            "/api/v1/me",
            Some(&staff_token),
            None,
        )
        .await;
    assert_eq!(s, 401);

    // B's owner invitation knows B's owner only, and B's audit log holds nothing of A's.
    let (s, inv, _) = api(
        &app,
        &b,
        Method::POST,
        "/api/v1/admin/owner-invitation",
        &b.admin_key,
        None,
    )
    .await;
    assert_eq!(s, 201, "{inv}");
    assert_eq!(
        inv["member"]["email"],
        json!(b.owner_email.as_deref().unwrap())
    );
    let (s, log, _) = api(
        &app,
        &b,
        Method::GET,
        "/api/v1/admin/audit",
        &b.admin_key,
        None,
    )
    .await;
    assert_eq!(s, 200, "{log}");
    assert!(
        !log.to_string().contains(a.owner_email.as_deref().unwrap()),
        "{log}"
    );
}

#[tokio::test]
async fn staff_with_catalog_edit_a_price_the_shop_then_shows() {
    let t = store_with_owner("staff-catalog").await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("CAT-A", 1999, 3)]).await;
    let mut owner = signed_in_owner(&app, &t).await;
    let listed = owner.get("/admin/products?q=CAT-A").await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let rows = listed.body.find("<tbody>").expect("a product row");
    let at = rows
        + listed.body[rows..]
            .find("href=\"/admin/products/")
            .expect("link")
        + 6;
    let path = listed.body[at..at + listed.body[at..].find('"').unwrap()].to_owned();
    let product_id = path.rsplit('/').next().unwrap().to_owned();
    let form = owner.get(&path).await;
    assert!(form.body.contains("value=\"19.99\""), "{}", form.body);
    let saved = owner
        .post(
            &path,
            &[
                ("title", "Item CAT-A"),
                ("description", "A thing"),
                ("price_0", "24.50"),
                ("stock_0", "7"),
            ],
        )
        .await;
    assert_eq!(saved.status, 303, "{}", saved.body);
    let (s, p, _) = app
        .call(
            Method::GET,
            host(&t),
            &format!("/api/v1/products/{product_id}"),
            None,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(p["variants"][0]["price"]["amount_minor"], 2450, "{p}");
    assert_eq!(stock(&app, &t, "CAT-A").await, 7);
    let bad = owner
        .post(&path, &[("title", "Item CAT-A"), ("price_0", "12.345")])
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("price_0"), "{}", bad.body);
    let dash = owner.get("/admin/").await;
    assert!(
        dash.body.contains("Nothing is running low") || !dash.body.contains("CAT-A"),
        "7 is not low"
    );
}
