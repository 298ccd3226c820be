//! One table towards its request: create it (or find the one to adopt), then converge its
//! deletion protection, TTL and point-in-time recovery, one step per call.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, PointInTimeRecoverySpecification,
    PointInTimeRecoveryStatus, ProvisionedThroughput, ScalarAttributeType, TableDescription,
    TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use emporium_tenant_config::Tables;
use tracing::info;

use super::{
    DynamoTables, Ownership, PARTITION_KEY, SORT_KEY, TableKind, TableProvisioner as _,
    TenantTables, build_error, combine, ownership,
};
use crate::providers::{DeletionPolicy, Outcome, ProviderError, Tier, aws::sdk_error, tags};

impl DynamoTables {
    pub(super) async fn describe(
        &self,
        table: &str,
    ) -> Result<Option<TableDescription>, ProviderError> {
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

    async fn create(
        &self,
        request: &TenantTables,
        kind: TableKind,
        table: &str,
    ) -> Result<(), ProviderError> {
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
        let (billing, throughput) = match self.desired_throughput(request) {
            None => (BillingMode::PayPerRequest, None),
            Some((read, write)) => (BillingMode::Provisioned, Some(throughput(read, write)?)),
        };
        let result = self
            .client
            .create_table()
            .table_name(table)
            .billing_mode(billing)
            .set_provisioned_throughput(throughput)
            .key_schema(key(PARTITION_KEY, KeyType::Hash)?)
            .key_schema(key(SORT_KEY, KeyType::Range)?)
            .attribute_definitions(attribute(PARTITION_KEY)?)
            .attribute_definitions(attribute(SORT_KEY)?)
            .deletion_protection_enabled(self.desired_protection(request, kind))
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

    /// One table's next step.
    async fn ensure_table(
        &self,
        request: &TenantTables,
        kind: TableKind,
    ) -> Result<Outcome<()>, ProviderError> {
        let table = self.name(request, kind);
        let adopted = request.adopts(kind);
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
            self.create(request, kind, &table).await?;
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
            let ownership = ownership(current.tags(), request);
            if let Ownership::Other(owner) = &ownership {
                return Ok(Outcome::terminal(
                    "AdoptionRefused",
                    format!(
                        "table {table} named in spec.catalog.existingTables belongs to {owner}; a table is adopted only when no other Storefront owns it (untagged, or retained and tagged {}=true)",
                        tags::ORPHANED
                    ),
                ));
            }
            if ownership == Ownership::Free {
                // A retained table keeps its former owner's tags: drop them (and the orphan
                // mark) before tagging it as this Storefront's.
                let stale: Vec<String> = [tags::ORPHANED, tags::TENANT, tags::OWNER_UID]
                    .into_iter()
                    .filter(|key| current.tags().iter().any(|t| t.key() == *key))
                    .map(str::to_owned)
                    .collect();
                if !stale.is_empty() {
                    self.client
                        .untag_resource()
                        .resource_arn(&arn)
                        .set_tag_keys(Some(stale))
                        .send()
                        .await
                        .map_err(|e| sdk_error(&self.api, "UntagResource", &table, e))?;
                }
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
        let want = self.desired_throughput(request);
        let on_demand = description
            .billing_mode_summary()
            .and_then(|s| s.billing_mode())
            .is_none_or(|m| *m == BillingMode::PayPerRequest);
        let have = (!on_demand).then(|| {
            let t = description.provisioned_throughput();
            (
                t.and_then(|t| t.read_capacity_units()).unwrap_or(0),
                t.and_then(|t| t.write_capacity_units()).unwrap_or(0),
            )
        });
        if have != want && request.tier == Tier::Dedicated {
            let mut update = self.client.update_table().table_name(&table);
            let what = match want {
                None => {
                    update = update.billing_mode(BillingMode::PayPerRequest);
                    "on demand".to_owned()
                }
                Some((read, write)) => {
                    update = update
                        .billing_mode(BillingMode::Provisioned)
                        .provisioned_throughput(throughput(read, write)?);
                    format!("provisioned at {read} read and {write} write capacity units")
                }
            };
            update
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "UpdateTable", &table, e))?;
            return Ok(Outcome::progressing(
                "Modifying",
                format!("setting the capacity of table {table} to {what}"),
            ));
        }
        let protection = self.desired_protection(request, kind);
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

    pub(super) async fn ensure_tables(
        &self,
        request: &TenantTables,
    ) -> Result<Outcome<Tables>, ProviderError> {
        let mut outcomes = Vec::with_capacity(3);
        for kind in TableKind::ALL {
            outcomes.push(self.ensure_table(request, kind).await?);
        }
        Ok(combine(outcomes).map(|()| self.table_names(request)))
    }
}

fn throughput(read: i64, write: i64) -> Result<ProvisionedThroughput, ProviderError> {
    ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .map_err(build_error)
}
