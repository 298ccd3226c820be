//! The outbox relay: sends each tenant's unsent order events to its SQS queue, at least once
//! (consumers dedupe by the `event_id` attribute), on every replica; rows another replica is
//! sending are skipped.

use std::{collections::HashMap, sync::Arc, time::Duration};

use aws_sdk_sqs::{
    error::{BuildError, DisplayErrorContext, SdkError},
    operation::{
        create_queue::CreateQueueError, get_queue_url::GetQueueUrlError,
        send_message_batch::SendMessageBatchError,
    },
    types::{MessageAttributeValue, SendMessageBatchRequestEntry},
};
use parking_lot::Mutex;
use tokio::task::JoinHandle;

use crate::{
    domain::{
        orders::{OutboxEvent, RelayError},
        ports::OutboxStore as _,
    },
    tenants::{TenantRuntime, Tenants},
};

/// How often the relay looks for unsent order events.
pub const RELAY_INTERVAL: Duration = Duration::from_millis(250);
/// SQS takes at most ten messages per batch.
const RELAY_BATCH: i64 = 10;

/// Why SQS did not take a batch.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    #[error("sqs: cannot look up queue `{queue}`: {}", DisplayErrorContext(.source))]
    QueueUrl {
        queue: String,
        source: SdkError<GetQueueUrlError>,
    },
    #[error("sqs: cannot create queue `{queue}`: {}", DisplayErrorContext(.source))]
    CreateQueue {
        queue: String,
        source: SdkError<CreateQueueError>,
    },
    #[error("sqs: no URL for queue {0}")]
    NoUrl(String),
    #[error("sqs: cannot build the batch: {0}")]
    Build(#[from] BuildError),
    #[error("sqs: sending the batch failed: {}", DisplayErrorContext(.0))]
    Send(#[source] SdkError<SendMessageBatchError>),
    #[error("sqs: {0} messages refused")]
    Refused(usize),
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

/// Sends order events to SQS, remembering each tenant's queue URL.
pub struct OutboxRelay {
    sqs: aws_sdk_sqs::Client,
    /// Create missing queues (development; in clusters the operator owns them).
    create_queues: bool,
    queue_urls: Mutex<HashMap<String, String>>,
}

impl OutboxRelay {
    pub fn new(aws: &aws_config::SdkConfig) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(aws),
            create_queues: false,
            queue_urls: Mutex::default(),
        }
    }

    /// Creates a tenant's queue when it is missing.
    pub fn creating_queues(mut self, create: bool) -> Self {
        self.create_queues = create;
        self
    }

    async fn queue_url(&self, tenant: &str) -> Result<String, SqsError> {
        if let Some(url) = self.queue_urls.lock().get(tenant) {
            return Ok(url.clone());
        }
        let name = queue_name(tenant);
        let url = match self.sqs.get_queue_url().queue_name(&name).send().await {
            Ok(out) => out.queue_url,
            Err(_) if self.create_queues => {
                self.sqs
                    .create_queue()
                    .queue_name(&name)
                    .send()
                    .await
                    .map_err(|source| SqsError::CreateQueue {
                        queue: name.clone(),
                        source,
                    })?
                    .queue_url
            }
            Err(source) => {
                return Err(SqsError::QueueUrl {
                    queue: name,
                    source,
                });
            }
        }
        .ok_or_else(|| SqsError::NoUrl(name))?;
        self.queue_urls
            .lock()
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
            };
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body(e.payload.to_string())
                    .message_attributes("event_id", attr(&e.id.to_string())?)
                    .message_attributes("type", attr(&e.kind)?)
                    .build()?,
            );
        }
        let out = self
            .sqs
            .send_message_batch()
            .queue_url(queue_url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(SqsError::Send)?;
        if !out.failed.is_empty() {
            return Err(SqsError::Refused(out.failed.len()));
        }
        Ok(())
    }
}

/// Relays one tenant's unsent order events until none are left; returns how many were sent.
pub async fn relay_tenant(
    relay: &OutboxRelay,
    tenant: &TenantRuntime,
) -> Result<usize, RelayError<SqsError>> {
    let url = relay
        .queue_url(tenant.id())
        .await
        .map_err(RelayError::Send)?;
    let mut total = 0;
    loop {
        let sent = tenant
            .orders
            .relay_outbox(RELAY_BATCH, |events| relay.send(&url, events))
            .await?;
        total += sent;
        if sent < RELAY_BATCH as usize {
            return Ok(total);
        }
    }
}

/// Runs the outbox relay for every tenant until aborted.
pub fn spawn(relay: Arc<OutboxRelay>, tenants: Arc<Tenants>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RELAY_INTERVAL);
        loop {
            tick.tick().await;
            for tenant in tenants.all() {
                if let Err(e) = relay_tenant(&relay, &tenant).await {
                    tracing::warn!(tenant = tenant.id(), error = %e, "outbox relay failed; will retry");
                }
            }
        }
    })
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
