//! Limits of the runtime's HTTP server. Connection level (issue 8, abuse): a client that
//! dribbles its headers is cut off after the header-read timeout, and a request head over 64 KiB
//! is answered 431, while normal requests on other connections are served throughout. Body level
//! (issue 15, strict input): exactly one JSON object per body, and every client error, the body
//! limit's 413 included, is an `application/problem+json` document naming what was wrong.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::{Duration, Instant},
};

use common::{TestApp, host, test_settings};
use emporium_storefront::{Settings, app::MAX_HEADER_BYTES};
use reqwest::Method;
use serde_json::Value;
use support::{cart, settings, stock, stock_skus, store};

fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).expect("connect");
    // Bounds each read, so a server that never closes fails the test instead of hanging it.
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection; returns what it sent.
fn read_to_close(stream: &mut TcpStream) -> std::io::Result<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_oversized_heads_get_431() {
    let settings = Settings {
        header_read_timeout: Duration::from_secs(2),
        ..test_settings()
    };
    let app = TestApp::start(settings, &[]).await;

    // A slow loris: the request line, then one header line every 300 ms, never the blank line.
    let mut slow = connect(&app);
    let dribbler = {
        let mut writer = slow.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: slow\r\n");
            let started = Instant::now();
            for i in 0..100 {
                if writer
                    .write_all(format!("X-Drip-{i}: 1\r\n").as_bytes())
                    .is_err()
                {
                    return (i, started.elapsed());
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            (100, started.elapsed())
        })
    };
    // Meanwhile other clients are served.
    for _ in 0..5 {
        let res = app.http.get(format!("{}/healthz", app.base)).send().await;
        assert_eq!(res.expect("healthz").status(), 200);
    }
    let answer = tokio::task::spawn_blocking(move || read_to_close(&mut slow))
        .await
        .unwrap()
        .expect("the server closes a connection whose headers never end");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "slow client got: {answer:?}"
    );
    let (lines, _) = dribbler.join().unwrap();
    assert!(
        lines < 100,
        "the server kept the dribbling connection open for all 100 header lines (30 s)"
    );

    // A request head just over the limit: one 66 KiB header, sent whole.
    let mut big = connect(&app);
    let value = "v".repeat(MAX_HEADER_BYTES + 2048);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: big\r\nX-Big: {value}\r\n\r\n");
    let answer = tokio::task::spawn_blocking(move || {
        let _ = big.write_all(request.as_bytes());
        read_to_close(&mut big)
    })
    .await
    .unwrap()
    .expect("answer to an oversized head");
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "oversized head got: {:?}",
        answer.chars().take(200).collect::<String>()
    );

    // A head under the limit is served.
    let res = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("X-Fine", "v".repeat(MAX_HEADER_BYTES / 2))
        .send()
        .await
        .expect("healthz with a 32 KiB header");
    assert_eq!(res.status(), 200);
}

/// Sends `body` as JSON (whatever it holds) and returns status, content type and the document.
async fn post_raw(
    app: &TestApp,
    h: &str,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String, Value) {
    let res = app
        .req(Method::POST, h, path)
        .header("content-type", "application/json")
        .header("Idempotency-Key", "strict-1")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let text = res.text().await.unwrap_or_default();
    (
        status,
        ct,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_body_is_exactly_one_json_object_and_errors_name_the_body() {
    let t = store("strict", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("STRICT-1", 500, 5)]).await;
    let h = host(&t);
    let c = cart(&app, h, &[]).await;
    let items = format!("/api/v1/carts/{c}/items");

    // Data after the value: a 400 naming the body, and nothing is added.
    let one = r#"{"sku":"STRICT-1","quantity":1}"#;
    for trailing in [
        format!("{one} xyz"),
        format!("{one}{one}"),
        format!("{one}\n{one}"),
    ] {
        let (s, ct, b) = post_raw(&app, h, &items, trailing.clone()).await;
        assert_eq!(
            (s, ct.as_str()),
            (400, "application/problem+json"),
            "{trailing}: {b}"
        );
        assert_eq!(b["field"], "body", "{b}");
        assert!(
            b["detail"]
                .as_str()
                .unwrap()
                .contains("after its JSON value"),
            "{b}"
        );
    }
    let (s, b, _) = app
        .call(Method::GET, h, &format!("/api/v1/carts/{c}"), None, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["lines"].as_array().map(Vec::len), Some(0), "{b}");

    // Broken JSON names the body (never `?`) and says where it broke.
    for broken in [r#"{"sku":"STRICT-1","#, r#"{"sku": }"#, "{,}"] {
        let (s, ct, b) = post_raw(&app, h, &items, broken).await;
        assert_eq!(
            (s, ct.as_str()),
            (400, "application/problem+json"),
            "{broken}: {b}"
        );
        assert_eq!(b["field"], "body", "{broken}: {b}");
        assert!(b["detail"].as_str().unwrap().contains("column"), "{b}");
    }

    // Checkout takes no body or one object: `[]` is not a checkout request.
    let c = cart(&app, h, &[("STRICT-1", 2)]).await;
    let checkout = format!("/api/v1/carts/{c}/checkout");
    for not_object in ["[]", "null", "\"ann@example.com\"", "[{}]"] {
        let (s, ct, b) = post_raw(&app, h, &checkout, not_object).await;
        assert_eq!(
            (s, ct.as_str()),
            (422, "application/problem+json"),
            "{not_object}: {b}"
        );
        assert_eq!(b["field"], "body", "{b}");
    }
    let (s, _, b) = post_raw(&app, h, &checkout, r#"{"email":"ann@example.com"} {}"#).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(
        stock(&app, &t, "STRICT-1").await,
        5,
        "no refused checkout reserved stock"
    );
}

#[tokio::test]
async fn oversized_bodies_get_a_413_problem_document_on_every_route() {
    let t = store("big", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    stock_skus(&app, &t, &[("BIG-1", 500, 5)]).await;
    let h = host(&t);
    let c = cart(&app, h, &[("BIG-1", 1)]).await;
    // 10 MB, far past the limit (16 KiB in tests, 64 KiB by default), through each kind of
    // body reader: the JSON extractor, raw bytes (checkout, the webhook) and a page form.
    let ten_mb = || format!("{{\"email\": \"{}\"}}", "a".repeat(10 * 1024 * 1024));
    for path in [
        format!("/api/v1/carts/{c}/items"),
        format!("/api/v1/carts/{c}/checkout"),
        "/api/v1/payments/webhook".to_owned(),
        "/api/v1/auth/register".to_owned(),
    ] {
        let (s, ct, b) = post_raw(&app, h, &path, ten_mb()).await;
        assert_eq!(
            (s, ct.as_str()),
            (413, "application/problem+json"),
            "{path}: {b}"
        );
        assert_eq!(b["status"], 413, "{path}: {b}");
        assert_eq!(b["field"], "body", "{path}: {b}");
    }
    assert_eq!(stock(&app, &t, "BIG-1").await, 5);
}
