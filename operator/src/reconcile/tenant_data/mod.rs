//! THE SEAM for the tenant's data (issue 4): the one place the reconcile pipeline asks for a
//! database, tables and the order-event queue, and the one place cleanup releases them.
//!
//! [`ensure_tenant_data`] runs after validation and before the build step; what it returns
//! fills the tenant config Secret (DSN, table names), `status.databaseId`/`status.tables` and
//! the `DatabaseReady`/`TablesReady` conditions. [`release_tenant_data`] runs in the finalizer's
//! cleanup, honouring `spec.database.deletionPolicy`: for a pooled tenant that is its rows and
//! items in the shared stores (`offboard.rs`: retained, exported then purged, or purged).
//!
//! The providers ([`crate::providers`]) are held in [`DataProviders`] (`data_providers.rs`), built
//! once from the operator's configuration. A slot without a provider reports
//! `ProviderNotConfigured` (Ready waits) or, with `--database-provider none` /
//! `--tables-provider none`, `ProviderDisabled` (Ready ignores it). The provider requests are
//! filled from the Storefront in `requests.rs`.
//!
//! Secrets: the DSN leaves this module only in [`TenantData::database_url`], which goes into
//! the tenant config Secret and nowhere else; messages, reasons and identifiers never hold it.

mod data_providers;
mod offboard;
mod requests;
#[cfg(test)]
mod tests;

use emporium_tenant_config::Tables;

use self::requests::queue_request;
pub(crate) use self::requests::{database_request, tables_request};
pub use self::{
    data_providers::DataProviders,
    requests::{table_names, table_names_with_prefix},
};
use super::{Context, Error, validate::ValidatedTenant};
use crate::{
    config::DataProviderChoice,
    crd::{Storefront, StorefrontPlan, Tier},
    providers::{Deletion, Outcome, ProviderError},
};

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
    /// The order-event queue (`QueueReady`).
    pub queue: DataPart,
    /// The order-event queue's URL for the config Secret; `None` until the queues provider
    /// made one (the caller then keeps the URL already in the Secret).
    pub queue_url: Option<String>,
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
            let request = database_request(storefront, tenant.tier, Some(&tenant.plan))?;
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
            let request = tables_request(storefront, tenant.tier, Some(&tenant.plan));
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

    let (queue, queue_url) = match &ctx.providers.queues {
        None => (
            unwired_part(ctx.config.queues_provider, "queue", "--queues-provider"),
            None,
        ),
        Some(provider) => {
            let request = queue_request(storefront)?;
            match not_ready_part(provider.ensure(&request).await) {
                Ok(url) => (
                    DataPart {
                        ready: true,
                        reason: "Provisioned".to_owned(),
                        message: format!(
                            "SQS queue {} (dead-letter queue after {} receives)",
                            url.rsplit('/').next().unwrap_or(&url),
                            crate::providers::queues::MAX_RECEIVE_COUNT
                        ),
                        required_for_ready: true,
                        needs_person: false,
                    },
                    Some(url),
                ),
                Err((part, again)) => {
                    progressing |= again;
                    (part, None)
                }
            }
        }
    };

    Ok(TenantData {
        database,
        tables,
        queue,
        queue_url,
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
    if ctx.providers.database.is_none()
        && ctx.providers.tables.is_none()
        && ctx.providers.queues.is_none()
    {
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
    // A pooled tenant's rows and items live among other tenants' in shared stores; its
    // database login (and, on Aurora, the schema holding its rows) goes only once they are
    // exported or purged.
    let mut pooled_data_done = true;
    if tier == Tier::Pooled {
        let identity = super::identity::resolve(storefront)?;
        let outcome = offboard::offboard_pooled(ctx, storefront, &identity.tenant_id).await;
        pooled_data_done = matches!(outcome, Ok(Outcome::Ready(_)));
        collect("pooled data", outcome);
    }
    if let Some(provider) = &ctx.providers.database
        && pooled_data_done
    {
        let request = database_request(storefront, tier, None)?;
        collect("database", provider.delete(&request).await);
    }
    if let Some(provider) = &ctx.providers.tables {
        let request = tables_request(storefront, tier, None);
        collect("tables", provider.delete(&request).await);
    }
    if let Some(provider) = &ctx.providers.queues {
        let request = queue_request(storefront)?;
        collect("queue", provider.delete(&request).await);
    }
    if !blocked.is_empty() {
        let message = blocked.join("; ");
        super::status::writer::publish(
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
    super::status::writer::publish(
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
