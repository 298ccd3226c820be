//! AWS plumbing shared by the providers: the SDK configuration (retry with jitter, endpoint)
//! and the mapping of SDK errors to [`ProviderError`].

use std::fmt::Debug;

use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig};
use aws_sdk_rds::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::{
    ProviderError,
    error::{is_access_denied, is_throttling},
};

/// How many times the SDK tries one call before giving up (the first try included). The
/// standard retry mode retries throttling, 5xx and transient network errors with exponential
/// backoff and full jitter, within a client-side retry quota.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// The retry policy every provider client uses.
pub fn retry_config(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard().with_max_attempts(max_attempts.max(1))
}

/// Loads the AWS configuration the standard way (env, profile, IRSA web identity, IMDS),
/// including `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_RDS` for
/// moto or another compatible endpoint, with the operator's retry policy.
pub async fn load_sdk_config(max_attempts: u32) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(max_attempts))
        .load()
        .await
}

/// Maps a failed SDK call to a [`ProviderError`] that names the service, the operation and
/// the resource.
pub(crate) fn sdk_error<E, R>(
    service: &'static str,
    operation: &'static str,
    resource: &str,
    err: SdkError<E, R>,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ProviderError::Unreachable {
            service,
            operation,
            message: DisplayErrorContext(&err).to_string(),
        },
        _ => {
            let code = err.code().unwrap_or("Unknown").to_owned();
            let message = err
                .message()
                .map(str::to_owned)
                .unwrap_or_else(|| DisplayErrorContext(&err).to_string());
            if is_throttling(&code) {
                ProviderError::Throttled {
                    service,
                    operation,
                    code,
                }
            } else if is_access_denied(&code) {
                ProviderError::AccessDenied {
                    service,
                    operation,
                    resource: resource.to_owned(),
                    code,
                    message,
                }
            } else {
                ProviderError::Rejected {
                    service,
                    operation,
                    resource: resource.to_owned(),
                    code,
                    message,
                }
            }
        }
    }
}
