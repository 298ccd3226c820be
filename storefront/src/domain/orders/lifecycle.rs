//! The order state machine: which events move an order where, and what each move does to the
//! stock the order holds. Pure: no clock, no database, no HTTP.
//!
//! ```text
//! pending_payment ──payment succeeded──▶ paid ──fulfil──▶ fulfilled
//!   │  │  │                               │                  │
//!   │  │  └─cancel──▶ cancelled           └──refund──┐       └──refund──▶ refunded
//!   │  └─payment failed──▶ payment_failed            └──────────────────▶ refunded
//!   └─reservation expired──▶ expired
//! ```

use serde::{Deserialize, Serialize};

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stock is reserved until the reservation expires; waiting for the payment.
    PendingPayment,
    Paid,
    Fulfilled,
    Cancelled,
    Refunded,
    PaymentFailed,
    /// The reservation ran out before the payment arrived.
    Expired,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Cancelled,
        OrderStatus::Refunded,
        OrderStatus::PaymentFailed,
        OrderStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
            OrderStatus::PaymentFailed => "payment_failed",
            OrderStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The state in words, for messages.
    pub fn words(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "awaiting payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Refunded => "refunded",
            OrderStatus::PaymentFailed => "unpaid (the payment failed)",
            OrderStatus::Expired => "expired (not paid in time)",
        }
    }

    /// True for the end states of an order that was never paid: money arriving for one of them
    /// is not the order's and goes back.
    pub fn never_paid(self) -> bool {
        matches!(
            self,
            OrderStatus::Expired | OrderStatus::Cancelled | OrderStatus::PaymentFailed
        )
    }

    /// True while the order holds reserved (not yet sold) stock.
    pub fn holds_reservation(self) -> bool {
        self == OrderStatus::PendingPayment
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderEvent {
    PaymentSucceeded,
    PaymentFailed,
    ReservationExpired,
    Cancel,
    Fulfil,
    Refund,
}

impl OrderEvent {
    pub const ALL: [OrderEvent; 6] = [
        OrderEvent::PaymentSucceeded,
        OrderEvent::PaymentFailed,
        OrderEvent::ReservationExpired,
        OrderEvent::Cancel,
        OrderEvent::Fulfil,
        OrderEvent::Refund,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderEvent::PaymentSucceeded => "payment_succeeded",
            OrderEvent::PaymentFailed => "payment_failed",
            OrderEvent::ReservationExpired => "reservation_expired",
            OrderEvent::Cancel => "cancel",
            OrderEvent::Fulfil => "fulfil",
            OrderEvent::Refund => "refund",
        }
    }

    /// What the event does, in words that complete "the order cannot ...".
    pub fn action(self) -> &'static str {
        match self {
            OrderEvent::PaymentSucceeded => "be marked paid",
            OrderEvent::PaymentFailed => "be marked as failed payment",
            OrderEvent::ReservationExpired => "expire",
            OrderEvent::Cancel => "be cancelled",
            OrderEvent::Fulfil => "be fulfilled",
            OrderEvent::Refund => "be refunded",
        }
    }
}

/// What a transition does to the units the order's lines name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockEffect {
    /// Nothing changes.
    None,
    /// The reservation becomes a sale; `available` already excludes the units.
    Commit,
    /// The reservation is given back: `available` grows by the lines' quantities.
    Release,
    /// Sold but never shipped units go back on sale: `available` grows by the quantities.
    Restock,
}

impl StockEffect {
    /// True when the lines' quantities return to `available`.
    pub fn returns_stock(self) -> bool {
        matches!(self, StockEffect::Release | StockEffect::Restock)
    }
}

/// A transition the state machine allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: OrderStatus,
    pub to: OrderStatus,
    pub stock: StockEffect,
}

/// The event does not apply to an order in this state. The message is for people (merchants,
/// shoppers): it names the state and the action in words, never the internal event name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the order is {} and cannot {}", from.words(), event.action())]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub event: OrderEvent,
}

/// The one place the order life cycle is decided.
pub fn transition(from: OrderStatus, event: OrderEvent) -> Result<Transition, IllegalTransition> {
    use OrderEvent as E;
    use OrderStatus as S;
    use StockEffect as K;
    let (to, stock) = match (from, event) {
        (S::PendingPayment, E::PaymentSucceeded) => (S::Paid, K::Commit),
        (S::PendingPayment, E::PaymentFailed) => (S::PaymentFailed, K::Release),
        (S::PendingPayment, E::ReservationExpired) => (S::Expired, K::Release),
        (S::PendingPayment, E::Cancel) => (S::Cancelled, K::Release),
        (S::Paid, E::Fulfil) => (S::Fulfilled, K::None),
        // Refunded before shipping: the units go back on sale. After shipping they are gone.
        (S::Paid, E::Refund) => (S::Refunded, K::Restock),
        (S::Fulfilled, E::Refund) => (S::Refunded, K::None),
        _ => return Err(IllegalTransition { from, event }),
    };
    Ok(Transition { from, to, stock })
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderEvent as E;
    use OrderStatus as S;
    use StockEffect as K;

    /// Every (state, event) pair, with the expected outcome; anything not listed is illegal.
    #[test]
    fn every_state_event_pair() {
        let legal = [
            (S::PendingPayment, E::PaymentSucceeded, S::Paid, K::Commit),
            (
                S::PendingPayment,
                E::PaymentFailed,
                S::PaymentFailed,
                K::Release,
            ),
            (
                S::PendingPayment,
                E::ReservationExpired,
                S::Expired,
                K::Release,
            ),
            (S::PendingPayment, E::Cancel, S::Cancelled, K::Release),
            (S::Paid, E::Fulfil, S::Fulfilled, K::None),
            (S::Paid, E::Refund, S::Refunded, K::Restock),
            (S::Fulfilled, E::Refund, S::Refunded, K::None),
        ];
        let mut checked = 0;
        for from in S::ALL {
            for event in E::ALL {
                checked += 1;
                let expected = legal
                    .iter()
                    .find(|(f, e, _, _)| *f == from && *e == event)
                    .map(|&(from, _, to, stock)| Transition { from, to, stock });
                match (transition(from, event), expected) {
                    (Ok(t), Some(want)) => assert_eq!(t, want, "{from} + {event:?}"),
                    (Err(e), None) => assert_eq!(e, IllegalTransition { from, event }),
                    (got, want) => panic!("{from} + {event:?}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(checked, 7 * 6);
    }

    #[test]
    fn terminal_states_take_no_event() {
        for from in [S::Cancelled, S::Refunded, S::PaymentFailed, S::Expired] {
            for event in E::ALL {
                assert!(transition(from, event).is_err(), "{from} + {event:?}");
            }
        }
    }

    #[test]
    fn stock_returns_exactly_once_per_order() {
        // Along any path, at most one transition gives units back.
        fn walk(s: S, returned: u32) {
            assert!(returned <= 1, "stock returned twice reaching {s}");
            for e in E::ALL {
                if let Ok(t) = transition(s, e) {
                    walk(t.to, returned + u32::from(t.stock.returns_stock()));
                }
            }
        }
        walk(S::PendingPayment, 0);
    }

    #[test]
    fn statuses_round_trip_through_text() {
        for s in S::ALL {
            assert_eq!(S::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(S::parse("shipped"), None);
        assert!(S::PendingPayment.holds_reservation());
        assert!(!S::Paid.holds_reservation());
    }

    #[test]
    fn illegal_transition_message_names_state_and_event() {
        let e = transition(S::Fulfilled, E::Cancel).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the order is fulfilled and cannot be cancelled"
        );
        let e = transition(S::Paid, E::PaymentSucceeded).unwrap_err();
        assert_eq!(e.to_string(), "the order is paid and cannot be marked paid");
    }

    #[test]
    fn illegal_transition_messages_never_name_internal_events() {
        for from in S::ALL {
            for event in E::ALL {
                if let Err(e) = transition(from, event) {
                    let message = e.to_string();
                    for internal in E::ALL
                        .map(E::as_str)
                        .into_iter()
                        .chain(S::ALL.map(S::as_str))
                    {
                        assert!(
                            !internal.contains('_') || !message.contains(internal),
                            "{message:?} leaks `{internal}`"
                        );
                    }
                    assert!(!message.contains('`'), "{message:?}");
                }
            }
        }
    }
}
