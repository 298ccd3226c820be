//! Apply: server-side apply of the built objects with one field manager, in a fixed order, then
//! deletion of the tenant's objects that are no longer built (found by the tenant label).
//!
//! [`apply_tenant`] destructures [`TenantResources`] without `..`: a kind that is built but
//! not applied here fails to compile.

use std::fmt::Debug;

use k8s_openapi::{
    NamespaceResourceScope,
    api::{apps::v1::Deployment, core::v1::Namespace, networking::v1::Ingress},
};
use kube::{
    Api, Client, Resource, ResourceExt as _,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    Error,
    build::{TENANT_LABEL, TenantResources, pool::PoolResources},
    status::{RoutingObservation, WorkloadObservation},
};

/// The one field manager for everything the operator writes.
pub const FIELD_MANAGER: &str = "emporium-operator";

/// What applying observed, for the status step.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub workload: Option<WorkloadObservation>,
    pub routing: RoutingObservation,
}

/// Applies a tenant's objects and deletes its orphans in `namespace`.
pub async fn apply_tenant(
    client: &Client,
    tenant: &str,
    namespace: &str,
    resources: TenantResources,
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
        apply_cluster(client, ns).await?;
    }
    let orphans = Orphans {
        client,
        tenant,
        namespace,
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
        workload: deployment.as_ref().map(observe_deployment),
        routing: RoutingObservation {
            ingress_applied: ingress.is_some(),
            address: ingress.as_ref().and_then(load_balancer_address),
        },
    })
}

/// Applies the shared pool's objects (operator-owned, no Storefront owner) and reports how its
/// Deployment is doing.
pub async fn apply_pool(
    client: &Client,
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
    } = pool;
    apply_cluster(client, namespace).await?;
    apply_namespaced(client, service_account).await?;
    apply_namespaced(client, role).await?;
    apply_namespaced(client, role_binding).await?;
    let deployment = apply_namespaced(client, deployment).await?;
    apply_namespaced(client, service).await?;
    apply_namespaced(client, autoscaler).await?;
    apply_namespaced(client, disruption_budget).await?;
    Ok(observe_deployment(&deployment))
}

/// Deletes a dedicated tenant's namespace (everything in it goes with it). The garbage
/// collector would do the same through owner references; deleting directly makes offboarding
/// prompt and independent of the collector.
pub async fn delete_tenant_namespace(client: &Client, name: &str) -> Result<(), Error> {
    match Api::<Namespace>::all(client.clone())
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
        available_replicas: status.available_replicas.unwrap_or(0),
    }
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

async fn apply_cluster(client: &Client, namespace: &Namespace) -> Result<Namespace, Error> {
    let name = namespace.name_any();
    Api::<Namespace>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(namespace),
        )
        .await
        .map_err(|source| Error::Apply {
            kind: "Namespace".to_owned(),
            name,
            source,
        })
}

async fn apply_namespaced<K>(client: &Client, object: &K) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Serialize
        + DeserializeOwned
        + Debug,
{
    let kind = kind_of::<K>();
    let name = object.name_any();
    let namespace = object.namespace().unwrap_or_default();
    Api::<K>::namespaced(client.clone(), &namespace)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(object),
        )
        .await
        .map_err(|source| Error::Apply {
            kind,
            name: format!("{namespace}/{name}"),
            source,
        })
}

fn kind_of<K: Resource<DynamicType = ()>>() -> String {
    K::kind(&()).into_owned()
}

/// Applies an object if it is built, and deletes the tenant's other objects of its kind.
struct Orphans<'a> {
    client: &'a Client,
    tenant: &'a str,
    namespace: &'a str,
}

impl Orphans<'_> {
    async fn apply_or_prune<K>(&self, desired: Option<&K>) -> Result<Option<K>, Error>
    where
        K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Serialize
            + DeserializeOwned
            + Debug,
    {
        let applied = match desired {
            Some(object) => Some(apply_namespaced(self.client, object).await?),
            None => None,
        };
        let keep = desired.map(|o| o.name_any());
        let api = Api::<K>::namespaced(self.client.clone(), self.namespace);
        let selector = ListParams::default().labels(&format!("{TENANT_LABEL}={}", self.tenant));
        let existing = match api.list_metadata(&selector).await {
            Ok(list) => list.items,
            // The dedicated namespace may not exist yet (pooled tenants, first reconcile).
            Err(kube::Error::Api(status)) if status.code == 404 => Vec::new(),
            Err(source) => {
                return Err(Error::List {
                    kind: kind_of::<K>(),
                    source,
                });
            }
        };
        for orphan in existing
            .iter()
            .map(|o| o.name_any())
            .filter(|name| Some(name) != keep.as_ref())
        {
            tracing::info!(kind = kind_of::<K>(), name = %orphan, namespace = self.namespace, "deleting an orphaned object");
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
