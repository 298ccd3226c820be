//! Test support for the runtime's integration tests: a tenant on a fresh database (from the
//! shared harness) with fresh DynamoDB tables on moto, and the real runtime serving on
//! 127.0.0.1:0 in this process. `checkout.rs` adds stores with stock, carts and checkouts.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use emporium_integration_tests::Stack;
// Not every test binary uses every helper (as `dead_code` above).
#[allow(unused_imports)]
pub use emporium_integration_tests::{app_database, tenant, unique};
use emporium_storefront::{AppState, Settings, build_state, serve, tenants::Source};
use emporium_tenant_config::TenantConfig;
use reqwest::{Method, RequestBuilder, header};
use serde_json::{Value, json};

pub fn test_settings() -> Settings {
    Settings {
        redis_url: Stack::get().var("REDIS_URL").expect("REDIS_URL").to_owned(),
        create_tables: true,
        pg_pool_size: 4,
        request_timeout: Duration::from_secs(30),
        body_limit_bytes: 16 * 1024,
        login_limit_per_ip: 1000,
        login_limit_per_email: 5,
        ..Settings::default()
    }
}

/// One runtime serving on a local port.
pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
}

impl TestApp {
    pub async fn start(settings: Settings, tenants: &[TenantConfig]) -> TestApp {
        let aws = Stack::get().aws().await.expect("moto config");
        let state = build_state(settings, &aws).await.expect("state");
        for t in tenants {
            state
                .tenants
                .upsert(Source::File, t.clone())
                .await
                .expect("tenant");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        tokio::spawn(serve(listener, state.clone(), std::future::pending()));
        TestApp {
            base: format!("http://{addr}"),
            state,
            http: reqwest::Client::new(),
        }
    }

    pub fn req(&self, method: Method, host: &str, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base, path))
            .header(header::HOST, host)
    }

    /// Sends a request and returns the status, the body as JSON (or a JSON string) and the
    /// content type.
    pub async fn call(
        &self,
        method: Method,
        host: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, String) {
        let mut req = self.req(method, host, path);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let text = res.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json, ct)
    }

    /// `POST /api/v1/auth/register` as Ann with `email` and `password`: status and body.
    pub async fn register(&self, host: &str, email: &str, password: &str) -> (u16, Value) {
        let body = json!({"email": email, "password": password, "name": "Ann"});
        let (s, b, _) = self
            .call(
                Method::POST,
                host,
                "/api/v1/auth/register",
                None,
                Some(body),
            )
            .await;
        (s, b)
    }

    /// `POST /api/v1/auth/login`, bringing `guest_cart` along if given: status and body.
    pub async fn login(
        &self,
        host: &str,
        email: &str,
        password: &str,
        guest_cart: Option<&str>,
    ) -> (u16, Value) {
        let mut body = json!({"email": email, "password": password});
        if let Some(c) = guest_cart {
            body["guest_cart_id"] = json!(c);
        }
        let (s, b, _) = self
            .call(Method::POST, host, "/api/v1/auth/login", None, Some(body))
            .await;
        (s, b)
    }
}

pub fn host(t: &TenantConfig) -> &str {
    &t.domains[0]
}

/// A variant as (sku, price in cents, attributes).
pub type VariantSpec<'a> = (&'a str, i64, &'a [(&'a str, &'a str)]);

/// A product draft with one variant per spec, priced in EUR.
pub fn product(
    title: &str,
    description: &str,
    categories: &[&str],
    variants: &[VariantSpec<'_>],
) -> Value {
    serde_json::json!({
        "title": title,
        "description": description,
        "categories": categories,
        "variants": variants.iter().map(|(sku, price, attrs)| serde_json::json!({
            "sku": sku,
            "price": { "amount_minor": price, "currency": "EUR" },
            "attributes": attrs.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect::<serde_json::Map<_, _>>(),
            "images": ["https://img.example.com/a.jpg"],
        })).collect::<Vec<_>>(),
    })
}
