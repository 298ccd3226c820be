//! Test support: a fresh database and app role, fresh DynamoDB tables on moto, and the real
//! runtime serving on 127.0.0.1:0 in this process.
#![allow(dead_code)]

use std::{net::SocketAddr, time::Duration};

use emporium_integration_tests::Stack;
use emporium_storefront::{AppState, Settings, build_state, serve, tenants::Source};
use emporium_tenant_config::{PaymentProvider, Payments, Tables, TenantConfig, Tier};
use reqwest::{Method, RequestBuilder, header};
use serde_json::Value;
use tokio_postgres::NoTls;

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// A database owned by a fresh non-superuser role (so row-level security applies to it), and
/// that role's connection string.
pub async fn app_database() -> String {
    let admin_url = Stack::get().var("DATABASE_URL").expect("DATABASE_URL");
    let (client, conn) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .expect("connect as superuser");
    tokio::spawn(conn);
    let role = unique("sf_app_");
    let db = unique("sf_test_");
    let password = unique("pw");
    client
        .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"))
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

pub fn tenant(name: &str, database_url: &str, tables_prefix: &str) -> TenantConfig {
    TenantConfig {
        tenant_id: unique(&format!("{name}-")),
        display_name: name.to_owned(),
        domains: vec![format!("{}.test", unique(&format!("{name}-")))],
        tier: Tier::Pooled,
        theme_color: None,
        database_url: database_url.to_owned(),
        tables: Tables {
            catalog: format!("{tables_prefix}-catalog"),
            carts: format!("{tables_prefix}-carts"),
            sessions: format!("{tables_prefix}-sessions"),
        },
        admin_key: unique("admin_"),
        payments: Payments {
            provider: PaymentProvider::Manual,
            secret_key: None,
            webhook_secret: None,
            api_base: None,
        },
    }
}

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
