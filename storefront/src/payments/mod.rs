//! Payment providers behind one trait: `manual` (the merchant marks orders paid) and `stripe`.
//! A tenant's provider and keys come from its tenant config.

pub mod stripe;

use emporium_tenant_config::{PaymentProvider as ProviderKind, Payments};
use uuid::Uuid;

use crate::domain::pricing::Money;

/// Why a payment call did not go through.
#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("the payment provider is not configured: {0}")]
    NotConfigured(&'static str),
    #[error("the payment provider is unavailable: {0}")]
    Unavailable(String),
    #[error("the payment provider refused: {0}")]
    Refused(String),
}

/// A payment started for an order.
#[derive(Debug, Clone, Default)]
pub struct StartedPayment {
    /// The provider's id for it (a PaymentIntent id).
    pub reference: Option<String>,
    /// What the shopper's browser needs to pay (Stripe's `client_secret`).
    pub client_secret: Option<String>,
}

/// What the runtime needs from a payment provider.
pub trait PaymentProvider: Send + Sync {
    fn name(&self) -> &'static str;
    /// Starts collecting `amount` for the order; retried calls with the same key start nothing new.
    fn start(
        &self,
        order_id: Uuid,
        amount: &Money,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<StartedPayment, PaymentError>> + Send;
    /// Gives the whole payment back.
    fn refund(
        &self,
        order_id: Uuid,
        reference: Option<&str>,
    ) -> impl Future<Output = Result<(), PaymentError>> + Send;
    /// Gives `amount` of the payment back; returns the provider's refund id. `key` makes a
    /// retry refund nothing twice.
    fn refund_part(
        &self,
        reference: Option<&str>,
        amount: &Money,
        reason: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, PaymentError>> + Send;
    /// Stops an unpaid payment from being completed (the order expired or was cancelled).
    fn cancel(
        &self,
        reference: Option<&str>,
    ) -> impl Future<Output = Result<(), PaymentError>> + Send;
}

/// The merchant collects payment outside the runtime and marks orders paid by hand.
pub struct Manual;

impl PaymentProvider for Manual {
    fn name(&self) -> &'static str {
        "manual"
    }

    async fn start(&self, _: Uuid, _: &Money, _: &str) -> Result<StartedPayment, PaymentError> {
        Ok(StartedPayment::default())
    }

    async fn refund(&self, _: Uuid, _: Option<&str>) -> Result<(), PaymentError> {
        Ok(())
    }

    async fn cancel(&self, _: Option<&str>) -> Result<(), PaymentError> {
        Ok(())
    }

    /// The merchant gives the money back themselves; the runtime records it.
    async fn refund_part(
        &self,
        _: Option<&str>,
        _: &Money,
        _: &str,
        _: &str,
    ) -> Result<Option<String>, PaymentError> {
        Ok(None)
    }
}

impl PaymentProvider for stripe::StripeClient {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn start(
        &self,
        order_id: Uuid,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<StartedPayment, PaymentError> {
        let intent = self
            .create_intent(
                amount.amount_minor,
                &amount.currency,
                &order_id.to_string(),
                idempotency_key,
            )
            .await?;
        Ok(StartedPayment {
            reference: Some(intent.id),
            client_secret: intent.client_secret,
        })
    }

    async fn refund(&self, order_id: Uuid, reference: Option<&str>) -> Result<(), PaymentError> {
        let intent = reference.ok_or(PaymentError::Refused(
            "the order has no PaymentIntent to refund".into(),
        ))?;
        stripe::StripeClient::refund(self, intent, &format!("refund-{order_id}")).await?;
        Ok(())
    }

    async fn refund_part(
        &self,
        reference: Option<&str>,
        amount: &Money,
        reason: &str,
        key: &str,
    ) -> Result<Option<String>, PaymentError> {
        let intent = reference.ok_or(PaymentError::Refused(
            "the order has no PaymentIntent to refund".into(),
        ))?;
        let refund = self
            .refund_amount(intent, amount.amount_minor, reason, key)
            .await?;
        Ok(Some(refund.id))
    }

    async fn cancel(&self, reference: Option<&str>) -> Result<(), PaymentError> {
        match reference {
            Some(intent) if intent.starts_with("pi_") => {
                self.cancel_intent(intent).await?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The tenant's configured provider.
pub enum Provider {
    Manual(Manual),
    Stripe(stripe::StripeClient),
}

impl Provider {
    pub fn for_tenant(config: &Payments, http: &reqwest::Client) -> Result<Self, PaymentError> {
        match config.provider {
            ProviderKind::Manual => Ok(Provider::Manual(Manual)),
            ProviderKind::Stripe => {
                let key = config
                    .secret_key
                    .as_deref()
                    .filter(|k| !k.is_empty())
                    .ok_or(PaymentError::NotConfigured("stripe needs a secret key"))?;
                Ok(Provider::Stripe(stripe::StripeClient::new(
                    http.clone(),
                    config.api_base.as_deref(),
                    key,
                )))
            }
        }
    }
}

impl PaymentProvider for Provider {
    fn name(&self) -> &'static str {
        match self {
            Provider::Manual(p) => p.name(),
            Provider::Stripe(p) => p.name(),
        }
    }

    async fn start(
        &self,
        order_id: Uuid,
        amount: &Money,
        idempotency_key: &str,
    ) -> Result<StartedPayment, PaymentError> {
        match self {
            Provider::Manual(p) => p.start(order_id, amount, idempotency_key).await,
            Provider::Stripe(p) => p.start(order_id, amount, idempotency_key).await,
        }
    }

    async fn refund(&self, order_id: Uuid, reference: Option<&str>) -> Result<(), PaymentError> {
        match self {
            Provider::Manual(p) => p.refund(order_id, reference).await,
            Provider::Stripe(p) => PaymentProvider::refund(p, order_id, reference).await,
        }
    }

    async fn refund_part(
        &self,
        reference: Option<&str>,
        amount: &Money,
        reason: &str,
        key: &str,
    ) -> Result<Option<String>, PaymentError> {
        match self {
            Provider::Manual(p) => p.refund_part(reference, amount, reason, key).await,
            Provider::Stripe(p) => p.refund_part(reference, amount, reason, key).await,
        }
    }

    async fn cancel(&self, reference: Option<&str>) -> Result<(), PaymentError> {
        match self {
            Provider::Manual(p) => p.cancel(reference).await,
            Provider::Stripe(p) => p.cancel(reference).await,
        }
    }
}
