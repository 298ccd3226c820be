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

use aws_config::SdkConfig;
use aws_sdk_dynamodb::{
    Client,
    types::{
        AttributeDefinition, BackupStatus, BillingMode, KeySchemaElement, KeyType,
        PointInTimeRecoverySpecification, PointInTimeRecoveryStatus, ScalarAttributeType,
        TableDescription, TableStatus, Tag, TimeToLiveSpecification, TimeToLiveStatus,
    },
};
use emporium_tenant_config::Tables;
use tracing::info;

use super::{
    BoxFuture, Deletion, DeletionPolicy, Outcome, ProviderError, Tier,
    aws::{AwsApi, DEFAULT_MAX_ATTEMPTS, retry_config, sdk_error},
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
    pub adopt: AdoptTables,
    /// Whether the tenant's status says its tables were provisioned: a table that is then gone
    /// is recreated (Delete/Snapshot) or reported `Missing` (Retain).
    pub recorded: bool,
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
            Tier::Dedicated => pairs.push((tags::TENANT, request.tenant.as_str())),
        }
        if adopted {
            pairs.push((tags::ADOPTED, "true"));
        }
        pairs.into_iter().map(|(k, v)| tag(k, v)).collect()
    }

    async fn describe(&self, table: &str) -> Result<Option<TableDescription>, ProviderError> {
        match self.client.describe_table().table_name(table).send().await {
            Ok(out) => Ok(out.table),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(&self.api, "DescribeTable", table, e)),
        }
    }

    async fn create(&self, request: &TenantTables, table: &str) -> Result<(), ProviderError> {
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(build_error)
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(build_error)
        };
        info!(table = %table, tenant = %request.tenant, "creating DynamoDB table");
        let result = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .attribute_definitions(attribute(PARTITION_KEY)?)
            .attribute_definitions(attribute(SORT_KEY)?)
            .deletion_protection_enabled(self.desired_protection(request))
            .set_tags(Some(self.tags(request, false)?))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Another replica won a race; the next describe sees its table.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error(&self.api, "CreateTable", table, e)),
        }
    }

    fn desired_protection(&self, request: &TenantTables) -> bool {
        request.tier == Tier::Pooled || request.deletion_policy == DeletionPolicy::Retain
    }

    fn desired_pitr(&self, request: &TenantTables) -> bool {
        match request.tier {
            Tier::Pooled => self.settings.pool_point_in_time_recovery,
            Tier::Dedicated => request.point_in_time_recovery,
        }
    }

    /// One table's next step.
    async fn ensure_table(
        &self,
        request: &TenantTables,
        kind: TableKind,
    ) -> Result<Outcome<()>, ProviderError> {
        let table = self.name(request, kind);
        let adopted = request.tier == Tier::Dedicated && request.adopt.get(kind).is_some();
        let Some(description) = self.describe(&table).await? else {
            if adopted {
                return Ok(Outcome::terminal(
                    "AdoptionFailed",
                    format!(
                        "table {table} named for adoption does not exist in this account and region"
                    ),
                ));
            }
            if request.recorded
                && request.tier == Tier::Dedicated
                && request.deletion_policy == DeletionPolicy::Retain
            {
                return Ok(Outcome::terminal(
                    "Missing",
                    format!(
                        "table {table} recorded in status no longer exists; with deletionPolicy Retain the operator does not create an empty one in its place. Restore it from a backup under the same name, or set deletionPolicy to Snapshot or Delete to get a new empty table"
                    ),
                ));
            }
            self.create(request, &table).await?;
            let (reason, verb) = if request.recorded {
                ("Recreating", "recreating")
            } else {
                ("Creating", "creating")
            };
            return Ok(Outcome::progressing(
                reason,
                format!("{verb} table {table}"),
            ));
        };
        match description.table_status() {
            Some(TableStatus::Active) | None => {}
            Some(TableStatus::Creating) => {
                return Ok(Outcome::progressing(
                    "Creating",
                    format!("table {table} is CREATING"),
                ));
            }
            Some(TableStatus::Updating) => {
                return Ok(Outcome::progressing(
                    "Modifying",
                    format!("table {table} is UPDATING"),
                ));
            }
            Some(TableStatus::Deleting) => {
                return Ok(Outcome::progressing(
                    "Deleting",
                    format!(
                        "table {table} is being deleted; it is recreated once DynamoDB has removed it"
                    ),
                ));
            }
            Some(other) => {
                return Ok(Outcome::terminal(
                    "Terminal",
                    format!(
                        "DynamoDB reports table {table} as {}; it needs a person",
                        other.as_str()
                    ),
                ));
            }
        }
        if adopted {
            let schema_ok = description
                .key_schema()
                .iter()
                .any(|k| k.attribute_name() == PARTITION_KEY && k.key_type() == &KeyType::Hash);
            if !schema_ok {
                return Ok(Outcome::terminal(
                    "AdoptionFailed",
                    format!(
                        "table {table} has no partition key {PARTITION_KEY}; the runtime cannot use it"
                    ),
                ));
            }
            let arn = description.table_arn().unwrap_or(table.as_str()).to_owned();
            let current = self
                .client
                .list_tags_of_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "ListTagsOfResource", &table, e))?;
            if !current.tags().iter().any(|t| t.key() == tags::MANAGED_BY) {
                self.client
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(self.tags(request, true)?))
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.api, "TagResource", &table, e))?;
                info!(table = %table, tenant = %request.tenant, "adopted DynamoDB table");
            }
        }
        let protection = self.desired_protection(request);
        if description.deletion_protection_enabled() != Some(protection) {
            self.client
                .update_table()
                .table_name(&table)
                .deletion_protection_enabled(protection)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "UpdateTable", &table, e))?;
            return Ok(Outcome::progressing(
                "Modifying",
                format!("setting deletion protection of table {table} to {protection}"),
            ));
        }
        if let Some(attribute) = kind.ttl_attribute() {
            let ttl = self
                .client
                .describe_time_to_live()
                .table_name(&table)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "DescribeTimeToLive", &table, e))?;
            let status = ttl
                .time_to_live_description()
                .and_then(|d| d.time_to_live_status());
            if !matches!(
                status,
                Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
            ) {
                let spec = TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(attribute)
                    .build()
                    .map_err(build_error)?;
                self.client
                    .update_time_to_live()
                    .table_name(&table)
                    .time_to_live_specification(spec)
                    .send()
                    .await
                    .map_err(|e| sdk_error(&self.api, "UpdateTimeToLive", &table, e))?;
                info!(table = %table, attribute, "enabled TTL");
            }
        }
        let want_pitr = self.desired_pitr(request);
        let backups = self
            .client
            .describe_continuous_backups()
            .table_name(&table)
            .send()
            .await
            .map_err(|e| sdk_error(&self.api, "DescribeContinuousBackups", &table, e))?;
        let have_pitr = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|d| d.point_in_time_recovery_status())
            == Some(&PointInTimeRecoveryStatus::Enabled);
        if have_pitr != want_pitr {
            let spec = PointInTimeRecoverySpecification::builder()
                .point_in_time_recovery_enabled(want_pitr)
                .build()
                .map_err(build_error)?;
            self.client
                .update_continuous_backups()
                .table_name(&table)
                .point_in_time_recovery_specification(spec)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "UpdateContinuousBackups", &table, e))?;
            info!(table = %table, enabled = want_pitr, "set point-in-time recovery");
        }
        Ok(Outcome::Ready(()))
    }

    async fn ensure_tables(
        &self,
        request: &TenantTables,
    ) -> Result<Outcome<Tables>, ProviderError> {
        let mut outcomes = Vec::with_capacity(3);
        for kind in TableKind::ALL {
            outcomes.push(self.ensure_table(request, kind).await?);
        }
        Ok(combine(outcomes).map(|()| self.table_names(request)))
    }

    /// The final backup of `table`, if one with the deterministic name exists: its status.
    async fn final_backup(&self, table: &str) -> Result<Option<BackupStatus>, ProviderError> {
        let name = names::final_backup_name(table);
        let out = self
            .client
            .list_backups()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error(&self.api, "ListBackups", table, e))?;
        Ok(out
            .backup_summaries()
            .iter()
            .find(|b| b.backup_name() == Some(name.as_str()))
            .map(|b| b.backup_status().cloned().unwrap_or(BackupStatus::Creating)))
    }

    async fn delete_table(
        &self,
        request: &TenantTables,
        kind: TableKind,
    ) -> Result<Outcome<String>, ProviderError> {
        let table = self.name(request, kind);
        let Some(description) = self.describe(&table).await? else {
            return Ok(Outcome::Ready(format!("{table} gone")));
        };
        if description.table_status() == Some(&TableStatus::Deleting) {
            return Ok(Outcome::progressing(
                "Deleting",
                format!("table {table} is being deleted"),
            ));
        }
        if request.deletion_policy == DeletionPolicy::Retain {
            let arn = description.table_arn().unwrap_or(table.as_str()).to_owned();
            self.client
                .tag_resource()
                .resource_arn(&arn)
                .tags(tag(tags::ORPHANED, "true")?)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "TagResource", &table, e))?;
            return Ok(Outcome::Ready(format!("{table} retained")));
        }
        if description.table_status() != Some(&TableStatus::Active) {
            return Ok(Outcome::progressing(
                "Busy",
                format!("waiting for table {table} to be ACTIVE before deleting it"),
            ));
        }
        let backup = names::final_backup_name(&table);
        if request.deletion_policy == DeletionPolicy::Snapshot {
            match self.final_backup(&table).await? {
                None => {
                    info!(table = %table, backup = %backup, "creating final backup");
                    self.client
                        .create_backup()
                        .table_name(&table)
                        .backup_name(&backup)
                        .send()
                        .await
                        .map_err(|e| sdk_error(&self.api, "CreateBackup", &table, e))?;
                    return Ok(Outcome::progressing(
                        "BackingUp",
                        format!("backing up table {table} as {backup}"),
                    ));
                }
                Some(BackupStatus::Available) => {}
                Some(BackupStatus::Creating) => {
                    return Ok(Outcome::progressing(
                        "BackingUp",
                        format!("backup {backup} of table {table} is CREATING"),
                    ));
                }
                Some(other) => {
                    return Ok(Outcome::terminal(
                        "Terminal",
                        format!(
                            "the final backup {backup} of table {table} is {}; delete it and the deletion continues",
                            other.as_str()
                        ),
                    ));
                }
            }
        }
        if description.deletion_protection_enabled() == Some(true) {
            self.client
                .update_table()
                .table_name(&table)
                .deletion_protection_enabled(false)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "UpdateTable", &table, e))?;
            return Ok(Outcome::progressing(
                "Modifying",
                format!("turning off deletion protection of table {table} before deleting it"),
            ));
        }
        info!(table = %table, tenant = %request.tenant, policy = ?request.deletion_policy, "deleting DynamoDB table");
        match self.client.delete_table().table_name(&table).send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) => {}
            Err(e) => return Err(sdk_error(&self.api, "DeleteTable", &table, e)),
        }
        Ok(Outcome::progressing(
            "Deleting",
            format!("deleting table {table}"),
        ))
    }

    async fn delete_tables(
        &self,
        request: &TenantTables,
    ) -> Result<Outcome<Deletion>, ProviderError> {
        if request.tier == Tier::Pooled {
            return Ok(Outcome::Ready(Deletion::new(
                "pooled tenant: the shared pool tables stay; the tenant's items are the runtime's to remove",
            )));
        }
        let mut outcomes = Vec::with_capacity(3);
        for kind in TableKind::ALL {
            outcomes.push(self.delete_table(request, kind).await?);
        }
        let done: Vec<String> = outcomes
            .iter()
            .filter_map(|o| {
                if let Outcome::Ready(s) = o {
                    Some(s.clone())
                } else {
                    None
                }
            })
            .collect();
        let combined = combine(outcomes.into_iter().map(|o| o.map(|_| ())).collect());
        Ok(combined.map(|()| {
            let mut summary = match request.deletion_policy {
                DeletionPolicy::Retain => {
                    format!("tables retained and tagged {}=true: ", tags::ORPHANED)
                }
                DeletionPolicy::Snapshot => {
                    "tables deleted after final backups named <table>-final: ".to_owned()
                }
                DeletionPolicy::Delete => "tables deleted: ".to_owned(),
            };
            summary.push_str(&done.join(", "));
            Deletion::new(summary)
        }))
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
    ProviderError::Config(format!("building a DynamoDB request failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_outranks_progressing_outranks_ready() {
        let ready = Outcome::Ready(());
        let busy = Outcome::progressing("Creating", "table a is CREATING");
        let failed = Outcome::terminal("Terminal", "table b is ARCHIVED");
        assert_eq!(
            combine(vec![ready.clone(), ready.clone()]),
            Outcome::Ready(())
        );
        assert!(matches!(
            combine(vec![ready.clone(), busy.clone()]),
            Outcome::Progressing {
                reason: "Creating",
                ..
            }
        ));
        assert!(matches!(
            combine(vec![busy, failed, ready]),
            Outcome::Terminal {
                reason: "Terminal",
                ..
            }
        ));
    }

    #[test]
    fn only_carts_and_sessions_expire() {
        assert_eq!(TableKind::Catalog.ttl_attribute(), None);
        assert_eq!(TableKind::Carts.ttl_attribute(), Some("expires_at"));
        assert_eq!(TableKind::Sessions.ttl_attribute(), Some("expires_at"));
    }
}
