//! The Storefront reconciler, a pipeline of one file per step:
//! [`validate`] → [`tenant_data`] (database and tables: the provider seam) → [`build`] (pure)
//! → [`apply`] (server-side apply of what changed, orphan clean-up) → [`status`] (conditions).
//!
//! [`run`] wires it into a kube-runtime `applier` (the engine under `Controller`) fed by the
//! filtered watch streams of [`cache`], behind the `finalizer()` helper, with bounded
//! concurrency, exponential backoff on errors and optional Lease leader election. Reads come
//! from the cache; a steady-state resync sends no request to the API server (see
//! `docs/decisions/0010-operator-skip-unchanged-apply.md`).

pub mod apply;
pub mod build;
pub mod cache;
pub mod sharding;
pub mod status;
pub mod tenant_data;
pub mod validate;
pub mod watchdog;

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tracing::Instrument as _;

use emporium_tenant_config::{
    PaymentProvider as ConfigPaymentProvider, Payments, TENANT_CONFIG_KEY, TenantConfig,
};
use futures::{FutureExt as _, StreamExt as _, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource as _, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::{
        applier,
        controller::{self, Action},
        events::{Event as K8sEvent, EventType, Recorder, Reporter},
        finalizer::{self, Event as FinalizerEvent},
        reflector::store::Writer,
        watcher,
    },
};
use rand::{Rng as _, distr::Alphanumeric};

use self::{
    apply::{Applier, FIELD_MANAGER, Prune},
    build::{BuildInput, config_secret_name, tenant_namespace},
    cache::Cache,
    sharding::Demand,
    status::{Outcome, Reconciled, WorkloadObservation},
    tenant_data::DataProviders,
    validate::ValidatedTenant,
};
use crate::{
    config::OperatorConfig,
    crd::{PaymentProvider, Phase, Storefront, StorefrontPlan, StorefrontStatus, Tier},
    leader::{LeaderElector, LeaseConfig, LeaseError},
    metrics::Metrics,
};

/// The finalizer that holds a Storefront until its cleanup ran.
pub const FINALIZER: &str = "emporium.dev/cleanup";

/// How often a healthy tenant is looked at again (drift the watches miss, plan edits).
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a tenant that is still coming up is looked at again.
const PROGRESS_RECHECK: Duration = Duration::from_secs(15);

/// One reconcile failed; the message says what and what to do. Retried with exponential
/// backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot apply {kind} {name}: {source}; check the operator's RBAC and the API server's message"
    )]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("cannot list {kind} objects to find orphans: {source}")]
    List { kind: String, source: kube::Error },
    #[error("cannot delete {kind} {name}: {source}")]
    Delete {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error(transparent)]
    Build(#[from] build::BuildError),
    #[error("cannot read StorefrontPlan `{plan}`: {source}")]
    ReadPlan { plan: String, source: kube::Error },
    #[error("cannot read Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error(
        "payments Secret {namespace}/{name} is missing or lacks the key `{key}`; create it with keys secretKey and webhookSecret"
    )]
    PaymentsSecret {
        namespace: String,
        name: String,
        key: &'static str,
    },
    #[error("cannot serialize the {kind} {name} to hash it: {source}; this is an operator bug")]
    Serialize {
        kind: String,
        name: String,
        source: serde_json::Error,
    },
    #[error("the reconcile task stopped unexpectedly ({0}); it is retried")]
    Task(String),
    #[error("the operator's caches stopped (shutting down)")]
    CacheGone,
    #[error("cannot write the status of Storefront `{name}`: {source}")]
    WriteStatus { name: String, source: kube::Error },
    #[error("the Storefront has no name or uid; it was not read from the API server")]
    MissingMetadata,
    #[error(
        "the tenant's data is still being released ({0}); the finalizer stays until it is done"
    )]
    DataReleasing(String),
    #[error(
        "the tenant's data cannot be released without a person ({0}); the finalizer stays and the operator retries"
    )]
    DataReleaseBlocked(String),
    #[error("finalizer step failed: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// A short label for the errors metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Error::Apply { .. } => "apply",
            Error::List { .. } => "list",
            Error::Delete { .. } => "delete",
            Error::Build(_) => "build",
            Error::ReadPlan { .. } => "read_plan",
            Error::ReadSecret { .. } => "read_secret",
            Error::PaymentsSecret { .. } => "payments_secret",
            Error::WriteStatus { .. } => "write_status",
            Error::Serialize { .. } => "serialize",
            Error::Task(_) => "task",
            Error::CacheGone => "cache_gone",
            Error::MissingMetadata => "missing_metadata",
            Error::DataReleasing(_) => "data_releasing",
            Error::DataReleaseBlocked(_) => "data_release_blocked",
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_reason()
                }
                _ => "finalizer",
            },
        }
    }

    /// Whether the error only means "not done yet" (a deletion AWS is working on): retried at
    /// the progress interval rather than with a growing backoff.
    fn is_progress(&self) -> bool {
        match self {
            Error::DataReleasing(_) => true,
            Error::Finalizer(inner) => matches!(
                inner.as_ref(),
                finalizer::Error::CleanupFailed(Error::DataReleasing(_))
            ),
            _ => false,
        }
    }
}

/// Shared state of the reconciler.
pub struct Context {
    pub client: Client,
    pub config: OperatorConfig,
    pub metrics: Arc<Metrics>,
    /// The database and table providers (built once from the configuration).
    pub providers: DataProviders,
    recorder: Recorder,
    /// Reflector stores of Storefronts, plans and every child kind.
    pub cache: Cache,
    /// The status this process last wrote per Storefront (by uid): fresher than the cache right
    /// after a write, so an unchanged status is never written twice.
    written: Mutex<BTreeMap<String, (String, StorefrontStatus)>>,
    /// Ingress group assignments made by this process and not yet seen in a status; guarded
    /// so two concurrent reconciles never fill the same last slot.
    assignments: Mutex<BTreeMap<String, (u32, Demand)>>,
    /// Consecutive failures per tenant, for exponential backoff.
    failures: Mutex<BTreeMap<String, u32>>,
    /// Storefronts (by uid) whose first status is held back, since when (see
    /// [`first_look_pending`]).
    held_back: Mutex<BTreeMap<String, Instant>>,
}

impl Context {
    fn applier(&self) -> Applier<'_> {
        Applier {
            client: &self.client,
            cache: &self.cache,
            metrics: &self.metrics,
        }
    }
}

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
    let stopped = {
        let stop_rx = stop_rx.clone();
        move || *stop_rx.borrow()
    };

    let elector = lease.map(|lease| LeaderElector::new(client.clone(), lease));
    if let Some(elector) = &elector {
        let mut stop_rx = stop_rx.clone();
        loop {
            if elector.try_acquire_or_renew().await? {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(elector.renew_interval()) => {}
                _ = stop_rx.changed() => return Ok(()),
            }
            if stopped() {
                return Ok(());
            }
        }
        tracing::info!("became leader");
    }
    metrics.set_leader(true);

    // Stops the controller on shutdown or lost leadership.
    let (halt_tx, halt_rx) = tokio::sync::watch::channel(false);
    let renewer = elector.clone().map(|elector| {
        let halt_tx = halt_tx.clone();
        tokio::spawn(async move {
            let mut renewed = Instant::now();
            loop {
                tokio::time::sleep(elector.renew_interval()).await;
                match elector.try_acquire_or_renew().await {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        tracing::error!("lost the leader Lease; stopping");
                        let _ = halt_tx.send(true);
                        return false;
                    }
                    // Past the lease duration a standby may already lead: stop rather than
                    // reconcile beside it (Kubernetes restarts the pod, which then queues for
                    // the Lease like any standby).
                    Err(error) if renewed.elapsed() >= elector.lease_duration() => {
                        tracing::error!(%error, "could not renew the leader Lease within its duration; stopping");
                        let _ = halt_tx.send(true);
                        return false;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "could not renew the leader Lease; retrying")
                    }
                }
            }
        })
    });
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

/// How often the watchdog compares the Storefront cache with the API server.
const WATCHDOG_EVERY: Duration = Duration::from_secs(30);

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
    let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let shutdown = {
        let stalled = stalled.clone();
        let abort = stall.abort_handle();
        async move {
            tokio::select! {
                () = shutdown => abort.abort(),
                Ok(()) = stall => stalled.store(true, std::sync::atomic::Ordering::Relaxed),
            }
        }
    };
    let reporter = Reporter {
        controller: "emporium-operator".to_owned(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let concurrency = config.concurrency;
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        config,
        metrics,
        providers,
        cache,
        written: Mutex::default(),
        assignments: Mutex::default(),
        failures: Mutex::default(),
        held_back: Mutex::default(),
    });
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
                .map(|joined| joined.unwrap_or_else(|error| Err(Error::Task(error.to_string()))))
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
    if stalled.load(std::sync::atomic::Ordering::Relaxed) {
        ControllerExit::WatchStalled
    } else {
        ControllerExit::Stopped
    }
}

/// One reconcile of one Storefront, split by the finalizer into apply and cleanup.
pub async fn reconcile(storefront: Arc<Storefront>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    ctx.metrics.reconcile_started();
    ctx.cache.ready().await.map_err(|_| Error::CacheGone)?;
    let name = storefront.name_any();
    let api = Api::<Storefront>::all(ctx.client.clone());
    let deleting = storefront.metadata.deletion_timestamp.is_some();
    if !deleting && !storefront.finalizers().iter().any(|f| f == FINALIZER) {
        ctx.metrics.api_write("finalizer", "Storefront");
    }
    // `instrument`, not `span.enter()`: the span must not stay entered across awaits, or other
    // tenants' work on the same thread would be logged under this tenant.
    let span = tracing::info_span!("reconcile", tenant = %name);
    let result = finalizer::finalizer(&api, FINALIZER, storefront, |event| async {
        match event {
            FinalizerEvent::Apply(storefront) => apply_storefront(&storefront, &ctx).await,
            FinalizerEvent::Cleanup(storefront) => cleanup_storefront(&storefront, &ctx).await,
        }
    })
    .instrument(span)
    .await;
    let result = match result {
        // A second cleanup pass working from a cached copy finds the Storefront already gone:
        // the finalizer's job is done, not failed.
        Err(finalizer::Error::RemoveFinalizer(kube::Error::Api(status)))
            if status.is_not_found() =>
        {
            Ok(Action::await_change())
        }
        other => other.map_err(|e| Error::Finalizer(Box::new(e))),
    };
    ctx.metrics.reconcile_finished(started.elapsed());
    if result.is_ok()
        && let Ok(mut failures) = ctx.failures.lock()
    {
        failures.remove(&name);
    }
    result
}

/// Exponential backoff per tenant: 2 s, 4 s, 8 s, ... capped at 5 minutes.
fn error_policy(storefront: Arc<Storefront>, error: &Error, ctx: Arc<Context>) -> Action {
    let name = storefront.name_any();
    ctx.metrics.reconcile_failed(error.metric_reason());
    let attempt = ctx
        .failures
        .lock()
        .map(|mut failures| {
            let count = failures.entry(name.clone()).or_insert(0);
            *count = count.saturating_add(1);
            *count
        })
        .unwrap_or(1);
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

async fn apply_storefront(storefront: &Storefront, ctx: &Context) -> Result<Action, Error> {
    let name = storefront.name_any();
    let generation = storefront.metadata.generation;
    if storefront.spec.paused {
        write_status(storefront, ctx, &Outcome::Paused, generation).await?;
        return Ok(Action::await_change());
    }

    let plan = ctx
        .cache
        .plans
        .get(&kube::runtime::reflector::ObjectRef::new(
            &storefront.spec.plan,
        ))
        .map(|plan| plan.as_ref().clone());
    let others = ctx.cache.storefronts.state();
    let tenant =
        match validate::validate(storefront, plan.as_ref(), others.iter().map(AsRef::as_ref)) {
            Ok(tenant) => tenant,
            Err(invalid) => {
                write_status(storefront, ctx, &Outcome::Invalid(&invalid), generation).await?;
                return Ok(Action::requeue(RESYNC));
            }
        };

    // Database and tables, through the providers.
    let data = tenant_data::ensure_tenant_data(ctx, storefront, &tenant).await?;

    let ingress_group = assign_ingress_group(storefront, &tenant, ctx);
    let namespace = tenant_namespace(&name, tenant.tier, &ctx.config);
    let tenant_config = tenant_config(storefront, &tenant, &data, &namespace, ctx).await?;
    let owner = storefront
        .controller_owner_ref(&())
        .ok_or(Error::MissingMetadata)?;
    let input = BuildInput {
        tenant: name.clone(),
        tier: tenant.tier,
        plan_name: tenant.plan_name.clone(),
        plan: tenant.plan.clone(),
        owner,
        routed_domains: tenant.routed_domains.clone(),
        ingress_group: ingress_group
            .as_ref()
            .map(|(group, _)| sharding::group_name(&ctx.config.ingress_group_prefix, *group)),
        tenant_config,
    };
    let resources = build::tenant_resources(&input, &ctx.config)?;

    let applier = ctx.applier();
    let pool_workload = match tenant.tier {
        Tier::Pooled => Some(apply::apply_pool(applier, &build::pool::build(&ctx.config)?).await?),
        Tier::Dedicated => None,
    };
    let applied = apply::apply_tenant(applier, &name, &namespace, resources, Prune::Cached).await?;
    let workload = applied
        .workload
        .or(pool_workload)
        .unwrap_or(WorkloadObservation::default());

    let reconciled = Reconciled {
        tenant: &tenant,
        data: &data,
        workload,
        routing: applied.routing,
        namespace,
        ingress_group: input.ingress_group.clone(),
        gate: ctx.config.readiness_gate,
    };
    let outcome = Outcome::Reconciled(reconciled);
    if first_look_pending(storefront, ctx, &outcome, generation) {
        // Moments from now the Deployment watch reconciles again and writes the real status.
        return Ok(Action::requeue(PROGRESS_RECHECK));
    }
    let status = write_status(storefront, ctx, &outcome, generation).await?;
    let settled = status.phase == Some(Phase::Ready) && !data.progressing;
    Ok(Action::requeue(if settled {
        RESYNC
    } else {
        PROGRESS_RECHECK
    }))
}

/// Whether to hold back the very first status of a new tenant: when all it waits for is the
/// Deployment controller's first look at the Deployment this reconcile created, that look
/// arrives within moments and its watch event reconciles again, so a `Provisioning` status (and
/// its Event) would be superseded at once — two writes per tenant for nothing. Held back for at
/// most [`PROGRESS_RECHECK`] from the first time this process held it back (a time, not a
/// count: other watch events may reconcile the tenant again before the look arrives); after
/// that the status is written.
fn first_look_pending(
    storefront: &Storefront,
    ctx: &Context,
    outcome: &Outcome<'_>,
    generation: Option<i64>,
) -> bool {
    if storefront.status.is_some() {
        return false;
    }
    let uid = storefront.uid().unwrap_or_default();
    if ctx
        .written
        .lock()
        .map(|written| written.contains_key(&storefront.name_any()))
        .unwrap_or(true)
    {
        return false;
    }
    let status = status::compute(outcome, None, generation, "");
    let waiting_only_for_rollout = status.phase == Some(Phase::Provisioning)
        && status::condition(Some(&status), status::WORKLOAD_READY)
            .is_some_and(|c| c.reason == status::ROLLING_OUT)
        && status::condition(Some(&status), status::READY)
            .is_some_and(|c| c.message == format!("waiting for {}", status::WORKLOAD_READY));
    if !waiting_only_for_rollout {
        return false;
    }
    ctx.held_back
        .lock()
        .map(|mut held| held.entry(uid).or_insert_with(Instant::now).elapsed() < PROGRESS_RECHECK)
        .unwrap_or(false)
}

async fn cleanup_storefront(storefront: &Storefront, ctx: &Context) -> Result<Action, Error> {
    let name = storefront.name_any();
    tracing::info!(tenant = %name, "offboarding");
    write_status(
        storefront,
        ctx,
        &Outcome::Deleting,
        storefront.metadata.generation,
    )
    .await?;
    tenant_data::release_tenant_data(ctx, storefront).await?;
    let tier = storefront.status.as_ref().and_then(|s| s.tier);
    if tier != Some(Tier::Pooled) {
        apply::delete_tenant_namespace(ctx.applier(), &format!("store-{name}")).await?;
    }
    // Pooled tenants' Secret and Ingress in the pool namespace go with the Storefront through
    // their owner references; prune them now so the pool stops serving the tenant at once.
    apply::apply_tenant(
        ctx.applier(),
        &name,
        &ctx.config.pool_namespace,
        build::TenantResources::default(),
        Prune::Listed,
    )
    .await?;
    if let Ok(mut assignments) = ctx.assignments.lock() {
        assignments.remove(&name);
    }
    if let Ok(mut written) = ctx.written.lock() {
        written.remove(&name);
    }
    if let Ok(mut held) = ctx.held_back.lock() {
        held.remove(&storefront.uid().unwrap_or_default());
    }
    ctx.metrics.set_phase(&name, None);
    publish(
        ctx,
        storefront,
        EventType::Normal,
        "Offboarded",
        "removed the tenant's workload, routing and config",
    )
    .await;
    Ok(Action::await_change())
}

/// Picks the tenant's ALB ingress group: the one recorded in its status while it still fits.
fn assign_ingress_group(
    storefront: &Storefront,
    tenant: &ValidatedTenant,
    ctx: &Context,
) -> Option<(u32, Demand)> {
    if tenant.routed_domains.is_empty() {
        return None;
    }
    let prefix = &ctx.config.ingress_group_prefix;
    let name = storefront.name_any();
    let demand = Demand {
        rules: u32::try_from(tenant.routed_domains.len()).unwrap_or(u32::MAX),
        own_target_group: tenant.tier == Tier::Dedicated,
    };
    let Ok(mut assignments) = ctx.assignments.lock() else {
        return None;
    };
    let mut placed: BTreeMap<String, (u32, Demand)> = ctx
        .cache
        .storefronts
        .state()
        .iter()
        .filter(|other| other.name_any() != name)
        .filter_map(|other| {
            let status = other.status.as_ref()?;
            let group = sharding::group_index(prefix, status.ingress_group.as_deref()?)?;
            let demand = Demand {
                rules: u32::try_from(other.spec.domains.len()).unwrap_or(u32::MAX),
                own_target_group: status.tier == Some(Tier::Dedicated),
            };
            Some((other.name_any(), (group, demand)))
        })
        .collect();
    for (tenant, assignment) in assignments.iter() {
        if *tenant != name {
            placed.insert(tenant.clone(), *assignment);
        }
    }
    let current = assignments.get(&name).map(|(group, _)| *group).or_else(|| {
        sharding::group_index(
            prefix,
            storefront.status.as_ref()?.ingress_group.as_deref()?,
        )
    });
    let group = sharding::assign(current, demand, &sharding::loads(placed.into_values()));
    assignments.insert(name, (group, demand));
    Some((group, demand))
}

/// The runtime's tenant config: data from the provider step, the admin key kept from the
/// existing Secret (generated once), payment keys from the referenced Secret.
async fn tenant_config(
    storefront: &Storefront,
    tenant: &ValidatedTenant,
    data: &tenant_data::TenantData,
    namespace: &str,
    ctx: &Context,
) -> Result<TenantConfig, Error> {
    let secret_name = config_secret_name(&tenant.name);
    let existing = read_secret(ctx, namespace, &secret_name).await?;
    let existing_config = existing
        .as_ref()
        .and_then(|secret| secret.data.as_ref()?.get(TENANT_CONFIG_KEY).cloned())
        .and_then(|bytes| TenantConfig::from_secret_data(Some(&bytes.0)).ok());
    // While the database provider cannot say (AWS busy or unreachable), the tenant keeps the
    // DSN it has rather than losing its database.
    let database_url = if data.database_url.is_empty() && ctx.providers.database.is_some() {
        existing_config
            .as_ref()
            .map(|config| config.database_url.clone())
            .unwrap_or_default()
    } else {
        data.database_url.clone()
    };
    let admin_key = existing_config
        .map(|config| config.admin_key)
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| {
            let key: String = rand::rng()
                .sample_iter(Alphanumeric)
                .take(40)
                .map(char::from)
                .collect();
            format!("sk_admin_{key}")
        });
    let payments = match (
        &storefront.spec.payments.provider,
        &storefront.spec.payments.secret_ref,
    ) {
        (PaymentProvider::Stripe, Some(reference)) => {
            let secret = read_secret(ctx, &reference.namespace, &reference.name).await?;
            let value = |key: &'static str| {
                secret
                    .as_ref()
                    .and_then(|s| s.data.as_ref()?.get(key))
                    .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            };
            let missing = |key| Error::PaymentsSecret {
                namespace: reference.namespace.clone(),
                name: reference.name.clone(),
                key,
            };
            Payments {
                provider: ConfigPaymentProvider::Stripe,
                secret_key: Some(value("secretKey").ok_or_else(|| missing("secretKey"))?),
                webhook_secret: Some(
                    value("webhookSecret").ok_or_else(|| missing("webhookSecret"))?,
                ),
                api_base: value("apiBase"),
            }
        }
        _ => Payments {
            provider: ConfigPaymentProvider::Manual,
            secret_key: None,
            webhook_secret: None,
            api_base: None,
        },
    };
    Ok(TenantConfig {
        tenant_id: tenant.name.clone(),
        display_name: storefront.spec.display_name.clone(),
        domains: tenant.routed_domains.iter().map(|d| d.0.clone()).collect(),
        tier: tenant.tier.into(),
        theme_color: storefront.spec.theme_color.clone(),
        database_url,
        tables: data.table_names.clone(),
        admin_key,
        payments,
    })
}

/// The Secret from the cache when the operator made it (its config Secret), else from the API
/// server: a Secret it has just created may not be cached yet, and the admin key in it must
/// never be generated twice.
async fn read_secret(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Secret>, Error> {
    if let Some(cached) = ctx.cache.secrets.get(namespace, name) {
        return Ok(Some(cached.as_ref().clone()));
    }
    match Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
    {
        Ok(secret) => Ok(secret),
        // The dedicated namespace does not exist before the first apply.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(source) => Err(Error::ReadSecret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

/// Computes and writes the status (only when it changed), records the phase metric and
/// publishes an Event when the phase changes.
async fn write_status(
    storefront: &Storefront,
    ctx: &Context,
    outcome: &Outcome<'_>,
    generation: Option<i64>,
) -> Result<StorefrontStatus, Error> {
    let name = storefront.name_any();
    let uid = storefront.uid().unwrap_or_default();
    // What this process wrote last is at least as new as the cached Storefront's status.
    let remembered = ctx
        .written
        .lock()
        .ok()
        .and_then(|written| written.get(&name).cloned())
        .filter(|(written_uid, _)| *written_uid == uid)
        .map(|(_, status)| status);
    let previous = remembered.as_ref().or(storefront.status.as_ref());
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_default();
    let status = status::compute(outcome, previous, generation, &now.to_string());
    ctx.metrics.set_phase(&name, status.phase);
    if previous == Some(&status) {
        return Ok(status);
    }
    let patch = serde_json::json!({
        "apiVersion": "emporium.dev/v1alpha1",
        "kind": "Storefront",
        "status": status,
    });
    ctx.metrics.api_write("status", "Storefront");
    Api::<Storefront>::all(ctx.client.clone())
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await
        .map_err(|source| Error::WriteStatus {
            name: name.clone(),
            source,
        })?;
    if let Ok(mut written) = ctx.written.lock() {
        written.insert(name.clone(), (uid, status.clone()));
    }
    let before = previous.and_then(|s| s.phase);
    if before != status.phase
        && let Some(phase) = status.phase
    {
        let ready = status::condition(Some(&status), status::READY);
        let (kind, note) = match phase {
            Phase::Failed => (
                EventType::Warning,
                ready.map(|c| c.message.clone()).unwrap_or_default(),
            ),
            _ => (
                EventType::Normal,
                ready.map(|c| c.message.clone()).unwrap_or_default(),
            ),
        };
        publish(ctx, storefront, kind, phase.as_str(), &note).await;
    }
    Ok(status)
}

async fn publish(
    ctx: &Context,
    storefront: &Storefront,
    type_: EventType,
    reason: &str,
    note: &str,
) {
    ctx.metrics.api_write("create", "Event");
    let event = K8sEvent {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".to_owned(),
        secondary: None,
    };
    if let Err(error) = ctx
        .recorder
        .publish(&event, &storefront.object_ref(&()))
        .await
    {
        tracing::warn!(%error, "could not publish an Event");
    }
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
