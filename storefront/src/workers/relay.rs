//! The outbox relay: sends each tenant's unsent order events to its SQS queue, at least once
//! (consumers dedupe by the `event_id` attribute), on every replica; rows another replica is
//! sending are skipped. The queue is the one the operator made for the tenant (its URL is in
//! the tenant config); a config without one (development files) names it after the tenant id.
//!
//! Backlog: a tenant whose relay succeeds has (next to) nothing unsent; one that is backing off
//! has its unsent events counted after each failure and every [`BACKLOG_RECOUNT`] while it
//! waits, and the sum and the oldest event's age are gauges.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use aws_sdk_sqs::{
    error::{BuildError, DisplayErrorContext, SdkError},
    operation::{
        create_queue::CreateQueueError, get_queue_url::GetQueueUrlError,
        send_message_batch::SendMessageBatchError,
    },
    types::{MessageAttributeValue, SendMessageBatchRequestEntry},
};
use parking_lot::Mutex;
use prometheus_client::metrics::{counter::Counter, gauge::Gauge};
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
/// The longest wait between attempts for a tenant whose queue is missing or unreachable.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At most one warning per tenant in this interval while its relay keeps failing.
pub const LOG_EVERY: Duration = Duration::from_secs(60);
/// How often the unsent events of a tenant that is backing off are counted again.
pub const BACKLOG_RECOUNT: Duration = Duration::from_secs(10);

/// A backing-off tenant's unsent events when last counted.
#[derive(Debug, Clone, Copy)]
struct Backlog {
    events: i64,
    /// When the oldest unsent event was written (from its UUIDv7 id).
    oldest: Option<std::time::SystemTime>,
    counted_at: Instant,
}

/// One tenant's failing relay: when to try again and when it was last logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub failures: u32,
    pub next_try: Instant,
    last_logged: Option<Instant>,
}

impl Backoff {
    /// The state after a failure at `now` (`previous`: the state before it, if failing).
    pub fn after_failure(previous: Option<Backoff>, now: Instant) -> Backoff {
        let failures = previous.map_or(1, |b| b.failures.saturating_add(1));
        let delay = RELAY_INTERVAL
            .saturating_mul(2u32.saturating_pow(failures.min(16)))
            .min(MAX_BACKOFF);
        Backoff {
            failures,
            next_try: now + delay,
            last_logged: previous.and_then(|b| b.last_logged),
        }
    }

    /// Whether to log this failure at `now`, recording it if so (one line per [`LOG_EVERY`]).
    pub fn should_log(&mut self, now: Instant) -> bool {
        let due = self
            .last_logged
            .is_none_or(|at| now.duration_since(at) >= LOG_EVERY);
        if due {
            self.last_logged = Some(now);
        }
        due
    }
}

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
    backoff: Mutex<HashMap<String, Backoff>>,
    /// Order events handed to SQS (`storefront_outbox_events_relayed`).
    pub relayed: Counter,
    /// Tenants whose relay is backing off (queue missing or unreachable); their events wait in
    /// the outbox (`storefront_outbox_tenants_backing_off`).
    pub backing_off: Gauge,
    backlog: Mutex<HashMap<String, Backlog>>,
    /// Order events waiting in the outboxes of tenants whose relay is failing
    /// (`storefront_outbox_backlog_events`; every replica counts the tenants it serves).
    pub backlog_events: Gauge,
    /// Age of the oldest of them (`storefront_outbox_oldest_unsent_seconds`; 0 when none).
    pub oldest_unsent_seconds: Gauge,
    /// Tenants this replica sent events for since the notifications worker last asked, so it
    /// polls their queues at once rather than at its idle interval.
    recently_sent: Mutex<HashSet<String>>,
}

impl OutboxRelay {
    pub fn new(aws: &aws_config::SdkConfig) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(aws),
            create_queues: false,
            queue_urls: Mutex::default(),
            backoff: Mutex::default(),
            relayed: Counter::default(),
            backing_off: Gauge::default(),
            backlog: Mutex::default(),
            backlog_events: Gauge::default(),
            oldest_unsent_seconds: Gauge::default(),
            recently_sent: Mutex::default(),
        }
    }

    /// Creates a tenant's queue when it is missing.
    pub fn creating_queues(mut self, create: bool) -> Self {
        self.create_queues = create;
        self
    }

    /// The tenants sent events for since the last call.
    pub fn take_recently_sent(&self) -> HashSet<String> {
        std::mem::take(&mut *self.recently_sent.lock())
    }

    /// The tenant's queue: the operator's (config), else looked up (or created in development)
    /// by the name derived from the tenant id.
    pub async fn queue_url(&self, tenant: &TenantRuntime) -> Result<String, SqsError> {
        if let Some(url) = &tenant.config.order_events_queue_url {
            return Ok(url.clone());
        }
        let tenant = tenant.id();
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
    let url = relay.queue_url(tenant).await.map_err(RelayError::Send)?;
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
            let all = tenants.all();
            for tenant in &all {
                relay_with_backoff(&relay, tenant).await;
            }
            relay.publish_backlog(&all);
        }
    })
}

/// One tenant's relay, unless it is backing off: a failure doubles its wait (up to
/// [`MAX_BACKOFF`]) and is logged at most once per [`LOG_EVERY`]; the queue URL is looked up
/// again next time (the queue may have been recreated).
async fn relay_with_backoff(relay: &OutboxRelay, tenant: &TenantRuntime) {
    let id = tenant.id();
    let previous = relay.backoff.lock().get(id).copied();
    let now = Instant::now();
    if previous.is_some_and(|b| now < b.next_try) {
        let stale = relay
            .backlog
            .lock()
            .get(id)
            .is_none_or(|b| now.duration_since(b.counted_at) >= BACKLOG_RECOUNT);
        if stale {
            relay.count_backlog(tenant).await;
        }
        return;
    }
    match relay_tenant(relay, tenant).await {
        Ok(sent) => {
            relay.relayed.inc_by(sent as u64);
            if sent > 0 {
                relay.recently_sent.lock().insert(id.to_owned());
            }
            relay.backlog.lock().remove(id);
            if let Some(b) = relay.backoff.lock().remove(id) {
                relay.backing_off.dec();
                tracing::info!(tenant = id, failures = b.failures, "outbox relay recovered");
            }
        }
        Err(e) => {
            relay.queue_urls.lock().remove(id);
            let mut state = Backoff::after_failure(previous, now);
            if previous.is_none() {
                relay.backing_off.inc();
            }
            if state.should_log(now) {
                tracing::warn!(
                    tenant = id,
                    error = %e,
                    failures = state.failures,
                    retry_in = ?state.next_try.duration_since(now),
                    "outbox relay failed; order events wait in the outbox (logged at most once a minute per tenant)"
                );
            }
            relay.backoff.lock().insert(id.to_owned(), state);
            relay.count_backlog(tenant).await;
        }
    }
}

impl OutboxRelay {
    /// Counts the unsent events of a tenant whose relay is failing (a database that cannot
    /// answer leaves the last count).
    async fn count_backlog(&self, tenant: &TenantRuntime) {
        match tenant.orders.outbox_backlog().await {
            Ok((events, oldest)) => {
                let oldest = oldest.and_then(|id| id.get_timestamp()).map(|ts| {
                    let (secs, nanos) = ts.to_unix();
                    std::time::UNIX_EPOCH + Duration::new(secs, nanos)
                });
                self.backlog.lock().insert(
                    tenant.id().to_owned(),
                    Backlog {
                        events,
                        oldest,
                        counted_at: Instant::now(),
                    },
                );
            }
            Err(e) => {
                tracing::debug!(tenant = tenant.id(), error = %e, "cannot count the outbox backlog");
            }
        }
    }

    /// Sets the backlog gauges from the tenants served now (a removed tenant's count goes).
    fn publish_backlog(&self, served: &[Arc<TenantRuntime>]) {
        let mut backlog = self.backlog.lock();
        backlog.retain(|id, _| served.iter().any(|t| t.id() == id));
        let (events, oldest) = backlog_totals(backlog.values());
        self.backlog_events.set(events);
        let age = oldest
            .and_then(|at| std::time::SystemTime::now().duration_since(at).ok())
            .map_or(0, |age| age.as_secs() as i64);
        self.oldest_unsent_seconds.set(age);
    }
}

/// The sum of the counts and the oldest event among them.
fn backlog_totals<'a>(
    counts: impl Iterator<Item = &'a Backlog>,
) -> (i64, Option<std::time::SystemTime>) {
    counts.fold((0, None), |(events, oldest), b| {
        let oldest = match (oldest, b.oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (events + b.events, oldest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_tenant_backs_off_exponentially_and_logs_once_a_minute() {
        let start = Instant::now();
        let mut state = Backoff::after_failure(None, start);
        assert!(state.should_log(start));
        let mut waits = Vec::new();
        let mut now = start;
        let mut logged = 1;
        for _ in 0..20 {
            now = state.next_try;
            let mut next = Backoff::after_failure(Some(state), now);
            if next.should_log(now) {
                logged += 1;
            }
            waits.push(next.next_try - now);
            state = next;
        }
        assert!(waits.windows(2).all(|w| w[1] >= w[0]), "{waits:?}");
        assert_eq!(waits.first(), Some(&(RELAY_INTERVAL * 4)));
        assert_eq!(waits.last(), Some(&MAX_BACKOFF));
        let minutes = (now - start).as_secs() / 60 + 1;
        assert!(logged <= minutes, "{logged} lines in {minutes} minutes");
    }

    #[test]
    fn the_backlog_sums_counts_and_keeps_the_oldest_event() {
        let now = Instant::now();
        let at = |secs| Some(std::time::UNIX_EPOCH + Duration::from_secs(secs));
        let counts = [
            Backlog {
                events: 3,
                oldest: at(200),
                counted_at: now,
            },
            Backlog {
                events: 0,
                oldest: None,
                counted_at: now,
            },
            Backlog {
                events: 4,
                oldest: at(100),
                counted_at: now,
            },
        ];
        assert_eq!(backlog_totals(counts.iter()), (7, at(100)));
        assert_eq!(backlog_totals(std::iter::empty()), (0, None));
    }

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
