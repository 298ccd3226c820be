//! Orders after checkout: the shopper's history and detail, the merchant's list and the life
//! cycle (fulfil, cancel, refund, mark paid), and payment provider events applied to orders.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::{
        Invalid,
        orders::{
            Applied, Fulfilment, Order, OrderEvent, OrderStatus, RefundError, RefundRequest,
            RefundStart, TransitionError, plan_refund, transition,
        },
        ports::{OrderStore, RefundStore, StoreError},
        pricing::Money,
    },
    payments::{PaymentError, PaymentProvider as _, Provider},
};

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrderPage {
    pub orders: Vec<Order>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Why an order could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Only manual-payment orders are marked paid by hand.
    #[error("{provider} orders are marked paid by the provider's webhook")]
    PaidByProvider { provider: String },
    #[error("the order was paid through a provider this store no longer uses")]
    ProviderGone,
    #[error(transparent)]
    Payment(#[from] PaymentError),
    #[error(transparent)]
    Refund(#[from] RefundError),
    /// An event without a payment event id came back as a duplicate (a store bug).
    #[error("duplicate without an event id")]
    Duplicate,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A payment provider's event about an order, already verified.
pub struct PaymentNotice<'a> {
    pub event_id: &'a str,
    pub kind: &'a str,
    /// The change it means for an order, when it means one.
    pub target: Option<(OrderEvent, Uuid)>,
    /// The provider payment the event is about (a PaymentIntent id), when it names one.
    pub payment_ref: Option<&'a str>,
}

/// What applying a payment notice did, as the webhook reports it.
pub enum NoticeOutcome {
    /// The order's new status.
    Applied(OrderStatus),
    Duplicate,
    /// Not an event about an order; recorded so a redelivery is a duplicate.
    Ignored,
    /// The order moved on (e.g. paid already) and cannot take the event.
    NotApplicable,
    /// The money arrived for an order that had expired, been cancelled or failed: it was given
    /// back through the provider, and an `order.late_payment_refunded` event records it.
    LatePaymentRefunded,
    UnknownOrder,
}

impl NoticeOutcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            NoticeOutcome::Applied(status) => status.as_str(),
            NoticeOutcome::Duplicate => "duplicate",
            NoticeOutcome::Ignored => "ignored",
            NoticeOutcome::NotApplicable => "not_applicable",
            NoticeOutcome::LatePaymentRefunded => "late_payment_refunded",
            NoticeOutcome::UnknownOrder => "unknown_order",
        }
    }
}

fn decode_cursor(raw: Option<&str>) -> Result<Option<Uuid>, Invalid> {
    raw.map(|c| {
        URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| Uuid::from_slice(&b).ok())
            .ok_or_else(|| Invalid::new("cursor", "is not a cursor this API returned"))
    })
    .transpose()
}

/// What orders need: the tenant's order store.
pub struct Orders<'a, O> {
    pub store: &'a O,
}

impl<O: OrderStore + RefundStore> Orders<'_, O> {
    /// A page of orders, newest first: the customer's, or all (filtered by `status`).
    pub async fn page(
        &self,
        customer: Option<Uuid>,
        status: Option<OrderStatus>,
        cursor: Option<&str>,
        limit: Option<i64>,
    ) -> Result<OrderPage, OrderError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(Invalid::new("limit", format!("must be between 1 and {MAX_LIMIT}")).into());
        }
        let before = decode_cursor(cursor)?;
        let orders = self.store.list(customer, status, before, limit).await?;
        let next_cursor = (orders.len() as i64 == limit)
            .then(|| {
                orders
                    .last()
                    .map(|o| URL_SAFE_NO_PAD.encode(o.id.as_bytes()))
            })
            .flatten();
        Ok(OrderPage {
            orders,
            next_cursor,
        })
    }

    /// Any order of the tenant (the merchant's view).
    pub async fn get(&self, id: Uuid) -> Result<Order, OrderError> {
        self.store.order(id).await?.ok_or(OrderError::NotFound)
    }

    /// An order as `caller` may see it: a customer's order is theirs alone; a guest order is
    /// reachable by its (unguessable) id.
    pub async fn for_shopper(&self, id: Uuid, caller: Option<Uuid>) -> Result<Order, OrderError> {
        let order = self.get(id).await?;
        if order.customer_id.is_some() && order.customer_id != caller {
            return Err(OrderError::NotFound);
        }
        Ok(order)
    }

    /// Applies a merchant's event (fulfil, cancel) through the state machine.
    pub async fn apply(&self, id: Uuid, event: OrderEvent) -> Result<Order, OrderError> {
        match self.store.apply(id, event, None).await? {
            Applied::Done(order) => Ok(*order),
            Applied::Duplicate => Err(OrderError::Duplicate),
        }
    }

    /// Cancels an unpaid order (its stock is released) and then its provider payment, so the
    /// shopper can no longer complete it. The provider call is best effort: a payment that
    /// still succeeds later is refunded automatically ([`Self::apply_payment`]).
    pub async fn cancel(
        &self,
        id: Uuid,
        provider: impl FnOnce() -> Result<Provider, PaymentError>,
    ) -> Result<Order, OrderError> {
        let order = self.apply(id, OrderEvent::Cancel).await?;
        cancel_payment(&order, provider).await;
        Ok(order)
    }

    /// Refunds chosen lines or an amount of a paid order, with a reason, through the provider,
    /// restocking the returned units when asked. `key` (the request's Idempotency-Key) makes a
    /// retry refund nothing twice: the refund is recorded pending before the provider is asked
    /// and completed after; a refusal forgets it, an unreachable provider leaves it for a retry.
    pub async fn refund_part(
        &self,
        id: Uuid,
        key: &str,
        req: RefundRequest,
        provider: impl FnOnce() -> Result<Provider, PaymentError>,
    ) -> Result<Order, OrderError> {
        let order = self.get(id).await?;
        // A state that takes no refund says so before the request's details are judged.
        transition(order.status, OrderEvent::Refund).map_err(TransitionError::from)?;
        let planned = plan_refund(&order, &req)?;
        let refund_id = match self
            .store
            .begin_refund(id, key, &planned, req.reason.trim(), req.restock)
            .await?
        {
            RefundStart::Done(order) => return Ok(*order),
            RefundStart::Pending { refund_id } => refund_id,
        };
        let provider = provider()?;
        if order.payment_provider != provider.name() {
            self.store.abandon_refund(refund_id).await?;
            return Err(OrderError::ProviderGone);
        }
        let amount = Money {
            amount_minor: planned.amount_minor,
            currency: order.total.currency.clone(),
        };
        let provider_ref = match provider
            .refund_part(
                order.payment_ref.as_deref(),
                &amount,
                req.reason.trim(),
                &format!("refund-{id}-{refund_id}"),
            )
            .await
        {
            Ok(r) => r,
            Err(e @ PaymentError::Refused(_)) => {
                self.store.abandon_refund(refund_id).await?;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        };
        Ok(self
            .store
            .complete_refund(id, refund_id, provider_ref.as_deref())
            .await?)
    }

    /// Fulfils a paid order, recording carrier and tracking number when given.
    pub async fn fulfil(
        &self,
        id: Uuid,
        fulfilment: Option<Fulfilment>,
    ) -> Result<Order, OrderError> {
        if let Some(f) = &fulfilment {
            f.validate()?;
        }
        let mut order = self.apply(id, OrderEvent::Fulfil).await?;
        if let Some(mut f) = fulfilment {
            f.carrier = f.carrier.trim().to_owned();
            f.tracking_number = f.tracking_number.trim().to_owned();
            f.fulfilled_at = Some(chrono::Utc::now());
            self.store.set_fulfilment(id, &f).await?;
            order.fulfilment = Some(f);
        }
        Ok(order)
    }

    /// Marks a manual-payment order paid.
    pub async fn mark_paid(&self, id: Uuid) -> Result<Order, OrderError> {
        let order = self.get(id).await?;
        if order.payment_provider != "manual" {
            return Err(OrderError::PaidByProvider {
                provider: order.payment_provider,
            });
        }
        self.apply(id, OrderEvent::PaymentSucceeded).await
    }

    /// Refunds a paid order: the provider gives the money back first, then the order moves.
    pub async fn refund(
        &self,
        id: Uuid,
        provider: impl FnOnce() -> Result<Provider, PaymentError>,
    ) -> Result<Order, OrderError> {
        let order = self.get(id).await?;
        if !order.refunds.is_empty() {
            return Err(Invalid::new(
                "refunds",
                "part of this order was refunded; refund the rest with admin/orders/{id}/refunds",
            )
            .into());
        }
        // Refuse before moving money when the state machine would refuse anyway.
        transition(order.status, OrderEvent::Refund).map_err(TransitionError::from)?;
        let provider = provider()?;
        if order.payment_provider == provider.name() {
            provider
                .refund(order.id, order.payment_ref.as_deref())
                .await?;
        } else if order.payment_provider != "manual" {
            return Err(OrderError::ProviderGone);
        }
        self.apply(id, OrderEvent::Refund).await
    }

    /// Applies a verified payment event once: its id is recorded with the order change, and an
    /// event that cannot apply is acknowledged (recorded) so the provider stops redelivering.
    ///
    /// A payment that succeeds for an order that expired, was cancelled or failed is refunded
    /// through `provider` before the event is recorded; if the refund fails the error goes back
    /// to the provider, which redelivers (the refund is keyed by order, so it happens once).
    pub async fn apply_payment(
        &self,
        tenant: &str,
        notice: PaymentNotice<'_>,
        provider: impl FnOnce() -> Result<Provider, PaymentError>,
    ) -> Result<NoticeOutcome, OrderError> {
        let Some((event, order_id)) = notice.target else {
            let fresh = self
                .store
                .record_payment_event(notice.event_id, notice.kind)
                .await?;
            return Ok(if fresh {
                NoticeOutcome::Ignored
            } else {
                NoticeOutcome::Duplicate
            });
        };
        if event == OrderEvent::PaymentSucceeded
            && let Some(reference) = notice.payment_ref
        {
            // Refunds go to the payment that paid (a Checkout Session makes its own intent).
            match self.store.order(order_id).await? {
                Some(o) if o.status == OrderStatus::PendingPayment => {
                    self.store.set_payment_ref(order_id, reference).await?
                }
                _ => {}
            }
        }
        match self
            .store
            .apply(order_id, event, Some((notice.event_id, notice.kind)))
            .await
        {
            Ok(Applied::Done(order)) => Ok(NoticeOutcome::Applied(order.status)),
            Ok(Applied::Duplicate) => Ok(NoticeOutcome::Duplicate),
            Err(TransitionError::Illegal(e))
                if event == OrderEvent::PaymentSucceeded && e.from.never_paid() =>
            {
                let order = self.get(order_id).await?;
                let reference = notice.payment_ref.or(order.payment_ref.as_deref());
                tracing::warn!(tenant, order = %order_id, status = %order.status,
                    "payment arrived for an order that cannot take it; refunding");
                let provider = provider()?;
                if provider.name() != order.payment_provider {
                    return Err(OrderError::ProviderGone);
                }
                provider.refund(order.id, reference).await?;
                Ok(
                    if self
                        .store
                        .record_late_refund(order_id, notice.event_id, notice.kind)
                        .await?
                    {
                        NoticeOutcome::LatePaymentRefunded
                    } else {
                        NoticeOutcome::Duplicate
                    },
                )
            }
            Err(TransitionError::Illegal(e)) => {
                tracing::warn!(tenant, order = %order_id, error = %e, "payment event does not apply");
                self.store
                    .record_payment_event(notice.event_id, notice.kind)
                    .await?;
                Ok(NoticeOutcome::NotApplicable)
            }
            Err(TransitionError::NotFound) => {
                self.store
                    .record_payment_event(notice.event_id, notice.kind)
                    .await?;
                Ok(NoticeOutcome::UnknownOrder)
            }
            Err(TransitionError::Store(e)) => Err(e.into()),
        }
    }
}

/// Cancels the provider payment of an order that will never be paid (best effort, logged).
pub async fn cancel_payment(
    order: &Order,
    provider: impl FnOnce() -> Result<Provider, PaymentError>,
) {
    if order.payment_provider == "manual" || order.payment_ref.is_none() {
        return;
    }
    let result = match provider() {
        Ok(p) if p.name() == order.payment_provider => p.cancel(order.payment_ref.as_deref()).await,
        Ok(_) => Err(PaymentError::NotConfigured(
            "the order's provider is no longer the store's",
        )),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        tracing::warn!(order = %order.id, error = %e,
            "payment not cancelled; a late payment will be refunded when it arrives");
    }
}
