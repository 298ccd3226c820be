//! What an order event from the queue is, and what it turns into: one delivery per channel and
//! target (pure; the consumer stores them, the dispatcher sends them).

use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::domain::orders::Order;

/// An order event as the outbox relay sends it (the message body).
#[derive(Debug, Clone, Deserialize)]
pub struct OrderEventMessage {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    /// The tenant's data key; a message naming another tenant is refused.
    pub tenant: String,
    pub order: Order,
}

/// Why a queue message cannot become deliveries. Such a message is left in the queue; SQS moves
/// it to the dead-letter queue once it was received as often as the redrive policy allows.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("the message body is not an order event: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the event is for tenant `{found}`, not this queue's tenant `{expected}`")]
    WrongTenant { expected: String, found: String },
}

impl OrderEventMessage {
    /// Parses a message body of `tenant`'s queue.
    pub fn parse(body: &str, tenant: &str) -> Result<(Self, Value), EventError> {
        let raw: Value = serde_json::from_str(body)?;
        let event: OrderEventMessage = serde_json::from_value(raw.clone())?;
        if event.tenant != tenant {
            return Err(EventError::WrongTenant {
                expected: tenant.to_owned(),
                found: event.tenant,
            });
        }
        Ok((event, raw))
    }
}

/// Where a delivery goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "email" => Some(Channel::Email),
            "webhook" => Some(Channel::Webhook),
            _ => None,
        }
    }
}

/// One thing to send for an event: unique by (event, channel, target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDelivery {
    pub channel: Channel,
    /// The email address, or the webhook subscription's id.
    pub target: String,
    /// The mail template, or the event type for webhooks.
    pub template: String,
}

/// The shopper mails order events send (none for the others).
pub fn mail_template(event: &OrderEventMessage) -> Option<crate::notifications::mail::Template> {
    use crate::notifications::mail::Template;
    let manual = event.order.payment_provider == "manual";
    match event.kind.as_str() {
        // A manual-payment order is confirmed when placed (it is paid later, off-line); one paid
        // through a provider when the payment succeeds, so a declined card confirms nothing.
        "order.created" if manual => Some(Template::OrderConfirmation),
        "order.paid" if !manual => Some(Template::OrderConfirmation),
        "order.fulfilled" => Some(Template::OrderShipped),
        "order.refunded" | "order.partially_refunded" | "order.late_payment_refunded" => {
            Some(Template::OrderRefunded)
        }
        _ => None,
    }
}

/// A merchant's webhook subscription, as planning needs it.
#[derive(Debug, Clone)]
pub struct SubscriptionTarget {
    pub id: Uuid,
    pub event_types: Vec<String>,
}

impl SubscriptionTarget {
    pub fn wants(&self, kind: &str) -> bool {
        self.event_types.iter().any(|t| t == "*" || t == kind)
    }
}

/// The deliveries of `event`: the shopper's mail when the event has one and mail is on, and
/// one per enabled webhook subscription that wants the event's type.
pub fn plan(
    event: &OrderEventMessage,
    mail_enabled: bool,
    subscriptions: &[SubscriptionTarget],
) -> Vec<PlannedDelivery> {
    let mut out = Vec::new();
    if mail_enabled
        && let (Some(template), Some(email)) = (mail_template(event), event.order.email.as_ref())
        && !email.is_empty()
    {
        out.push(PlannedDelivery {
            channel: Channel::Email,
            target: email.to_lowercase(),
            template: template.as_str().to_owned(),
        });
    }
    for s in subscriptions.iter().filter(|s| s.wants(&event.kind)) {
        out.push(PlannedDelivery {
            channel: Channel::Webhook,
            target: s.id.to_string(),
            template: event.kind.clone(),
        });
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// An order event body as the relay writes it.
    pub fn event_body(kind: &str, tenant: &str, provider: &str) -> String {
        json!({
            "event_id": Uuid::now_v7(),
            "type": kind,
            "tenant": tenant,
            "order": {
                "id": Uuid::now_v7(), "status": "paid", "customer_id": null,
                "cart_id": Uuid::now_v7(), "email": "Ann@Example.com",
                "lines": [{"sku": "MUG", "product_id": Uuid::now_v7(), "title": "Mug", "quantity": 2,
                           "unit_price": {"amount_minor": 1250, "currency": "EUR"}}],
                "subtotal": {"amount_minor": 2500, "currency": "EUR"},
                "shipping": {"method_id": "std", "name": "Standard", "price": {"amount_minor": 490, "currency": "EUR"}},
                "shipping_address": null, "billing_address": null,
                "discount": {"amount_minor": 0, "currency": "EUR"}, "discount_code": null,
                "tax": {"prices_include_tax": true, "lines": [{"name": "VAT", "rate_bp": 1900,
                        "taxable": {"amount_minor": 2512, "currency": "EUR"}, "amount": {"amount_minor": 478, "currency": "EUR"}}]},
                "tax_total": {"amount_minor": 478, "currency": "EUR"},
                "total": {"amount_minor": 2990, "currency": "EUR"},
                "refunds": [], "refunded": {"amount_minor": 0, "currency": "EUR"},
                "fulfilment": {"carrier": "DHL", "tracking_number": "JD0001", "fulfilled_at": null},
                "payment_provider": provider, "payment_ref": null, "reserved_until": null,
                "created_at": "2026-12-04T10:00:00Z", "updated_at": "2026-12-04T10:00:00Z"
            }
        })
        .to_string()
    }

    #[test]
    fn a_message_of_another_tenant_or_no_event_is_refused() {
        let body = event_body("order.created", "acme", "manual");
        assert!(OrderEventMessage::parse(&body, "acme").is_ok());
        assert!(matches!(
            OrderEventMessage::parse(&body, "other"),
            Err(EventError::WrongTenant { .. })
        ));
        assert!(matches!(
            OrderEventMessage::parse("{\"type\":1}", "acme"),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn confirmation_waits_for_the_payment_of_provider_orders() {
        let kinds = |provider: &str| {
            [
                "order.created",
                "order.paid",
                "order.fulfilled",
                "order.refunded",
                "order.cancelled",
            ]
            .map(|k| {
                let (e, _) =
                    OrderEventMessage::parse(&event_body(k, "t", provider), "t").expect("event");
                mail_template(&e).map(|t| t.as_str())
            })
        };
        assert_eq!(
            kinds("manual"),
            [
                Some("order_confirmation"),
                None,
                Some("order_shipped"),
                Some("order_refunded"),
                None
            ]
        );
        assert_eq!(kinds("stripe")[..2], [None, Some("order_confirmation")]);
    }

    #[test]
    fn deliveries_go_to_the_shopper_and_to_the_subscriptions_that_want_the_type() {
        let (e, _) =
            OrderEventMessage::parse(&event_body("order.created", "t", "manual"), "t").unwrap();
        let all = SubscriptionTarget {
            id: Uuid::now_v7(),
            event_types: vec!["*".into()],
        };
        let refunds = SubscriptionTarget {
            id: Uuid::now_v7(),
            event_types: vec!["order.refunded".into()],
        };
        let planned = plan(&e, true, &[all.clone(), refunds]);
        assert_eq!(planned.len(), 2, "{planned:?}");
        assert_eq!(planned[0].channel, Channel::Email);
        assert_eq!(planned[0].target, "ann@example.com");
        assert_eq!(planned[1].target, all.id.to_string());
        assert_eq!(plan(&e, false, &[]), vec![]);
    }
}
