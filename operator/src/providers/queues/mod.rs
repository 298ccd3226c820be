//! The tenant's order-event queue, behind [`QueueProvisioner`]: an SQS queue the runtime's
//! outbox relay sends to, and a dead-letter queue it redrives to after
//! [`MAX_RECEIVE_COUNT`] failed receives. Any SQS-compatible endpoint works through the
//! standard `AWS_ENDPOINT_URL`.
//!
//! Names: `<prefix>-<tenant>-<key>-order-events` and `...-order-events-dlq`, where `<key>` is
//! the first 8 characters of the tenant's data key (its Storefront UID), so a new Storefront
//! with a deleted one's name never receives events a retained queue still holds; a tenant keyed
//! by its name (created before identities) has no `<key>`. The URL goes into the tenant config,
//! so the runtime never derives the name. Both queues are tagged like the tables
//! (`emporium.dev/tenant`, `emporium.dev/owner-uid`, `emporium.dev/managed-by`), and a queue
//! tagged with another owner is refused, never shared.
//!
//! Deletion: `Retain` tags both queues orphaned; `Snapshot` and `Delete` delete them (a queue
//! holds events in flight, not records: the outbox rows in the database are the record, and the
//! database follows `Snapshot`).

use std::collections::HashMap;

use aws_config::SdkConfig;
use aws_sdk_sqs::{Client, types::QueueAttributeName};
use tracing::info;

use super::{
    BoxFuture, Deletion, DeletionPolicy, Outcome, ProviderError,
    aws::{AwsApi, retry_config, sdk_error},
    names, tags,
};

/// Receives after which SQS moves a message to the dead-letter queue.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// How long the dead-letter queue keeps a message (14 days, the SQS maximum).
const DLQ_RETENTION_SECONDS: u32 = 1_209_600;

/// What the reconcile step asks for: one tenant's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantQueue {
    /// The Storefront's name.
    pub tenant: String,
    /// The tenant's data key (`status.tenantId`).
    pub tenant_id: String,
    /// The owning Storefront's `metadata.uid`.
    pub owner_uid: String,
    pub deletion_policy: DeletionPolicy,
}

/// Provisions and deletes tenants' order-event queues. Idempotent (SQS `CreateQueue` returns
/// the existing queue when its attributes match).
pub trait QueueProvisioner: Send + Sync {
    /// The queue's URL, creating the queue and its dead-letter queue when missing.
    fn ensure<'a>(
        &'a self,
        request: &'a TenantQueue,
    ) -> BoxFuture<'a, Result<Outcome<String>, ProviderError>>;

    /// Deletes (or retains) the tenant's queues per its deletion policy.
    fn delete<'a>(
        &'a self,
        request: &'a TenantQueue,
    ) -> BoxFuture<'a, Result<Outcome<Deletion>, ProviderError>>;
}

/// The SQS [`QueueProvisioner`].
pub struct SqsQueues {
    client: Client,
    api: AwsApi,
    prefix: String,
}

/// The queue name of a tenant's order events, reduced to what SQS allows (80 characters of
/// letters, digits, `-` and `_`); the dead-letter queue adds `-dlq`. `tenant_id` (the data key)
/// contributes its first 8 letters and digits unless it is the name itself.
pub fn queue_name(prefix: &str, tenant: &str, tenant_id: &str) -> String {
    let safe = |text: &str| -> String {
        text.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let key = names::identity_key(tenant, tenant_id)
        .map(|key| format!("-{key}"))
        .unwrap_or_default();
    let mut name = safe(&format!("{prefix}-{tenant}"));
    name.truncate(80 - "-order-events-dlq".len() - key.len());
    format!("{name}{key}-order-events")
}

impl SqsQueues {
    /// A provisioner using `sdk` (region, credentials, endpoint) with `max_attempts` per call.
    pub fn new(sdk: &SdkConfig, prefix: &str, max_attempts: u32) -> Self {
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .retry_config(retry_config(max_attempts))
            .build();
        Self {
            client: Client::from_conf(config),
            api: AwsApi::new(sdk, "SQS", "SQS"),
            prefix: prefix.to_owned(),
        }
    }

    fn tags(request: &TenantQueue) -> HashMap<String, String> {
        let mut tags = HashMap::from([
            (
                tags::MANAGED_BY.to_owned(),
                tags::MANAGED_BY_VALUE.to_owned(),
            ),
            (tags::TENANT.to_owned(), request.tenant.clone()),
        ]);
        if !request.owner_uid.is_empty() {
            tags.insert(tags::OWNER_UID.to_owned(), request.owner_uid.clone());
        }
        tags
    }

    async fn create(
        &self,
        name: &str,
        request: &TenantQueue,
        attributes: HashMap<QueueAttributeName, String>,
    ) -> Result<String, ProviderError> {
        let out = self
            .client
            .create_queue()
            .queue_name(name)
            .set_attributes(Some(attributes))
            .set_tags(Some(Self::tags(request)))
            .send()
            .await
            .map_err(|e| sdk_error(&self.api, "CreateQueue", name, e))?;
        out.queue_url.ok_or_else(|| {
            ProviderError::Config(format!("SQS answered CreateQueue {name} without a URL"))
        })
    }

    async fn url(&self, name: &str) -> Result<Option<String>, ProviderError> {
        match self.client.get_queue_url().queue_name(name).send().await {
            Ok(out) => Ok(out.queue_url),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&self.api, "GetQueueUrl", name, e)),
        }
    }

    async fn ensure_queue(&self, request: &TenantQueue) -> Result<Outcome<String>, ProviderError> {
        let name = queue_name(&self.prefix, &request.tenant, &request.tenant_id);
        let dlq_name = format!("{name}-dlq");
        let dlq_url = match self.url(&dlq_name).await? {
            Some(url) => {
                if let Some(refused) = self.owned_by_another(&url, &dlq_name, request).await? {
                    return Ok(refused);
                }
                url
            }
            None => {
                info!(queue = %dlq_name, tenant = %request.tenant, "creating SQS dead-letter queue");
                let retention = HashMap::from([(
                    QueueAttributeName::MessageRetentionPeriod,
                    DLQ_RETENTION_SECONDS.to_string(),
                )]);
                self.create(&dlq_name, request, retention).await?
            }
        };
        let dlq_arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| sdk_error(&self.api, "GetQueueAttributes", &dlq_name, e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| ProviderError::Config(format!("SQS reports no ARN for {dlq_name}")))?;
        let redrive = serde_json::json!({
            "deadLetterTargetArn": dlq_arn,
            "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
        })
        .to_string();
        let url = match self.url(&name).await? {
            Some(url) => {
                if let Some(refused) = self.owned_by_another(&url, &name, request).await? {
                    return Ok(refused);
                }
                url
            }
            None => {
                info!(queue = %name, tenant = %request.tenant, "creating SQS queue");
                let attributes =
                    HashMap::from([(QueueAttributeName::RedrivePolicy, redrive.clone())]);
                self.create(&name, request, attributes).await?
            }
        };
        // Converge the redrive policy of a queue made before (or by someone else).
        let current = self
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .map_err(|e| sdk_error(&self.api, "GetQueueAttributes", &name, e))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::RedrivePolicy));
        let same = current
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .is_some_and(|c| c["deadLetterTargetArn"] == dlq_arn.as_str());
        if !same {
            self.client
                .set_queue_attributes()
                .queue_url(&url)
                .attributes(QueueAttributeName::RedrivePolicy, redrive)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "SetQueueAttributes", &name, e))?;
        }
        Ok(Outcome::Ready(url))
    }

    /// `Terminal` when the queue at `url` is tagged as another Storefront's (a name clash, or
    /// a queue someone else made with this name): never send one tenant's events to another's.
    async fn owned_by_another(
        &self,
        url: &str,
        name: &str,
        request: &TenantQueue,
    ) -> Result<Option<Outcome<String>>, ProviderError> {
        if request.owner_uid.is_empty() {
            return Ok(None);
        }
        let tags = self
            .client
            .list_queue_tags()
            .queue_url(url)
            .send()
            .await
            .map_err(|e| sdk_error(&self.api, "ListQueueTags", name, e))?
            .tags
            .unwrap_or_default();
        match tags.get(tags::OWNER_UID) {
            Some(owner) if owner != &request.owner_uid => Ok(Some(Outcome::Terminal {
                reason: "QueueOwnedByAnother",
                message: format!(
                    "SQS queue {name} belongs to another Storefront (tag {} = {owner}); delete or rename that queue, or use another --name-prefix",
                    tags::OWNER_UID
                ),
            })),
            _ => Ok(None),
        }
    }

    async fn delete_queues(
        &self,
        request: &TenantQueue,
    ) -> Result<Outcome<Deletion>, ProviderError> {
        let name = queue_name(&self.prefix, &request.tenant, &request.tenant_id);
        let mut done = Vec::new();
        for queue in [name.clone(), format!("{name}-dlq")] {
            let Some(url) = self.url(&queue).await? else {
                done.push(format!("{queue} gone"));
                continue;
            };
            if request.deletion_policy == DeletionPolicy::Retain {
                self.client
                    .tag_queue()
                    .queue_url(&url)
                    .tags(tags::ORPHANED, "true")
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.api, "TagQueue", &queue, e))?;
                done.push(format!("{queue} retained"));
            } else {
                info!(queue = %queue, tenant = %request.tenant, "deleting SQS queue");
                self.client
                    .delete_queue()
                    .queue_url(&url)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.api, "DeleteQueue", &queue, e))?;
                done.push(format!("{queue} deleted"));
            }
        }
        Ok(Outcome::Ready(Deletion::new(format!(
            "order-event queues: {}",
            done.join(", ")
        ))))
    }
}

impl QueueProvisioner for SqsQueues {
    fn ensure<'a>(
        &'a self,
        request: &'a TenantQueue,
    ) -> BoxFuture<'a, Result<Outcome<String>, ProviderError>> {
        Box::pin(self.ensure_queue(request))
    }

    fn delete<'a>(
        &'a self,
        request: &'a TenantQueue,
    ) -> BoxFuture<'a, Result<Outcome<Deletion>, ProviderError>> {
        Box::pin(self.delete_queues(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_fit_sqs_and_carry_the_identity() {
        assert_eq!(
            queue_name("emporium", "acme", "3b0c1d52-5a0e-4f7e-9d0a-6c1f2e3d4b5a"),
            "emporium-acme-3b0c1d52-order-events"
        );
        // Keyed by name (created before identities): the name alone.
        assert_eq!(
            queue_name("emporium", "acme", "acme"),
            "emporium-acme-order-events"
        );
        // A new Storefront of the same name gets another queue.
        assert_ne!(
            queue_name("emporium", "acme", "3b0c1d52-5a0e"),
            queue_name("emporium", "acme", "9f1e2d3c-0000")
        );
        let long = queue_name("emporium", &"x.y".repeat(60), "3b0c1d52-5a0e");
        assert!(format!("{long}-dlq").len() <= 80);
        assert!(long.ends_with("-order-events"));
        assert!(
            long.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}
