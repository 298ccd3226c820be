//! Cloud providers: the tenant's database and DynamoDB tables, each behind a trait.
//!
//! The reconcile step turns a `Storefront` and its plan into the small request types here
//! ([`TenantDatabase`], [`TenantTables`]) and calls a provider. Every call observes first and
//! then makes at most the next step towards the desired state, so it is safe to call on every
//! reconcile, after a crash, or twice at once: nothing is created twice because every name is
//! derived from the tenant ([`names`]) and described before it is created.
//!
//! A call answers with an [`Outcome`]: `Ready` (with what the tenant needs), `Progressing`
//! (AWS is busy; requeue with backoff), or `Terminal` (a person must act; the message says what).
//! Failures of the call itself (network, throttling after retries, permissions) are a
//! [`ProviderError`].

pub mod aws;
pub mod database;
mod error;
pub mod names;
pub mod queues;
mod secret;
pub mod snapshots;
pub mod tables;

use std::{future::Future, pin::Pin, time::Duration};

pub use emporium_tenant_config::Tier;

pub use self::{
    database::{
        AuroraConfig, AuroraProvider, Capacity, DatabaseConnection, DatabaseProvider,
        PostgresConfig, PostgresProvider, TenantDatabase,
    },
    error::ProviderError,
    queues::{QueueProvisioner, SqsQueues, TenantQueue},
    secret::SecretString,
    snapshots::{SnapshotSettings, SnapshotStore},
    tables::{
        AdoptTables, DynamoTables, ItemPurge, TableKind, TableProvisioner, TableSettings,
        TableStorage, TenantTables,
    },
};

/// What the operator does with a tenant's data when its `Storefront` is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeletionPolicy {
    /// Leave the resource in place, tagged `emporium.dev/orphaned=true` (and, on Aurora, still
    /// deletion-protected).
    Retain,
    /// Take a final snapshot/backup with a deterministic name, then delete.
    Snapshot,
    /// Delete without a snapshot.
    Delete,
}

/// The state of a provider resource after one provider call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome<T> {
    /// The resource is usable; `T` says how to reach it.
    Ready(T),
    /// AWS (or the server) is working on it; call again later. `reason` is a CamelCase word
    /// fit for a condition reason (`Creating`, `Modifying`, `BackingUp`, `Deleting`, ...).
    Progressing {
        reason: &'static str,
        message: String,
    },
    /// The resource cannot become ready without a person: reason `Terminal` for a failed AWS
    /// state (the message carries what AWS reported), `Missing` for a retained resource that no
    /// longer exists, `AdoptionFailed` for an adoption target that is absent or unsuitable,
    /// `NameConflict` for a tenant whose derived name is taken by the shared pool.
    Terminal {
        reason: &'static str,
        message: String,
    },
}

impl<T> Outcome<T> {
    /// How long the reconcile step should wait before calling again (it may add its own
    /// exponential backoff on top for repeated `Terminal` outcomes).
    pub fn requeue_after(&self) -> Option<Duration> {
        match self {
            Outcome::Ready(_) => None,
            Outcome::Progressing { .. } => Some(Duration::from_secs(15)),
            Outcome::Terminal { .. } => Some(Duration::from_secs(300)),
        }
    }

    pub fn is_ready(&self) -> bool {
        matches!(self, Outcome::Ready(_))
    }

    pub(crate) fn progressing(reason: &'static str, message: impl Into<String>) -> Self {
        Outcome::Progressing {
            reason,
            message: message.into(),
        }
    }

    pub(crate) fn terminal(reason: &'static str, message: impl Into<String>) -> Self {
        Outcome::Terminal {
            reason,
            message: message.into(),
        }
    }

    /// Same state with a different ready payload (for forwarding a non-ready outcome).
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Outcome<U> {
        match self {
            Outcome::Ready(t) => Outcome::Ready(f(t)),
            Outcome::Progressing { reason, message } => Outcome::Progressing { reason, message },
            Outcome::Terminal { reason, message } => Outcome::Terminal { reason, message },
        }
    }
}

/// What a finished deletion did, in words fit for an Event or a condition message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deletion {
    pub summary: String,
}

impl Deletion {
    pub(crate) fn new(summary: impl Into<String>) -> Self {
        Self {
            summary: summary.into(),
        }
    }
}

/// A boxed future, so the provider traits can be used as `Arc<dyn ...>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Tag keys the providers put on everything they create.
pub mod tags {
    pub const TENANT: &str = "emporium.dev/tenant";
    /// The owning Storefront's `metadata.uid`: tells a Storefront from an older one of the
    /// same name.
    pub const OWNER_UID: &str = "emporium.dev/owner-uid";
    pub const MANAGED_BY: &str = "emporium.dev/managed-by";
    pub const MANAGED_BY_VALUE: &str = "emporium-operator";
    pub const ORPHANED: &str = "emporium.dev/orphaned";
    pub const ADOPTED: &str = "emporium.dev/adopted";
    pub const POOL: &str = "emporium.dev/pool";
}
