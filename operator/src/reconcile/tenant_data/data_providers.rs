//! The data providers the operator was configured with, built once at start-up.

use std::sync::Arc;

use aws_config::SdkConfig;

use crate::{
    config::{DataProviderChoice, OperatorConfig},
    providers::{
        self, AuroraProvider, DatabaseProvider, DynamoTables, PostgresProvider, ProviderError,
        QueueProvisioner, SnapshotStore, SqsQueues, TableProvisioner,
    },
};

/// The providers the operator was configured with; `None` for a slot without one.
#[derive(Clone, Default)]
pub struct DataProviders {
    pub database: Option<Arc<dyn DatabaseProvider>>,
    pub tables: Option<Arc<dyn TableProvisioner>>,
    /// The tenants' order-event queues (`--queues-provider sqs`).
    pub queues: Option<Arc<dyn QueueProvisioner>>,
    /// Where offboarded pooled tenants' data is exported (`--snapshot-bucket`).
    pub snapshots: Option<Arc<SnapshotStore>>,
}

impl std::fmt::Debug for DataProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataProviders")
            .field("database", &self.database.as_ref().map(|d| d.kind()))
            .field("tables", &self.tables.as_ref().map(|_| "dynamodb"))
            .field("queues", &self.queues.as_ref().map(|_| "sqs"))
            .field(
                "snapshots",
                &self.snapshots.as_ref().map(|s| s.bucket().to_owned()),
            )
            .finish()
    }
}

impl DataProviders {
    /// Builds the providers `config` asks for. AWS providers use `sdk` when given (tests), else
    /// the standard AWS configuration chain (env incl. `AWS_ENDPOINT_URL`, profile, IRSA, IMDS).
    /// Fails on a configuration that cannot work (missing settings, a provider in the wrong
    /// slot), so the operator refuses to start rather than reconciling with it.
    pub async fn from_config(
        config: &OperatorConfig,
        sdk: Option<&SdkConfig>,
    ) -> Result<Self, ProviderError> {
        let settings = &config.data;
        let sdk = if config.database_provider.uses_aws()
            || config.tables_provider.uses_aws()
            || config.queues_provider.uses_aws()
            || settings.snapshot_bucket.is_some()
        {
            Some(match sdk {
                Some(sdk) => sdk.clone(),
                None => {
                    providers::aws::load_sdk_config(
                        settings.aws_max_attempts,
                        settings.aws_timeouts(),
                    )
                    .await
                }
            })
        } else {
            None
        };
        let database: Option<Arc<dyn DatabaseProvider>> = match config.database_provider {
            DataProviderChoice::Unconfigured | DataProviderChoice::None => None,
            DataProviderChoice::Postgres => {
                Some(Arc::new(PostgresProvider::new(settings.postgres()?)?))
            }
            DataProviderChoice::Aurora => Some(Arc::new(AuroraProvider::new(
                sdk.as_ref()
                    .ok_or_else(|| ProviderError::Config("no AWS configuration".into()))?,
                settings.aurora()?,
            ))),
            DataProviderChoice::Dynamodb | DataProviderChoice::Sqs => {
                return Err(ProviderError::Config(
                    "--database-provider takes postgres or aurora (dynamodb is a tables provider, sqs a queues provider)"
                        .into(),
                ));
            }
        };
        let tables: Option<Arc<dyn TableProvisioner>> = match config.tables_provider {
            DataProviderChoice::Unconfigured | DataProviderChoice::None => None,
            DataProviderChoice::Dynamodb => Some(Arc::new(DynamoTables::new(
                sdk.as_ref()
                    .ok_or_else(|| ProviderError::Config("no AWS configuration".into()))?,
                settings.tables(),
            ))),
            DataProviderChoice::Postgres | DataProviderChoice::Aurora | DataProviderChoice::Sqs => {
                return Err(ProviderError::Config(
                    "--tables-provider takes dynamodb (postgres and aurora are database providers, sqs a queues provider)"
                        .into(),
                ));
            }
        };
        let queues: Option<Arc<dyn QueueProvisioner>> = match config.queues_provider {
            DataProviderChoice::Unconfigured | DataProviderChoice::None => None,
            DataProviderChoice::Sqs => Some(Arc::new(SqsQueues::new(
                sdk.as_ref()
                    .ok_or_else(|| ProviderError::Config("no AWS configuration".into()))?,
                &settings.name_prefix,
                settings.aws_max_attempts,
            ))),
            DataProviderChoice::Postgres
            | DataProviderChoice::Aurora
            | DataProviderChoice::Dynamodb => {
                return Err(ProviderError::Config(
                    "--queues-provider takes sqs (postgres and aurora are database providers, dynamodb a tables provider)"
                        .into(),
                ));
            }
        };
        let snapshots = match (&sdk, settings.snapshots()) {
            (Some(sdk), Some(snapshot_settings)) => {
                Some(Arc::new(SnapshotStore::new(sdk, snapshot_settings)))
            }
            _ => None,
        };
        Ok(Self {
            database,
            tables,
            queues,
            snapshots,
        })
    }
}
