//! THE SEAM for the tenant's data (issue 4): the one place the reconcile pipeline asks for a
//! database and tables, and the one place cleanup releases them.
//!
//! [`ensure_tenant_data`] runs after validation and before the build step; what it returns
//! fills the tenant config Secret (DSN, table names), `status.databaseId`/`status.tables` and
//! the `DatabaseReady`/`TablesReady` conditions. [`release_tenant_data`] runs in the finalizer's
//! cleanup, before the Kubernetes children go, honouring `spec.database.deletionPolicy`.
//!
//! Today no provider is wired: each part reports `ProviderNotConfigured` (Ready waits) or,
//! with `--database-provider none` / `--tables-provider none`, `ProviderDisabled` (Ready ignores
//! it). Wiring a provider means: add a variant to [`DataProviderChoice`], hold the provider in
//! [`super::Context`], and call it in the two functions below.

use emporium_tenant_config::Tables;

use super::{Context, Error, validate::ValidatedTenant};
use crate::{
    config::DataProviderChoice,
    crd::{Storefront, Tier},
};

/// One part of the tenant's data (database or tables) as the status reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPart {
    pub ready: bool,
    pub reason: String,
    pub message: String,
    /// Whether `Ready` waits for this part.
    pub required_for_ready: bool,
}

/// What the data step produced for one reconcile.
#[derive(Debug, Clone)]
pub struct TenantData {
    pub database: DataPart,
    pub tables: DataPart,
    /// The DSN for the config Secret; empty until a database provider made one.
    pub database_url: String,
    /// Table names for the config Secret.
    pub table_names: Tables,
    /// Database identifier for the status (never credentials).
    pub database_id: Option<String>,
    /// Whether to look again soon (a provider is still working).
    pub progressing: bool,
}

/// Provisions (or checks) the tenant's database and tables. Idempotent: called on every
/// reconcile.
pub async fn ensure_tenant_data(
    ctx: &Context,
    tenant: &ValidatedTenant,
) -> Result<TenantData, Error> {
    let database = unwired_part(
        ctx.config.database_provider,
        "database",
        "--database-provider",
    );
    let tables = unwired_part(ctx.config.tables_provider, "tables", "--tables-provider");
    Ok(TenantData {
        database,
        tables,
        database_url: String::new(),
        table_names: table_names(&tenant.name, tenant.tier),
        database_id: None,
        progressing: false,
    })
}

/// Releases the tenant's database and tables per `spec.database.deletionPolicy`. Must succeed
/// (or report an error to retry) before the finalizer is removed.
pub async fn release_tenant_data(ctx: &Context, storefront: &Storefront) -> Result<(), Error> {
    tracing::debug!(
        policy = ?storefront.spec.database.deletion_policy,
        database_provider = ?ctx.config.database_provider,
        "no data provider wired; nothing to release"
    );
    Ok(())
}

fn unwired_part(choice: DataProviderChoice, what: &str, flag: &str) -> DataPart {
    match choice {
        DataProviderChoice::Unconfigured => DataPart {
            ready: false,
            reason: "ProviderNotConfigured".to_owned(),
            message: format!(
                "no {what} provider is configured; start the operator with {flag} set (or `{flag} none` to run without {what})"
            ),
            required_for_ready: true,
        },
        DataProviderChoice::None => DataPart {
            ready: false,
            reason: "ProviderDisabled".to_owned(),
            message: format!(
                "{what} provisioning is disabled ({flag} none); Ready does not wait for it"
            ),
            required_for_ready: false,
        },
    }
}

/// Deterministic table names: the pool's shared tables for pooled tenants, the tenant's own
/// otherwise.
pub fn table_names(tenant: &str, tier: Tier) -> Tables {
    let prefix = match tier {
        Tier::Pooled => "emporium-pool".to_owned(),
        Tier::Dedicated => format!("emporium-{tenant}"),
    };
    Tables {
        catalog: format!("{prefix}-catalog"),
        carts: format!("{prefix}-carts"),
        sessions: format!("{prefix}-sessions"),
    }
}
