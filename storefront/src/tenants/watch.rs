//! Learns tenants from the operator's tenant config Secrets (label
//! [`emporium_tenant_config::TENANT_SECRET_SELECTOR`], any namespace) and keeps serving them in
//! step: a new Secret is served without a restart and a deleted one stops being served.

use std::sync::Arc;

use emporium_tenant_config::{TENANT_CONFIG_KEY, TENANT_SECRET_SELECTOR, TenantConfig};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, ResourceExt as _,
    runtime::{WatchStreamExt as _, watcher},
};

use super::{Source, Tenants};

/// How often the tenant Secrets are listed afresh (see [`run`]).
const RELIST_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

fn key(secret: &Secret) -> String {
    format!(
        "{}/{}",
        secret.namespace().unwrap_or_default(),
        secret.name_any()
    )
}

fn parse(secret: &Secret) -> Option<TenantConfig> {
    let data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(TENANT_CONFIG_KEY))
        .map(|b| b.0.as_slice());
    match TenantConfig::from_secret_data(data) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(secret = %key(secret), error = %e, "ignoring tenant config Secret");
            None
        }
    }
}

async fn apply(tenants: &Tenants, secret: &Secret) {
    let Some(config) = parse(secret) else { return };
    if let Err(e) = tenants.upsert(Source::Secret(key(secret)), config).await {
        tracing::warn!(secret = %key(secret), error = %e, "cannot serve tenant yet");
    }
}

/// Runs until the process ends, watching `namespace` or, with `None`, every namespace.
/// `on_removed` hears the id of every tenant no longer served.
pub async fn run(
    client: Client,
    namespace: Option<&str>,
    tenants: Arc<Tenants>,
    on_removed: impl Fn(&str) + Send + Sync,
) {
    let api: Api<Secret> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let config = watcher::Config::default().labels(TENANT_SECRET_SELECTOR);
    // The watch is started again from a full list every `RELIST_EVERY`: after an API server
    // restart a kube watch can stay deaf (the operator hit this; see its `watchdog`), and a
    // fresh list also repairs anything missed. One list of the tenant Secrets per replica per
    // period is the whole cost.
    loop {
        let mut events = watcher(api.clone(), config.clone())
            .default_backoff()
            .boxed();
        let relist_at = tokio::time::sleep(RELIST_EVERY);
        tokio::pin!(relist_at);
        let mut relist: Option<Vec<Secret>> = None;
        loop {
            let event = tokio::select! {
                () = &mut relist_at => break,
                event = events.try_next() => event,
            };
            match event {
                Ok(Some(watcher::Event::Apply(s))) => apply(&tenants, &s).await,
                Ok(Some(watcher::Event::Delete(s))) => {
                    if let Some(id) = tenants.remove_secret(&key(&s)) {
                        on_removed(&id);
                    }
                }
                Ok(Some(watcher::Event::Init)) => relist = Some(Vec::new()),
                Ok(Some(watcher::Event::InitApply(s))) => {
                    relist.get_or_insert_with(Vec::new).push(s)
                }
                Ok(Some(watcher::Event::InitDone)) => {
                    let listed = relist.take().unwrap_or_default();
                    let keep: Vec<String> = listed.iter().map(key).collect();
                    for gone in tenants
                        .secret_keys()
                        .into_iter()
                        .filter(|k| !keep.contains(k))
                    {
                        if let Some(id) = tenants.remove_secret(&gone) {
                            on_removed(&id);
                        }
                    }
                    for s in &listed {
                        apply(&tenants, s).await;
                    }
                }
                Ok(None) => return,
                Err(e) => tracing::warn!(error = %e, "watching tenant Secrets"),
            }
        }
        tracing::debug!("listing tenant Secrets again");
    }
}
