//! THE SEAM for the tenant's data (issue 4): the one place the reconcile pipeline asks for a
//! database and tables, and the one place cleanup releases them.
//!
//! [`ensure_tenant_data`] runs after validation and before the build step; what it returns
//! fills the tenant config Secret (DSN, table names), `status.databaseId`/`status.tables` and
//! the `DatabaseReady`/`TablesReady` conditions. [`release_tenant_data`] runs in the finalizer's
//! cleanup, before the Kubernetes children go, honouring `spec.database.deletionPolicy`.
//!
//! The providers ([`crate::providers`]) are held in [`DataProviders`], built once from the
//! operator's configuration. A slot without a provider reports `ProviderNotConfigured` (Ready
//! waits) or, with `--database-provider none` / `--tables-provider none`, `ProviderDisabled`
//! (Ready ignores it).
//!
//! Secrets: the DSN leaves this module only in [`TenantData::database_url`], which goes into
//! the tenant config Secret and nowhere else; messages, reasons and identifiers never hold it.

use std::sync::Arc;

use aws_config::SdkConfig;
use emporium_tenant_config::Tables;
use kube::ResourceExt as _;

use super::{Context, Error, validate::ValidatedTenant};
use crate::{
    config::{DataProviderChoice, OperatorConfig},
    crd::{self, Storefront, StorefrontPlan, Tier},
    providers::{
        self, AdoptTables, AuroraProvider, Capacity, DatabaseProvider, Deletion, DynamoTables,
        Outcome, PostgresProvider, ProviderError, TableProvisioner, TenantDatabase, TenantTables,
        names,
    },
};

impl From<crd::DeletionPolicy> for providers::DeletionPolicy {
    fn from(policy: crd::DeletionPolicy) -> Self {
        match policy {
            crd::DeletionPolicy::Retain => providers::DeletionPolicy::Retain,
            crd::DeletionPolicy::Snapshot => providers::DeletionPolicy::Snapshot,
            crd::DeletionPolicy::Delete => providers::DeletionPolicy::Delete,
        }
    }
}

/// The providers the operator was configured with; `None` for a slot without one.
#[derive(Clone, Default)]
pub struct DataProviders {
    pub database: Option<Arc<dyn DatabaseProvider>>,
    pub tables: Option<Arc<dyn TableProvisioner>>,
}

impl std::fmt::Debug for DataProviders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataProviders")
            .field("database", &self.database.as_ref().map(|d| d.kind()))
            .field("tables", &self.tables.as_ref().map(|_| "dynamodb"))
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
        let sdk = if config.database_provider.uses_aws() || config.tables_provider.uses_aws() {
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
            DataProviderChoice::Dynamodb => {
                return Err(ProviderError::Config(
                    "--database-provider takes postgres or aurora (dynamodb is a tables provider)"
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
            DataProviderChoice::Postgres | DataProviderChoice::Aurora => {
                return Err(ProviderError::Config(
                    "--tables-provider takes dynamodb (postgres and aurora are database providers)"
                        .into(),
                ));
            }
        };
        Ok(Self { database, tables })
    }
}

/// One part of the tenant's data (database or tables) as the status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPart {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// Whether `Ready` waits for this part.
    pub required_for_ready: bool,
    /// Whether it cannot become ready without a person (a `Terminal` AWS state, a missing
    /// retained resource, a failed adoption, a permission): the phase is then `Failed`.
    pub needs_person: bool,
}

impl DataPart {
    fn not_ready(reason: &str, message: String, needs_person: bool) -> Self {
        Self {
            ready: false,
            reason: reason.to_owned(),
            message,
            required_for_ready: true,
            needs_person,
        }
    }
}

/// What the data step produced for one reconcile.
#[derive(Debug, Clone)]
pub struct TenantData {
    pub database: DataPart,
    pub tables: DataPart,
    /// The DSN for the config Secret; empty until a database provider made one (the caller
    /// then keeps the DSN already in the Secret). A secret: never log, record or publish it.
    pub database_url: String,
    /// Table names for the config Secret.
    pub table_names: Tables,
    /// Database identifier for the status (never credentials).
    pub database_id: Option<String>,
    /// Whether to look again soon (a provider is still working, or could not be reached).
    pub progressing: bool,
}

/// The database request for `storefront` on `tier`, its sizing from `plan` unless the spec
/// overrides it.
fn database_request(
    storefront: &Storefront,
    tier: Tier,
    plan: Option<&crd::StorefrontPlanSpec>,
) -> TenantDatabase {
    let spec = &storefront.spec.database;
    let (plan_min, plan_max) = plan
        .map(|p| (p.database.min_capacity, p.database.max_capacity))
        .unwrap_or((0.5, 2.0));
    TenantDatabase {
        tenant: storefront.name_any(),
        tier: tier.into(),
        engine_version: Some(spec.engine_version.clone()),
        capacity: Capacity {
            min_acu: spec.min_capacity.unwrap_or(plan_min),
            max_acu: spec.max_capacity.unwrap_or(plan_max),
        },
        deletion_policy: spec.deletion_policy.into(),
        adopt: match tier {
            Tier::Dedicated => spec.existing_cluster_identifier.clone(),
            Tier::Pooled => None,
        },
        recorded: storefront
            .status
            .as_ref()
            .and_then(|s| s.database_id.clone()),
    }
}

/// The tables request for `storefront` on `tier`.
fn tables_request(storefront: &Storefront, tier: Tier) -> TenantTables {
    let catalog = &storefront.spec.catalog;
    let adopt = match (tier, &catalog.existing_tables) {
        (Tier::Dedicated, Some(existing)) => AdoptTables {
            catalog: existing.catalog.clone(),
            carts: existing.carts.clone(),
            sessions: existing.sessions.clone(),
        },
        _ => AdoptTables::default(),
    };
    TenantTables {
        tenant: storefront.name_any(),
        tier: tier.into(),
        point_in_time_recovery: catalog.point_in_time_recovery,
        deletion_policy: storefront.spec.database.deletion_policy.into(),
        adopt,
        recorded: storefront
            .status
            .as_ref()
            .is_some_and(|s| !s.tables.is_empty()),
    }
}

/// A provider call's non-ready outcome or failure as a condition part; the bool says whether
/// to look again soon.
fn not_ready_part<T>(outcome: Result<Outcome<T>, ProviderError>) -> Result<T, (DataPart, bool)> {
    match outcome {
        Ok(Outcome::Ready(value)) => Ok(value),
        Ok(Outcome::Progressing { reason, message }) => {
            Err((DataPart::not_ready(reason, message, false), true))
        }
        Ok(Outcome::Terminal { reason, message }) => {
            Err((DataPart::not_ready(reason, message, true), false))
        }
        // Unreachable/throttled: say so in the condition (the outage is visible there) and
        // keep reconciling the rest; the tenant keeps the DSN it had.
        Err(error) => Err((
            DataPart::not_ready(error.reason(), error.to_string(), !error.is_transient()),
            error.is_transient(),
        )),
    }
}

/// Provisions (or checks) the tenant's database and tables. Idempotent: called on every
/// reconcile. Provider failures become the conditions' reason and message rather than an
/// error, so an AWS outage shows on the Storefront while the workload is still reconciled.
pub async fn ensure_tenant_data(
    ctx: &Context,
    storefront: &Storefront,
    tenant: &ValidatedTenant,
) -> Result<TenantData, Error> {
    let recorded_id = storefront
        .status
        .as_ref()
        .and_then(|s| s.database_id.clone());
    let mut progressing = false;

    let (database, database_url, database_id) = match &ctx.providers.database {
        None => (
            unwired_part(
                ctx.config.database_provider,
                "database",
                "--database-provider",
            ),
            String::new(),
            None,
        ),
        Some(provider) => {
            let request = database_request(storefront, tenant.tier, Some(&tenant.plan));
            match not_ready_part(provider.ensure(&request).await) {
                Ok(connection) => (
                    DataPart {
                        ready: true,
                        reason: "Provisioned".to_owned(),
                        message: format!(
                            "{} database {} on {}:{} (login role {})",
                            provider.kind(),
                            connection.database,
                            connection.host,
                            connection.port,
                            connection.username
                        ),
                        required_for_ready: true,
                        needs_person: false,
                    },
                    connection.dsn.expose().to_owned(),
                    Some(connection.identifier),
                ),
                Err((part, again)) => {
                    progressing |= again;
                    (part, String::new(), recorded_id)
                }
            }
        }
    };

    let (tables, table_names) = match &ctx.providers.tables {
        None => (
            unwired_part(ctx.config.tables_provider, "tables", "--tables-provider"),
            table_names_with_prefix(&ctx.config.data.name_prefix, &tenant.name, tenant.tier),
        ),
        Some(provider) => {
            let request = tables_request(storefront, tenant.tier);
            let names = provider.table_names(&request);
            match not_ready_part(provider.ensure(&request).await) {
                Ok(names) => (
                    DataPart {
                        ready: true,
                        reason: "Provisioned".to_owned(),
                        message: format!(
                            "DynamoDB tables {}, {}, {} are active",
                            names.catalog, names.carts, names.sessions
                        ),
                        required_for_ready: true,
                        needs_person: false,
                    },
                    names,
                ),
                Err((part, again)) => {
                    progressing |= again;
                    (part, names)
                }
            }
        }
    };

    Ok(TenantData {
        database,
        tables,
        database_url,
        table_names,
        database_id,
        progressing,
    })
}

/// Releases the tenant's database and tables per `spec.database.deletionPolicy`. `Ok` only
/// when both are done (deleted, snapshotted and deleted, or retained and marked orphaned); an
/// error keeps the finalizer and retries.
pub async fn release_tenant_data(ctx: &Context, storefront: &Storefront) -> Result<(), Error> {
    if ctx.providers.database.is_none() && ctx.providers.tables.is_none() {
        tracing::debug!("no data provider configured; nothing to release");
        return Ok(());
    }
    let Some(tier) = tenant_tier(ctx, storefront).await? else {
        tracing::warn!(
            "the tenant's tier is unknown (never reconciled and its plan is gone); nothing to release"
        );
        return Ok(());
    };
    let mut done: Vec<Deletion> = Vec::new();
    let mut waiting: Vec<String> = Vec::new();
    let mut blocked: Vec<String> = Vec::new();
    let mut collect = |what: &str, outcome: Result<Outcome<Deletion>, ProviderError>| match outcome
    {
        Ok(Outcome::Ready(deletion)) => done.push(deletion),
        Ok(Outcome::Progressing { reason, message }) => {
            waiting.push(format!("{what}: {reason}: {message}"))
        }
        Ok(Outcome::Terminal { reason, message }) => {
            blocked.push(format!("{what}: {reason}: {message}"))
        }
        Err(error) if error.is_transient() => waiting.push(format!("{what}: {error}")),
        Err(error) => blocked.push(format!("{what}: {error}")),
    };
    if let Some(provider) = &ctx.providers.database {
        let request = database_request(storefront, tier, None);
        collect("database", provider.delete(&request).await);
    }
    if let Some(provider) = &ctx.providers.tables {
        let request = tables_request(storefront, tier);
        collect("tables", provider.delete(&request).await);
    }
    if !blocked.is_empty() {
        let message = blocked.join("; ");
        super::publish(
            ctx,
            storefront,
            kube::runtime::events::EventType::Warning,
            "DataReleaseBlocked",
            &message,
        )
        .await;
        return Err(Error::DataReleaseBlocked(message));
    }
    if !waiting.is_empty() {
        return Err(Error::DataReleasing(waiting.join("; ")));
    }
    let summary: Vec<String> = done.into_iter().map(|d| d.summary).collect();
    tracing::info!(summary = %summary.join("; "), "released the tenant's data");
    super::publish(
        ctx,
        storefront,
        kube::runtime::events::EventType::Normal,
        "DataReleased",
        &summary.join("; "),
    )
    .await;
    Ok(())
}

/// The tier the tenant ran on: from its status, else from its plan.
async fn tenant_tier(ctx: &Context, storefront: &Storefront) -> Result<Option<Tier>, Error> {
    if let Some(tier) = storefront.status.as_ref().and_then(|s| s.tier) {
        return Ok(Some(tier));
    }
    let plan = kube::Api::<StorefrontPlan>::all(ctx.client.clone())
        .get_opt(&storefront.spec.plan)
        .await
        .map_err(|source| Error::ReadPlan {
            plan: storefront.spec.plan.clone(),
            source,
        })?;
    Ok(plan.map(|p| p.spec.tier))
}

fn unwired_part(choice: DataProviderChoice, what: &str, flag: &str) -> DataPart {
    match choice {
        DataProviderChoice::None => DataPart {
            ready: false,
            reason: "ProviderDisabled".to_owned(),
            message: format!(
                "{what} provisioning is disabled ({flag} none); Ready does not wait for it"
            ),
            required_for_ready: false,
            needs_person: false,
        },
        _ => DataPart {
            ready: false,
            reason: "ProviderNotConfigured".to_owned(),
            message: format!(
                "no {what} provider is configured; start the operator with {flag} set (or `{flag} none` to run without {what})"
            ),
            required_for_ready: true,
            needs_person: false,
        },
    }
}

/// Deterministic table names (the default prefix): the pool's shared tables for pooled
/// tenants, the tenant's own otherwise. The same names the DynamoDB provider creates.
pub fn table_names(tenant: &str, tier: Tier) -> Tables {
    table_names_with_prefix(names::DEFAULT_PREFIX, tenant, tier)
}

/// [`table_names`] with the operator's `--name-prefix`.
pub fn table_names_with_prefix(prefix: &str, tenant: &str, tier: Tier) -> Tables {
    let name = |kind: &str| match tier {
        Tier::Pooled => names::pool_table_name(prefix, kind),
        Tier::Dedicated => names::table_name(prefix, tenant, kind),
    };
    Tables {
        catalog: name("catalog"),
        carts: name("carts"),
        sessions: name("sessions"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_policies_map_one_to_one() {
        assert_eq!(
            providers::DeletionPolicy::from(crd::DeletionPolicy::Retain),
            providers::DeletionPolicy::Retain
        );
        assert_eq!(
            providers::DeletionPolicy::from(crd::DeletionPolicy::Snapshot),
            providers::DeletionPolicy::Snapshot
        );
        assert_eq!(
            providers::DeletionPolicy::from(crd::DeletionPolicy::Delete),
            providers::DeletionPolicy::Delete
        );
    }

    #[test]
    fn table_names_match_the_provider() {
        let dedicated = table_names("acme", Tier::Dedicated);
        assert_eq!(
            dedicated.carts,
            names::table_name("emporium", "acme", "carts")
        );
        let pooled = table_names("acme", Tier::Pooled);
        assert_eq!(
            pooled.catalog,
            names::pool_table_name("emporium", "catalog")
        );
    }

    #[test]
    fn outcomes_become_condition_parts() {
        let progressing: Result<Outcome<()>, ProviderError> = Ok(Outcome::Progressing {
            reason: "Creating",
            message: "cluster x is creating".into(),
        });
        let (part, again) = not_ready_part(progressing).unwrap_err();
        assert_eq!((part.reason.as_str(), again), ("Creating", true));
        let terminal: Result<Outcome<()>, ProviderError> = Ok(Outcome::Terminal {
            reason: "Terminal",
            message: "cluster x is failed".into(),
        });
        let (part, again) = not_ready_part(terminal).unwrap_err();
        assert_eq!(
            (part.reason.as_str(), part.message.as_str(), again),
            ("Terminal", "cluster x is failed", false)
        );
        let outage: Result<Outcome<()>, ProviderError> = Err(ProviderError::Unreachable {
            service: "RDS",
            operation: "DescribeDBClusters",
            message: "connection refused".into(),
        });
        let (part, again) = not_ready_part(outage).unwrap_err();
        assert_eq!(part.reason, "Unreachable");
        assert!(part.message.contains("connection refused") && again);
    }
}
