//! Hostname handover: the Events that say a hostname moved from one Storefront to another.
//! The watch in `cache::triggers` makes the move prompt; this step tells both sides.

use emporium_tenant_config::{TENANT_CONFIG_KEY, TenantConfig};
use kube::{ResourceExt as _, runtime::events::EventType};

use super::{Context, build::config_secret_name, status::writer::publish, validate};
use crate::crd::{Hostname, Storefront};

/// The hostnames the tenant's config Secret (in `namespace`) routes to it now, before this
/// reconcile rewrites it; `None` before the first one.
pub fn routed_before(ctx: &Context, tenant: &str, namespace: &str) -> Option<Vec<String>> {
    let secret = ctx
        .cache
        .secrets
        .get(namespace, &config_secret_name(tenant))?;
    let bytes = secret.data.as_ref()?.get(TENANT_CONFIG_KEY)?;
    // Parsed without `from_secret_data`'s checks: a tenant waiting for every one of its
    // hostnames has a config with no domains, and that is what a handover starts from.
    serde_json::from_slice::<TenantConfig>(&bytes.0)
        .ok()
        .map(|config| config.domains)
}

/// Publishes `HostnameAcquired` on `storefront` for every hostname it routes now and did not
/// before (`before`, from [`routed_before`]), and `HostnameReleased` for every hostname it
/// routed before and lets go of now (`routed`), naming the Storefront that takes it over.
pub async fn announce(
    ctx: &Context,
    storefront: &Storefront,
    before: Option<&[String]>,
    routed: &[Hostname],
) {
    let Some(before) = before else {
        return;
    };
    for domain in routed.iter().filter(|d| !before.contains(&d.0)) {
        let note = format!("now serving {domain}, released by the Storefront that held it");
        publish(
            ctx,
            storefront,
            EventType::Normal,
            "HostnameAcquired",
            &note,
        )
        .await;
    }
    let released: Vec<Hostname> = before
        .iter()
        .filter(|d| !routed.iter().any(|r| &r.0 == *d))
        .map(|d| Hostname(d.clone()))
        .collect();
    announce_released(ctx, storefront, &released).await;
}

/// Publishes `HostnameReleased` on `storefront` for each of `released`, naming the oldest
/// waiting Storefront, which takes it over.
pub async fn announce_released(ctx: &Context, storefront: &Storefront, released: &[Hostname]) {
    let others = ctx.cache.storefronts.state();
    for domain in released {
        let next = validate::next_holder(domain, storefront, others.iter().map(AsRef::as_ref));
        let note = match next {
            Some(next) => format!(
                "released {domain}; Storefront `{}` takes it over",
                next.name_any()
            ),
            None => format!("released {domain}; no other Storefront waits for it"),
        };
        publish(
            ctx,
            storefront,
            EventType::Normal,
            "HostnameReleased",
            &note,
        )
        .await;
    }
}
