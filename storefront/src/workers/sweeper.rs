//! The reservation sweeper: expires pending orders whose reservation ran out, giving their
//! stock back and cancelling their provider payment, for every tenant, on every replica (the
//! order's row lock makes that safe).

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use crate::{
    domain::{
        orders::{Applied, Order, OrderEvent, TransitionError},
        ports::{OrderStore, StoreError},
    },
    payments::Provider,
    services::orders::cancel_payment,
    tenants::Tenants,
};

/// How often the sweeper looks for expired reservations.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// Orders expired per tenant and sweep.
const SWEEP_BATCH: i64 = 100;

/// Expires one tenant's overdue reservations; returns the orders that expired.
pub async fn sweep_tenant(orders: &impl OrderStore) -> Result<Vec<Order>, StoreError> {
    let mut expired = Vec::new();
    for id in orders.expired_reservations(SWEEP_BATCH).await? {
        match orders.apply(id, OrderEvent::ReservationExpired, None).await {
            Ok(Applied::Done(order)) => expired.push(*order),
            // Paid or cancelled meanwhile: nothing to do.
            Ok(Applied::Duplicate)
            | Err(TransitionError::Illegal(_) | TransitionError::NotFound) => {}
            Err(TransitionError::Store(e)) => return Err(e),
        }
    }
    Ok(expired)
}

/// Runs the reservation expiry sweeper for every tenant until aborted.
pub fn spawn(tenants: Arc<Tenants>) -> JoinHandle<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            for tenant in tenants.all() {
                match sweep_tenant(&tenant.orders).await {
                    Ok(expired) if expired.is_empty() => {}
                    Ok(expired) => {
                        tracing::info!(
                            tenant = tenant.id(),
                            expired = expired.len(),
                            "reservations expired"
                        );
                        // The shopper can no longer pay them; a payment racing the cancel is
                        // refunded when its webhook arrives.
                        for order in &expired {
                            cancel_payment(order, || {
                                Provider::for_tenant(&tenant.config.payments, &http)
                            })
                            .await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(tenant = tenant.id(), error = %e, "expiry sweep failed")
                    }
                }
            }
        }
    })
}
