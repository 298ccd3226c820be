//! Releasing a tenant's tables per its deletion policy: retain (tagged orphaned), or delete each
//! table, after a final on-demand backup under a deterministic name.

use aws_sdk_dynamodb::types::{BackupStatus, TableStatus};
use tracing::info;

use super::{DynamoTables, Ownership, TableKind, TenantTables, combine, ownership, tag};
use crate::providers::{
    Deletion, DeletionPolicy, Outcome, ProviderError, Tier, aws::sdk_error, names, tags,
};

impl DynamoTables {
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
        if request.adopts(kind) {
            // An adopted table is deleted only when the spec says so (`deleteAdopted`), and
            // never when its tags name another owner.
            let arn = description.table_arn().unwrap_or(table.as_str()).to_owned();
            let current = self
                .client
                .list_tags_of_resource()
                .resource_arn(&arn)
                .send()
                .await
                .map_err(|e| sdk_error(&self.api, "ListTagsOfResource", &table, e))?;
            if ownership(current.tags(), request) != Ownership::Mine {
                return Ok(Outcome::Ready(format!(
                    "{table} left alone (never adopted: another owner's)"
                )));
            }
        }
        let retain = request.deletion_policy == DeletionPolicy::Retain
            || (request.adopts(kind) && !request.delete_adopted);
        if retain {
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

    pub(super) async fn delete_tables(
        &self,
        request: &TenantTables,
    ) -> Result<Outcome<Deletion>, ProviderError> {
        if request.tier == Tier::Pooled {
            return Ok(Outcome::Ready(Deletion::new(
                "pooled tenant: the shared pool tables stay (the tenant's items are offboarded per its deletionPolicy)",
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
