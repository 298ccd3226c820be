//! The tenant's DynamoDB tables, behind [`TableProvisioner`]: `catalog`, `carts` and
//! `sessions`, on-demand (PAY_PER_REQUEST), point-in-time recovery, tagged. Any
//! DynamoDB-compatible endpoint works through the standard `AWS_ENDPOINT_URL`.
//!
//! Key schema (all three tables): partition key `pk` (S), sort key `sk` (S). The tenant id
//! leads every partition key — `pk = "<tenant>#<entity>#<id>"`, e.g. `acme#PRODUCT#42` — so a
//! dedicated tenant's own tables and the pool tables hold items of the same shape. `carts` and
//! `sessions` expire items through the TTL attribute `expires_at` (epoch seconds).
//!
//! Names: dedicated `<prefix>-<tenant>-<kind>`, pool `<prefix>_pool-<kind>` (see [`names`]).
//!
//! This file holds the request and settings types, the trait and the provisioner's names and
//! tags; `ensure` (create, adopt and converge one table) and `delete` (retain, back up or
//! delete) are the steps.

mod delete;
mod ensure;
mod purge;
#[cfg(test)]
mod tests;

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::{Client, types::Tag};
use emporium_tenant_config::Tables;

pub use self::purge::ItemPurge;
use super::{
    BoxFuture, Deletion, DeletionPolicy, Outcome, ProviderError, Tier,
    aws::{AwsApi, DEFAULT_MAX_ATTEMPTS, retry_config},
    names, tags,
};

/// Partition key attribute of every table.
pub const PARTITION_KEY: &str = "pk";
/// Sort key attribute of every table.
pub const SORT_KEY: &str = "sk";
/// TTL attribute (epoch seconds) of `carts` and `sessions`.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// One of the tenant's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Catalog,
    Carts,
    Sessions,
}

impl TableKind {
    pub const ALL: [TableKind; 3] = [TableKind::Catalog, TableKind::Carts, TableKind::Sessions];

    /// The suffix of the table name.
    pub fn suffix(self) -> &'static str {
        match self {
            TableKind::Catalog => "catalog",
            TableKind::Carts => "carts",
            TableKind::Sessions => "sessions",
        }
    }

    /// The TTL attribute, for tables whose items expire.
    pub fn ttl_attribute(self) -> Option<&'static str> {
        match self {
            TableKind::Catalog => None,
            TableKind::Carts | TableKind::Sessions => Some(TTL_ATTRIBUTE),
        }
    }
}

/// Existing tables a dedicated tenant takes over instead of having them created. They must
/// have the key schema above.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptTables {
    pub catalog: Option<String>,
    pub carts: Option<String>,
    pub sessions: Option<String>,
}

impl AdoptTables {
    fn get(&self, kind: TableKind) -> Option<&String> {
        match kind {
            TableKind::Catalog => self.catalog.as_ref(),
            TableKind::Carts => self.carts.as_ref(),
            TableKind::Sessions => self.sessions.as_ref(),
        }
    }
}

/// What the reconcile step asks for: one tenant's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantTables {
    pub tenant: String,
    pub tier: Tier,
    /// Point-in-time recovery on the tenant's own tables (the pool's is operator config).
    pub point_in_time_recovery: bool,
    pub deletion_policy: DeletionPolicy,
    /// Provisioned (read, write) capacity units per table; `None`: on demand
    /// (PAY_PER_REQUEST). Dedicated tenants only: the pool tables are always on demand.
    pub provisioned: Option<(i64, i64)>,
    pub adopt: AdoptTables,
    /// Whether Snapshot or Delete also delete adopted tables (else they are retained).
    pub delete_adopted: bool,
    /// The owning Storefront's `metadata.uid`, tagged on every table it creates or adopts.
    pub owner_uid: String,
    /// Whether the tenant's status says its tables were provisioned: a table that is then gone
    /// is recreated (Delete/Snapshot) or reported `Missing` (Retain).
    pub recorded: bool,
}

impl TenantTables {
    /// Whether the table of `kind` is an adopted one.
    pub fn adopts(&self, kind: TableKind) -> bool {
        self.tier == Tier::Dedicated && self.adopt.get(kind).is_some()
    }
}

/// Who a table's tags say owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ownership {
    /// No Emporium tags, or retained from a deleted Storefront (tagged orphaned): free to adopt.
    Free,
    /// Tagged as this Storefront's (same name, and same uid where a uid is tagged).
    Mine,
    /// Another Storefront's (by name or uid), or the shared pool's.
    Other(String),
}

fn ownership(tags: &[Tag], request: &TenantTables) -> Ownership {
    let value = |key: &str| {
        tags.iter()
            .find(|t| t.key() == key)
            .map(|t| t.value().to_owned())
    };
    if value(tags::POOL).is_some() {
        return Ownership::Other("the shared pool".to_owned());
    }
    if value(tags::MANAGED_BY).is_none() || value(tags::ORPHANED).is_some() {
        return Ownership::Free;
    }
    let tenant = value(tags::TENANT).unwrap_or_default();
    let uid = value(tags::OWNER_UID);
    let same_uid = uid
        .as_deref()
        .is_none_or(|uid| request.owner_uid.is_empty() || uid == request.owner_uid);
    if tenant == request.tenant && same_uid {
        Ownership::Mine
    } else {
        let uid_note = uid.map(|u| format!(" (uid {u})")).unwrap_or_default();
        Ownership::Other(format!("Storefront `{tenant}`{uid_note}"))
    }
}

/// Operator-level settings of the table provisioner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSettings {
    pub prefix: String,
    /// Point-in-time recovery on the shared pool tables.
    pub pool_point_in_time_recovery: bool,
    /// SDK attempts per call (throttling and 5xx are retried with jitter).
    pub max_attempts: u32,
}

impl Default for TableSettings {
    fn default() -> Self {
        Self {
            prefix: names::DEFAULT_PREFIX.to_owned(),
            pool_point_in_time_recovery: true,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

/// Provisions and deletes tenants' tables. Idempotent; returns after at most one step per table
/// (never waits for `ACTIVE`): call again while it answers `Progressing`.
pub trait TableProvisioner: Send + Sync {
    /// The table names of a tenant (pure: no AWS call).
    fn table_names(&self, request: &TenantTables) -> Tables;

    /// Observes the tenant's tables and takes the next step towards the request.
    fn ensure<'a>(
        &'a self,
        request: &'a TenantTables,
    ) -> BoxFuture<'a, Result<Outcome<Tables>, ProviderError>>;

    /// Deletes (or retains) the tenant's tables per its deletion policy; `Ready` means done.
    fn delete<'a>(
        &'a self,
        request: &'a TenantTables,
    ) -> BoxFuture<'a, Result<Outcome<Deletion>, ProviderError>>;

    /// The items of one tenant in a shared `table` (partition keys starting with
    /// `key_prefix`), one DynamoDB-JSON object per line.
    fn export_tenant_items<'a>(
        &'a self,
        table: &'a str,
        key_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>>;

    /// Deletes the items of one tenant in a shared `table`, in batches, until done or `budget`
    /// has passed; run again until [`ItemPurge::complete`].
    fn purge_tenant_items<'a>(
        &'a self,
        table: &'a str,
        key_prefix: &'a str,
        budget: Duration,
    ) -> BoxFuture<'a, Result<ItemPurge, ProviderError>>;

    /// What the tenant's tables hold (pooled: the pool tables), for the cost estimate. The
    /// figures are DescribeTable's, which DynamoDB refreshes about every six hours.
    fn stored<'a>(
        &'a self,
        request: &'a TenantTables,
    ) -> BoxFuture<'a, Result<TableStorage, ProviderError>>;
}

/// What a set of tables holds, as DescribeTable reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStorage {
    pub bytes: i64,
    pub items: i64,
    /// How many of the tables exist (missing ones count as empty).
    pub tables_found: u32,
}

/// The DynamoDB [`TableProvisioner`].
pub struct DynamoTables {
    client: Client,
    api: AwsApi,
    settings: TableSettings,
}

impl DynamoTables {
    /// A provisioner using `sdk` (its region, credentials and endpoint, e.g.
    /// `AWS_ENDPOINT_URL`) with the retry policy of `settings.max_attempts`.
    pub fn new(sdk: &SdkConfig, settings: TableSettings) -> Self {
        let config = aws_sdk_dynamodb::config::Builder::from(sdk)
            .retry_config(retry_config(settings.max_attempts))
            .build();
        Self {
            client: Client::from_conf(config),
            api: AwsApi::new(sdk, "DynamoDB", "DYNAMODB"),
            settings,
        }
    }

    fn name(&self, request: &TenantTables, kind: TableKind) -> String {
        match request.tier {
            Tier::Pooled => names::pool_table_name(&self.settings.prefix, kind.suffix()),
            Tier::Dedicated => request.adopt.get(kind).cloned().unwrap_or_else(|| {
                names::table_name(&self.settings.prefix, &request.tenant, kind.suffix())
            }),
        }
    }

    fn tags(&self, request: &TenantTables, adopted: bool) -> Result<Vec<Tag>, ProviderError> {
        let mut pairs = vec![(tags::MANAGED_BY, tags::MANAGED_BY_VALUE)];
        match request.tier {
            Tier::Pooled => pairs.push((tags::POOL, "true")),
            Tier::Dedicated => {
                pairs.push((tags::TENANT, request.tenant.as_str()));
                if !request.owner_uid.is_empty() {
                    pairs.push((tags::OWNER_UID, request.owner_uid.as_str()));
                }
            }
        }
        if adopted {
            pairs.push((tags::ADOPTED, "true"));
        }
        pairs.into_iter().map(|(k, v)| tag(k, v)).collect()
    }

    /// Deletion protection: on for the pool, for `Retain`, and for adopted tables that are
    /// kept at deletion (`deleteAdopted` false).
    fn desired_protection(&self, request: &TenantTables, kind: TableKind) -> bool {
        request.tier == Tier::Pooled
            || request.deletion_policy == DeletionPolicy::Retain
            || (request.adopts(kind) && !request.delete_adopted)
    }

    /// `None`: on demand; else (read, write) capacity units.
    fn desired_throughput(&self, request: &TenantTables) -> Option<(i64, i64)> {
        match request.tier {
            Tier::Pooled => None,
            Tier::Dedicated => request.provisioned,
        }
    }

    fn desired_pitr(&self, request: &TenantTables) -> bool {
        match request.tier {
            Tier::Pooled => self.settings.pool_point_in_time_recovery,
            Tier::Dedicated => request.point_in_time_recovery,
        }
    }
}

impl TableProvisioner for DynamoTables {
    fn table_names(&self, request: &TenantTables) -> Tables {
        Tables {
            catalog: self.name(request, TableKind::Catalog),
            carts: self.name(request, TableKind::Carts),
            sessions: self.name(request, TableKind::Sessions),
        }
    }

    fn ensure<'a>(
        &'a self,
        request: &'a TenantTables,
    ) -> BoxFuture<'a, Result<Outcome<Tables>, ProviderError>> {
        Box::pin(self.ensure_tables(request))
    }

    fn delete<'a>(
        &'a self,
        request: &'a TenantTables,
    ) -> BoxFuture<'a, Result<Outcome<Deletion>, ProviderError>> {
        Box::pin(self.delete_tables(request))
    }

    fn export_tenant_items<'a>(
        &'a self,
        table: &'a str,
        key_prefix: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, ProviderError>> {
        Box::pin(DynamoTables::export_tenant_items(self, table, key_prefix))
    }

    fn stored<'a>(
        &'a self,
        request: &'a TenantTables,
    ) -> BoxFuture<'a, Result<TableStorage, ProviderError>> {
        Box::pin(async move {
            let mut storage = TableStorage::default();
            for kind in TableKind::ALL {
                if let Some(table) = self.describe(&self.name(request, kind)).await? {
                    storage.bytes += table.table_size_bytes.unwrap_or(0);
                    storage.items += table.item_count.unwrap_or(0);
                    storage.tables_found += 1;
                }
            }
            Ok(storage)
        })
    }

    fn purge_tenant_items<'a>(
        &'a self,
        table: &'a str,
        key_prefix: &'a str,
        budget: Duration,
    ) -> BoxFuture<'a, Result<ItemPurge, ProviderError>> {
        Box::pin(DynamoTables::purge_tenant_items(
            self, table, key_prefix, budget,
        ))
    }
}

/// Terminal beats Progressing beats Ready; messages of the same kind are joined.
fn combine(outcomes: Vec<Outcome<()>>) -> Outcome<()> {
    let mut terminal: Option<(&'static str, Vec<String>)> = None;
    let mut progressing: Option<(&'static str, Vec<String>)> = None;
    for outcome in outcomes {
        match outcome {
            Outcome::Ready(()) => {}
            Outcome::Terminal { reason, message } => {
                terminal.get_or_insert((reason, Vec::new())).1.push(message)
            }
            Outcome::Progressing { reason, message } => progressing
                .get_or_insert((reason, Vec::new()))
                .1
                .push(message),
        }
    }
    match (terminal, progressing) {
        (Some((reason, messages)), _) => Outcome::terminal(reason, messages.join("; ")),
        (None, Some((reason, messages))) => Outcome::progressing(reason, messages.join("; ")),
        (None, None) => Outcome::Ready(()),
    }
}

fn tag(key: &str, value: &str) -> Result<Tag, ProviderError> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .map_err(build_error)
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> ProviderError {
    ProviderError::DynamoRequest(e)
}
