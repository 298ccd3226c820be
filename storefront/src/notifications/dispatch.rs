//! The dispatcher: sends a tenant's due deliveries (SES for mail, signed POSTs for webhooks),
//! records every attempt, and schedules retries with exponential backoff.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::{
    Notifier, NotifyError, NotifySettings,
    mail::{self, Template},
    webhook,
};
use crate::{
    domain::orders::Order,
    storage::notifications::{AttemptRecord, DueDelivery},
    tenants::TenantRuntime,
};

/// Deliveries claimed at once.
const CLAIM: i64 = 20;
/// How long a claimed delivery is not handed to another sender (longer than any send).
const LEASE: Duration = Duration::from_secs(120);

/// When to try a delivery again after its `attempts`-th attempt failed (1 for the first),
/// or `None` when the retry window since `created_at` is over: `base × 2^(attempts−1)`,
/// at most `max_delay`.
pub fn retry_at(
    settings: &NotifySettings,
    attempts: i32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let exp = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(30);
    let delay = settings
        .retry_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(settings.retry_max_delay);
    let at = now + chrono::Duration::from_std(delay).ok()?;
    let deadline = created_at + chrono::Duration::from_std(settings.retry_window).ok()?;
    (at <= deadline).then_some(at)
}

/// What sending one delivery gave.
struct Sent {
    ok: bool,
    http_status: Option<u16>,
    error: Option<String>,
    /// A failure that retrying cannot mend (a deleted subscription, an unreadable payload).
    permanent: bool,
}

impl Sent {
    fn permanent(error: impl Into<String>) -> Self {
        Sent {
            ok: false,
            http_status: None,
            error: Some(error.into()),
            permanent: true,
        }
    }
}

/// Sends `tenant`'s due deliveries; returns when the next pending one is due (if any).
pub async fn dispatch(
    notifier: &Notifier,
    tenant: &TenantRuntime,
) -> Result<Option<DateTime<Utc>>, NotifyError> {
    let store = Notifier::store(tenant);
    loop {
        let due = store.claim_due(CLAIM, LEASE).await?;
        let claimed = due.len();
        for d in due {
            let started = Instant::now();
            let sent = send(notifier, tenant, &d).await;
            let now = Utc::now();
            let retry = if sent.ok || sent.permanent {
                None
            } else {
                retry_at(&notifier.settings, d.attempts + 1, d.created_at, now)
            };
            let record = AttemptRecord {
                ok: sent.ok,
                http_status: sent.http_status,
                duration: started.elapsed(),
                error: sent.error,
                retry_at: retry,
            };
            if record.ok {
                notifier.sent.inc();
            } else {
                notifier.attempts_failed.inc();
                if retry.is_none() {
                    notifier.failed.inc();
                    tracing::warn!(tenant = tenant.name(), delivery = %d.id, channel = d.channel,
                        error = record.error.as_deref().unwrap_or(""), "notification given up");
                }
            }
            let disabled = store
                .record_attempt(&d, &record, notifier.settings.webhook_disable_after)
                .await?;
            if disabled {
                tracing::warn!(
                    tenant = tenant.name(),
                    subscription = d.target,
                    "webhook subscription disabled after repeated failures"
                );
            }
        }
        if (claimed as i64) < CLAIM {
            break;
        }
    }
    next_due(tenant).await
}

async fn next_due(tenant: &TenantRuntime) -> Result<Option<DateTime<Utc>>, NotifyError> {
    let mut client = tenant.db.client().await?;
    let tx = crate::storage::postgres::tenant_transaction(&mut client, tenant.id()).await?;
    let pg = |e: tokio_postgres::Error| crate::domain::ports::StoreError::caused_by("postgres", e);
    let row = tx
        .query_one(
            "SELECT min(next_attempt_at) FROM notification_deliveries
              WHERE tenant_id = $1 AND status = 'pending'",
            &[&tenant.id()],
        )
        .await
        .map_err(pg)?;
    tx.commit().await.map_err(pg)?;
    Ok(row.get(0))
}

async fn send(notifier: &Notifier, tenant: &TenantRuntime, d: &DueDelivery) -> Sent {
    match d.channel.as_str() {
        "email" => send_mail(notifier, tenant, d).await,
        "webhook" => send_webhook(notifier, d).await,
        other => Sent::permanent(format!("unknown channel `{other}`")),
    }
}

async fn send_mail(notifier: &Notifier, tenant: &TenantRuntime, d: &DueDelivery) -> Sent {
    if notifier.settings.mail_from.is_none() {
        return Sent::permanent(super::MailNotSent::NoSender.to_string());
    }
    let Some(template) = Template::parse(&d.template) else {
        return Sent::permanent(format!("unknown mail template `{}`", d.template));
    };
    let order: Order = match serde_json::from_value(d.payload["order"].clone()) {
        Ok(o) => o,
        Err(e) => return Sent::permanent(format!("the event holds no readable order: {e}")),
    };
    let store = mail::Store {
        name: &tenant.config.display_name,
        theme_color: tenant.config.theme_color.as_deref(),
    };
    let m = mail::render(template, &order, &store, notifier.settings.mail_locale);
    match notifier
        .send(&tenant.config.display_name, &d.target, m)
        .await
    {
        Ok(()) => Sent {
            ok: true,
            http_status: None,
            error: None,
            permanent: false,
        },
        Err(e) => Sent {
            ok: false,
            http_status: None,
            error: Some(e.to_string()),
            permanent: matches!(e, super::MailNotSent::Build),
        },
    }
}

async fn send_webhook(notifier: &Notifier, d: &DueDelivery) -> Sent {
    let Some((url, secret, enabled)) = &d.webhook else {
        return Sent::permanent("the subscription was deleted");
    };
    if !enabled {
        return Sent::permanent("the subscription is disabled");
    }
    let body = d.payload.to_string().into_bytes();
    let answer = webhook::post(
        &notifier.http,
        url,
        secret,
        &d.event_id.to_string(),
        &d.event_type,
        &d.id.to_string(),
        body,
    )
    .await;
    Sent {
        ok: answer.ok(),
        http_status: answer.status,
        error: answer.error,
        permanent: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_the_cap_and_stop_after_the_window() {
        let s = NotifySettings::default();
        let start = Utc::now();
        let mut now = start;
        let mut delays = Vec::new();
        let mut attempts = 1;
        while let Some(at) = retry_at(&s, attempts, start, now) {
            delays.push((at - now).num_seconds());
            now = at;
            attempts += 1;
        }
        assert_eq!(delays[..4], [30, 60, 120, 240]);
        assert_eq!(*delays.iter().max().unwrap(), 3600);
        let total: i64 = delays.iter().sum();
        assert!(total <= 24 * 3600 && total > 23 * 3600, "{total}");
        assert!(attempts < 40, "{attempts} attempts in a day");
    }
}
