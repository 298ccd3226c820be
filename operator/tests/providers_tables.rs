//! The DynamoDB table provisioner against moto.

mod common;

use aws_sdk_dynamodb::types::{BillingMode, KeyType, PointInTimeRecoveryStatus, TimeToLiveStatus};
use common::{delete_until_done, ensure_until_settled, ready};
use emporium_integration_tests::{Stack, create_table, table_tags, tables_with_prefix, unique};
use emporium_operator::providers::{
    AdoptTables, DeletionPolicy, DynamoTables, Outcome, TableProvisioner, TableSettings,
    TenantTables, Tier,
};

struct Fixture {
    tables: DynamoTables,
    dynamodb: aws_sdk_dynamodb::Client,
    prefix: String,
}

async fn fixture() -> Fixture {
    let sdk = Stack::get().aws().await.expect("moto config");
    let prefix = unique("e");
    let settings = TableSettings {
        prefix: prefix.clone(),
        max_attempts: 3,
        ..TableSettings::default()
    };
    Fixture {
        tables: DynamoTables::new(&sdk, settings),
        dynamodb: aws_sdk_dynamodb::Client::new(&sdk),
        prefix,
    }
}

fn request(tenant: &str, policy: DeletionPolicy) -> TenantTables {
    TenantTables {
        tenant: tenant.to_owned(),
        tier: Tier::Dedicated,
        point_in_time_recovery: true,
        deletion_policy: policy,
        provisioned: None,
        adopt: AdoptTables::default(),
        delete_adopted: false,
        owner_uid: format!("uid-of-{tenant}"),
        recorded: false,
    }
}

#[tokio::test]
async fn a_dedicated_tenant_gets_three_on_demand_tables_with_ttl_and_pitr_once() {
    let f = fixture().await;
    let request = request("acme", DeletionPolicy::Delete);
    let (_, outcome) = ensure_until_settled(|| f.tables.ensure(&request)).await;
    let tables = ready(outcome);
    assert_eq!(tables.catalog, format!("{}-acme-catalog", f.prefix));
    assert_eq!(tables.carts, format!("{}-acme-carts", f.prefix));
    assert_eq!(tables.sessions, format!("{}-acme-sessions", f.prefix));
    assert_eq!(
        ready(f.tables.ensure(&request).await.expect("again")),
        tables,
        "steady state answers the same"
    );

    let mut names = tables_with_prefix(&f.dynamodb, &f.prefix).await;
    names.sort();
    assert_eq!(
        names,
        vec![
            tables.carts.clone(),
            tables.catalog.clone(),
            tables.sessions.clone()
        ],
        "three tables, no more"
    );

    for table in [&tables.catalog, &tables.carts, &tables.sessions] {
        let description = f
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("describe")
            .table
            .expect("table");
        assert_eq!(
            description
                .billing_mode_summary()
                .and_then(|b| b.billing_mode()),
            Some(&BillingMode::PayPerRequest)
        );
        let keys: Vec<_> = description
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name().to_owned(), k.key_type().clone()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("pk".to_owned(), KeyType::Hash),
                ("sk".to_owned(), KeyType::Range)
            ]
        );
        let backups = f
            .dynamodb
            .describe_continuous_backups()
            .table_name(table)
            .send()
            .await
            .expect("backups");
        let pitr = backups
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|d| d.point_in_time_recovery_status());
        assert_eq!(pitr, Some(&PointInTimeRecoveryStatus::Enabled), "{table}");
        let tags = table_tags(&f.dynamodb, table).await;
        assert!(
            tags.contains(&("emporium.dev/tenant".into(), "acme".into())),
            "{tags:?}"
        );
        assert!(
            tags.contains(&("emporium.dev/managed-by".into(), "emporium-operator".into())),
            "{tags:?}"
        );
    }
    for table in [&tables.carts, &tables.sessions] {
        let ttl = f
            .dynamodb
            .describe_time_to_live()
            .table_name(table)
            .send()
            .await
            .expect("ttl");
        let ttl = ttl.time_to_live_description().expect("ttl description");
        assert_eq!(
            ttl.time_to_live_status(),
            Some(&TimeToLiveStatus::Enabled),
            "{table}"
        );
        assert_eq!(ttl.attribute_name(), Some("expires_at"));
    }

    delete_until_done(|| f.tables.delete(&request)).await;
    assert!(
        tables_with_prefix(&f.dynamodb, &f.prefix).await.is_empty(),
        "Delete removes all three"
    );
}

#[tokio::test]
async fn pooled_tenants_share_the_pool_tables_which_outlive_them() {
    let f = fixture().await;
    let mut a = request("a", DeletionPolicy::Delete);
    a.tier = Tier::Pooled;
    let mut b = request("b", DeletionPolicy::Delete);
    b.tier = Tier::Pooled;
    let first = ready(ensure_until_settled(|| f.tables.ensure(&a)).await.1);
    let second = ready(ensure_until_settled(|| f.tables.ensure(&b)).await.1);
    assert_eq!(first, second);
    assert_eq!(first.catalog, format!("{}_pool-catalog", f.prefix));
    delete_until_done(|| f.tables.delete(&a)).await;
    assert_eq!(
        tables_with_prefix(&f.dynamodb, &f.prefix).await.len(),
        3,
        "the pool tables stay"
    );
}

#[tokio::test]
async fn snapshot_backs_up_each_table_under_a_deterministic_name_then_deletes_it() {
    let f = fixture().await;
    let request = request("snap", DeletionPolicy::Snapshot);
    let tables = ready(ensure_until_settled(|| f.tables.ensure(&request)).await.1);
    delete_until_done(|| f.tables.delete(&request)).await;
    assert!(tables_with_prefix(&f.dynamodb, &f.prefix).await.is_empty());
    for table in [&tables.catalog, &tables.carts, &tables.sessions] {
        let backups = f
            .dynamodb
            .list_backups()
            .table_name(table)
            .send()
            .await
            .expect("list backups");
        let names: Vec<_> = backups
            .backup_summaries()
            .iter()
            .filter_map(|b| b.backup_name())
            .collect();
        assert_eq!(names, vec![format!("{table}-final").as_str()], "{table}");
    }
}

#[tokio::test]
async fn retain_keeps_the_tables_protected_and_tagged_orphaned() {
    let f = fixture().await;
    let request = request("keep", DeletionPolicy::Retain);
    let tables = ready(ensure_until_settled(|| f.tables.ensure(&request)).await.1);
    let deletion = delete_until_done(|| f.tables.delete(&request)).await;
    assert!(
        deletion.summary.contains("retained"),
        "{}",
        deletion.summary
    );
    for table in [&tables.catalog, &tables.carts, &tables.sessions] {
        let description = f
            .dynamodb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .expect("still there")
            .table
            .expect("table");
        assert_eq!(description.deletion_protection_enabled(), Some(true));
        assert!(
            table_tags(&f.dynamodb, table)
                .await
                .contains(&("emporium.dev/orphaned".into(), "true".into()))
        );
    }
}

#[tokio::test]
async fn a_recorded_table_that_vanished_is_recreated_or_reported() {
    let f = fixture().await;
    let mut request = request("lost", DeletionPolicy::Delete);
    let tables = ready(ensure_until_settled(|| f.tables.ensure(&request)).await.1);
    f.dynamodb
        .delete_table()
        .table_name(&tables.carts)
        .send()
        .await
        .expect("delete behind the operator's back");
    request.recorded = true;

    request.deletion_policy = DeletionPolicy::Retain;
    // Retain turns deletion protection on first; then reports the missing table.
    let (_, outcome) = ensure_until_settled(|| f.tables.ensure(&request)).await;
    match outcome {
        Outcome::Terminal { reason, message } => {
            assert_eq!(reason, "Missing");
            assert!(message.contains(&tables.carts), "{message}");
        }
        other => panic!("Retain must report the loss, got {other:?}"),
    }
    assert_eq!(
        tables_with_prefix(&f.dynamodb, &f.prefix).await.len(),
        2,
        "Retain creates nothing"
    );

    request.deletion_policy = DeletionPolicy::Delete;
    let (steps, outcome) = ensure_until_settled(|| f.tables.ensure(&request)).await;
    assert!(
        steps.iter().any(|s| s
            .message
            .contains(&format!("recreating table {}", tables.carts))),
        "{steps:?}"
    );
    assert_eq!(ready(outcome), tables);
    assert_eq!(tables_with_prefix(&f.dynamodb, &f.prefix).await.len(), 3);
    delete_until_done(|| f.tables.delete(&request)).await;
}

#[tokio::test]
async fn an_existing_table_can_be_adopted() {
    let f = fixture().await;
    let existing = format!("{}-legacy-catalog", f.prefix);
    create_table(&f.dynamodb, &existing, &["pk", "sk"])
        .await
        .expect("create the table to adopt");

    let mut request = request("shop", DeletionPolicy::Delete);
    request.adopt.catalog = Some(existing.clone());
    let tables = ready(ensure_until_settled(|| f.tables.ensure(&request)).await.1);
    assert_eq!(tables.catalog, existing);
    assert_eq!(tables.carts, format!("{}-shop-carts", f.prefix));
    assert!(
        table_tags(&f.dynamodb, &existing)
            .await
            .contains(&("emporium.dev/adopted".into(), "true".into()))
    );
    assert_eq!(
        tables_with_prefix(&f.dynamodb, &f.prefix).await.len(),
        3,
        "no catalog table of its own"
    );

    let mut absent = request.clone();
    absent.adopt.catalog = Some(format!("{}-absent", f.prefix));
    assert!(matches!(
        f.tables.ensure(&absent).await.expect("ensure"),
        Outcome::Terminal {
            reason: "AdoptionFailed",
            ..
        }
    ));

    // deletionPolicy Delete removes the tenant's own tables but keeps the adopted one (no
    // `deleteAdopted`), tagged orphaned.
    delete_until_done(|| f.tables.delete(&request)).await;
    assert_eq!(
        tables_with_prefix(&f.dynamodb, &f.prefix).await,
        vec![existing.clone()],
        "only the adopted table is left"
    );
    assert!(
        table_tags(&f.dynamodb, &existing)
            .await
            .contains(&("emporium.dev/orphaned".into(), "true".into()))
    );

    // Retained, it can be adopted again; with `deleteAdopted` Delete then deletes it.
    let mut again = self::request("shop2", DeletionPolicy::Delete);
    again.adopt.catalog = Some(existing.clone());
    again.delete_adopted = true;
    ready(ensure_until_settled(|| f.tables.ensure(&again)).await.1);
    delete_until_done(|| f.tables.delete(&again)).await;
    assert!(tables_with_prefix(&f.dynamodb, &f.prefix).await.is_empty());
}

#[tokio::test]
async fn another_tenants_live_table_is_not_adopted_and_never_deleted() {
    let f = fixture().await;
    let owner = request("owner", DeletionPolicy::Delete);
    let owned = ready(ensure_until_settled(|| f.tables.ensure(&owner)).await.1);

    // A different Storefront names the owner's live catalog table.
    let mut intruder = request("intruder", DeletionPolicy::Delete);
    intruder.adopt.catalog = Some(owned.catalog.clone());
    intruder.delete_adopted = true;
    match f.tables.ensure(&intruder).await.expect("ensure") {
        Outcome::Terminal { reason, message } => {
            assert_eq!(reason, "AdoptionRefused");
            assert!(message.contains("Storefront `owner`"), "{message}");
        }
        other => panic!("expected AdoptionRefused, got {other:?}"),
    }
    // A new Storefront of the owner's name (another uid) is refused too.
    let mut same_name = request("owner", DeletionPolicy::Delete);
    same_name.owner_uid = "another-uid".into();
    same_name.adopt.catalog = Some(owned.catalog.clone());
    assert!(matches!(
        f.tables.ensure(&same_name).await.expect("ensure"),
        Outcome::Terminal {
            reason: "AdoptionRefused",
            ..
        }
    ));

    // Deleting the intruder (even with deleteAdopted) leaves the owner's table alone.
    delete_until_done(|| f.tables.delete(&intruder)).await;
    assert!(
        tables_with_prefix(&f.dynamodb, &f.prefix)
            .await
            .contains(&owned.catalog),
        "the owner's table survived the intruder's deletion"
    );
    let tags = table_tags(&f.dynamodb, &owned.catalog).await;
    assert!(tags.contains(&("emporium.dev/owner-uid".into(), "uid-of-owner".into())));
    assert!(!tags.iter().any(|(k, _)| k == "emporium.dev/orphaned"));
    delete_until_done(|| f.tables.delete(&owner)).await;
}

#[tokio::test]
async fn on_demand_false_provisions_the_plans_throughput_and_back() {
    let f = fixture().await;
    let mut request = request("metered", DeletionPolicy::Delete);
    let tables = ready(ensure_until_settled(|| f.tables.ensure(&request)).await.1);
    let billing = |dynamodb: aws_sdk_dynamodb::Client, table: String| async move {
        let t = dynamodb
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .expect("describe")
            .table
            .expect("a table");
        let mode = t
            .billing_mode_summary()
            .and_then(|s| s.billing_mode())
            .map(|m| m.as_str().to_owned());
        let units = t
            .provisioned_throughput()
            .map(|p| (p.read_capacity_units(), p.write_capacity_units()));
        (mode, units)
    };
    assert_eq!(
        billing(f.dynamodb.clone(), tables.carts.clone())
            .await
            .0
            .as_deref(),
        Some("PAY_PER_REQUEST")
    );

    // catalog.onDemand: false with the plan's throughput: UpdateTable on every table.
    request.provisioned = Some((7, 3));
    let (steps, outcome) = ensure_until_settled(|| f.tables.ensure(&request)).await;
    ready(outcome);
    assert!(steps.iter().any(|s| s.reason == "Modifying"), "{steps:?}");
    for table in [&tables.catalog, &tables.carts, &tables.sessions] {
        let (mode, units) = billing(f.dynamodb.clone(), table.clone()).await;
        assert_eq!(mode.as_deref(), Some("PROVISIONED"), "{table}");
        assert_eq!(units, Some((Some(7), Some(3))), "{table}");
    }

    // And back to on demand.
    request.provisioned = None;
    ready(ensure_until_settled(|| f.tables.ensure(&request)).await.1);
    assert_eq!(
        billing(f.dynamodb.clone(), tables.catalog.clone())
            .await
            .0
            .as_deref(),
        Some("PAY_PER_REQUEST")
    );
    delete_until_done(|| f.tables.delete(&request)).await;
}
