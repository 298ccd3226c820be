//! AWS plumbing shared by the providers: the SDK configuration (retry with jitter, timeouts,
//! endpoint) and the mapping of SDK errors to [`ProviderError`].

use std::{fmt::Debug, time::Duration};

use aws_config::{BehaviorVersion, SdkConfig, retry::RetryConfig, timeout::TimeoutConfig};
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

/// How long one AWS call may take. Without these an endpoint that accepts connections but
/// never answers (a hung proxy, a paused process) would hold a reconcile forever; with them the
/// call fails as [`ProviderError::Unreachable`] and the condition says so.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AwsTimeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// One attempt, from sending the request to reading the whole response.
    pub attempt: Duration,
    /// The whole call, all retries included.
    pub operation: Duration,
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(3),
            attempt: Duration::from_secs(10),
            operation: Duration::from_secs(30),
        }
    }
}

impl AwsTimeouts {
    /// The SDK's form of these timeouts.
    pub fn timeout_config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation.max(self.attempt))
            .build()
    }
}

/// Loads the AWS configuration the standard way (env, profile, IRSA web identity, IMDS),
/// including `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL_RDS` for
/// moto or another compatible endpoint, with the operator's retry policy and timeouts.
pub async fn load_sdk_config(max_attempts: u32, timeouts: AwsTimeouts) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config(max_attempts))
        .timeout_config(timeouts.timeout_config())
        .load()
        .await
}

/// One AWS service as a provider talks to it: its name for messages and the endpoint its
/// client sends to, so an outage message can say which address did not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsApi {
    pub service: &'static str,
    /// The endpoint URL, or a description of the regional default.
    pub endpoint: String,
}

impl AwsApi {
    /// `env_key` is the service's suffix of `AWS_ENDPOINT_URL_<KEY>` (`RDS`, `DYNAMODB`,
    /// `SECRETS_MANAGER`). Mirrors the SDK's order: an endpoint set in code wins, then the
    /// service's own variable, then `AWS_ENDPOINT_URL`, then the regional endpoint.
    pub fn new(sdk: &SdkConfig, service: &'static str, env_key: &str) -> Self {
        let in_code = sdk.get_origin("endpoint_url").is_client_config();
        let endpoint = sdk
            .endpoint_url()
            .filter(|_| in_code)
            .map(str::to_owned)
            .or_else(|| {
                std::env::var(format!("AWS_ENDPOINT_URL_{env_key}"))
                    .ok()
                    .filter(|v| !v.is_empty())
            })
            .or_else(|| sdk.endpoint_url().map(str::to_owned))
            .unwrap_or_else(|| match sdk.region() {
                Some(region) => format!("the regional {service} endpoint of {region}"),
                None => format!("the {service} endpoint (no region configured)"),
            });
        Self { service, endpoint }
    }
}

/// Why no answer came back, in words for a condition message.
fn outage_cause<E, R>(err: &SdkError<E, R>) -> String
where
    E: std::error::Error + 'static,
    R: Debug,
{
    use std::error::Error as _;
    match err {
        SdkError::TimeoutError(_) => {
            let detail = err
                .source()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "timeout".into());
            format!("no answer in time ({detail})")
        }
        SdkError::DispatchFailure(failure) => {
            // Walk the cause chain for the socket error: it says what actually happened.
            let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
            while let Some(cause) = source {
                if let Some(io) = cause.downcast_ref::<std::io::Error>() {
                    use std::io::ErrorKind::*;
                    let what = match io.kind() {
                        ConnectionRefused => "connection refused (nothing listens there)",
                        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => {
                            "connection reset before the answer was complete"
                        }
                        TimedOut => "connection timed out",
                        HostUnreachable | NetworkUnreachable => "no route to the host",
                        AddrNotAvailable => "address not available",
                        _ => "",
                    };
                    if !what.is_empty() {
                        return what.to_owned();
                    }
                }
                let text = cause.to_string();
                if text.contains("dns error") || text.contains("failed to lookup address") {
                    return format!("DNS lookup failed ({text})");
                }
                source = cause.source();
            }
            match failure.as_connector_error() {
                Some(c) if c.is_timeout() => "connection timed out".to_owned(),
                _ => DisplayErrorContext(err).to_string(),
            }
        }
        _ => DisplayErrorContext(err).to_string(),
    }
}

/// Maps a failed SDK call to a [`ProviderError`] that names the service, the operation and
/// the resource (and, for an outage, the endpoint and what went wrong).
pub(crate) fn sdk_error<E, R>(
    api: &AwsApi,
    operation: &'static str,
    resource: &str,
    err: SdkError<E, R>,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: Debug,
{
    let service = api.service;
    match &err {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ProviderError::Unreachable {
            service,
            operation,
            message: format!(
                "endpoint {} unreachable: {}",
                api.endpoint,
                outage_cause(&err)
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sdk(endpoint: &str, timeouts: AwsTimeouts) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_rds::config::SharedCredentialsProvider::new(
                aws_sdk_rds::config::Credentials::new("testing", "testing", None, None, "test"),
            ))
            .retry_config(retry_config(1))
            .timeout_config(timeouts.timeout_config())
            .build()
    }

    async fn describe(endpoint: &str, timeouts: AwsTimeouts) -> ProviderError {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let sdk = sdk(endpoint, timeouts);
        let api = AwsApi::new(&sdk, "RDS", "RDS");
        let err = aws_sdk_rds::Client::new(&sdk)
            .describe_db_clusters()
            .send()
            .await
            .expect_err("nothing answers there");
        sdk_error(&api, "DescribeDBClusters", "c", err)
    }

    #[tokio::test]
    async fn a_closed_port_is_named_with_its_endpoint_and_connection_refused() {
        // Bind and drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let error = describe(&endpoint, AwsTimeouts::default()).await;
        assert_eq!(error.reason(), "Unreachable");
        assert!(error.is_transient());
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "endpoint {endpoint} unreachable: connection refused"
            )),
            "{message}"
        );
    }

    #[tokio::test]
    async fn an_endpoint_that_accepts_but_never_answers_times_out() {
        // Accepts connections (the kernel does) but never reads or answers: a paused process.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let timeouts = AwsTimeouts {
            connect: Duration::from_secs(1),
            attempt: Duration::from_millis(300),
            operation: Duration::from_millis(600),
        };
        // A generous guard so a regression fails instead of hanging the test run.
        let error = tokio::time::timeout(Duration::from_secs(60), describe(&endpoint, timeouts))
            .await
            .expect("the call gives up instead of hanging");
        assert_eq!(error.reason(), "Unreachable");
        let message = error.to_string();
        assert!(
            message.contains(&format!(
                "endpoint {endpoint} unreachable: no answer in time"
            )),
            "{message}"
        );
        drop(listener);
    }
}
