//! The import runner: claims queued import jobs (and jobs whose runner died: their lease
//! expired) of every tenant, one at a time, and runs them from their checkpoint
//! ([`crate::services::imports::run`]). Every replica runs one; the lease in the job's row
//! makes sure only one runs a job at a time. Woken at once by a new job on this replica,
//! otherwise it looks every [`POLL`].

use std::{sync::Arc, time::Duration};

use tokio::{sync::Notify, task::JoinHandle};
use uuid::Uuid;

use crate::{
    app::AppState,
    services::imports::{self, LEASE_SECS, MAX_ATTEMPTS, RunError, Sink},
    storage::imports::PgImports,
    tenants::TenantRuntime,
};

/// How often the runner looks for jobs when nothing woke it.
pub const POLL: Duration = Duration::from_secs(1);
/// How long a job whose run failed on a backing service waits before another attempt.
const RETRY_SECS: f64 = 5.0;

/// This replica's runner: its lease owner id and the bell new jobs ring.
pub struct ImportRunner {
    pub owner: Uuid,
    wake: Notify,
}

impl Default for ImportRunner {
    fn default() -> Self {
        Self {
            owner: Uuid::new_v4(),
            wake: Notify::new(),
        }
    }
}

impl ImportRunner {
    /// A job was queued: look now rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The import jobs of a tenant.
pub fn jobs_of(tenant: &TenantRuntime) -> PgImports {
    PgImports::new(tenant.db.clone(), tenant.id())
}

/// Claims and runs every runnable job of `tenant`; returns how many it ran.
pub async fn run_tenant(state: &AppState, tenant: &Arc<TenantRuntime>) -> usize {
    let jobs = jobs_of(tenant);
    let owner = state.imports.owner;
    let mut ran = 0;
    loop {
        let job = match jobs.claim(owner, LEASE_SECS).await {
            Ok(Some(job)) => job,
            Ok(None) => return ran,
            Err(e) => {
                tracing::warn!(tenant = tenant.id(), error = %e, "import jobs not read");
                return ran;
            }
        };
        ran += 1;
        tracing::info!(tenant = tenant.id(), job = %job.id, checkpoint = job.checkpoint, attempt = job.attempts, "import job started");
        let sink = Sink {
            admin: state.catalog_admin(tenant),
            orders: &tenant.orders,
        };
        let outcome = imports::run(&jobs, &sink, owner, &job).await;
        match outcome {
            Ok(()) => tracing::info!(tenant = tenant.id(), job = %job.id, "import job finished"),
            Err(RunError::LeaseLost) => {
                tracing::warn!(tenant = tenant.id(), job = %job.id, "import job taken over by another runner")
            }
            Err(RunError::Store(e)) => {
                tracing::warn!(tenant = tenant.id(), job = %job.id, attempt = job.attempts, error = %e, "import batch failed");
                let done = if job.attempts >= MAX_ATTEMPTS {
                    jobs.finish(
                        job.id,
                        owner,
                        Some(&format!(
                            "a backing service failed {MAX_ATTEMPTS} times ({}); import the file again",
                            e.backend
                        )),
                    )
                    .await
                } else {
                    jobs.release(job.id, owner, RETRY_SECS).await
                };
                if let Err(e) = done {
                    tracing::warn!(tenant = tenant.id(), job = %job.id, error = %e, "import job not updated");
                }
                // Leave the rest of this tenant's jobs for the next round.
                return ran;
            }
        }
    }
}

/// Runs the import runner until aborted.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            for tenant in state.tenants.all() {
                run_tenant(&state, &tenant).await;
            }
            let _ = tokio::time::timeout(POLL, state.imports.wake.notified()).await;
        }
    })
}
