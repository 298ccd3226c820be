//! Leader election through a `coordination.k8s.io/v1` Lease, so two replicas can run and only
//! one reconciles. The holder renews every `lease_duration / 3`; a standby takes over once the
//! lease has not been renewed for `lease_duration` (15 s by default, well inside 30 s).
//! Updates use the Lease's resourceVersion, so two candidates can never both win.
//! [`LeaderElector::wait_for_leadership`] and [`LeaderElector::keep_renewing`] are the loops
//! the controller runner (`reconcile::runner`) drives.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::MicroTime,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use tokio::sync::watch;

/// Where the Lease lives and who this replica is.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity, usually its pod name.
    pub identity: String,
    pub lease_duration: Duration,
}

/// Leader election failed in a way that needs a person (RBAC, a missing namespace).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot read or write Lease {namespace}/{name}: {source}; the operator needs get/create/update on leases in its namespace"
)]
pub struct LeaseError {
    namespace: String,
    name: String,
    source: kube::Error,
}

/// A Lease-based lock.
#[derive(Debug, Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl LeaderElector {
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    pub fn renew_interval(&self) -> Duration {
        self.config.lease_duration / 3
    }

    /// How long the Lease is valid after a renewal.
    pub fn lease_duration(&self) -> Duration {
        self.config.lease_duration
    }

    /// Takes or renews the lease; `true` while this replica holds it.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, LeaseError> {
        let now = Timestamp::now();
        let duration_secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(15);
        let existing = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|e| self.error(e))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, now, duration_secs, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(e) => Err(self.error(e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == self.config.identity;
        let expired = spec.renew_time.as_ref().is_none_or(|renewed| {
            let lasts = SignedDuration::from_secs(i64::from(
                spec.lease_duration_seconds.unwrap_or(duration_secs),
            ));
            renewed
                .0
                .checked_add(lasts)
                .map(|until| until < now)
                .unwrap_or(true)
        });
        if !held_by_me && !holder.is_empty() && !expired {
            return Ok(false);
        }
        let acquired = if held_by_me {
            spec.acquire_time.map(|t| t.0).unwrap_or(now)
        } else {
            now
        };
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
        lease.spec = Some(self.spec(acquired, now, duration_secs, transitions));
        // `replace` carries the resourceVersion we read: a concurrent winner makes this a 409.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Tries for the Lease every [`LeaderElector::renew_interval`] until this replica holds it
    /// (`Ok(true)`) or `stop` turns `true` first (`Ok(false)`).
    pub async fn wait_for_leadership(
        &self,
        mut stop: watch::Receiver<bool>,
    ) -> Result<bool, LeaseError> {
        loop {
            if self.try_acquire_or_renew().await? {
                return Ok(true);
            }
            tokio::select! {
                _ = tokio::time::sleep(self.renew_interval()) => {}
                _ = stop.changed() => return Ok(false),
            }
            if *stop.borrow() {
                return Ok(false);
            }
        }
    }

    /// Renews the Lease every [`LeaderElector::renew_interval`] while this replica leads; once
    /// it lost the Lease, or could not renew it within its duration, sends `true` on `halt` and
    /// returns. Spawn it once leadership is won.
    pub async fn keep_renewing(self, halt: watch::Sender<bool>) {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.renew_interval()).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {
                    tracing::error!("lost the leader Lease; stopping");
                    let _ = halt.send(true);
                    return;
                }
                // Past the lease duration a standby may already lead: stop rather than
                // reconcile beside it (Kubernetes restarts the pod, which then queues for
                // the Lease like any standby).
                Err(error) if renewed.elapsed() >= self.lease_duration() => {
                    tracing::error!(%error, "could not renew the leader Lease within its duration; stopping");
                    let _ = halt.send(true);
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "could not renew the leader Lease; retrying")
                }
            }
        }
    }

    /// Gives the lease up (on shutdown) so a standby takes over at once.
    pub async fn release(&self) {
        if let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await
            && let Some(spec) = lease.spec.as_mut()
            && spec.holder_identity.as_deref() == Some(self.config.identity.as_str())
        {
            spec.holder_identity = None;
            spec.renew_time = None;
            if let Err(error) = self
                .api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await
            {
                tracing::warn!(%error, "could not release the leader Lease; a standby takes over when it expires");
            }
        }
    }

    fn spec(
        &self,
        acquired: Timestamp,
        renewed: Timestamp,
        duration_secs: i32,
        transitions: i32,
    ) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(duration_secs),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn error(&self, source: kube::Error) -> LeaseError {
        LeaseError {
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            source,
        }
    }
}
