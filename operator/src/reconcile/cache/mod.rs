//! Cache: reflector stores of everything the reconciler reads (Storefronts, plans and every
//! child kind). The watch streams that fill them and decide when a Storefront is reconciled are
//! in `triggers.rs`.
//!
//! Reads come from here, not from the API server: the plan, the existing config Secret, the
//! current state of each child (to skip an apply that would change nothing, see
//! [`super::apply`]) and the objects to prune. A steady-state resync therefore sends no request.

#[cfg(test)]
mod tests;
mod triggers;

use std::{collections::HashMap, fmt::Debug, sync::Arc};

use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    core::v1::{LimitRange, Namespace, ResourceQuota, Secret, Service, ServiceAccount},
    networking::v1::{Ingress, NetworkPolicy},
    policy::v1::PodDisruptionBudget,
    rbac::v1::{Role, RoleBinding},
};
use kube::{
    Api, Client, Resource, ResourceExt as _,
    runtime::reflector::{self, ObjectRef, Store, store::Writer},
};
use parking_lot::Mutex;
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use self::triggers::{Key, Seen};
pub use self::triggers::{Trigger, fingerprint, plan_triggers, storefront_triggers};
use super::build::TENANT_LABEL;
use crate::{
    config::ReadinessGate,
    crd::{Storefront, StorefrontPlan},
};

/// Label selector of everything the operator makes (tenant children and the pool).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=emporium-operator";

/// The cached objects of one child kind and the fingerprints last seen (or written) for them.
pub struct Watched<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    writer: Mutex<Option<Writer<K>>>,
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
}

impl<K> Watched<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    fn new() -> Self {
        let writer = Writer::<K>::new(());
        Self {
            store: writer.as_reader(),
            writer: Mutex::new(Some(writer)),
            seen: Arc::default(),
        }
    }

    /// The cached object `name` in `namespace` (`""` for cluster-scoped kinds).
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        let mut reference = ObjectRef::new(name);
        if !namespace.is_empty() {
            reference = reference.within(namespace);
        }
        self.store.get(&reference)
    }

    /// The cached objects of `tenant` in `namespace` (found by the tenant label).
    pub fn of_tenant(&self, namespace: &str, tenant: &str) -> Vec<Arc<K>> {
        self.store.state_filter(|object| {
            object.namespace().as_deref().unwrap_or_default() == namespace
                && object.labels().get(TENANT_LABEL).map(String::as_str) == Some(tenant)
        })
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }
}

/// One child kind the operator applies: where its cache is, and which status fields the
/// reconciler reads (a change there must trigger a reconcile).
pub trait Child:
    Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug + Send + Sync + 'static
{
    fn watched(cache: &Cache) -> &Watched<Self>;

    /// The API of this kind where an object named in `namespace` (`""`: cluster-scoped) lives.
    fn api(client: Client, namespace: &str) -> Api<Self>;

    /// The part of `status` the conditions depend on; `Null` for kinds whose status is
    /// irrelevant. `availability`: whether Ready waits for a replica and a load balancer
    /// (`--readiness-gate=available`).
    fn observed_status(&self, _availability: bool) -> Value {
        Value::Null
    }
}

macro_rules! child {
    ($kind:ty, $field:ident) => {
        impl Child for $kind {
            fn watched(cache: &Cache) -> &Watched<Self> {
                &cache.$field
            }

            fn api(client: Client, namespace: &str) -> Api<Self> {
                Api::namespaced(client, namespace)
            }
        }
    };
}

impl Child for Namespace {
    fn watched(cache: &Cache) -> &Watched<Self> {
        &cache.namespaces
    }

    fn api(client: Client, _namespace: &str) -> Api<Self> {
        Api::all(client)
    }
}

child!(ServiceAccount, service_accounts);
child!(Role, roles);
child!(RoleBinding, role_bindings);
child!(ResourceQuota, resource_quotas);
child!(LimitRange, limit_ranges);
child!(NetworkPolicy, network_policies);
child!(Secret, secrets);
child!(Service, services);
child!(HorizontalPodAutoscaler, autoscalers);
child!(PodDisruptionBudget, disruption_budgets);

impl Child for Deployment {
    fn watched(cache: &Cache) -> &Watched<Self> {
        &cache.deployments
    }

    fn api(client: Client, namespace: &str) -> Api<Self> {
        Api::namespaced(client, namespace)
    }

    fn observed_status(&self, availability: bool) -> Value {
        // Whether the Deployment is Available, not how many replicas are: the count changes
        // with every pod start and stop, the condition only when it flips.
        let status = self.status.as_ref();
        serde_json::json!([
            status.and_then(|s| s.observed_generation),
            availability && crate::reconcile::apply::deployment_available(self),
        ])
    }
}

impl Child for Ingress {
    fn watched(cache: &Cache) -> &Watched<Self> {
        &cache.ingresses
    }

    fn api(client: Client, namespace: &str) -> Api<Self> {
        Api::namespaced(client, namespace)
    }

    fn observed_status(&self, _availability: bool) -> Value {
        serde_json::to_value(self.status.as_ref().and_then(|s| s.load_balancer.as_ref()))
            .unwrap_or_default()
    }
}

/// Every store the reconciler reads.
pub struct Cache {
    pub storefronts: Store<Storefront>,
    pub plans: Store<StorefrontPlan>,
    pub namespaces: Watched<Namespace>,
    pub service_accounts: Watched<ServiceAccount>,
    pub roles: Watched<Role>,
    pub role_bindings: Watched<RoleBinding>,
    pub resource_quotas: Watched<ResourceQuota>,
    pub limit_ranges: Watched<LimitRange>,
    pub network_policies: Watched<NetworkPolicy>,
    pub secrets: Watched<Secret>,
    pub deployments: Watched<Deployment>,
    pub services: Watched<Service>,
    pub autoscalers: Watched<HorizontalPodAutoscaler>,
    pub disruption_budgets: Watched<PodDisruptionBudget>,
    pub ingresses: Watched<Ingress>,
    /// `true` once the plan and child stores have been listed. Reconciles wait on this rather
    /// than on each store: a kube store's readiness wakes only one of several concurrent
    /// waiters, which left reconciles hanging.
    ready: tokio::sync::watch::Sender<bool>,
    /// Whether the Deployments' `Available` condition is a readiness input (every gate but
    /// `applied`).
    availability: bool,
}

impl Cache {
    /// Empty stores, filled by the streams [`Cache::child_triggers`], [`storefront_triggers`]
    /// and [`plan_triggers`] return.
    pub fn new(
        storefronts: Store<Storefront>,
        plans: Store<StorefrontPlan>,
        gate: ReadinessGate,
    ) -> Self {
        Self {
            availability: gate.waits_for_availability(),
            storefronts,
            plans,
            namespaces: Watched::new(),
            service_accounts: Watched::new(),
            roles: Watched::new(),
            role_bindings: Watched::new(),
            resource_quotas: Watched::new(),
            limit_ranges: Watched::new(),
            network_policies: Watched::new(),
            secrets: Watched::new(),
            deployments: Watched::new(),
            services: Watched::new(),
            autoscalers: Watched::new(),
            disruption_budgets: Watched::new(),
            ingresses: Watched::new(),
            ready: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Waits until the plan and child stores have been listed once (immediate afterwards).
    /// The Storefront store is waited for by the applier itself.
    pub async fn ready(&self) -> Result<(), tokio::sync::watch::error::RecvError> {
        self.ready
            .subscribe()
            .wait_for(|ready| *ready)
            .await
            .map(|_| ())
    }

    /// Marks the cache ready once every plan and child store has been listed: the one waiter
    /// on those stores. Spawn it once, beside the applier that drives the watches.
    pub async fn mark_ready_when_listed(&self) -> Result<(), reflector::store::WriterDropped> {
        self.plans.wait_until_ready().await?;
        self.namespaces.store.wait_until_ready().await?;
        self.service_accounts.store.wait_until_ready().await?;
        self.roles.store.wait_until_ready().await?;
        self.role_bindings.store.wait_until_ready().await?;
        self.resource_quotas.store.wait_until_ready().await?;
        self.limit_ranges.store.wait_until_ready().await?;
        self.network_policies.store.wait_until_ready().await?;
        self.secrets.store.wait_until_ready().await?;
        self.deployments.store.wait_until_ready().await?;
        self.services.store.wait_until_ready().await?;
        self.autoscalers.store.wait_until_ready().await?;
        self.disruption_budgets.store.wait_until_ready().await?;
        self.ingresses.store.wait_until_ready().await?;
        tracing::info!(
            children = self.children_cached(),
            "caches listed; reconciles may start"
        );
        self.ready.send_replace(true);
        Ok(())
    }

    /// Objects cached, summed over the child kinds (for logs).
    pub fn children_cached(&self) -> usize {
        self.namespaces.len()
            + self.service_accounts.len()
            + self.roles.len()
            + self.role_bindings.len()
            + self.resource_quotas.len()
            + self.limit_ranges.len()
            + self.network_policies.len()
            + self.secrets.len()
            + self.deployments.len()
            + self.services.len()
            + self.autoscalers.len()
            + self.disruption_budgets.len()
            + self.ingresses.len()
    }
}
