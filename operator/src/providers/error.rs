//! Why a provider call failed. Each variant's message says what failed and what to do.

/// A provider call that did not get an answer about the resource. The reconcile step records
/// the message in the condition and retries with backoff; [`ProviderError::is_transient`] tells
/// it whether retrying can help without a person.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The endpoint did not answer (connection refused, DNS, timeout). `message` names the
    /// endpoint and what happened, e.g. `endpoint http://127.0.0.1:5000 unreachable: connection
    /// refused (nothing listens there)`.
    #[error(
        "cannot reach AWS {service} for {operation}: {message}; the operator keeps retrying with backoff. If this persists, check that the endpoint is up, AWS_ENDPOINT_URL / AWS_REGION, and the network path to it"
    )]
    Unreachable {
        service: &'static str,
        operation: &'static str,
        message: String,
    },

    /// AWS kept throttling after the SDK's own retries with jitter.
    #[error(
        "AWS {service} throttled {operation} ({code}) even after retries; the operator retries with backoff. If this persists, lower the operator's concurrency or raise the account's API quota"
    )]
    Throttled {
        service: &'static str,
        operation: &'static str,
        code: String,
    },

    /// The operator's identity lacks a permission.
    #[error(
        "AWS {service} denied {operation} on {resource} ({code}: {message}). Grant the operator's IAM role the policy in docs/operations.md"
    )]
    AccessDenied {
        service: &'static str,
        operation: &'static str,
        resource: String,
        code: String,
        message: String,
    },

    /// AWS answered with an error about this request.
    #[error("AWS {service} rejected {operation} on {resource} ({code}): {message}")]
    Rejected {
        service: &'static str,
        operation: &'static str,
        resource: String,
        code: String,
        message: String,
    },

    /// The RDS-managed master user secret could not be read or parsed.
    #[error(
        "cannot read the master user secret of cluster {cluster}: {message}. The operator needs secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)"
    )]
    MasterSecret {
        cluster: String,
        message: String,
        /// The parse error, when the secret was there but not RDS's JSON.
        #[source]
        source: Option<serde_json::Error>,
    },

    /// A statement against the PostgreSQL server failed.
    #[error("PostgreSQL: {action} failed: {message}")]
    Postgres {
        action: String,
        /// The server's message and SQLSTATE (never the statement).
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },

    /// The PostgreSQL server is not reachable with the configured admin URL.
    #[error(
        "cannot connect to the PostgreSQL server as its admin: {source}. Check the admin connection URL the operator was given; the operator keeps retrying with backoff"
    )]
    PostgresUnreachable {
        #[source]
        source: tokio_postgres::Error,
    },

    /// The operator's provider configuration is wrong; fix the flags/env and restart.
    #[error("provider configuration: {0}")]
    Config(String),

    /// The SDK refused to build a DynamoDB request the operator assembled: an operator bug.
    #[error("provider configuration: building a DynamoDB request failed: {0}")]
    DynamoRequest(#[source] aws_sdk_dynamodb::error::BuildError),
}

impl ProviderError {
    /// Whether retrying later can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Unreachable { .. }
            | ProviderError::Throttled { .. }
            | ProviderError::PostgresUnreachable { .. } => true,
            ProviderError::Rejected { code, .. } => is_server_side(code),
            ProviderError::Postgres { .. }
            | ProviderError::AccessDenied { .. }
            | ProviderError::MasterSecret { .. }
            | ProviderError::Config(_)
            | ProviderError::DynamoRequest(_) => false,
        }
    }

    /// A short CamelCase word for a condition reason or a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ProviderError::Unreachable { .. } | ProviderError::PostgresUnreachable { .. } => {
                "Unreachable"
            }
            ProviderError::Throttled { .. } => "Throttled",
            ProviderError::AccessDenied { .. } => "AccessDenied",
            ProviderError::Rejected { .. } => "Rejected",
            ProviderError::MasterSecret { .. } => "MasterSecretUnreadable",
            ProviderError::Postgres { .. } => "PostgresError",
            ProviderError::Config(_) | ProviderError::DynamoRequest(_) => "Misconfigured",
        }
    }
}

pub(crate) fn is_server_side(code: &str) -> bool {
    matches!(
        code,
        "InternalFailure" | "InternalServerError" | "ServiceUnavailable" | "InternalError"
    )
}

pub(crate) fn is_throttling(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "TooManyRequestsException"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "BandwidthLimitExceeded"
            | "SlowDown"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
}

pub(crate) fn is_access_denied(code: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "KMSKeyNotAccessibleFault"
    )
}
