//! Talking to a running storefront runtime over HTTP: one store's client, and its live
//! (server-sent) events.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// An HTTP client for one store: every request carries the store's Host header.
#[derive(Clone)]
pub struct StoreClient {
    pub http: reqwest::Client,
    /// `http://127.0.0.1:<port>` of the runtime.
    pub base: String,
    /// The store's host (one of its domains, with the port when a browser would send it).
    pub host: String,
    /// The merchant's admin API key.
    pub admin_key: String,
}

impl StoreClient {
    /// A request to `path` on this store.
    pub fn req(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Host", &self.host)
    }

    /// Sends a request; returns the status and the body as JSON (or as a JSON string).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.req(method, path);
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request to the runtime");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A merchant admin API call that must succeed; returns its body.
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, answer) = self
            .call(method.clone(), path, Some(&self.admin_key), body)
            .await;
        assert!(
            status.is_success(),
            "admin {method} {path}: {status} {answer}"
        );
        answer
    }
}

/// One server-sent event whose data is JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// Its `id:` field, when it has a numeric one.
    pub id: Option<i64>,
    pub data: Value,
}

/// Reads the event stream `res` until an event `wanted` accepts arrives; `buf` keeps what was
/// read past it for the next call.
pub async fn next_sse_event(
    res: &mut reqwest::Response,
    buf: &mut String,
    wanted: impl Fn(&SseEvent) -> bool,
) -> SseEvent {
    loop {
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<i64>().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Ok(data) = serde_json::from_str::<Value>(&data) {
                let event = SseEvent { id, data };
                if wanted(&event) {
                    return event;
                }
            }
        }
        let chunk = res
            .chunk()
            .await
            .expect("the event stream stays open")
            .expect("the event stream ended");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}
