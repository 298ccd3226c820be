//! Apply: server-side apply of the built objects with one field manager, in a fixed order, then
//! deletion of the tenant's objects that are no longer built (found by the tenant label).
//!
//! An object is applied only when it is missing or differs from what the operator wants: every
//! built object carries [`APPLIED_HASH_ANNOTATION`], a SHA-256 of the object as built, and the
//! apply is skipped when the cached object (see [`super::cache`]) carries the same hash *and*
//! still holds every field the operator sets with the same value ([`covers`]). The hash notices
//! a change of what the operator builds, including a field it stopped setting; the field check
//! notices drift (someone edited or removed a field the operator owns). Either sends the forced
//! apply, which takes the fields back. A steady-state resync therefore writes nothing.
//!
//! The hash is cryptographic and covers the whole object, the config Secret's data included:
//! the annotation reveals nothing about the credentials in it.
//!
//! [`apply_tenant`] destructures [`TenantResources`] without `..`: a kind that is built but
//! not applied here fails to compile.

use std::{fmt::Debug, sync::Arc};

use k8s_openapi::{
    NamespaceResourceScope,
    api::{apps::v1::Deployment, core::v1::Namespace, networking::v1::Ingress},
};
use kube::{
    Api, Client, Resource, ResourceExt as _,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{
    Error,
    build::{TENANT_LABEL, TenantResources, pool::PoolResources},
    cache::{Cache, Child},
    status::{RoutingObservation, WorkloadObservation},
};
use crate::metrics::Metrics;

/// Annotation holding the SHA-256 of the object as the operator built it.
pub const APPLIED_HASH_ANNOTATION: &str = "emporium.dev/applied-hash";

/// The one field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = "emporium-operator";

/// What applying observed, for the status step.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub workload: Option<WorkloadObservation>,
    pub routing: RoutingObservation,
}

/// How the tenant's orphans are found: from the cache (reconciles) or by listing (offboarding,
/// which must not miss an object the cache has not seen yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prune {
    Cached,
    Listed,
}

/// What the apply step talks to: the API server, the cache it compares with, the metrics it
/// counts writes in.
#[derive(Clone, Copy)]
pub struct Applier<'a> {
    pub client: &'a Client,
    pub cache: &'a Cache,
    pub metrics: &'a Metrics,
}

/// Applies a tenant's objects and deletes its orphans in `namespace`.
pub async fn apply_tenant(
    applier: Applier<'_>,
    tenant: &str,
    namespace: &str,
    resources: TenantResources,
    prune: Prune,
) -> Result<Applied, Error> {
    let TenantResources {
        namespace: tenant_namespace,
        service_account,
        role,
        role_binding,
        resource_quota,
        limit_range,
        network_policy,
        config_secret,
        deployment,
        service,
        autoscaler,
        disruption_budget,
        ingress,
    } = resources;

    if let Some(ns) = &tenant_namespace {
        applier.ensure(ns).await?;
    }
    let orphans = Orphans {
        applier,
        tenant,
        namespace,
        prune,
    };
    orphans.apply_or_prune(service_account.as_ref()).await?;
    orphans.apply_or_prune(role.as_ref()).await?;
    orphans.apply_or_prune(role_binding.as_ref()).await?;
    orphans.apply_or_prune(resource_quota.as_ref()).await?;
    orphans.apply_or_prune(limit_range.as_ref()).await?;
    orphans.apply_or_prune(network_policy.as_ref()).await?;
    orphans.apply_or_prune(config_secret.as_ref()).await?;
    let deployment = orphans.apply_or_prune(deployment.as_ref()).await?;
    orphans.apply_or_prune(service.as_ref()).await?;
    orphans.apply_or_prune(autoscaler.as_ref()).await?;
    orphans.apply_or_prune(disruption_budget.as_ref()).await?;
    let ingress = orphans.apply_or_prune(ingress.as_ref()).await?;

    Ok(Applied {
        workload: deployment.as_deref().map(observe_deployment),
        routing: RoutingObservation {
            ingress_applied: ingress.is_some(),
            address: ingress.as_deref().and_then(load_balancer_address),
        },
    })
}

/// Applies the shared pool's objects (operator-owned, no Storefront owner) and reports how its
/// Deployment is doing.
pub async fn apply_pool(
    applier: Applier<'_>,
    pool: &PoolResources,
) -> Result<WorkloadObservation, Error> {
    let PoolResources {
        namespace,
        service_account,
        role,
        role_binding,
        deployment,
        service,
        autoscaler,
        disruption_budget,
        network_policy,
    } = pool;
    applier.ensure(namespace).await?;
    applier.ensure(service_account).await?;
    applier.ensure(role).await?;
    applier.ensure(role_binding).await?;
    let deployment = applier.ensure(deployment).await?;
    applier.ensure(service).await?;
    applier.ensure(autoscaler).await?;
    applier.ensure(disruption_budget).await?;
    applier.ensure(network_policy).await?;
    Ok(observe_deployment(&deployment))
}

/// Deletes a dedicated tenant's namespace (everything in it goes with it). The garbage
/// collector would do the same through owner references; deleting directly makes offboarding
/// prompt and independent of the collector.
pub async fn delete_tenant_namespace(applier: Applier<'_>, name: &str) -> Result<(), Error> {
    if applier
        .cache
        .namespaces
        .get("", name)
        .is_some_and(|ns| ns.metadata.deletion_timestamp.is_some())
    {
        return Ok(());
    }
    applier.metrics.api_write("delete", "Namespace");
    match Api::<Namespace>::all(applier.client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Delete {
            kind: "Namespace".to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}

fn observe_deployment(deployment: &Deployment) -> WorkloadObservation {
    let status = deployment.status.clone().unwrap_or_default();
    WorkloadObservation {
        rolled_out: deployment.metadata.generation.is_some()
            && status.observed_generation >= deployment.metadata.generation,
        available: deployment_available(deployment),
    }
}

/// Whether the Deployment's condition `Available` is `True`.
pub(crate) fn deployment_available(deployment: &Deployment) -> bool {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions.iter().any(|c| {
                c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")
            })
        })
}

fn load_balancer_address(ingress: &Ingress) -> Option<String> {
    let entries = ingress
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?;
    entries
        .iter()
        .find_map(|entry| entry.hostname.clone().or_else(|| entry.ip.clone()))
}

fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).into_owned()
}

/// `desired` with [`APPLIED_HASH_ANNOTATION`] set to the SHA-256 of `desired` as built.
pub fn stamp<K: Child>(desired: &K) -> Result<K, Error> {
    let bytes = serde_json::to_vec(desired).map_err(|source| Error::Serialize {
        kind: kind_of::<K>(),
        name: desired.name_any(),
        source,
    })?;
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let mut stamped = desired.clone();
    stamped
        .annotations_mut()
        .insert(APPLIED_HASH_ANNOTATION.to_owned(), format!("sha256:{hex}"));
    Ok(stamped)
}

/// Whether the API server's object `actual` already is what applying `stamped` would make it:
/// same hash annotation (what the operator builds did not change) and every field of
/// `stamped` present in `actual` with the same value (nobody changed what the operator owns).
pub fn up_to_date<K: Child>(stamped: &K, actual: &K) -> bool {
    if actual.meta().deletion_timestamp.is_some() {
        return false;
    }
    let hash = |object: &K| object.annotations().get(APPLIED_HASH_ANNOTATION).cloned();
    if hash(stamped).is_none() || hash(stamped) != hash(actual) {
        return false;
    }
    match (serde_json::to_value(stamped), serde_json::to_value(actual)) {
        (Ok(desired), Ok(actual)) => covers(&actual, &desired),
        _ => false,
    }
}

/// Whether `actual` holds every field of `desired` with an equal value. Fields only in `actual`
/// (defaults, other managers' fields, status) do not matter; a desired empty list or map
/// matches an absent one (the API server drops them); list items are matched by position,
/// else anywhere in the list; quantities compare by value (`0.5` = `500m`).
pub fn covers(actual: &Value, desired: &Value) -> bool {
    match (desired, actual) {
        (Value::Null, _) => true,
        (Value::Object(want), Value::Object(have)) => want.iter().all(|(key, want)| {
            have.get(key)
                .map_or_else(|| is_empty(want), |have| covers(have, want))
        }),
        (Value::Array(want), Value::Array(have)) => want.iter().enumerate().all(|(index, want)| {
            have.get(index).is_some_and(|have| covers(have, want))
                || have.iter().any(|have| covers(have, want))
        }),
        (Value::String(want), Value::String(have)) => {
            want == have || matches!((quantity(want), quantity(have)), (Some(a), Some(b)) if a == b)
        }
        (Value::Number(want), Value::Number(have)) => {
            want == have || want.as_f64().is_some_and(|w| have.as_f64() == Some(w))
        }
        (want, have) => is_empty(want) && is_empty(have) || want == have,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
        _ => false,
    }
}

/// A Kubernetes quantity's value (`100m`, `128Mi`, `4`, `1.5Gi`, `2e3`); `None` for other
/// strings.
pub(crate) fn quantity(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 15] = [
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let (number, factor) = SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| Some((text.strip_suffix(suffix)?, *factor)))
        .unwrap_or((text, 1.0));
    let plain = !number.is_empty()
        && number
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '+' | '-' | 'e' | 'E'))
        && number.starts_with(|c: char| c.is_ascii_digit() || matches!(c, '.' | '+' | '-'));
    if !plain {
        return None;
    }
    number.parse::<f64>().ok().map(|value| value * factor)
}

impl Applier<'_> {
    /// Server-side applies `desired` unless the cached object is already up to date; returns
    /// the object as the API server has it.
    pub async fn ensure<K: Child>(&self, desired: &K) -> Result<Arc<K>, Error> {
        let kind = kind_of::<K>();
        let stamped = stamp(desired)?;
        let name = stamped.name_any();
        let namespace = stamped.namespace().unwrap_or_default();
        if let Some(cached) = K::watched(self.cache).get(&namespace, &name)
            && up_to_date(&stamped, cached.as_ref())
        {
            self.metrics.apply_skipped(&kind);
            return Ok(cached);
        }
        let api = K::api(self.client.clone(), &namespace);
        self.metrics.api_write("apply", &kind);
        let applied = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&stamped),
            )
            .await
            .map_err(|source| Error::Apply {
                kind,
                name: if namespace.is_empty() {
                    name.clone()
                } else {
                    format!("{namespace}/{name}")
                },
                source,
            })?;
        self.cache.record_own_write(&applied);
        Ok(Arc::new(applied))
    }
}

/// Applies an object if it is built, and deletes the tenant's other objects of its kind.
struct Orphans<'a> {
    applier: Applier<'a>,
    tenant: &'a str,
    namespace: &'a str,
    prune: Prune,
}

impl Orphans<'_> {
    async fn apply_or_prune<K>(&self, desired: Option<&K>) -> Result<Option<Arc<K>>, Error>
    where
        K: Child + Resource<Scope = NamespaceResourceScope>,
    {
        let applied = match desired {
            Some(object) => Some(self.applier.ensure(object).await?),
            None => None,
        };
        let keep = desired.map(|o| o.name_any());
        let api = Api::<K>::namespaced(self.applier.client.clone(), self.namespace);
        let existing: Vec<String> = match self.prune {
            Prune::Cached => K::watched(self.applier.cache)
                .of_tenant(self.namespace, self.tenant)
                .iter()
                .filter(|o| o.meta().deletion_timestamp.is_none())
                .map(|o| o.name_any())
                .collect(),
            Prune::Listed => {
                let selector =
                    ListParams::default().labels(&format!("{TENANT_LABEL}={}", self.tenant));
                match api.list_metadata(&selector).await {
                    Ok(list) => list.items.iter().map(|o| o.name_any()).collect(),
                    // The dedicated namespace may not exist (pooled tenants, never applied).
                    Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
                    Err(source) => {
                        return Err(Error::List {
                            kind: kind_of::<K>(),
                            source,
                        });
                    }
                }
            }
        };
        for orphan in existing
            .into_iter()
            .filter(|name| Some(name) != keep.as_ref())
        {
            tracing::info!(kind = kind_of::<K>(), name = %orphan, namespace = self.namespace, "deleting an orphaned object");
            self.applier.metrics.api_write("delete", &kind_of::<K>());
            match api.delete(&orphan, &DeleteParams::background()).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(source) => {
                    return Err(Error::Delete {
                        kind: kind_of::<K>(),
                        name: orphan,
                        source,
                    });
                }
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_other_fields_do_not_count_as_drift() {
        let desired = json!({
            "metadata": { "name": "a", "labels": { "x": "1" }, "annotations": {} },
            "spec": { "ports": [{ "name": "http", "port": 80 }], "selector": {} },
        });
        let actual = json!({
            "metadata": { "name": "a", "labels": { "x": "1", "kubernetes.io/other": "y" }, "uid": "u" },
            "spec": { "ports": [{ "name": "http", "port": 80, "protocol": "TCP" }], "clusterIP": "10.0.0.1" },
            "status": {},
        });
        assert!(covers(&actual, &desired));
    }

    #[test]
    fn a_changed_or_removed_field_is_drift() {
        let desired = json!({ "spec": { "image": "a:1", "env": [{ "name": "A", "value": "1" }] } });
        assert!(!covers(
            &json!({ "spec": { "image": "b:2", "env": [{ "name": "A", "value": "1" }] } }),
            &desired
        ));
        assert!(!covers(
            &json!({ "spec": { "image": "a:1", "env": [] } }),
            &desired
        ));
        assert!(!covers(&json!({ "spec": { "image": "a:1" } }), &desired));
        assert!(!covers(
            &json!({ "spec": { "image": "a:1", "env": [{ "name": "A", "value": "2" }] } }),
            &desired
        ));
    }

    #[test]
    fn quantities_compare_by_value() {
        assert!(covers(&json!("500m"), &json!("0.5")));
        assert!(covers(&json!("1Gi"), &json!("1024Mi")));
        assert!(covers(&json!("4"), &json!("4")));
        assert!(!covers(&json!("100m"), &json!("200m")));
        assert!(!covers(&json!("http"), &json!("https")));
        assert_eq!(quantity("http"), None);
        assert_eq!(quantity("128Mi"), Some(134_217_728.0));
    }

    #[test]
    fn the_stamp_changes_with_the_object_and_hides_secret_data() -> Result<(), Error> {
        use k8s_openapi::{ByteString, api::core::v1::Secret};
        let secret = |value: &str| -> Secret {
            Secret {
                metadata: kube::api::ObjectMeta {
                    name: Some("tenant-a".into()),
                    namespace: Some("store-a".into()),
                    ..Default::default()
                },
                data: Some(
                    [(
                        "config.json".to_owned(),
                        ByteString(value.as_bytes().to_vec()),
                    )]
                    .into(),
                ),
                ..Default::default()
            }
        };
        let one = stamp(&secret("dsn=postgres://a:hunter2@db"))?;
        let two = stamp(&secret("dsn=postgres://a:hunter3@db"))?;
        let hash = |s: &Secret| s.annotations()[APPLIED_HASH_ANNOTATION].clone();
        assert_ne!(hash(&one), hash(&two));
        assert!(hash(&one).starts_with("sha256:") && hash(&one).len() == 7 + 64);
        assert!(!hash(&one).contains("hunter2"));
        assert!(up_to_date(&one, &one));
        assert!(!up_to_date(&one, &two));
        Ok(())
    }
}
