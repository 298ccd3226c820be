//! App-wide parts of checkout: the HTTP client for payment providers, the live stock feed, the
//! SQS client, and the background workers (reservation expiry sweeper, outbox relay).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use tokio::task::JoinHandle;

use crate::{
    app::AppState,
    domain::orders::OrderEvent,
    live::StockFeed,
    storage::orders::{Applied, Commerce, OutboxEvent, RelayError, TransitionError},
    tenants::TenantRuntime,
};

/// How often the sweeper looks for expired reservations.
pub const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// How often the relay looks for unsent order events.
pub const RELAY_INTERVAL: Duration = Duration::from_millis(250);
/// SQS takes at most ten messages per batch.
const RELAY_BATCH: i64 = 10;

pub struct CommerceServices {
    pub http: reqwest::Client,
    pub feed: Arc<StockFeed>,
    pub sqs: aws_sdk_sqs::Client,
    queue_urls: Mutex<HashMap<String, String>>,
}

impl CommerceServices {
    pub fn new(aws: &aws_config::SdkConfig) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            feed: Arc::default(),
            sqs: aws_sdk_sqs::Client::new(aws),
            queue_urls: Mutex::default(),
        }
    }
}

/// The tenant's orders and inventory.
pub fn commerce(tenant: &TenantRuntime) -> Commerce {
    Commerce::new(tenant.db.clone(), tenant.id())
}

/// The SQS queue a tenant's order events go to: `emporium-<tenant>-order-events`, reduced to the
/// characters SQS allows and its 80-character limit.
pub fn queue_name(tenant: &str) -> String {
    let safe: String = tenant
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let mut name = format!("emporium-{safe}");
    name.truncate(80 - "-order-events".len());
    name + "-order-events"
}

#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("sqs: {0}")]
    Sqs(String),
}

fn sqs_err(e: impl std::fmt::Display) -> SqsError {
    SqsError::Sqs(e.to_string())
}

impl CommerceServices {
    async fn queue_url(&self, tenant: &str, create: bool) -> Result<String, SqsError> {
        if let Some(url) = self
            .queue_urls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
        {
            return Ok(url.clone());
        }
        let name = queue_name(tenant);
        let url = match self.sqs.get_queue_url().queue_name(&name).send().await {
            Ok(out) => out.queue_url,
            Err(_) if create => {
                self.sqs
                    .create_queue()
                    .queue_name(&name)
                    .send()
                    .await
                    .map_err(|e| sqs_err(aws_sdk_sqs::error::DisplayErrorContext(e)))?
                    .queue_url
            }
            Err(e) => return Err(sqs_err(aws_sdk_sqs::error::DisplayErrorContext(e))),
        }
        .ok_or_else(|| sqs_err(format!("no URL for queue {name}")))?;
        self.queue_urls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), url.clone());
        Ok(url)
    }

    /// Sends a batch; any failed entry fails the batch, which is then sent again whole (at least
    /// once: consumers dedupe by the `event_id` attribute).
    async fn send(&self, queue_url: &str, events: Vec<OutboxEvent>) -> Result<(), SqsError> {
        let mut entries = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let attr = |v: &str| {
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(v)
                    .build()
                    .map_err(sqs_err)
            };
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(e.payload.to_string())
                    .message_attributes("event_id", attr(&e.id.to_string())?)
                    .message_attributes("type", attr(&e.kind)?)
                    .build()
                    .map_err(sqs_err)?,
            );
        }
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_err(aws_sdk_sqs::error::DisplayErrorContext(e)))?;
        if !out.failed.is_empty() {
            return Err(sqs_err(format!("{} messages refused", out.failed.len())));
        }
        Ok(())
    }
}

/// Relays one tenant's unsent order events until none are left; returns how many were sent.
pub async fn relay_tenant(state: &AppState, tenant: &TenantRuntime) -> Result<usize, String> {
    let services = &state.commerce;
    let url = services
        .queue_url(tenant.id(), state.settings.create_tables)
        .await
        .map_err(|e| e.to_string())?;
    let store = commerce(tenant);
    let mut total = 0;
    loop {
        let sent = store
            .relay_outbox(RELAY_BATCH, |events| services.send(&url, events))
            .await
            .map_err(|e| match e {
                RelayError::Store(s) => s.to_string(),
                RelayError::Send(s) => s.to_string(),
            })?;
        total += sent;
        if sent < RELAY_BATCH as usize {
            return Ok(total);
        }
    }
}

/// Expires one tenant's overdue reservations; returns how many orders expired.
pub async fn sweep_tenant(tenant: &TenantRuntime) -> Result<usize, String> {
    let store = commerce(tenant);
    let mut expired = 0;
    for id in store
        .expired_reservations(100)
        .await
        .map_err(|e| e.to_string())?
    {
        match store.apply(id, OrderEvent::ReservationExpired, None).await {
            Ok(Applied::Done(_)) => expired += 1,
            // Paid or cancelled meanwhile: nothing to do.
            Ok(Applied::Duplicate)
            | Err(TransitionError::Illegal(_) | TransitionError::NotFound) => {}
            Err(TransitionError::Store(e)) => return Err(e.to_string()),
        }
    }
    Ok(expired)
}

/// Runs the reservation expiry sweeper for every tenant until aborted.
pub fn spawn_sweeper(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tick.tick().await;
            for tenant in state.tenants.all() {
                match sweep_tenant(&tenant).await {
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

/// Runs the outbox relay for every tenant until aborted.
pub fn spawn_relay(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELAY_INTERVAL);
        loop {
            tick.tick().await;
            for tenant in state.tenants.all() {
                if let Err(e) = relay_tenant(&state, &tenant).await {
                    tracing::warn!(tenant = tenant.id(), error = %e, "outbox relay failed; will retry");
                }
            }
        }
    })
}

/// Starts both workers (the binary calls this; tests may start them one by one).
pub fn spawn_workers(state: &AppState) -> [JoinHandle<()>; 2] {
    [spawn_sweeper(state.clone()), spawn_relay(state.clone())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_valid_for_sqs() {
        assert_eq!(queue_name("acme"), "emporium-acme-order-events");
        let long = queue_name(&"x.y".repeat(60));
        assert!(long.len() <= 80);
        assert!(long.ends_with("-order-events"));
        assert!(
            long.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
