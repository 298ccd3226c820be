//! Writing the status: [`write_status`] computes it ([`super::compute`], pure), sends it only
//! when it changed, records the phase metric and publishes an Event when the phase changes;
//! [`publish`] sends one Event; [`first_look_pending`] holds back a new tenant's first status
//! while it only waits for the Deployment controller's first look.

use std::time::Instant;

use kube::{
    Api, Resource as _, ResourceExt as _,
    api::{Patch, PatchParams},
    runtime::events::{Event as K8sEvent, EventType},
};

use super::{READY, ROLLING_OUT, ReconcileOutcome, WORKLOAD_READY, compute, condition};
use crate::{
    crd::{Phase, Storefront, StorefrontStatus},
    reconcile::{Context, Error, PROGRESS_RECHECK, apply::FIELD_MANAGER, identity},
};

/// Computes and writes the status (only when it changed), records the phase metric and
/// publishes an Event when the phase changes.
pub async fn write_status(
    storefront: &Storefront,
    ctx: &Context,
    outcome: &ReconcileOutcome<'_>,
    generation: Option<i64>,
) -> Result<StorefrontStatus, Error> {
    let name = storefront.name_any();
    let uid = storefront.uid().unwrap_or_default();
    // What this process wrote last is at least as new as the cached Storefront's status.
    let remembered = ctx
        .written
        .lock()
        .get(&name)
        .cloned()
        .filter(|(written_uid, _)| *written_uid == uid)
        .map(|(_, status)| status);
    let previous = remembered.as_ref().or(storefront.status.as_ref());
    let now = k8s_openapi::jiff::Timestamp::now()
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap_or_default();
    let mut status = compute(outcome, previous, generation, &now.to_string());
    // Every status carries the identity, so a status without one is always an older
    // operator's (see `identity::resolve`).
    status.tenant_id = match previous.and_then(|s| s.tenant_id.clone()) {
        Some(recorded) => Some(recorded),
        None => Some(identity::resolve(storefront)?.tenant_id),
    };
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
    ctx.written
        .lock()
        .insert(name.clone(), (uid, status.clone()));
    let before = previous.and_then(|s| s.phase);
    if before != status.phase
        && let Some(phase) = status.phase
    {
        let ready = condition(Some(&status), READY);
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

/// Publishes one Event about `storefront` (a failure to publish is logged, never an error).
pub async fn publish(
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

/// Whether to hold back the very first status of a new tenant: when all it waits for is the
/// Deployment controller's first look at the Deployment this reconcile created, that look
/// arrives within moments and its watch event reconciles again, so a `Provisioning` status (and
/// its Event) would be superseded at once — two writes per tenant for nothing. Held back for at
/// most [`PROGRESS_RECHECK`] from the first time this process held it back (a time, not a
/// count: other watch events may reconcile the tenant again before the look arrives); after
/// that the status is written.
pub fn first_look_pending(
    storefront: &Storefront,
    ctx: &Context,
    outcome: &ReconcileOutcome<'_>,
    generation: Option<i64>,
) -> bool {
    if storefront.status.is_some() {
        return false;
    }
    let uid = storefront.uid().unwrap_or_default();
    if ctx.written.lock().contains_key(&storefront.name_any()) {
        return false;
    }
    let status = compute(outcome, None, generation, "");
    let waiting_only_for_rollout = status.phase == Some(Phase::Provisioning)
        && condition(Some(&status), WORKLOAD_READY).is_some_and(|c| c.reason == ROLLING_OUT)
        && condition(Some(&status), READY)
            .is_some_and(|c| c.message == format!("waiting for {WORKLOAD_READY}"));
    if !waiting_only_for_rollout {
        return false;
    }
    ctx.held_back
        .lock()
        .entry(uid)
        .or_insert_with(Instant::now)
        .elapsed()
        < PROGRESS_RECHECK
}
