//! Running the reconciler: optional leader election, the kube-runtime `applier` fed by the
//! watch streams of [`super::cache`], the watchdog that restarts a controller whose watches went
//! deaf, and the retry policy (exponential backoff per tenant).

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::{FutureExt as _, StreamExt as _, stream};
use kube::{
    Api, Client, ResourceExt as _,
    runtime::{
        applier,
        controller::{self, Action},
        events::{Recorder, Reporter},
        reflector::store::Writer,
        watcher,
    },
};

use super::{
    Context, Error, PROGRESS_RECHECK,
    cache::{self, Cache},
    reconcile,
    tenant_data::DataProviders,
    watchdog,
};
use crate::{
    config::OperatorConfig,
    crd::{Storefront, StorefrontPlan},
    leader::{LeaderElector, LeaseConfig, LeaseError},
    metrics::Metrics,
};

/// How often the watchdog compares the Storefront cache with the API server.
const WATCHDOG_EVERY: Duration = Duration::from_secs(30);

/// Runs the controller until `shutdown` resolves. With `lease`, waits to become leader first
/// and stops (returning an error) if leadership is lost.
pub async fn run(
    client: Client,
    config: OperatorConfig,
    providers: DataProviders,
    metrics: Arc<Metrics>,
    lease: Option<LeaseConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LeaseError> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });

    let elector = lease.map(|lease| LeaderElector::new(client.clone(), lease));
    if let Some(elector) = &elector {
        if !elector.wait_for_leadership(stop_rx.clone()).await? {
            return Ok(());
        }
        tracing::info!("became leader");
    }
    metrics.set_leader(true);

    // Stops the controller on shutdown or lost leadership.
    let (halt_tx, halt_rx) = tokio::sync::watch::channel(false);
    let renewer = elector
        .clone()
        .map(|elector| tokio::spawn(elector.keep_renewing(halt_tx.clone())));
    {
        let mut stop_rx = stop_rx.clone();
        let halt_tx = halt_tx.clone();
        tokio::spawn(async move {
            let _ = stop_rx.changed().await;
            let _ = halt_tx.send(true);
        });
    }

    let mut client = client;
    loop {
        let mut halt = halt_rx.clone();
        let outcome = run_controller(
            client.clone(),
            config.clone(),
            providers.clone(),
            metrics.clone(),
            async move {
                let _ = halt.wait_for(|halted| *halted).await;
            },
        )
        .await;
        if outcome == ControllerExit::Stopped || *halt_rx.borrow() {
            break;
        }
        // Deaf watches: start over with new caches and a new connection pool, as a restarted
        // pod would.
        match Client::try_default().await {
            Ok(fresh) => client = fresh,
            Err(error) => {
                tracing::warn!(%error, "cannot build a new API client; reusing the old one")
            }
        }
        tracing::info!("controller restarted");
    }

    metrics.set_leader(false);
    if let Some(renewer) = renewer {
        renewer.abort();
    }
    if let Some(elector) = elector {
        elector.release().await;
    }
    Ok(())
}

/// Why [`run_controller`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ControllerExit {
    /// Shutdown or lost leadership.
    Stopped,
    /// The watches stopped delivering events (see [`watchdog`]); start it again.
    WatchStalled,
}

async fn run_controller(
    client: Client,
    config: OperatorConfig,
    providers: DataProviders,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> ControllerExit {
    let mut selection = watcher::Config::default();
    if !config.storefront_selector.is_empty() {
        selection = selection.labels(&config.storefront_selector);
    }
    let storefront_writer = Writer::<Storefront>::new(());
    let plan_writer = Writer::<StorefrontPlan>::new(());
    let cache = Cache::new(
        storefront_writer.as_reader(),
        plan_writer.as_reader(),
        config.readiness_gate,
    );
    let mut triggers = vec![
        cache::storefront_triggers(
            Api::<Storefront>::all(client.clone()),
            selection,
            storefront_writer,
        ),
        cache::plan_triggers(
            Api::<StorefrontPlan>::all(client.clone()),
            plan_writer,
            cache.storefronts.clone(),
        ),
    ];
    triggers.extend(cache.child_triggers(&client));
    let store = cache.storefronts.clone();
    let stall = tokio::spawn(watchdog::stalled(
        Api::<Storefront>::all(client.clone()),
        config.storefront_selector.clone(),
        store.clone(),
        WATCHDOG_EVERY,
    ));
    let stalled = Arc::new(AtomicBool::new(false));
    let shutdown = {
        let stalled = stalled.clone();
        let abort = stall.abort_handle();
        async move {
            tokio::select! {
                () = shutdown => abort.abort(),
                Ok(()) = stall => stalled.store(true, Ordering::Relaxed),
            }
        }
    };
    let reporter = Reporter {
        controller: "emporium-operator".to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let concurrency = config.concurrency;
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(Context::new(
        client, config, metrics, providers, cache, recorder,
    ));
    {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if let Err(error) = ctx.cache.mark_ready_when_listed().await {
                tracing::warn!(%error, "a cache stopped before it was listed");
            }
        });
    }
    let queue = stream::select_all(triggers).take_until(shutdown);
    applier(
        // Each reconcile on its own task, so reconciles run on every core.
        |storefront, ctx| {
            tokio::spawn(reconcile(storefront, ctx))
                .map(|joined| joined.unwrap_or_else(|error| Err(Error::Task(error))))
        },
        error_policy,
        ctx,
        store,
        queue,
        controller::Config::default().concurrency(concurrency),
    )
    .for_each(|result| async move {
        if let Err(error) = result {
            tracing::debug!(%error, "reconcile did not complete");
        }
    })
    .await;
    if stalled.load(Ordering::Relaxed) {
        ControllerExit::WatchStalled
    } else {
        ControllerExit::Stopped
    }
}

/// Exponential backoff per tenant: 2 s, 4 s, 8 s, ... capped at 5 minutes.
fn error_policy(storefront: Arc<Storefront>, error: &Error, ctx: Arc<Context>) -> Action {
    let name = storefront.name_any();
    ctx.metrics.reconcile_failed(error.metric_reason());
    let attempt = {
        let mut failures = ctx.failures.lock();
        let count = failures.entry(name.clone()).or_insert(0);
        *count = count.saturating_add(1);
        *count
    };
    let delay = if error.is_progress() {
        backoff(attempt).min(PROGRESS_RECHECK)
    } else {
        backoff(attempt)
    };
    tracing::warn!(tenant = %name, %error, attempt, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// The retry delay after `attempt` consecutive failures.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 2u64.saturating_pow(attempt.min(16)).min(300);
    Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(2), Duration::from_secs(4));
        assert_eq!(backoff(5), Duration::from_secs(32));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }
}
