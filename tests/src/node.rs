//! The real node (docs/real-node.md) as tests use it: whether it runs, the addresses its pods
//! reach the stack at, the images `make images` built, and a shopper's requests to a tenant's
//! pods.

use std::{collections::HashMap, time::Duration};

use k8s_openapi::api::core::v1::Pod;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::workspace_root;

/// What `scripts/node.sh start` wrote to `.state/node/env` (the node's name and address, and
/// `NODE_*` addresses of the stack's services as pods reach them), or `None` when no node runs.
pub fn node_env() -> Option<HashMap<String, String>> {
    let text = std::fs::read_to_string(workspace_root().join(".state/node/env")).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    )
}

/// The node's settings, or `None` (and a note) when the node is not up and not required. With
/// `EMPORIUM_REAL_NODE=1` (what `make test` sets when it starts the node) a missing node fails.
pub fn real_node() -> Option<RealNode> {
    let env = node_env();
    if env.is_none() {
        assert_ne!(
            std::env::var("EMPORIUM_REAL_NODE").as_deref(),
            Ok("1"),
            "EMPORIUM_REAL_NODE=1 but the real node is not up (no .state/node/env): see .state/node/logs/ and run `scripts/node.sh start`"
        );
        eprintln!(
            "the real node is not up: not run (EMPORIUM_REAL_NODE=1 scripts/stack.sh start starts it)"
        );
    }
    env.map(|vars| RealNode { vars })
}

/// The running real node.
#[derive(Debug, Clone)]
pub struct RealNode {
    vars: HashMap<String, String>,
}

impl RealNode {
    /// A variable of `.state/node/env`, e.g. `NODE_DATABASE_URL`; fails the test when missing.
    pub fn var(&self, name: &str) -> &str {
        self.vars.get(name).map(String::as_str).unwrap_or_else(|| {
            panic!("no {name} in .state/node/env: restart the node (scripts/node.sh start)")
        })
    }

    /// The Node object's name.
    pub fn name(&self) -> &str {
        self.var("NODE_NAME")
    }

    /// `localhost/emporium/<component>:<tag>`, as `make images` tagged it (`.bin/images/tag`).
    pub fn image(component: &str) -> String {
        let tag = std::fs::read_to_string(workspace_root().join(".bin/images/tag"))
            .expect("no .bin/images/tag: build the images with `make images`");
        format!("localhost/emporium/{component}:{}", tag.trim())
    }
}

/// Whether the pod's `Ready` condition is `True`.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A shopper on `host` through `base` (a Service's `http://<ClusterIP>`): the catalog answers
/// (DynamoDB), a registration is stored (PostgreSQL), and an unknown host gets 404.
pub async fn assert_serves_shopper(base: &str, host: &str, email: &str) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let products = http
        .request(Method::GET, format!("{base}/api/v1/products"))
        .header("Host", host)
        .send()
        .await
        .expect("products");
    assert_eq!(
        products.status(),
        StatusCode::OK,
        "GET /api/v1/products on {host}: {:?}",
        products.text().await
    );
    let registered = http
        .request(Method::POST, format!("{base}/api/v1/auth/register"))
        .header("Host", host)
        .json(&json!({"email": email, "password": "correct horse battery", "name": "Ann"}))
        .send()
        .await
        .expect("register");
    assert_eq!(
        registered.status(),
        StatusCode::CREATED,
        "POST /api/v1/auth/register on {host}: {:?}",
        registered.text().await
    );
    let unknown = http
        .get(format!("{base}/api/v1/products"))
        .header("Host", "nobody.localhost")
        .send()
        .await
        .expect("unknown host");
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND, "an unknown host");
}
