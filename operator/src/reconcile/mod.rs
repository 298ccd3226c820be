//! The Storefront reconciler, a pipeline of one file per step:
//! [`validate`] → [`tenant_data`] (database and tables: the provider seam) → [`ingress_group`]
//! → [`tenant_config`] → [`build`] (pure) → [`apply`] (server-side apply of what changed, orphan
//! clean-up) → [`status`] (conditions, written by [`status::writer`]). This file is the
//! pipeline itself: [`reconcile`] splits into apply and cleanup behind the finalizer.
//!
//! [`run`] (`runner.rs`) wires it into a kube-runtime `applier` (the engine under `Controller`)
//! fed by the filtered watch streams of [`cache`], with bounded concurrency, exponential backoff
//! on errors and optional Lease leader election. Reads come from the cache; a steady-state
//! resync sends no request to the API server (see
//! `docs/decisions/0010-operator-skip-unchanged-apply.md`).

pub mod apply;
pub mod build;
pub mod cache;
pub mod cells;
mod context;
mod cost;
mod error;
pub mod handover;
pub mod identity;
pub mod ingress_group;
mod runner;
pub mod sharding;
pub mod status;
pub mod tenant_config;
pub mod tenant_data;
pub mod validate;
pub mod watchdog;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use kube::{
    Api, Resource as _, ResourceExt as _,
    runtime::{
        controller::Action,
        events::EventType,
        finalizer::{self, Event as FinalizerEvent},
        reflector::ObjectRef,
    },
};
use tracing::Instrument as _;

use self::{
    apply::Prune,
    build::{BuildInput, tenant_namespace},
    status::{
        ReconcileOutcome, Reconciled, WorkloadObservation,
        writer::{first_look_pending, publish, write_status},
    },
};
pub use self::{
    context::Context,
    error::Error,
    runner::{backoff, run},
};
use crate::crd::{Phase, Storefront, Tier};

/// The finalizer that holds a Storefront until its cleanup ran.
pub const FINALIZER: &str = "emporium.dev/cleanup";

/// How often a healthy tenant is looked at again (drift the watches miss, plan edits).
const RESYNC: Duration = Duration::from_secs(300);
/// How soon a tenant that is still coming up is looked at again.
const PROGRESS_RECHECK: Duration = Duration::from_secs(15);

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
    if result.is_ok() {
        ctx.failures.lock().remove(&name);
    }
    result
}

/// The pipeline for a live Storefront; a failure is written to its `Ready` condition (with the
/// error's reason) before it is retried, so it is never only in the log.
async fn apply_storefront(storefront: &Storefront, ctx: &Context) -> Result<Action, Error> {
    let result = run_pipeline(storefront, ctx).await;
    if let Err(error) = &result
        && !matches!(error, Error::WriteStatus { .. } | Error::CacheGone)
    {
        let outcome = ReconcileOutcome::Failed(error);
        if let Err(write) =
            write_status(storefront, ctx, &outcome, storefront.metadata.generation).await
        {
            tracing::warn!(error = %write, "could not record the failure in the status");
        }
    }
    result
}

/// Validate, data, routing, config, build, apply, status.
async fn run_pipeline(storefront: &Storefront, ctx: &Context) -> Result<Action, Error> {
    let name = storefront.name_any();
    let generation = storefront.metadata.generation;
    if storefront.spec.paused {
        write_status(storefront, ctx, &ReconcileOutcome::Paused, generation).await?;
        return Ok(Action::await_change());
    }

    let plan = ctx
        .cache
        .plans
        .get(&ObjectRef::new(&storefront.spec.plan))
        .map(|plan| plan.as_ref().clone());
    let others = ctx.cache.storefronts.state();
    let tenant =
        match validate::validate(storefront, plan.as_ref(), others.iter().map(AsRef::as_ref)) {
            Ok(tenant) => tenant,
            Err(invalid) => {
                let outcome = ReconcileOutcome::Invalid(&invalid);
                write_status(storefront, ctx, &outcome, generation).await?;
                return Ok(Action::requeue(RESYNC));
            }
        };

    // Database and tables, through the providers.
    let data = tenant_data::ensure_tenant_data(ctx, storefront, &tenant).await?;

    let ingress_group = ingress_group::assign(storefront, &tenant, ctx)
        .map(|(group, _)| sharding::group_name(&ctx.config.ingress_group_prefix, group));
    let namespace = tenant_namespace(&name, tenant.tier, &ctx.config);
    let routed_before = handover::routed_before(ctx, &name, &namespace);
    let identity = identity::resolve(storefront)?;
    if identity.origin == identity::Origin::Legacy {
        tracing::info!(tenant = %name, "tenant created before identities: its data stays keyed by its name, recorded in status.tenantId");
    }
    let tenant_config = tenant_config::assemble(
        storefront,
        &tenant,
        &identity.tenant_id,
        &data,
        &namespace,
        ctx,
    )
    .await?;
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
        ingress_group: ingress_group.clone(),
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

    let cost = cost::refresh(
        ctx,
        storefront,
        &tenant,
        &data,
        ingress_group.as_deref(),
        &namespace,
    )
    .await;
    let outcome = ReconcileOutcome::Reconciled(Reconciled {
        tenant: &tenant,
        data: &data,
        workload,
        routing: applied.routing,
        namespace,
        ingress_group,
        gate: ctx.config.readiness_gate,
        cost: cost.as_ref(),
    });
    if first_look_pending(storefront, ctx, &outcome, generation) {
        // Moments from now the Deployment watch reconciles again and writes the real status.
        return Ok(Action::requeue(PROGRESS_RECHECK));
    }
    let status = write_status(storefront, ctx, &outcome, generation).await?;
    handover::announce(
        ctx,
        storefront,
        routed_before.as_deref(),
        &tenant.routed_domains,
    )
    .await;
    let settled = status.phase == Some(Phase::Ready) && !data.progressing;
    Ok(Action::requeue(if settled {
        RESYNC
    } else {
        PROGRESS_RECHECK
    }))
}

/// The pipeline for a deleted Storefront: status, data release, workload and routing removal.
async fn cleanup_storefront(storefront: &Storefront, ctx: &Context) -> Result<Action, Error> {
    let name = storefront.name_any();
    tracing::info!(tenant = %name, "offboarding");
    let generation = storefront.metadata.generation;
    let tier = storefront.status.as_ref().and_then(|s| s.tier);
    let first_pass = storefront.status.as_ref().and_then(|s| s.phase) != Some(Phase::Deleting);
    write_status(storefront, ctx, &ReconcileOutcome::Deleting, generation).await?;
    if first_pass && let Some(tier) = tier {
        let namespace = tenant_namespace(&name, tier, &ctx.config);
        let held = handover::routed_before(ctx, &name, &namespace).unwrap_or_default();
        let held: Vec<_> = held.into_iter().map(crate::crd::Hostname).collect();
        handover::announce_released(ctx, storefront, &held).await;
    }
    // Pooled tenants' Secret and Ingress in the pool namespace go with the Storefront through
    // their owner references; prune them first, so the pool stops serving the tenant (its
    // sessions stop working) at once, not after its data is offboarded.
    let none = build::TenantResources::default();
    let pool = &ctx.config.pool_namespace;
    apply::apply_tenant(ctx.applier(), &name, pool, none, Prune::Listed).await?;
    tenant_data::release_tenant_data(ctx, storefront).await?;
    if tier != Some(Tier::Pooled) {
        let namespace = tenant_namespace(&name, Tier::Dedicated, &ctx.config);
        apply::delete_tenant_namespace(ctx.applier(), &namespace).await?;
    }
    ctx.forget(&name, &storefront.uid().unwrap_or_default());
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
