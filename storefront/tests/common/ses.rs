//! A moto server of a test's own for SES, and the mail it kept. The stack's shared moto cannot
//! answer `/moto-api/data.json` once another test made an Aurora cluster with a managed master
//! password (moto raises `NotImplementedError` serialising it), so sent mail is read from here.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use serde_json::Value;

pub struct PrivateMoto {
    child: std::process::Child,
    pub endpoint: String,
}

impl PrivateMoto {
    pub async fn start() -> Self {
        let port = emporium_integration_tests::free_port();
        let child = std::process::Command::new(
            emporium_integration_tests::workspace_root().join(".venv/bin/moto_server"),
        )
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start .venv/bin/moto_server (scripts/install-tools.sh installs it)");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while reqwest::get(format!("{endpoint}/moto-api/")).await.is_err() {
            assert!(Instant::now() < deadline, "moto did not start");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Self { child, endpoint }
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Mails the SES at `endpoint` (a moto) kept for `to`: (subject, body).
pub async fn sent_mail(endpoint: &str, to: &str) -> Vec<(String, String)> {
    let data: Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    data["ses"]["Message"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["destinations"]["ToAddresses"]
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x == to))
        })
        .map(|m| {
            (
                m["subject"].as_str().unwrap_or("").to_owned(),
                m["body"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Waits (up to 20 s) until `to` has at least `n` mails, and returns them all.
pub async fn await_mail(endpoint: &str, to: &str, n: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mails = sent_mail(endpoint, to).await;
        if mails.len() >= n {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "{to} got {} mails, expected {n}: {mails:?}",
            mails.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The token of the first link to `page` (`/reset-password`, `/verify-email`, ...) in `body`.
pub fn link_token(body: &str, page: &str) -> String {
    let needle = format!("{page}?token=");
    let start = body
        .find(&needle)
        .unwrap_or_else(|| panic!("no {page} link in {body}"))
        + needle.len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
