//! Orders: what checkout freezes (lines, total, payment), what storage answers about it, and why
//! a checkout or an order change can be refused. The life cycle itself is in [`lifecycle`].

pub mod lifecycle;
pub mod returns;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

pub use lifecycle::{
    IllegalTransition, OrderEvent, OrderStatus, StockEffect, Transition, transition,
};
pub use returns::{Fulfilment, PlannedRefund, Refund, RefundRequest, ReturnedLine, plan_refund};

use super::{ports::StoreError, pricing::Money, shipping::Address, totals::TaxLine};

/// The tax on an order: one line per rate, and whether the prices already held it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderTax {
    /// True: the tax is part of the prices (and of the total), shown for the invoice. False:
    /// the tax was added to the total.
    pub prices_include_tax: bool,
    pub lines: Vec<TaxLine>,
}

/// The shipping an order was charged: the method chosen and its price then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ShippingLine {
    pub method_id: String,
    pub name: String,
    pub price: Money,
}

/// A priced order line, frozen at checkout.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub sku: String,
    pub product_id: Uuid,
    pub title: String,
    pub quantity: i32,
    pub unit_price: Money,
}

/// An order as shoppers and merchants see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub status: OrderStatus,
    pub customer_id: Option<Uuid>,
    pub cart_id: Uuid,
    pub email: Option<String>,
    pub lines: Vec<OrderLine>,
    /// The lines at their prices.
    pub subtotal: Money,
    /// Absent when nothing ships (digital goods, a store that does not ship).
    pub shipping: Option<ShippingLine>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    /// Taken off the subtotal (discount codes).
    pub discount: Money,
    /// The discount code the order used.
    pub discount_code: Option<String>,
    pub tax: OrderTax,
    /// The sum of the tax lines.
    pub tax_total: Money,
    /// What the shopper pays: subtotal − discount + shipping (+ tax when prices exclude it).
    pub total: Money,
    /// Refunds so far (partial or whole), oldest first.
    pub refunds: Vec<Refund>,
    /// Their sum.
    pub refunded: Money,
    /// Carrier and tracking number, once the merchant shipped it.
    pub fulfilment: Option<Fulfilment>,
    /// `manual` or `stripe`.
    pub payment_provider: String,
    /// The provider's payment id (a Stripe PaymentIntent id).
    pub payment_ref: Option<String>,
    /// While `pending_payment`: when the reserved stock is released; absent when it is held
    /// until the merchant marks the order paid or cancels it (manual payments by default).
    pub reserved_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What checkout asks storage to create.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub id: Uuid,
    pub customer_id: Option<Uuid>,
    pub cart_id: Uuid,
    pub email: Option<String>,
    pub lines: Vec<OrderLine>,
    pub subtotal: Money,
    pub shipping: Option<ShippingLine>,
    pub shipping_address: Option<Address>,
    pub billing_address: Option<Address>,
    pub discount: Money,
    /// The code to redeem in the order's transaction, with who redeems it.
    pub promotion: Option<PromotionClaim>,
    pub tax: OrderTax,
    pub total: Money,
    pub payment_provider: String,
    pub payment_ref: Option<String>,
    pub reserved_until: Option<DateTime<Utc>>,
}

/// A discount code an order redeems: counted against its limits in the order's transaction.
#[derive(Debug, Clone)]
pub struct PromotionClaim {
    pub code: String,
    /// `customer:<id>` or `email:<address>`, for the per-customer limit.
    pub customer_key: Option<String>,
}

/// What a checkout under an `Idempotency-Key` came to. `R` is the reply the key records for
/// retries (the HTTP layer's stored response); the domain only carries it.
pub enum CheckoutOutcome<R> {
    /// A new order, its stock reserved, and the reply now recorded under the key.
    Created { order: Box<Order>, reply: R },
    /// The key was used before with the same request: the reply recorded then.
    Replayed(R),
}

/// Why storage refused to turn a priced cart into an order.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error("not enough stock of `{sku}`")]
    OutOfStock { sku: String },
    #[error("the Idempotency-Key was already used with a different request")]
    KeyReused,
    /// The discount code hit a limit while the order was placed (others redeemed it first).
    #[error(transparent)]
    Code(#[from] super::promotions::CodeRefused),
    /// A cart becomes an order once; this one already did.
    #[error("this cart was already checked out as order {order_id}")]
    CartCheckedOut { order_id: Uuid },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an event did not change an order.
#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a refund could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no such order")]
    NotFound,
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// Another refund took part of what was left meanwhile.
    #[error("only {remaining} minor units are left to refund")]
    TooMuch { remaining: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A refund recorded as pending (ask the provider next), or one its key already completed.
pub enum RefundStart {
    Pending { refund_id: Uuid },
    Done(Box<Order>),
}

/// What applying an event to an order did.
pub enum Applied {
    Done(Box<Order>),
    /// The payment event id was handled before; nothing changed.
    Duplicate,
}

/// An outbox row on its way to the queue.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub kind: String,
    pub payload: Value,
}

/// Why relaying outbox events stopped: the store failed, or `send` did (its error kept).
#[derive(Debug, thiserror::Error)]
pub enum RelayError<E> {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("sending order events failed: {0}")]
    Send(#[source] E),
}
