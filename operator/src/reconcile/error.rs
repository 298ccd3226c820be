//! The reconcile error: what one reconcile of a Storefront failed at, its metric label, and
//! whether it only means "not done yet".

use kube::runtime::finalizer;

use super::build;

/// One reconcile failed; the message says what and what to do. Retried with exponential
/// backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot apply {kind} {name}: {source}; check the operator's RBAC and the API server's message"
    )]
    Apply {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error("cannot list {kind} objects to find orphans: {source}")]
    List { kind: String, source: kube::Error },
    #[error("cannot delete {kind} {name}: {source}")]
    Delete {
        kind: String,
        name: String,
        source: kube::Error,
    },
    #[error(transparent)]
    Build(#[from] build::BuildError),
    #[error("cannot read StorefrontPlan `{plan}`: {source}")]
    ReadPlan { plan: String, source: kube::Error },
    #[error("cannot read Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    #[error(
        "payments Secret {namespace}/{name} is missing or lacks the key `{key}`; create it with keys secretKey and webhookSecret"
    )]
    PaymentsSecret {
        namespace: String,
        name: String,
        key: &'static str,
    },
    #[error("cannot serialize the {kind} {name} to hash it: {source}; this is an operator bug")]
    Serialize {
        kind: String,
        name: String,
        source: serde_json::Error,
    },
    #[error("the reconcile task stopped unexpectedly ({0}); it is retried")]
    Task(#[source] tokio::task::JoinError),
    #[error("the operator's caches stopped (shutting down)")]
    CacheGone,
    #[error("cannot write the status of Storefront `{name}`: {source}")]
    WriteStatus { name: String, source: kube::Error },
    #[error("the Storefront has no name or uid; it was not read from the API server")]
    MissingMetadata,
    #[error(
        "the tenant's data is still being released ({0}); the finalizer stays until it is done"
    )]
    DataReleasing(String),
    #[error(
        "the tenant's data cannot be released without a person ({0}); the finalizer stays and the operator retries"
    )]
    DataReleaseBlocked(String),
    #[error("finalizer step failed: {0}")]
    Finalizer(#[source] Box<finalizer::Error<Error>>),
}

impl Error {
    /// A short label for the errors metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Error::Apply { .. } => "apply",
            Error::List { .. } => "list",
            Error::Delete { .. } => "delete",
            Error::Build(_) => "build",
            Error::ReadPlan { .. } => "read_plan",
            Error::ReadSecret { .. } => "read_secret",
            Error::PaymentsSecret { .. } => "payments_secret",
            Error::WriteStatus { .. } => "write_status",
            Error::Serialize { .. } => "serialize",
            Error::Task(_) => "task",
            Error::CacheGone => "cache_gone",
            Error::MissingMetadata => "missing_metadata",
            Error::DataReleasing(_) => "data_releasing",
            Error::DataReleaseBlocked(_) => "data_release_blocked",
            Error::Finalizer(inner) => match inner.as_ref() {
                finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e) => {
                    e.metric_reason()
                }
                _ => "finalizer",
            },
        }
    }

    /// The `Ready` condition's reason while this error stops the reconcile: a reconcile-time
    /// failure is always shown in the status, never only in the log.
    pub fn condition_reason(&self) -> &'static str {
        match self {
            Error::Apply { .. } => "ApplyFailed",
            Error::List { .. } => "ListFailed",
            Error::Delete { .. } => "DeleteFailed",
            Error::Build(_) => "BuildFailed",
            Error::ReadPlan { .. } => "PlanUnreadable",
            Error::ReadSecret { .. } => "SecretUnreadable",
            Error::PaymentsSecret { .. } => "PaymentsSecretMissing",
            Error::WriteStatus { .. } => "StatusWriteFailed",
            Error::Serialize { .. } => "OperatorBug",
            Error::Task(_) | Error::CacheGone | Error::MissingMetadata | Error::Finalizer(_) => {
                "ReconcileError"
            }
            Error::DataReleasing(_) => "DataReleasing",
            Error::DataReleaseBlocked(_) => "DataReleaseBlocked",
        }
    }

    /// Whether a person must act (the phase turns `Failed`) rather than wait for a retry.
    pub fn needs_person(&self) -> bool {
        matches!(
            self,
            Error::PaymentsSecret { .. } | Error::Apply { .. } | Error::Build(_)
        )
    }

    /// Whether the error only means "not done yet" (a deletion AWS is working on): retried at
    /// the progress interval rather than with a growing backoff.
    pub(super) fn is_progress(&self) -> bool {
        match self {
            Error::DataReleasing(_) => true,
            Error::Finalizer(inner) => matches!(
                inner.as_ref(),
                finalizer::Error::CleanupFailed(Error::DataReleasing(_))
            ),
            _ => false,
        }
    }
}
