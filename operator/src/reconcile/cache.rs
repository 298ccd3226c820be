//! Cache: reflector stores of everything the reconciler reads (Storefronts, plans and every
//! child kind), and the watch streams that decide when a Storefront is reconciled.
//!
//! Reads come from here, not from the API server: the plan, the existing config Secret, the
//! current state of each child (to skip an apply that would change nothing, see
//! [`super::apply`]) and the objects to prune. A steady-state resync therefore sends no request.
//!
//! Triggers are filtered so that a quiet cluster stays quiet:
//! - a Storefront triggers on a new generation (spec edits), finalizers, deletion, labels or
//!   annotations (annotating a Storefront is how a person asks for a reconcile now), never on
//!   its own status;
//! - a child triggers on a change of its *fingerprint*: everything but `status` and the
//!   server-kept metadata (resourceVersion, managedFields, generation, timestamps), plus the
//!   status fields the conditions read (a Deployment's `observedGeneration` and
//!   whether any replica is available, an Ingress's load balancer). A person's edit or deletion therefore
//!   still reaches the reconciler (drift repair), and a Deployment the Deployment controller has
//!   just observed makes its tenant Ready at once, while status chatter from
//!   kube-controller-manager (HPA metrics, quota usage, Deployment conditions) does not;
//! - the operator records the fingerprint of every object it just applied, so the watch event
//!   of its own write does not start another reconcile ("own-write suppression");
//! - a plan triggers the Storefronts on it when its generation changes.

use std::{
    collections::{HashMap, HashSet},
    fmt::Debug,
    hash::{DefaultHasher, Hash as _, Hasher as _},
    sync::{Arc, Mutex},
};

use futures::{StreamExt as _, stream};
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
    runtime::{
        WatchStreamExt as _,
        reflector::{self, ObjectRef, Store, store::Writer},
        watcher::{self, Event},
    },
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;

use super::build::TENANT_LABEL;
use crate::{
    config::ReadinessGate,
    crd::{Storefront, StorefrontPlan},
};

/// Label selector of everything the operator makes (tenant children and the pool).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=emporium-operator";
/// Set by the Deployment controller when it rolls out a template; not the operator's business.
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// A request to reconcile one Storefront, or a watch failure (retried with backoff).
pub type Trigger = Result<ObjectRef<Storefront>, watcher::Error>;

/// The cached objects of one child kind and the fingerprints last seen (or written) for them.
pub struct Watched<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    writer: Mutex<Option<Writer<K>>>,
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
}

/// Namespace and name.
type Key = (String, String);

#[derive(Debug, Clone)]
struct Seen {
    fingerprint: u64,
    owner: Option<String>,
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
        // Whether any replica is available, not how many: the count changes with every pod
        // start and stop, the condition only when it crosses zero.
        let status = self.status.as_ref();
        serde_json::json!([
            status.and_then(|s| s.observed_generation),
            availability && status.and_then(|s| s.available_replicas).unwrap_or(0) > 0,
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
    /// Whether replica availability is a readiness input (`--readiness-gate=available`).
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
            availability: gate == ReadinessGate::Available,
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

    /// Records the object the API server returned for the operator's own apply, so the watch
    /// event of that write does not trigger another reconcile.
    pub fn record_own_write<K: Child>(&self, object: &K) {
        let watched = K::watched(self);
        if let Ok(mut seen) = watched.seen.lock() {
            seen.insert(key(object), seen_of(object, self.availability));
        }
    }

    /// The watch streams of every child kind: each fills its store and yields the Storefronts
    /// to reconcile. Call once.
    pub fn child_triggers(&self, client: &Client) -> Vec<stream::BoxStream<'static, Trigger>> {
        vec![
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.namespaces,
            ),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.service_accounts,
            ),
            child_stream(Api::all(client.clone()), self.availability, &self.roles),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.role_bindings,
            ),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.resource_quotas,
            ),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.limit_ranges,
            ),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.network_policies,
            ),
            child_stream(Api::all(client.clone()), self.availability, &self.secrets),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.deployments,
            ),
            child_stream(Api::all(client.clone()), self.availability, &self.services),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.autoscalers,
            ),
            child_stream(
                Api::all(client.clone()),
                self.availability,
                &self.disruption_budgets,
            ),
            child_stream(Api::all(client.clone()), self.availability, &self.ingresses),
        ]
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

fn key<K: Resource>(object: &K) -> Key {
    (
        object.meta().namespace.clone().unwrap_or_default(),
        object.meta().name.clone().unwrap_or_default(),
    )
}

fn seen_of<K: Child>(object: &K, availability: bool) -> Seen {
    Seen {
        fingerprint: fingerprint(object, availability),
        owner: storefront_owner(object),
    }
}

/// The Storefront controlling `object`, by its owner references.
fn storefront_owner<K: Resource>(object: &K) -> Option<String> {
    object
        .meta()
        .owner_references
        .as_ref()?
        .iter()
        .find(|owner| owner.kind == "Storefront" && owner.api_version.starts_with("emporium.dev/"))
        .map(|owner| owner.name.clone())
}

/// A hash of what matters about a child: its content without `status` and without the
/// metadata the API server and other controllers keep, plus [`Child::observed_status`].
/// In-memory only (never written anywhere), so a fast non-cryptographic hash is enough.
pub fn fingerprint<K: Child>(object: &K, availability: bool) -> u64 {
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.retain(|field, _| {
                matches!(
                    field.as_str(),
                    "labels"
                        | "annotations"
                        | "ownerReferences"
                        | "deletionTimestamp"
                        | "finalizers"
                )
            });
            if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
                annotations.remove(REVISION_ANNOTATION);
            }
        }
        map.insert(
            "observedStatus".to_owned(),
            object.observed_status(availability),
        );
    }
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

/// Drops what the operator never reads from cached objects (managed fields are most of a
/// Deployment's size).
fn slim<K: Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The watch of one child kind (objects labelled as the operator's), filling `watched`'s store
/// and yielding the owner of every object whose fingerprint changed or that was deleted.
fn child_stream<K: Child>(
    api: Api<K>,
    availability: bool,
    watched: &Watched<K>,
) -> stream::BoxStream<'static, Trigger> {
    let Some(writer) = watched.writer.lock().ok().and_then(|mut w| w.take()) else {
        return stream::empty().boxed();
    };
    let seen = watched.seen.clone();
    // Keys listed during a (re-)list, to find objects deleted while the watch was down.
    let mut listing: Option<HashSet<Key>> = None;
    let config = watcher::Config::default().labels(MANAGED_SELECTOR);
    watcher::watcher(api, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .map(move |event| -> Vec<Trigger> {
            let Ok(mut seen) = seen.lock() else {
                return Vec::new();
            };
            let owner_ref = |owner: Option<String>| owner.map(|name| Ok(ObjectRef::new(&name)));
            match event {
                Ok(Event::Apply(object)) => {
                    let now = seen_of(&object, availability);
                    let changed = seen
                        .get(&key(&object))
                        .is_none_or(|before| before.fingerprint != now.fingerprint);
                    let owner = now.owner.clone();
                    seen.insert(key(&object), now);
                    if changed {
                        owner_ref(owner).into_iter().collect()
                    } else {
                        Vec::new()
                    }
                }
                Ok(Event::Delete(object)) => {
                    seen.remove(&key(&object));
                    owner_ref(storefront_owner(&object)).into_iter().collect()
                }
                Ok(Event::Init) => {
                    listing = Some(HashSet::new());
                    Vec::new()
                }
                Ok(Event::InitApply(object)) => {
                    let now = seen_of(&object, availability);
                    let changed = seen
                        .get(&key(&object))
                        .is_some_and(|before| before.fingerprint != now.fingerprint);
                    let owner = now.owner.clone();
                    if let Some(listing) = listing.as_mut() {
                        listing.insert(key(&object));
                    }
                    seen.insert(key(&object), now);
                    // At start-up every Storefront is reconciled anyway; after a re-list only
                    // what changed while the watch was down.
                    if changed {
                        owner_ref(owner).into_iter().collect()
                    } else {
                        Vec::new()
                    }
                }
                Ok(Event::InitDone) => {
                    let Some(listed) = listing.take() else {
                        return Vec::new();
                    };
                    let gone: Vec<Key> = seen
                        .keys()
                        .filter(|key| !listed.contains(*key))
                        .cloned()
                        .collect();
                    gone.iter()
                        .filter_map(|key| seen.remove(key))
                        .filter_map(|before| owner_ref(before.owner))
                        .collect()
                }
                Err(error) => vec![Err(error)],
            }
        })
        .flat_map(stream::iter)
        .boxed()
}

/// What about a Storefront starts a reconcile: a new generation (spec), finalizers, deletion,
/// labels and annotations; never its status.
fn storefront_fingerprint(storefront: &Storefront) -> u64 {
    let meta = &storefront.metadata;
    let mut hasher = DefaultHasher::new();
    meta.generation.hash(&mut hasher);
    meta.deletion_timestamp.is_some().hash(&mut hasher);
    meta.finalizers.hash(&mut hasher);
    meta.labels.hash(&mut hasher);
    meta.annotations.hash(&mut hasher);
    hasher.finish()
}

/// The Storefront watch: fills `writer`'s store and yields the Storefronts to reconcile (all
/// of them once listed, then those whose spec, finalizers, labels, annotations or deletion
/// changed).
pub fn storefront_triggers(
    api: Api<Storefront>,
    config: watcher::Config,
    writer: Writer<Storefront>,
) -> stream::BoxStream<'static, Trigger> {
    let mut seen: HashMap<String, u64> = HashMap::new();
    watcher::watcher(api, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .filter_map(move |event| {
            let trigger = match event {
                Ok(Event::Apply(storefront)) => {
                    let now = storefront_fingerprint(&storefront);
                    let name = storefront.name_any();
                    let changed = seen.insert(name.clone(), now) != Some(now);
                    changed.then(|| Ok(ObjectRef::new(&name)))
                }
                Ok(Event::InitApply(storefront)) => {
                    let name = storefront.name_any();
                    seen.insert(name.clone(), storefront_fingerprint(&storefront));
                    Some(Ok(ObjectRef::new(&name)))
                }
                Ok(Event::Delete(storefront)) => {
                    seen.remove(&storefront.name_any());
                    None
                }
                Ok(Event::Init | Event::InitDone) => None,
                Err(error) => Some(Err(error)),
            };
            std::future::ready(trigger)
        })
        .boxed()
}

/// The plan watch: fills `writer`'s store; a plan whose generation changed (or that was
/// deleted) reconciles every Storefront on it.
pub fn plan_triggers(
    api: Api<StorefrontPlan>,
    writer: Writer<StorefrontPlan>,
    storefronts: Store<Storefront>,
) -> stream::BoxStream<'static, Trigger> {
    let mut seen: HashMap<String, Option<i64>> = HashMap::new();
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .map(move |event| -> Vec<Trigger> {
            let on_plan = |plan: &str| -> Vec<Trigger> {
                storefronts
                    .state()
                    .iter()
                    .filter(|sf| sf.spec.plan == plan)
                    .map(|sf| Ok(ObjectRef::from_obj(sf.as_ref())))
                    .collect()
            };
            match event {
                Ok(Event::Apply(plan)) => {
                    let name = plan.name_any();
                    let generation = plan.metadata.generation;
                    if seen.insert(name.clone(), generation) == Some(generation) {
                        Vec::new()
                    } else {
                        on_plan(&name)
                    }
                }
                Ok(Event::InitApply(plan)) => {
                    let name = plan.name_any();
                    let generation = plan.metadata.generation;
                    match seen.insert(name.clone(), generation) {
                        Some(before) if before != generation => on_plan(&name),
                        _ => Vec::new(),
                    }
                }
                Ok(Event::Delete(plan)) => {
                    let name = plan.name_any();
                    seen.remove(&name);
                    on_plan(&name)
                }
                Ok(Event::Init | Event::InitDone) => Vec::new(),
                Err(error) => vec![Err(error)],
            }
        })
        .flat_map(stream::iter)
        .boxed()
}
