//! Notices when the controller's watches have stopped delivering events, so the controller can
//! be started again instead of running deaf.
//!
//! Found by `tests/tests/reliability_operator.rs`: after the API server was killed and started
//! again, the operator kept serving reconciles it already had queued, but its watches never
//! resumed, so a Storefront deleted afterwards was never cleaned up. The check is cheap: every
//! `every` it lists the Storefronts' metadata (one read) and compares resourceVersions with the
//! controller's cache. A Storefront whose current version is missing from the cache on two
//! checks in a row has not been delivered for at least `every`, which a working watch never does.

use std::{collections::BTreeMap, time::Duration};

use kube::{Api, ResourceExt as _, api::ListParams, runtime::reflector::Store};

use crate::crd::Storefront;

/// Resolves once the cache has missed the same Storefront version on two consecutive checks.
pub async fn stalled(
    api: Api<Storefront>,
    selector: String,
    store: Store<Storefront>,
    every: Duration,
) {
    let params = ListParams::default().labels(&selector);
    let mut suspects = BTreeMap::new();
    loop {
        tokio::time::sleep(every).await;
        // The API server unreachable is not a stall of ours: compare once it answers again.
        let Ok(listed) = api.list_metadata(&params).await else {
            continue;
        };
        let cached: BTreeMap<String, String> = store
            .state()
            .iter()
            .map(|s| (s.name_any(), s.resource_version().unwrap_or_default()))
            .collect();
        let current = listed
            .items
            .iter()
            .map(|m| (m.name_any(), m.resource_version().unwrap_or_default()));
        let lagging = lagging(&cached, current);
        if let Some((name, version)) = lagging
            .iter()
            .find(|(name, version)| suspects.get(*name) == Some(*version))
        {
            tracing::error!(
                storefront = %name,
                resource_version = %version,
                "the Storefront watch has not delivered this change for {}s; restarting the controller",
                every.as_secs()
            );
            return;
        }
        suspects = lagging;
    }
}

/// Storefronts whose listed version the cache does not hold, by name.
fn lagging(
    cached: &BTreeMap<String, String>,
    listed: impl Iterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    listed
        .filter(|(name, version)| cached.get(name) != Some(version))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_versions_the_cache_misses_lag() {
        let cached = map(&[("a", "1"), ("b", "5")]);
        let listed = map(&[("a", "1"), ("b", "6"), ("c", "7")]);
        assert_eq!(
            lagging(&cached, listed.into_iter()),
            map(&[("b", "6"), ("c", "7")])
        );
        assert!(lagging(&cached, map(&[("a", "1")]).into_iter()).is_empty());
    }
}
