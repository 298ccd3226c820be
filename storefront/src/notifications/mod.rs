//! Notifications (issue 17): every replica consumes the order-event queues of the tenants it
//! serves and turns each event into deliveries — the shopper's mail through SES, one POST per
//! matching merchant webhook — and sends them with retries.
//!
//! Two stages, so a crash loses nothing and sends nothing twice per target:
//! - the [`consumer`] receives a batch from SQS, stores one row per (event, channel, target)
//!   in the tenant's PostgreSQL (`ON CONFLICT DO NOTHING`), and deletes the messages only after
//!   that commit. A message received again (the consumer died before deleting it, or SQS
//!   delivered it twice) adds no row. A message that is not an order event is left in the
//!   queue, which moves it to its dead-letter queue after the redrive policy's receive count.
//! - the [`dispatch`]er claims due rows with a lease, sends them, and records each attempt; a
//!   failure is retried with exponential backoff until the retry window (24 h) ends.
//!
//! Why in the runtime process and not its own Deployment: see
//! `docs/decisions/0022-notifications.md`.

pub mod account_mail;
pub mod consumer;
pub mod dispatch;
pub mod event;
pub mod mail;
pub mod webhook;

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use futures::StreamExt as _;
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use tokio::task::JoinHandle;

use crate::{
    storage::notifications::PgNotifications,
    tenants::{TenantRuntime, Tenants},
    workers::relay::OutboxRelay,
};

/// How notifications are sent (flags `--mail-from`, `--notify-*`).
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The sender of shopper mails (an SES-verified address or one of a verified domain);
    /// `None`: no mail is sent (webhooks still are).
    pub mail_from: Option<String>,
    pub mail_locale: mail::Locale,
    /// Verify `mail_from` on SES at start (development against moto; in AWS the operator or
    /// the platform team verifies the domain).
    pub verify_sender: bool,
    /// The first retry's delay; each further one doubles it.
    pub retry_base: Duration,
    /// The longest delay between two attempts.
    pub retry_max_delay: Duration,
    /// How long after the event a delivery is still tried; then it fails.
    pub retry_window: Duration,
    /// Failed webhook attempts in a row after which the subscription is disabled.
    pub webhook_disable_after: i32,
    /// Accept `http://` webhook URLs on loopback (development and tests); otherwise only
    /// `https://` to public hosts.
    pub allow_loopback_webhooks: bool,
    pub webhook_timeout: Duration,
    /// How often a tenant's queue is polled when the relay of this replica sent it nothing.
    pub idle_poll: Duration,
    /// The worker's tick: queues the relay just sent to, and due retries, wait at most this.
    pub tick: Duration,
    /// An SES endpoint of its own (`--ses-endpoint-url`: SES in another region, a VPC
    /// endpoint, or a separate moto); `None`: the SDK's, from `AWS_ENDPOINT_URL` or the region.
    pub ses_endpoint_url: Option<String>,
}

impl Default for NotifySettings {
    fn default() -> Self {
        Self {
            mail_from: None,
            mail_locale: mail::Locale::En,
            verify_sender: false,
            retry_base: Duration::from_secs(30),
            retry_max_delay: Duration::from_secs(3600),
            retry_window: Duration::from_secs(24 * 3600),
            webhook_disable_after: 30,
            allow_loopback_webhooks: false,
            webhook_timeout: Duration::from_secs(10),
            idle_poll: Duration::from_secs(60),
            tick: Duration::from_secs(1),
            ses_endpoint_url: None,
        }
    }
}

/// Tenants worked on at once by one replica's worker.
const CONCURRENT_TENANTS: usize = 8;

/// The worker's clients, settings and per-tenant schedule.
pub struct Notifier {
    pub settings: NotifySettings,
    pub(crate) sqs: aws_sdk_sqs::Client,
    pub(crate) ses: aws_sdk_sesv2::Client,
    pub(crate) http: reqwest::Client,
    /// Per tenant: when to poll its queue and when to look for due deliveries next.
    schedule: Mutex<HashMap<String, Schedule>>,
    /// Order events taken from queues (`storefront_notifications_events_consumed`).
    pub events_consumed: Counter,
    /// Deliveries sent (`storefront_notifications_sent`).
    pub sent: Counter,
    /// Attempts that failed (`storefront_notifications_attempts_failed`).
    pub attempts_failed: Counter,
    /// Deliveries given up after the retry window or on a deleted/disabled subscription
    /// (`storefront_notifications_failed`).
    pub failed: Counter,
    /// Account mails (reset, verification, invitation) SES took
    /// (`storefront_notifications_account_mails_sent`).
    pub account_mails_sent: Counter,
    /// Account mails SES refused or that could not be sent
    /// (`storefront_notifications_account_mails_failed`).
    pub account_mails_failed: Counter,
}

#[derive(Debug, Clone, Copy)]
struct Schedule {
    poll_at: Instant,
    dispatch_at: Instant,
}

/// Why a tenant's notifications could not be worked on this time (retried next tick or poll).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Queue(Box<crate::workers::relay::SqsError>),
    #[error("sqs: cannot receive from the order-event queue: {0}")]
    Receive(String),
    #[error("sqs: cannot delete consumed messages: {0}")]
    Delete(String),
    #[error("cannot store or read deliveries: {0}")]
    Store(#[from] crate::domain::ports::StoreError),
}

/// Why a mail was not sent.
#[derive(Debug, thiserror::Error)]
pub enum MailNotSent {
    #[error("no sender: the runtime runs without --mail-from")]
    NoSender,
    #[error("cannot build the mail")]
    Build,
    #[error("ses: {0}")]
    Ses(String),
}

impl From<crate::workers::relay::SqsError> for NotifyError {
    fn from(e: crate::workers::relay::SqsError) -> Self {
        NotifyError::Queue(Box::new(e))
    }
}

impl Notifier {
    pub fn new(aws: &aws_config::SdkConfig, settings: NotifySettings) -> Self {
        let http = reqwest::Client::builder()
            .timeout(settings.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            sqs: aws_sdk_sqs::Client::new(aws),
            ses: match &settings.ses_endpoint_url {
                Some(url) => aws_sdk_sesv2::Client::from_conf(
                    aws_sdk_sesv2::config::Builder::from(aws)
                        .endpoint_url(url)
                        .build(),
                ),
                None => aws_sdk_sesv2::Client::new(aws),
            },
            http,
            settings,
            schedule: Mutex::default(),
            events_consumed: Counter::default(),
            sent: Counter::default(),
            attempts_failed: Counter::default(),
            failed: Counter::default(),
            account_mails_sent: Counter::default(),
            account_mails_failed: Counter::default(),
        }
    }

    /// The tenant's notification storage.
    pub fn store(tenant: &TenantRuntime) -> PgNotifications {
        PgNotifications {
            db: tenant.db.clone(),
            tenant: tenant.id().into(),
        }
    }

    /// Sends one mail through SES from `--mail-from`, with the store's name as the sender's
    /// display name. `Err` says why it was not sent.
    pub async fn send(&self, store_name: &str, to: &str, m: mail::Mail) -> Result<(), MailNotSent> {
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let from = self
            .settings
            .mail_from
            .as_ref()
            .ok_or(MailNotSent::NoSender)?;
        let content = |s: String| Content::builder().data(s).charset("UTF-8").build();
        let (Ok(subject), Ok(text), Ok(html)) =
            (content(m.subject), content(m.text), content(m.html))
        else {
            return Err(MailNotSent::Build);
        };
        // Quotes would end the display name early.
        let display = store_name.replace(['"', '\\', '\r', '\n'], "");
        self.ses
            .send_email()
            .from_email_address(format!("\"{display}\" <{from}>"))
            .destination(Destination::builder().to_addresses(to).build())
            .content(
                EmailContent::builder()
                    .simple(
                        Message::builder()
                            .subject(subject)
                            .body(Body::builder().text(text).html(html).build())
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .map_err(|e| {
                MailNotSent::Ses(aws_sdk_sesv2::error::DisplayErrorContext(&e).to_string())
            })?;
        Ok(())
    }

    /// Verifies the sender identity on SES when asked to (development).
    pub async fn verify_sender(&self) {
        let (true, Some(from)) = (self.settings.verify_sender, &self.settings.mail_from) else {
            return;
        };
        if let Err(e) = self
            .ses
            .create_email_identity()
            .email_identity(from)
            .send()
            .await
        {
            tracing::info!(error = %aws_sdk_sesv2::error::DisplayErrorContext(&e), "sender identity not created (it may exist already)");
        }
    }

    /// One pass over `tenant`: its queue when due (or `hot`: this replica's relay just sent to
    /// it), then its due deliveries when due.
    async fn work_on(&self, relay: &OutboxRelay, tenant: &TenantRuntime, hot: bool) {
        let now = Instant::now();
        let id = tenant.id();
        let s = self.schedule.lock().get(id).copied().unwrap_or(Schedule {
            poll_at: now,
            dispatch_at: now,
        });
        let mut next = s;
        let mut stored = 0;
        if hot || s.poll_at <= now {
            match consumer::consume(self, relay, tenant).await {
                Ok(r) => {
                    stored = r.deliveries_stored;
                    // A full batch: more may wait, poll again next tick.
                    next.poll_at = if r.messages > 0 {
                        now
                    } else {
                        now + self.settings.idle_poll
                    };
                }
                Err(e) => {
                    tracing::debug!(tenant = tenant.name(), error = %e, "order-event queue not consumed");
                    next.poll_at = now + self.settings.idle_poll;
                }
            }
        }
        if stored > 0 || s.dispatch_at <= now {
            next.dispatch_at = match dispatch::dispatch(self, tenant).await {
                Ok(Some(due)) => {
                    let wait = (due - chrono::Utc::now()).to_std().unwrap_or_default();
                    now + wait.min(self.settings.idle_poll)
                }
                Ok(None) => now + self.settings.idle_poll,
                Err(e) => {
                    tracing::debug!(tenant = tenant.name(), error = %e, "deliveries not dispatched");
                    now + self.settings.idle_poll
                }
            };
        }
        self.schedule.lock().insert(id.to_owned(), next);
    }

    /// Forgets tenants no longer served.
    fn retain(&self, served: &[Arc<TenantRuntime>]) {
        self.schedule
            .lock()
            .retain(|id, _| served.iter().any(|t| t.id() == id));
    }
}

/// Runs the notifications worker for every tenant until aborted.
pub fn spawn(
    notifier: Arc<Notifier>,
    relay: Arc<OutboxRelay>,
    tenants: Arc<Tenants>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        notifier.verify_sender().await;
        let mut tick = tokio::time::interval(notifier.settings.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let all = tenants.all();
            let hot = relay.take_recently_sent();
            futures::stream::iter(all.iter())
                .for_each_concurrent(CONCURRENT_TENANTS, |t| {
                    let hot = hot.contains(t.id());
                    let (notifier, relay) = (&notifier, &relay);
                    async move { notifier.work_on(relay, t, hot).await }
                })
                .await;
            notifier.retain(&all);
        }
    })
}
