//! Merchant webhooks: the signature receivers check, and one delivery over HTTP.
//!
//! Scheme (docs/api.md, "Webhooks"): the body is the order event JSON; the header
//! `Emporium-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` signs the
//! timestamp with the body, so a receiver that refuses old timestamps also refuses replays.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "emporium-signature";
/// The event's id: the same for every retry, so receivers dedupe by it.
pub const EVENT_ID_HEADER: &str = "emporium-event-id";
pub const EVENT_TYPE_HEADER: &str = "emporium-event-type";
/// This delivery's id (one per event and subscription).
pub const DELIVERY_ID_HEADER: &str = "emporium-delivery-id";

/// The `Emporium-Signature` value for `body` sent at `timestamp` (unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// A receiver's check: the signature matches and is at most `tolerance` old (used by tests and
/// shown in docs/api.md in other languages).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: Duration) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if (now - t).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let expected = signature(secret, t, body);
    let expected = expected.rsplit_once("v1=").map_or("", |(_, h)| h);
    subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), v1.as_bytes()).into()
}

/// A new subscription's signing secret (`whsec_` + 32 random bytes, hex).
pub fn new_secret() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("whsec_{hex}")
}

/// What a receiver answered.
#[derive(Debug)]
pub struct Answer {
    pub status: Option<u16>,
    pub error: Option<String>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// POSTs `body` to `url`, signed; any 2xx is a success.
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    secret: &str,
    event_id: &str,
    event_type: &str,
    delivery_id: &str,
    body: Vec<u8>,
) -> Answer {
    let now = chrono::Utc::now().timestamp();
    let res = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(reqwest::header::USER_AGENT, "Emporium-Webhooks/1")
        .header(SIGNATURE_HEADER, signature(secret, now, &body))
        .header(EVENT_ID_HEADER, event_id)
        .header(EVENT_TYPE_HEADER, event_type)
        .header(DELIVERY_ID_HEADER, delivery_id)
        .body(body)
        .send()
        .await;
    match res {
        Ok(r) if r.status().is_success() => Answer {
            status: Some(r.status().as_u16()),
            error: None,
        },
        Ok(r) => Answer {
            status: Some(r.status().as_u16()),
            error: Some(format!("the receiver answered {}", r.status())),
        },
        // Without the URL: reqwest's text names it, and it may carry a token.
        Err(e) => Answer {
            status: None,
            error: Some(format!("cannot reach the receiver: {}", e.without_url())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_or_old_timestamp_does_not() {
        let body = br#"{"type":"order.created"}"#;
        let header = signature("whsec_k", 1_700_000_000, body);
        let minute = Duration::from_secs(300);
        assert!(verify("whsec_k", &header, body, 1_700_000_010, minute));
        assert!(!verify("whsec_other", &header, body, 1_700_000_010, minute));
        assert!(!verify("whsec_k", &header, b"{}", 1_700_000_010, minute));
        assert!(!verify("whsec_k", &header, body, 1_700_001_000, minute));
        assert!(!verify("whsec_k", "v1=00", body, 1_700_000_000, minute));
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Computed independently: printf '1.{}' | openssl dgst -sha256 -hmac k
        assert_eq!(
            signature("k", 1, b"{}"),
            "t=1,v1=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        );
    }
}
