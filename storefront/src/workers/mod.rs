//! Background workers every replica runs beside the server: the [`sweeper`] (expired
//! reservations), the [`relay`] (outbox → SQS) and the [`imports`] runner (bulk import jobs; it
//! needs the whole [`crate::AppState`], so the binary starts it with `imports::spawn`).

pub mod imports;
pub mod relay;
pub mod sweeper;

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::tenants::Tenants;

/// Starts both workers (the binary calls this; tests may start them one by one).
pub fn spawn(tenants: &Arc<Tenants>, relay: &Arc<relay::OutboxRelay>) -> [JoinHandle<()>; 2] {
    [
        sweeper::spawn(tenants.clone()),
        relay::spawn(relay.clone(), tenants.clone()),
    ]
}
