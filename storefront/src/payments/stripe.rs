//! Stripe over plain HTTP (form-encoded, as the Stripe API expects): PaymentIntents create,
//! confirm, capture, cancel, refunds and Checkout Sessions; plus webhook signature
//! verification. Card data never reaches the runtime (PCI scope SAQ A): API clients confirm
//! with the intent's `client_secret` in Stripe.js, and the bundled pages send the shopper to
//! Stripe's hosted Checkout page, which redirects back; the signed webhook confirms.

use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::PaymentError;

pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// How old a webhook signature may be (Stripe's own libraries use five minutes).
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// A tenant's Stripe account. The secret key is never logged (no `Debug`).
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    api_base: String,
    secret_key: String,
}

/// The parts of a PaymentIntent the runtime uses.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: String,
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// The parts of a Checkout Session the runtime uses.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    /// Stripe's hosted payment page for the session.
    #[serde(default)]
    pub url: Option<String>,
}

/// What a hosted Checkout page shows and where it sends the shopper back.
pub struct SessionRequest<'a> {
    pub order_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    /// The one line the hosted page shows (`Order 0190... at Acme`).
    pub description: &'a str,
    pub email: Option<&'a str>,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Refund {
    pub id: String,
    pub status: Option<String>,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    error: StripeErrorDetail,
}

#[derive(Deserialize)]
struct StripeErrorDetail {
    #[serde(default)]
    message: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

impl StripeClient {
    pub fn new(http: reqwest::Client, api_base: Option<&str>, secret_key: &str) -> Self {
        Self {
            http,
            api_base: api_base
                .unwrap_or(DEFAULT_API_BASE)
                .trim_end_matches('/')
                .to_owned(),
            secret_key: secret_key.to_owned(),
        }
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        form: &[(&str, String)],
        idempotency_key: Option<&str>,
    ) -> Result<T, PaymentError> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.secret_key)
            .form(form);
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let res = req
            .send()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("stripe: {e}")))?;
        let status = res.status();
        let bytes = res
            .bytes()
            .await
            .map_err(|e| PaymentError::Unavailable(format!("stripe: {e}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| PaymentError::Unavailable(format!("stripe: unexpected reply: {e}")));
        }
        let detail = serde_json::from_slice::<StripeErrorBody>(&bytes)
            .ok()
            .map(|b| {
                format!(
                    "{}: {}",
                    b.error.kind.unwrap_or_default(),
                    b.error.message.unwrap_or_default()
                )
            })
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status.is_server_error() || status.as_u16() == 429 {
            Err(PaymentError::Unavailable(format!("stripe: {detail}")))
        } else {
            Err(PaymentError::Refused(format!("stripe: {detail}")))
        }
    }

    /// Creates a PaymentIntent for an order; the key makes a retried checkout reuse it.
    pub async fn create_intent(
        &self,
        amount_minor: i64,
        currency: &str,
        order_id: &str,
        idempotency_key: &str,
    ) -> Result<PaymentIntent, PaymentError> {
        self.post(
            "/v1/payment_intents",
            &[
                ("amount", amount_minor.to_string()),
                ("currency", currency.to_ascii_lowercase()),
                ("metadata[order_id]", order_id.to_owned()),
                ("automatic_payment_methods[enabled]", "true".into()),
            ],
            Some(idempotency_key),
        )
        .await
    }

    pub async fn confirm_intent(
        &self,
        intent_id: &str,
        payment_method: &str,
    ) -> Result<PaymentIntent, PaymentError> {
        self.post(
            &format!("/v1/payment_intents/{intent_id}/confirm"),
            &[("payment_method", payment_method.to_owned())],
            None,
        )
        .await
    }

    /// Cancels an intent nobody paid yet; the key makes a retried cancel a no-op.
    pub async fn cancel_intent(&self, intent_id: &str) -> Result<PaymentIntent, PaymentError> {
        self.post(
            &format!("/v1/payment_intents/{intent_id}/cancel"),
            &[("cancellation_reason", "abandoned".to_owned())],
            Some(&format!("cancel-{intent_id}")),
        )
        .await
    }

    /// A hosted Checkout page for an order: one line for the order's total (so shipping, tax
    /// and discounts always reconcile with what the order says), the order id in the session's
    /// and its PaymentIntent's metadata (the webhook finds the order by it). Keyed by order, so
    /// paying again after coming back reuses the session while Stripe keeps it.
    pub async fn create_checkout_session(
        &self,
        req: &SessionRequest<'_>,
    ) -> Result<CheckoutSession, PaymentError> {
        let mut form = vec![
            ("mode", "payment".to_owned()),
            ("client_reference_id", req.order_id.to_owned()),
            ("metadata[order_id]", req.order_id.to_owned()),
            (
                "payment_intent_data[metadata][order_id]",
                req.order_id.to_owned(),
            ),
            ("line_items[0][quantity]", "1".to_owned()),
            (
                "line_items[0][price_data][currency]",
                req.currency.to_ascii_lowercase(),
            ),
            (
                "line_items[0][price_data][unit_amount]",
                req.amount_minor.to_string(),
            ),
            (
                "line_items[0][price_data][product_data][name]",
                req.description.to_owned(),
            ),
            ("success_url", req.success_url.to_owned()),
            ("cancel_url", req.cancel_url.to_owned()),
        ];
        if let Some(email) = req.email {
            form.push(("customer_email", email.to_owned()));
        }
        self.post(
            "/v1/checkout/sessions",
            &form,
            Some(&format!("session-{}-{}", req.order_id, req.amount_minor)),
        )
        .await
    }

    pub async fn capture_intent(&self, intent_id: &str) -> Result<PaymentIntent, PaymentError> {
        self.post(
            &format!("/v1/payment_intents/{intent_id}/capture"),
            &[],
            Some(&format!("capture-{intent_id}")),
        )
        .await
    }

    /// Refunds `amount_minor` of the intent, with the merchant's reason kept in the metadata;
    /// the key makes a retried refund a no-op.
    pub async fn refund_amount(
        &self,
        intent_id: &str,
        amount_minor: i64,
        reason: &str,
        idempotency_key: &str,
    ) -> Result<Refund, PaymentError> {
        self.post(
            "/v1/refunds",
            &[
                ("payment_intent", intent_id.to_owned()),
                ("amount", amount_minor.to_string()),
                ("metadata[reason]", reason.chars().take(500).collect()),
            ],
            Some(idempotency_key),
        )
        .await
    }

    /// Refunds the whole intent; the key makes a retried refund a no-op.
    pub async fn refund(
        &self,
        intent_id: &str,
        idempotency_key: &str,
    ) -> Result<Refund, PaymentError> {
        self.post(
            "/v1/refunds",
            &[("payment_intent", intent_id.to_owned())],
            Some(idempotency_key),
        )
        .await
    }
}

/// Why a webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("no signature matches the payload")]
    Mismatch,
    #[error("the signature timestamp is outside the {SIGNATURE_TOLERANCE_SECS} s tolerance")]
    OutsideTolerance,
}

/// HMAC-SHA256 of `{t}.{payload}` in lower-case hex: what Stripe puts in `v1=`.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks a `Stripe-Signature: t=...,v1=...[,v1=...]` header against the raw body. A signature
/// older (or newer) than the tolerance is refused, so a captured request cannot be replayed later;
/// replays within the window are caught by the event-id dedupe.
pub fn verify_signature(
    header: Option<&str>,
    payload: &[u8],
    secret: &str,
    now: i64,
) -> Result<i64, SignatureError> {
    let header = header.ok_or(SignatureError::Malformed)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => timestamp = v.parse::<i64>().ok(),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let expected = sign(secret, t, payload);
    let matches = signatures
        .iter()
        .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())));
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    if (now - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::OutsideTolerance);
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test";

    #[test]
    fn accepts_a_fresh_valid_signature() {
        let body = br#"{"id":"evt_1"}"#;
        let header = format!("t=1000,v1={}", sign(SECRET, 1000, body));
        assert_eq!(
            verify_signature(Some(&header), body, SECRET, 1100),
            Ok(1000)
        );
        // A second v1 (secret rotation) is fine as long as one matches.
        let header = format!("t=1000,v1=deadbeef,v1={}", sign(SECRET, 1000, body));
        assert_eq!(
            verify_signature(Some(&header), body, SECRET, 1000),
            Ok(1000)
        );
    }

    #[test]
    fn refuses_bad_old_and_malformed() {
        let body = br#"{"id":"evt_1"}"#;
        let good = sign(SECRET, 1000, body);
        assert_eq!(
            verify_signature(Some(&format!("t=1000,v1={good}")), b"{}", SECRET, 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&format!("t=1000,v1={good}")), body, "other", 1000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(Some(&format!("t=1000,v1={good}")), body, SECRET, 1301),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            verify_signature(Some(&format!("t=1001,v1={good}")), body, SECRET, 1001),
            Err(SignatureError::Mismatch)
        );
        for h in [None, Some(""), Some("v1=abc"), Some("t=1000")] {
            assert_eq!(
                verify_signature(h, body, SECRET, 1000),
                Err(SignatureError::Malformed)
            );
        }
    }
}
