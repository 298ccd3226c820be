//! Connection-level limits of the runtime's HTTP server (issue 8, abuse): a client that dribbles
//! its headers is cut off after the header-read timeout, and a request head over 64 KiB is
//! answered 431, while normal requests on other connections are served throughout.

mod common;

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::{Duration, Instant},
};

use common::{TestApp, test_settings};
use emporium_storefront::{Settings, app::MAX_HEADER_BYTES};

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
