//! The SQS consumer: order events from a tenant's queue become stored deliveries; a message is
//! deleted only after its deliveries committed (at least once, deduplicated by the unique key
//! of the deliveries, so a message received twice sends nothing twice).

use aws_sdk_sqs::{error::DisplayErrorContext, types::DeleteMessageBatchRequestEntry};

use super::{
    Notifier, NotifyError,
    event::{self, OrderEventMessage},
};
use crate::{tenants::TenantRuntime, workers::relay::OutboxRelay};

/// SQS hands out at most ten messages per receive.
const BATCH: i32 = 10;
/// Batches taken from one queue per pass, so one busy tenant does not hold the worker.
const BATCHES_PER_PASS: usize = 10;

/// What one pass over a queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ConsumeReport {
    pub messages: usize,
    /// New delivery rows (rows already stored for a redelivered message are not counted).
    pub deliveries_stored: u64,
    /// Messages left in the queue because they are not this tenant's order events.
    pub refused: usize,
}

/// A batch received and not yet deleted.
pub struct Received {
    queue_url: String,
    messages: Vec<aws_sdk_sqs::types::Message>,
}

impl Received {
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }
}

/// Receives up to ten messages from `tenant`'s queue (no long poll: the worker schedules
/// polls itself, see the module docs of [`crate::notifications`]).
pub async fn receive(
    notifier: &Notifier,
    relay: &OutboxRelay,
    tenant: &TenantRuntime,
) -> Result<Received, NotifyError> {
    let queue_url = relay.queue_url(tenant).await?;
    let out = notifier
        .sqs
        .receive_message()
        .queue_url(&queue_url)
        .max_number_of_messages(BATCH)
        .wait_time_seconds(0)
        .send()
        .await
        .map_err(|e| NotifyError::Receive(DisplayErrorContext(e).to_string()))?;
    Ok(Received {
        queue_url,
        messages: out.messages.unwrap_or_default(),
    })
}

/// Stores the deliveries of every order event in `batch` (one transaction) and returns the
/// messages that may now be deleted with what was stored. The batch is not deleted here: see
/// [`acknowledge`].
pub async fn store(
    notifier: &Notifier,
    tenant: &TenantRuntime,
    batch: &Received,
) -> Result<(Vec<String>, ConsumeReport), NotifyError> {
    let store = Notifier::store(tenant);
    let subscriptions = store.subscription_targets().await?;
    let mail = notifier.settings.mail_from.is_some();
    let mut planned = Vec::new();
    let mut handles = Vec::new();
    let mut report = ConsumeReport {
        messages: batch.messages.len(),
        ..ConsumeReport::default()
    };
    for m in &batch.messages {
        let body = m.body.as_deref().unwrap_or("");
        match OrderEventMessage::parse(body, tenant.id()) {
            Ok((e, raw)) => {
                let deliveries = event::plan(&e, mail, &subscriptions);
                planned.push((e, raw, deliveries));
                handles.extend(m.receipt_handle.clone());
            }
            Err(e) => {
                report.refused += 1;
                tracing::warn!(
                    tenant = tenant.name(),
                    message_id = m.message_id.as_deref().unwrap_or(""),
                    error = %e,
                    "order-event message refused; it goes to the dead-letter queue after the redrive policy's receive count"
                );
            }
        }
    }
    report.deliveries_stored = store.store_deliveries(&planned).await?;
    Ok((handles, report))
}

/// Deletes consumed messages from the queue (after their deliveries were stored).
pub async fn acknowledge(
    notifier: &Notifier,
    batch: &Received,
    handles: Vec<String>,
) -> Result<(), NotifyError> {
    if handles.is_empty() {
        return Ok(());
    }
    let entries = handles
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .receipt_handle(h)
                .build()
                .map_err(|e| NotifyError::Delete(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let out = notifier
        .sqs
        .delete_message_batch()
        .queue_url(&batch.queue_url)
        .set_entries(Some(entries))
        .send()
        .await
        .map_err(|e| NotifyError::Delete(DisplayErrorContext(e).to_string()))?;
    // A message not deleted comes back after its visibility timeout; its rows exist already.
    if !out.failed.is_empty() {
        return Err(NotifyError::Delete(format!(
            "{} messages not deleted",
            out.failed.len()
        )));
    }
    Ok(())
}

/// Consumes `tenant`'s queue: receive, store, delete, for up to ten batches.
pub async fn consume(
    notifier: &Notifier,
    relay: &OutboxRelay,
    tenant: &TenantRuntime,
) -> Result<ConsumeReport, NotifyError> {
    let mut total = ConsumeReport::default();
    for _ in 0..BATCHES_PER_PASS {
        let batch = receive(notifier, relay, tenant).await?;
        if batch.is_empty() {
            break;
        }
        let (handles, report) = store(notifier, tenant, &batch).await?;
        notifier.events_consumed.inc_by(handles.len() as u64);
        acknowledge(notifier, &batch, handles).await?;
        total.messages += report.messages;
        total.deliveries_stored += report.deliveries_stored;
        total.refused += report.refused;
        if report.messages < BATCH as usize {
            break;
        }
    }
    Ok(total)
}
