//! Triggers: the watch streams that fill the [`super::Cache`] stores and decide when a
//! Storefront is reconciled, filtered so that a quiet cluster stays quiet:
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
    hash::{DefaultHasher, Hash as _, Hasher as _},
};

use futures::{StreamExt as _, stream};
use kube::{
    Api, Client, Resource, ResourceExt as _,
    runtime::{
        WatchStreamExt as _,
        reflector::{ObjectRef, Store, store::Writer},
        watcher::{self, Event},
    },
};
use serde_json::Value;

use super::{Cache, Child, MANAGED_SELECTOR, Watched};
use crate::crd::{Hostname, Storefront, StorefrontPlan};

/// Set by the Deployment controller when it rolls out a template; not the operator's business.
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

/// A request to reconcile one Storefront, or a watch failure (retried with backoff).
pub type Trigger = Result<ObjectRef<Storefront>, watcher::Error>;

/// Namespace and name.
pub(super) type Key = (String, String);

/// The fingerprint last seen (or written) for one child, and the Storefront owning it.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    fingerprint: u64,
    owner: Option<String>,
}

impl Cache {
    /// Records the object the API server returned for the operator's own apply, so the watch
    /// event of that write does not trigger another reconcile.
    pub fn record_own_write<K: Child>(&self, object: &K) {
        let watched = K::watched(self);
        watched
            .seen
            .lock()
            .insert(key(object), seen_of(object, self.availability));
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
            child_stream_with(
                Api::all(client.clone()),
                self.availability,
                &self.deployments,
                Some(self.storefronts.clone()),
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
    child_stream_with(api, availability, watched, None)
}

/// [`child_stream`]; with `pooled`, a change of an object no Storefront owns (the shared
/// pool's Deployment) reconciles every pooled Storefront, whose `WorkloadReady` follows it.
fn child_stream_with<K: Child>(
    api: Api<K>,
    availability: bool,
    watched: &Watched<K>,
    pooled: Option<Store<Storefront>>,
) -> stream::BoxStream<'static, Trigger> {
    let Some(writer) = watched.writer.lock().take() else {
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
            let mut seen = seen.lock();
            let owner_ref = |owner: Option<String>| -> Vec<Trigger> {
                match (owner, &pooled) {
                    (Some(name), _) => vec![Ok(ObjectRef::new(&name))],
                    (None, Some(storefronts)) => storefronts
                        .state()
                        .iter()
                        .filter(|sf| {
                            sf.status.as_ref().and_then(|s| s.tier)
                                == Some(crate::crd::Tier::Pooled)
                        })
                        .map(|sf| Ok(ObjectRef::from_obj(sf.as_ref())))
                        .collect(),
                    (None, None) => Vec::new(),
                }
            };
            match event {
                Ok(Event::Apply(object)) => {
                    let now = seen_of(&object, availability);
                    let changed = seen
                        .get(&key(&object))
                        .is_none_or(|before| before.fingerprint != now.fingerprint);
                    let owner = now.owner.clone();
                    seen.insert(key(&object), now);
                    if changed {
                        owner_ref(owner)
                    } else {
                        Vec::new()
                    }
                }
                Ok(Event::Delete(object)) => {
                    seen.remove(&key(&object));
                    owner_ref(storefront_owner(&object))
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
                        owner_ref(owner)
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
                        .flat_map(|before| owner_ref(before.owner))
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
pub(super) fn storefront_fingerprint(storefront: &Storefront) -> u64 {
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
/// changed). A Storefront that lets go of hostnames (deleted, being deleted, or its domains
/// edited) also reconciles every other Storefront listing one of them, so the oldest waiting
/// one takes the hostname over at once rather than at its next resync.
pub fn storefront_triggers(
    api: Api<Storefront>,
    config: watcher::Config,
    writer: Writer<Storefront>,
) -> stream::BoxStream<'static, Trigger> {
    let store = writer.as_reader();
    let mut seen: HashMap<String, (u64, Vec<Hostname>)> = HashMap::new();
    watcher::watcher(api, config)
        .default_backoff()
        .modify(slim)
        .reflect(writer)
        .map(move |event| -> Vec<Trigger> {
            match event {
                Ok(Event::Apply(storefront)) => {
                    let now = storefront_fingerprint(&storefront);
                    let name = storefront.name_any();
                    let held = held_domains(&storefront);
                    let before = seen.insert(name.clone(), (now, held.clone()));
                    let mut triggers = Vec::new();
                    if before.as_ref().map(|(fp, _)| *fp) != Some(now) {
                        triggers.push(Ok(ObjectRef::new(&name)));
                    }
                    if let Some((_, before)) = before {
                        let released: Vec<&Hostname> =
                            before.iter().filter(|d| !held.contains(d)).collect();
                        triggers.extend(waiting_for(&store, &name, &released));
                    }
                    triggers
                }
                Ok(Event::InitApply(storefront)) => {
                    let name = storefront.name_any();
                    let held = held_domains(&storefront);
                    seen.insert(name.clone(), (storefront_fingerprint(&storefront), held));
                    vec![Ok(ObjectRef::new(&name))]
                }
                Ok(Event::Delete(storefront)) => {
                    let name = storefront.name_any();
                    seen.remove(&name);
                    let released: Vec<&Hostname> = storefront.spec.domains.iter().collect();
                    waiting_for(&store, &name, &released)
                }
                Ok(Event::Init | Event::InitDone) => Vec::new(),
                Err(error) => vec![Err(error)],
            }
        })
        .flat_map(stream::iter)
        .boxed()
}

/// The hostnames a Storefront can hold: none once it is being deleted.
fn held_domains(storefront: &Storefront) -> Vec<Hostname> {
    if storefront.metadata.deletion_timestamp.is_some() {
        Vec::new()
    } else {
        storefront.spec.domains.clone()
    }
}

/// Every live Storefront but `releasing` that lists one of `released`.
fn waiting_for(store: &Store<Storefront>, releasing: &str, released: &[&Hostname]) -> Vec<Trigger> {
    if released.is_empty() {
        return Vec::new();
    }
    store
        .state()
        .iter()
        .filter(|sf| sf.name_any() != releasing && sf.metadata.deletion_timestamp.is_none())
        .filter(|sf| sf.spec.domains.iter().any(|d| released.contains(&d)))
        .map(|sf| Ok(ObjectRef::from_obj(sf.as_ref())))
        .collect()
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
