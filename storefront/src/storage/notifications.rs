//! PostgreSQL storage of notifications (migration 0120): the deliveries the SQS consumer
//! planned (unique per event, channel and target), their attempts, and the merchant's webhook
//! subscriptions. Statements run in transactions scoped to the tenant by row-level security.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::postgres::{Database, tenant_transaction};
use crate::{
    domain::ports::StoreError,
    notifications::event::{OrderEventMessage, PlannedDelivery, SubscriptionTarget},
};

fn pg_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::caused_by("postgres", e)
}

/// A merchant's webhook subscription (the secret only where the merchant may see it once).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct WebhookSubscription {
    pub id: Uuid,
    pub url: String,
    /// Event types it receives (`order.created`, ...), or `*` for all.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Failed attempts in a row; at the limit the subscription is disabled.
    pub consecutive_failures: i32,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

fn subscription(r: &Row) -> WebhookSubscription {
    WebhookSubscription {
        id: r.get(0),
        url: r.get(1),
        event_types: r.get(2),
        enabled: r.get(3),
        consecutive_failures: r.get(4),
        disabled_reason: r.get(5),
        created_at: r.get(6),
    }
}

const SUBSCRIPTION_COLUMNS: &str =
    "id, url, event_types, enabled, consecutive_failures, disabled_reason, created_at";

/// A delivery the dispatcher claimed: what to send and, for webhooks, where.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    pub channel: String,
    pub target: String,
    pub template: String,
    pub payload: Value,
    /// Attempts before this one.
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    /// For webhooks: the subscription's URL, secret and whether it is still enabled (absent
    /// when it was deleted).
    pub webhook: Option<(String, String, bool)>,
}

/// One attempt's result and what follows from it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub ok: bool,
    pub http_status: Option<u16>,
    pub duration: Duration,
    pub error: Option<String>,
    /// When to try again; `None` with `ok == false`: give up (the delivery fails).
    pub retry_at: Option<DateTime<Utc>>,
}

/// A delivery and its attempts, for the merchant's delivery log.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct DeliveryLogEntry {
    pub id: Uuid,
    pub event_id: Uuid,
    pub event_type: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// The address, or the subscription id.
    pub target: String,
    /// `pending`, `sent` or `failed` (gave up).
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub history: Vec<AttemptLogEntry>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AttemptLogEntry {
    pub attempt: i32,
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub http_status: Option<i32>,
    pub duration_ms: i32,
    pub error: Option<String>,
}

/// Notification storage of one tenant.
#[derive(Clone)]
pub struct PgNotifications {
    pub db: Arc<Database>,
    pub tenant: Arc<str>,
}

impl PgNotifications {
    /// The enabled subscriptions, for planning.
    pub async fn subscription_targets(&self) -> Result<Vec<SubscriptionTarget>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT id, event_types FROM webhook_subscriptions WHERE tenant_id = $1 AND enabled",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx.query(&stmt, &[&&*self.tenant]).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| SubscriptionTarget {
                id: r.get(0),
                event_types: r.get(1),
            })
            .collect())
    }

    /// Stores the deliveries of a batch of events in one transaction; a delivery already
    /// stored (the same message received again) is skipped. Returns how many were new.
    pub async fn store_deliveries(
        &self,
        batch: &[(OrderEventMessage, Value, Vec<PlannedDelivery>)],
    ) -> Result<u64, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let stmt = tx
            .prepare_cached(
                "INSERT INTO notification_deliveries
                     (tenant_id, id, event_id, event_type, channel, target, template, payload)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT ON CONSTRAINT notification_deliveries_once DO NOTHING",
            )
            .await
            .map_err(pg_err)?;
        let mut inserted = 0;
        for (event, payload, deliveries) in batch {
            for d in deliveries {
                inserted += tx
                    .execute(
                        &stmt,
                        &[
                            &&*self.tenant,
                            &Uuid::now_v7(),
                            &event.event_id,
                            &event.kind,
                            &d.channel.as_str(),
                            &d.target,
                            &d.template,
                            payload,
                        ],
                    )
                    .await
                    .map_err(pg_err)?;
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(inserted)
    }

    /// Claims up to `limit` due deliveries by moving their next attempt `lease` ahead, so
    /// another replica does not send them meanwhile; one that dies mid-send leaves them due
    /// again when the lease ends.
    pub async fn claim_due(
        &self,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let lease_secs = lease.as_secs_f64();
        let stmt = tx
            .prepare_cached(
                "WITH due AS (
                     SELECT id FROM notification_deliveries
                     WHERE tenant_id = $1 AND status = 'pending' AND next_attempt_at <= now()
                     ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                 UPDATE notification_deliveries d
                    SET next_attempt_at = now() + make_interval(secs => $3)
                   FROM due WHERE d.tenant_id = $1 AND d.id = due.id
                 RETURNING d.id, d.event_id, d.event_type, d.channel, d.target, d.template,
                           d.payload, d.attempts, d.created_at,
                           (SELECT ARRAY[s.url, s.secret, s.enabled::text] FROM webhook_subscriptions s
                             WHERE d.channel = 'webhook' AND s.tenant_id = $1
                               AND s.id::text = d.target)",
            )
            .await
            .map_err(pg_err)?;
        let rows = tx
            .query(&stmt, &[&&*self.tenant, &limit, &lease_secs])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let webhook: Option<Vec<String>> = r.get(9);
                DueDelivery {
                    id: r.get(0),
                    event_id: r.get(1),
                    event_type: r.get(2),
                    channel: r.get(3),
                    target: r.get(4),
                    template: r.get(5),
                    payload: r.get(6),
                    attempts: r.get(7),
                    created_at: r.get(8),
                    webhook: webhook.and_then(|w| match <[String; 3]>::try_from(w) {
                        Ok([url, secret, enabled]) => Some((url, secret, enabled == "true")),
                        Err(_) => None,
                    }),
                }
            })
            .collect())
    }

    /// Records an attempt and the delivery's new state; for webhooks also the subscription's
    /// failure count, disabling it at `disable_after` failures in a row. Returns whether the
    /// subscription was disabled by this attempt.
    pub async fn record_attempt(
        &self,
        delivery: &DueDelivery,
        record: &AttemptRecord,
        disable_after: i32,
    ) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let attempt = delivery.attempts + 1;
        let duration_ms = i32::try_from(record.duration.as_millis()).unwrap_or(i32::MAX);
        let http_status = record.http_status.map(i32::from);
        let error = record.error.as_deref().map(|e| truncate(e, 500));
        tx.execute(
            "INSERT INTO notification_attempts
                 (tenant_id, delivery_id, attempt, ok, http_status, duration_ms, error)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &&*self.tenant,
                &delivery.id,
                &attempt,
                &record.ok,
                &http_status,
                &duration_ms,
                &error,
            ],
        )
        .await
        .map_err(pg_err)?;
        let status = match (record.ok, record.retry_at) {
            (true, _) => "sent",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        tx.execute(
            "UPDATE notification_deliveries
                SET status = $3, attempts = $4, last_error = $5,
                    next_attempt_at = COALESCE($6, next_attempt_at),
                    sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END
              WHERE tenant_id = $1 AND id = $2",
            &[
                &&*self.tenant,
                &delivery.id,
                &status,
                &attempt,
                &error,
                &record.retry_at,
            ],
        )
        .await
        .map_err(pg_err)?;
        let mut disabled = false;
        if delivery.channel == "webhook"
            && let Ok(sub) = Uuid::parse_str(&delivery.target)
        {
            if record.ok {
                tx.execute(
                    "UPDATE webhook_subscriptions SET consecutive_failures = 0
                      WHERE tenant_id = $1 AND id = $2 AND consecutive_failures <> 0",
                    &[&&*self.tenant, &sub],
                )
                .await
                .map_err(pg_err)?;
            } else {
                let reason = format!(
                    "disabled after {disable_after} failed deliveries in a row; last: {}",
                    error.as_deref().unwrap_or("")
                );
                let row = tx
                    .query_opt(
                        "UPDATE webhook_subscriptions
                            SET consecutive_failures = consecutive_failures + 1,
                                enabled = enabled AND consecutive_failures + 1 < $3,
                                disabled_reason = CASE WHEN enabled AND consecutive_failures + 1 >= $3
                                                       THEN $4 ELSE disabled_reason END,
                                updated_at = now()
                          WHERE tenant_id = $1 AND id = $2
                      RETURNING enabled",
                        &[&&*self.tenant, &sub, &disable_after, &reason],
                    )
                    .await
                    .map_err(pg_err)?;
                disabled = row.is_some_and(|r| !r.get::<_, bool>(0))
                    && delivery.webhook.as_ref().is_some_and(|w| w.2);
            }
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(disabled)
    }

    pub async fn create_subscription(
        &self,
        url: &str,
        event_types: &[String],
        secret: &str,
    ) -> Result<WebhookSubscription, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO webhook_subscriptions (tenant_id, id, url, event_types, secret)
                     VALUES ($1, $2, $3, $4, $5) RETURNING {SUBSCRIPTION_COLUMNS}"
                ),
                &[&&*self.tenant, &Uuid::now_v7(), &url, &event_types, &secret],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(subscription(&row))
    }

    pub async fn subscriptions(&self) -> Result<Vec<WebhookSubscription>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let rows = tx
            .query(
                &format!(
                    "SELECT {SUBSCRIPTION_COLUMNS} FROM webhook_subscriptions
                      WHERE tenant_id = $1 ORDER BY created_at"
                ),
                &[&&*self.tenant],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows.iter().map(subscription).collect())
    }

    /// Enables or disables a subscription (enabling clears its failure count); `None` when
    /// there is no such subscription.
    pub async fn set_enabled(
        &self,
        id: Uuid,
        enabled: bool,
    ) -> Result<Option<WebhookSubscription>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let row = tx
            .query_opt(
                &format!(
                    "UPDATE webhook_subscriptions
                        SET enabled = $3,
                            consecutive_failures = CASE WHEN $3 THEN 0 ELSE consecutive_failures END,
                            disabled_reason = CASE WHEN $3 THEN NULL ELSE 'disabled by the merchant' END,
                            updated_at = now()
                      WHERE tenant_id = $1 AND id = $2 RETURNING {SUBSCRIPTION_COLUMNS}"
                ),
                &[&&*self.tenant, &id, &enabled],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.as_ref().map(subscription))
    }

    /// Deletes a subscription; its deliveries not yet sent fail at their next attempt.
    pub async fn delete_subscription(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let n = tx
            .execute(
                "DELETE FROM webhook_subscriptions WHERE tenant_id = $1 AND id = $2",
                &[&&*self.tenant, &id],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(n == 1)
    }

    /// The newest `limit` deliveries (optionally of one channel or event), with their attempts.
    pub async fn delivery_log(
        &self,
        channel: Option<&str>,
        event_id: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<DeliveryLogEntry>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let rows = tx
            .query(
                "SELECT id, event_id, event_type, channel, target, status, attempts,
                        next_attempt_at, last_error, created_at, sent_at
                   FROM notification_deliveries
                  WHERE tenant_id = $1 AND ($2::text IS NULL OR channel = $2)
                    AND ($3::uuid IS NULL OR event_id = $3)
                  ORDER BY id DESC LIMIT $4",
                &[&&*self.tenant, &channel, &event_id, &limit],
            )
            .await
            .map_err(pg_err)?;
        let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
        let attempts = tx
            .query(
                "SELECT delivery_id, attempt, at, ok, http_status, duration_ms, error
                   FROM notification_attempts
                  WHERE tenant_id = $1 AND delivery_id = ANY($2) ORDER BY delivery_id, attempt",
                &[&&*self.tenant, &ids],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(rows
            .iter()
            .map(|r| {
                let id: Uuid = r.get(0);
                let status: String = r.get(5);
                DeliveryLogEntry {
                    id,
                    event_id: r.get(1),
                    event_type: r.get(2),
                    channel: r.get(3),
                    target: r.get(4),
                    next_attempt_at: (status == "pending").then(|| r.get(7)),
                    status,
                    attempts: r.get(6),
                    last_error: r.get(8),
                    created_at: r.get(9),
                    sent_at: r.get(10),
                    history: attempts
                        .iter()
                        .filter(|a| a.get::<_, Uuid>(0) == id)
                        .map(|a| AttemptLogEntry {
                            attempt: a.get(1),
                            at: a.get(2),
                            ok: a.get(3),
                            http_status: a.get(4),
                            duration_ms: a.get(5),
                            error: a.get(6),
                        })
                        .collect(),
                }
            })
            .collect())
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
