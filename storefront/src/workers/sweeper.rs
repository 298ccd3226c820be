//! The reservation sweeper: expires pending orders whose reservation ran out, giving their
//! stock back, for every tenant, on every replica (the order's row lock makes that safe).

use std::{sync::Arc, time::Duration};

use tokio::task::JoinHandle;

use crate::{
    domain::{
        orders::{Applied, OrderEvent, TransitionError},
        ports::{OrderStore, StoreError},
    },
    tenants::Tenants,
};

/// How often the sweeper looks for expired reservations.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// Orders expired per tenant and sweep.
const SWEEP_BATCH: i64 = 100;

/// Expires one tenant's overdue reservations; returns how many orders expired.
pub async fn sweep_tenant(orders: &impl OrderStore) -> Result<usize, StoreError> {
    let mut expired = 0;
    for id in orders.expired_reservations(SWEEP_BATCH).await? {
        match orders.apply(id, OrderEvent::ReservationExpired, None).await {
            Ok(Applied::Done(_)) => expired += 1,
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
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            for tenant in tenants.all() {
                match sweep_tenant(&tenant.orders).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(tenant = tenant.id(), expired = n, "reservations expired")
                    }
                    Err(e) => {
                        tracing::warn!(tenant = tenant.id(), error = %e, "expiry sweep failed")
                    }
                }
            }
        }
    })
}
