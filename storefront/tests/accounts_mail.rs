//! Account mails (issue 17) against PostgreSQL, Redis and a moto of the test's own for SES:
//! password reset through the mailed link (single use, expiring, every session ended, the same
//! answer for addresses without an account), email verification on registration and on change
//! (which needs the current password), the mail rate limits, and tenant isolation of links.

mod common;
#[path = "common/ses.rs"]
mod ses;

use std::{collections::BTreeMap, time::Duration};

use common::{TestApp, app_database, host, tenant, test_settings, unique};
use emporium_storefront::{Settings, notifications::NotifySettings};
use emporium_tenant_config::TenantConfig;
use reqwest::{Method, header, redirect::Policy};
use serde_json::{Value, json};
use ses::{PrivateMoto, await_mail, link_token, sent_mail};

/// Two stores on one database (row-level security is what keeps them apart).
async fn two_stores() -> (TenantConfig, TenantConfig) {
    let dsn = app_database().await;
    (
        tenant("mail-a", &dsn, &unique("sf-am-")),
        tenant("mail-b", &dsn, &unique("sf-am-")),
    )
}

fn mail_settings(ses: &PrivateMoto) -> Settings {
    Settings {
        notifications: NotifySettings {
            ses_endpoint_url: Some(ses.endpoint.clone()),
            mail_from: Some(format!("{}@shop.example.com", unique("accounts-"))),
            verify_sender: true,
            ..NotifySettings::default()
        },
        ..test_settings()
    }
}

async fn start(settings: Settings, tenants: &[TenantConfig]) -> TestApp {
    let app = TestApp::start(settings, tenants).await;
    app.state.notifier.verify_sender().await;
    app
}

async fn request_reset(app: &TestApp, t: &TenantConfig, email: &str) -> (u16, Value, String) {
    app.call(
        Method::POST,
        host(t),
        "/api/v1/auth/password-reset",
        None,
        Some(json!({"email": email})),
    )
    .await
}

async fn confirm_reset(app: &TestApp, t: &TenantConfig, token: &str, pw: &str) -> (u16, Value) {
    let (s, b, _) = app
        .call(
            Method::POST,
            host(t),
            "/api/v1/auth/password-reset/confirm",
            None,
            Some(json!({"token": token, "new_password": pw})),
        )
        .await;
    (s, b)
}

async fn verify(app: &TestApp, t: &TenantConfig, token: &str) -> (u16, Value) {
    let (s, b, _) = app
        .call(
            Method::POST,
            host(t),
            "/api/v1/auth/verify-email",
            None,
            Some(json!({"token": token})),
        )
        .await;
    (s, b)
}

async fn patch_me(app: &TestApp, t: &TenantConfig, session: &str, body: Value) -> (u16, Value) {
    let (s, b, _) = app
        .call(
            Method::PATCH,
            host(t),
            "/api/v1/me",
            Some(session),
            Some(body),
        )
        .await;
    (s, b)
}

async fn me(app: &TestApp, t: &TenantConfig, session: &str) -> (u16, Value) {
    let (s, b, _) = app
        .call(Method::GET, host(t), "/api/v1/me", Some(session), None)
        .await;
    (s, b)
}

#[tokio::test]
async fn a_forgotten_password_is_reset_once_through_the_mailed_link_and_every_session_ends() {
    let ses = PrivateMoto::start().await;
    let (a, b) = two_stores().await;
    let app = start(mail_settings(&ses), &[a.clone(), b.clone()]).await;
    let email = format!("{}@example.com", unique("ann-"));
    let nobody = format!("{}@example.com", unique("nobody-"));
    let (s, reg) = app.register(host(&a), &email, "old password 1").await;
    assert_eq!(s, 201, "{reg}");
    let first_session = reg["token"].as_str().unwrap().to_owned();
    let (s, login) = app.login(host(&a), &email, "old password 1", None).await;
    assert_eq!(s, 200, "{login}");
    let second_session = login["token"].as_str().unwrap().to_owned();

    // The same answer, status and body, for an account and for an address without one.
    let known = request_reset(&app, &a, &email).await;
    let unknown = request_reset(&app, &a, &nobody).await;
    assert_eq!(known.0, 202, "{known:?}");
    assert_eq!(known, unknown, "no account enumeration");

    // Registration sent a verification mail; the reset mail is the second.
    let mails = await_mail(&ses.endpoint, &email, 2).await;
    let reset = mails
        .iter()
        .find(|m| m.0 == "mail-a: reset your password")
        .unwrap_or_else(|| panic!("{mails:?}"));
    let token = link_token(&reset.1, "/reset-password");
    assert_eq!(token.len(), 43, "{}", reset.1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        sent_mail(&ses.endpoint, &nobody).await.is_empty(),
        "no mail to an address without an account"
    );

    // The page the link opens asks for the new password.
    let page = app
        .req(
            Method::GET,
            host(&a),
            &format!("/reset-password?token={token}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Choose a new password"));

    // Store B does not know store A's link, and trying it there does not use it up.
    let (s, p) = confirm_reset(&app, &b, &token, "hijacked password").await;
    assert_eq!((s, p["field"].as_str()), (422, Some("token")), "{p}");

    let (s, p) = confirm_reset(&app, &a, &token, "short").await;
    assert_eq!((s, p["field"].as_str()), (422, Some("new_password")), "{p}");
    let (s, p) = confirm_reset(&app, &a, &token, "new password 2").await;
    assert_eq!(s, 204, "{p}");

    assert_eq!(
        app.login(host(&a), &email, "old password 1", None).await.0,
        401
    );
    assert_eq!(
        app.login(host(&a), &email, "new password 2", None).await.0,
        200
    );
    for old in [&first_session, &second_session] {
        assert_eq!(
            me(&app, &a, old).await.0,
            401,
            "sessions from before the reset end"
        );
    }
    // Single use.
    let (s, p) = confirm_reset(&app, &a, &token, "third password 3").await;
    assert_eq!((s, p["field"].as_str()), (422, Some("token")), "{p}");
    let page = app
        .req(
            Method::GET,
            host(&a),
            &format!("/reset-password?token={token}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 422, "a used link's page says it is dead");
    // Using the link also proved the address is the customer's.
    let (_, login) = app.login(host(&a), &email, "new password 2", None).await;
    assert_eq!(login["customer"]["email_verified"], true, "{login}");

    // A link is refused once it expired (a replica whose links last one second).
    let short = start(
        Settings {
            password_reset_ttl: Duration::from_secs(1),
            ..mail_settings(&ses)
        },
        std::slice::from_ref(&a),
    )
    .await;
    assert_eq!(request_reset(&short, &a, &email).await.0, 202);
    let mails = await_mail(&ses.endpoint, &email, 3).await;
    let expiring = link_token(&mails.last().unwrap().1, "/reset-password");
    assert_ne!(expiring, token);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, p) = confirm_reset(&short, &a, &expiring, "too late password").await;
    assert_eq!((s, p["field"].as_str()), (422, Some("token")), "{p}");
    assert_eq!(
        app.login(host(&a), &email, "new password 2", None).await.0,
        200
    );
}

#[tokio::test]
async fn an_email_is_verified_by_its_link_and_a_change_needs_the_password_and_the_new_link() {
    let ses = PrivateMoto::start().await;
    let (a, b) = two_stores().await;
    let app = start(mail_settings(&ses), &[a.clone(), b.clone()]).await;
    let email = format!("{}@example.com", unique("bea-"));
    let (s, reg) = app.register(host(&a), &email, "bea password 1").await;
    assert_eq!(s, 201, "{reg}");
    assert_eq!(reg["customer"]["email_verified"], false, "{reg}");
    let session = reg["token"].as_str().unwrap().to_owned();

    let mails = await_mail(&ses.endpoint, &email, 1).await;
    assert_eq!(mails[0].0, "mail-a: confirm your email address");
    let token = link_token(&mails[0].1, "/verify-email");
    // Another store's link does nothing here.
    let (s, p) = verify(&app, &b, &token).await;
    assert_eq!((s, p["field"].as_str()), (422, Some("token")), "{p}");
    let (s, c) = verify(&app, &a, &token).await;
    assert_eq!((s, &c["email_verified"]), (200, &json!(true)), "{c}");
    assert_eq!(me(&app, &a, &session).await.1["email_verified"], true);
    let (s, p) = verify(&app, &a, &token).await;
    assert_eq!((s, p["field"].as_str()), (422, Some("token")), "used once");

    // A new address needs the current password.
    let new_email = format!("{}@example.com", unique("bea-new-"));
    let (s, p) = patch_me(&app, &a, &session, json!({"email": new_email})).await;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("current_password")),
        "{p}"
    );
    let (s, p) = patch_me(
        &app,
        &a,
        &session,
        json!({"email": new_email, "current_password": "wrong password"}),
    )
    .await;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("current_password")),
        "{p}"
    );
    let (s, c) = patch_me(
        &app,
        &a,
        &session,
        json!({"email": new_email, "current_password": "bea password 1", "name": "Bea"}),
    )
    .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        (&c["email"], &c["pending_email"], &c["name"]),
        (&json!(email), &json!(new_email), &json!("Bea")),
        "the old address stays in effect until the new one is verified: {c}"
    );
    assert_eq!(
        app.login(host(&a), &email, "bea password 1", None).await.0,
        200
    );
    assert_eq!(
        app.login(host(&a), &new_email, "bea password 1", None)
            .await
            .0,
        401
    );

    // A new link for the pending address replaces the first one.
    let first = link_token(
        &await_mail(&ses.endpoint, &new_email, 1).await[0].1,
        "/verify-email",
    );
    let (s, p, _) = app
        .call(
            Method::POST,
            host(&a),
            "/api/v1/me/verification",
            Some(&session),
            None,
        )
        .await;
    assert_eq!(s, 202, "{p}");
    let mails = await_mail(&ses.endpoint, &new_email, 2).await;
    let token = link_token(&mails[1].1, "/verify-email");
    assert_ne!(first, token);
    let (s, p) = verify(&app, &a, &first).await;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("token")),
        "superseded: {p}"
    );
    let (s, c) = verify(&app, &a, &token).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(
        (&c["email"], &c["pending_email"], &c["email_verified"]),
        (&json!(new_email), &Value::Null, &json!(true)),
        "{c}"
    );
    assert_eq!(
        app.login(host(&a), &new_email, "bea password 1", None)
            .await
            .0,
        200
    );
    assert_eq!(
        app.login(host(&a), &email, "bea password 1", None).await.0,
        401
    );
    // Nothing pending, address verified: no new link to send.
    let (s, p, _) = app
        .call(
            Method::POST,
            host(&a),
            "/api/v1/me/verification",
            Some(&session),
            None,
        )
        .await;
    assert_eq!(s, 409, "{p}");
}

#[tokio::test]
async fn reset_and_verification_mails_are_limited_per_address_and_per_ip_alike_for_every_address() {
    let ses = PrivateMoto::start().await;
    let (a, _) = two_stores().await;
    let app = start(
        Settings {
            account_mail_limit_per_email: 2,
            account_mail_limit_per_ip: 6,
            ..mail_settings(&ses)
        },
        std::slice::from_ref(&a),
    )
    .await;
    let email = format!("{}@example.com", unique("cy-"));
    let nobody = format!("{}@example.com", unique("nobody-"));
    let (s, reg) = app.register(host(&a), &email, "cy password 12").await;
    assert_eq!(s, 201, "{reg}");
    let session = reg["token"].as_str().unwrap().to_owned();

    let mut answers = Vec::new();
    for address in [&email, &email, &email, &nobody, &nobody, &nobody] {
        let (s, b, ct) = request_reset(&app, &a, address).await;
        answers.push((s, b["type"].clone(), ct));
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, [202, 202, 429, 202, 202, 429], "{answers:?}");
    assert_eq!(
        answers[2], answers[5],
        "a limited request reveals nothing either"
    );
    assert!(
        answers[2].2.starts_with("application/problem+json"),
        "{answers:?}"
    );
    let limited = request_reset(&app, &a, &nobody).await;
    assert_eq!(limited.0, 429);

    // A new address from the same IP: the per-IP limit (6) is used up too.
    let (s, _, _) = request_reset(&app, &a, &format!("{}@example.com", unique("dee-"))).await;
    assert_eq!(s, 429, "per IP");
    // So is a verification mail, and the limited request says when to come back.
    let res = app
        .req(Method::POST, host(&a), "/api/v1/me/verification")
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));

    // The verification mail of the registration and two reset mails; none for the refused.
    let mails = await_mail(&ses.endpoint, &email, 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sent_mail(&ses.endpoint, &email).await.len(), 3, "{mails:?}");
    assert!(sent_mail(&ses.endpoint, &nobody).await.is_empty());
}

#[tokio::test]
async fn a_staff_invitation_is_mailed_with_the_link_the_api_returns() {
    let ses = PrivateMoto::start().await;
    let (a, _) = two_stores().await;
    let app = start(mail_settings(&ses), std::slice::from_ref(&a)).await;
    let invitee = format!("{}@example.com", unique("staff-"));
    let (s, inv, _) = app
        .call(
            Method::POST,
            host(&a),
            "/api/v1/admin/staff/invitations",
            Some(&a.admin_key),
            Some(json!({"email": invitee, "permissions": ["orders"]})),
        )
        .await;
    assert_eq!(s, 201, "{inv}");
    let url = inv["url"].as_str().unwrap();
    let mails = await_mail(&ses.endpoint, &invitee, 1).await;
    assert_eq!(mails[0].0, "mail-a: you are invited to run the store");
    assert_eq!(
        link_token(&mails[0].1, "/admin/accept"),
        link_token(url, "/admin/accept"),
        "{}",
        mails[0].1
    );
}

/// A cookie-keeping form client for one store's pages (no JavaScript, redirects not followed).
struct Pages {
    http: reqwest::Client,
    base: String,
    host: String,
    cookies: BTreeMap<String, String>,
}

impl Pages {
    fn new(app: &TestApp, host: &str) -> Self {
        Pages {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.base.clone(),
            host: host.to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    /// Status, `Location` and body.
    async fn send(&mut self, path: &str, form: Option<&[(&str, &str)]>) -> (u16, String, String) {
        let method = if form.is_some() {
            Method::POST
        } else {
            Method::GET
        };
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header(header::HOST, &self.host);
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !jar.is_empty() {
            req = req.header(header::COOKIE, jar.join("; "));
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let res = req.send().await.unwrap();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (pair, attrs) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
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
            .map_or(String::new(), |v| v.to_str().unwrap().to_owned());
        (status, location, res.text().await.unwrap())
    }

    /// The value of the hidden field `name` in `body`.
    fn field(body: &str, name: &str) -> String {
        let needle = format!("name=\"{name}\" value=\"");
        let start = body
            .find(&needle)
            .unwrap_or_else(|| panic!("no {name} in {body}"))
            + needle.len();
        body[start..].split('"').next().unwrap().to_owned()
    }

    /// GETs `path` and posts its form with `fields` (and the CSRF token of the page).
    async fn submit(
        &mut self,
        path: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, String) {
        let (s, _, body) = self.send(path, None).await;
        assert_eq!(s, 200, "{path}: {body}");
        let csrf = Self::field(&body, "csrf");
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.send(action, Some(&form)).await
    }
}

#[tokio::test]
async fn a_shopper_resets_the_password_through_the_pages_and_is_signed_out_everywhere() {
    let ses = PrivateMoto::start().await;
    let (a, _) = two_stores().await;
    let app = start(mail_settings(&ses), std::slice::from_ref(&a)).await;
    let email = format!("{}@example.com", unique("dan-"));
    assert_eq!(
        app.register(host(&a), &email, "dan password 1").await.0,
        201
    );

    // Signed in in one browser...
    let mut signed_in = Pages::new(&app, host(&a));
    let (s, to, body) = signed_in
        .submit(
            "/signin",
            "/signin",
            &[("email", &email), ("password", "dan password 1")],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/account"), "{body}");
    assert_eq!(signed_in.send("/account", None).await.0, 200);

    // ...the shopper forgot the password in another.
    let mut other = Pages::new(&app, host(&a));
    let (s, _, body) = other.send("/signin", None).await;
    assert!(s == 200 && body.contains("/forgot-password"), "{body}");
    let (s, _, body) = other
        .submit("/forgot-password", "/forgot-password", &[("email", &email)])
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("If this address has an account"), "{body}");

    let mails = await_mail(&ses.endpoint, &email, 2).await;
    let reset = mails
        .iter()
        .find(|m| m.0.contains("reset your password"))
        .unwrap();
    let token = link_token(&reset.1, "/reset-password");
    let page = format!("/reset-password?token={token}");
    let (s, _, body) = other.send(&page, None).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(Pages::field(&body, "token"), token);
    let (s, _, body) = other
        .submit(
            &page,
            "/reset-password",
            &[("token", &token), ("new_password", "dan password 2")],
        )
        .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("Your password is changed"), "{body}");

    // The first browser's session is gone; the new password signs in.
    let (s, to, _) = signed_in.send("/account", None).await;
    assert_eq!((s, to.as_str()), (303, "/signin"));
    let (s, to, _) = other
        .submit(
            "/signin",
            "/signin",
            &[("email", &email), ("password", "dan password 2")],
        )
        .await;
    assert_eq!((s, to.as_str()), (303, "/account"));
    let (s, _, body) = other.send(&page, None).await;
    assert!(
        s == 422 && body.contains("This link does not work"),
        "{body}"
    );
}
