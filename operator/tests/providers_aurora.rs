//! The `aurora` database provider against moto's RDS. moto makes a new cluster `available` on
//! its first describe, so the waiting path is covered by the unit tests of the state mapping;
//! here each test drives the provider until it answers something other than `Progressing`.
//! moto's clusters have no PostgreSQL behind them, so the login-role SQL runs on a scratch
//! database of the stack's PostgreSQL (`sql_override`, a test-only setting): the roles, their
//! schemas and their limits are real.

mod common;

use aws_sdk_rds::types::{ServerlessV2ScalingConfiguration, Tag};
use common::{delete_until_done, ensure_until_settled, ready};
use emporium_integration_tests::{Stack, moto_subnets, scratch_database, unique};
use emporium_operator::providers::{
    AuroraConfig, AuroraProvider, Capacity, DatabaseProvider, DeletionPolicy, Outcome,
    ProviderError, SecretString, TenantDatabase, Tier,
};

struct Fixture {
    provider: AuroraProvider,
    rds: aws_sdk_rds::Client,
    prefix: String,
}

async fn fixture() -> Fixture {
    let sdk = Stack::get().aws().await.expect("moto config");
    let prefix = unique("e");
    let mut config = AuroraConfig::new(format!("{prefix}-subnets"));
    config.prefix = prefix.clone();
    let endpoint = Stack::get()
        .var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL");
    config.subnet_ids = moto_subnets(endpoint)
        .await
        .expect("moto answers EC2 DescribeSubnets");
    config.pool_cluster = format!("{prefix}-pool");
    config.max_attempts = 3;
    config.sql_override = Some(SecretString::new(scratch_database("aurora_sql").await));
    Fixture {
        provider: AuroraProvider::new(&sdk, config),
        rds: aws_sdk_rds::Client::new(&sdk),
        prefix,
    }
}

fn request(tenant: &str, policy: DeletionPolicy) -> TenantDatabase {
    TenantDatabase {
        tenant: tenant.to_owned(),
        tenant_id: tenant.to_owned(),
        credentials_generation: None,
        tier: Tier::Dedicated,
        engine_version: Some("16.6".into()),
        allow_major_version_upgrade: false,
        capacity: Capacity {
            min_acu: 0.5,
            max_acu: 4.0,
        },
        deletion_policy: policy,
        adopt: None,
        recorded: None,
    }
}

/// Every cluster moto has with this identifier (to prove there are no duplicates).
async fn clusters_named(rds: &aws_sdk_rds::Client, id: &str) -> Vec<aws_sdk_rds::types::DbCluster> {
    let all = rds
        .describe_db_clusters()
        .send()
        .await
        .expect("describe clusters");
    all.db_clusters()
        .iter()
        .filter(|c| c.db_cluster_identifier() == Some(id))
        .cloned()
        .collect()
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

#[tokio::test]
async fn a_dedicated_tenant_gets_exactly_one_encrypted_tagged_cluster_with_a_writer() {
    let f = fixture().await;
    let db = request("acme", DeletionPolicy::Retain);
    let id = format!("{}-acme", f.prefix);

    let (steps, outcome) = ensure_until_settled(|| f.provider.ensure(&db)).await;
    let connection = ready(outcome);
    assert_eq!(
        steps.first().map(|s| s.reason),
        Some("Creating"),
        "the first call creates and reports progress: {steps:?}"
    );
    assert!(
        steps.iter().any(|s| s.reason == "CreatingWriter"),
        "{steps:?}"
    );
    let again = ready(f.provider.ensure(&db).await.expect("ensure again"));
    assert_eq!(again, connection, "steady state answers the same");

    let clusters = clusters_named(&f.rds, &id).await;
    assert_eq!(clusters.len(), 1, "one cluster, not two");
    let cluster = &clusters[0];
    assert_eq!(cluster.engine(), Some("aurora-postgresql"));
    assert_eq!(cluster.storage_encrypted(), Some(true));
    assert_eq!(
        cluster.deletion_protection(),
        Some(true),
        "Retain protects the cluster"
    );
    assert_eq!(
        tag_value(cluster.tag_list(), "emporium.dev/tenant"),
        Some("acme")
    );
    assert_eq!(
        tag_value(cluster.tag_list(), "emporium.dev/managed-by"),
        Some("emporium-operator")
    );
    assert!(
        cluster
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .is_some(),
        "RDS manages the master password"
    );
    let scaling = cluster
        .serverless_v2_scaling_configuration()
        .expect("serverless v2");
    assert_eq!(
        (scaling.min_capacity(), scaling.max_capacity()),
        (Some(0.5), Some(4.0))
    );
    let members = cluster.db_cluster_members();
    assert_eq!(members.len(), 1, "one writer");
    assert_eq!(
        members[0].db_instance_identifier(),
        Some(format!("{id}-writer").as_str())
    );
    let instance = f
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("{id}-writer"))
        .send()
        .await
        .expect("writer");
    assert_eq!(
        instance.db_instances()[0].db_instance_class(),
        Some("db.serverless")
    );

    assert_eq!(connection.identifier, id);
    assert!(
        cluster.endpoint().is_some(),
        "RDS reports a writer endpoint"
    );
    // With the test-only SQL override the DSN names the local server (plain TCP), and the
    // tenant's own login role, not the master user.
    assert_eq!(connection.host, "127.0.0.1");
    assert!(connection.dsn.expose().starts_with("postgres://"));
    assert_ne!(connection.username, "emporium_admin");
    assert!(
        connection.username.starts_with(&format!("{}-", f.prefix)),
        "{}",
        connection.username
    );
    assert!(
        !format!("{connection:?}").contains(connection.dsn.expose()),
        "Debug redacts the DSN"
    );

    // Retain: the cluster stays, still protected, tagged orphaned.
    let deletion = delete_until_done(|| f.provider.delete(&db)).await;
    assert!(
        deletion.summary.contains("retained"),
        "{}",
        deletion.summary
    );
    let kept = clusters_named(&f.rds, &id).await;
    assert_eq!(kept.len(), 1);
    assert_eq!(
        tag_value(kept[0].tag_list(), "emporium.dev/orphaned"),
        Some("true")
    );
    assert_eq!(kept[0].deletion_protection(), Some(true));
}

#[tokio::test]
async fn changing_the_capacity_modifies_the_cluster() {
    let f = fixture().await;
    let mut db = request("grow", DeletionPolicy::Delete);
    ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);

    db.capacity = Capacity {
        min_acu: 1.0,
        max_acu: 8.0,
    };
    match f.provider.ensure(&db).await.expect("ensure") {
        Outcome::Progressing { reason, message } => {
            assert_eq!(reason, "Modifying");
            assert!(message.contains("1–8 ACU"), "{message}");
        }
        other => panic!("expected a modification, got {other:?}"),
    }
    ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);
    let cluster = &clusters_named(&f.rds, &format!("{}-grow", f.prefix)).await[0];
    let scaling = cluster
        .serverless_v2_scaling_configuration()
        .expect("serverless v2");
    assert_eq!(
        (scaling.min_capacity(), scaling.max_capacity()),
        (Some(1.0), Some(8.0))
    );
    delete_until_done(|| f.provider.delete(&db)).await;
}

#[tokio::test]
async fn snapshot_deletes_after_a_final_snapshot_with_a_deterministic_name() {
    let f = fixture().await;
    let db = request("snap", DeletionPolicy::Snapshot);
    let id = format!("{}-snap", f.prefix);
    ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);

    let deletion = delete_until_done(|| f.provider.delete(&db)).await;
    assert!(
        deletion.summary.contains(&format!("{id}-final")),
        "{}",
        deletion.summary
    );
    assert!(
        clusters_named(&f.rds, &id).await.is_empty(),
        "the cluster is gone"
    );
    let snapshots = f
        .rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(format!("{id}-final"))
        .send()
        .await
        .expect("the final snapshot exists");
    assert_eq!(snapshots.db_cluster_snapshots().len(), 1);
    let instances = f
        .rds
        .describe_db_instances()
        .db_instance_identifier(format!("{id}-writer"))
        .send()
        .await;
    assert!(instances.is_err(), "the writer is gone too");
}

#[tokio::test]
async fn delete_removes_the_cluster_without_a_snapshot() {
    let f = fixture().await;
    let db = request("gone", DeletionPolicy::Delete);
    let id = format!("{}-gone", f.prefix);
    ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);
    delete_until_done(|| f.provider.delete(&db)).await;
    assert!(clusters_named(&f.rds, &id).await.is_empty());
    let snapshot = f
        .rds
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(format!("{id}-final"))
        .send()
        .await;
    assert!(
        snapshot
            .map(|s| s.db_cluster_snapshots().is_empty())
            .unwrap_or(true),
        "no final snapshot"
    );
    // Deleting again is a no-op.
    delete_until_done(|| f.provider.delete(&db)).await;
}

#[tokio::test]
async fn a_recorded_cluster_that_vanished_is_recreated_or_reported() {
    let f = fixture().await;
    let mut db = request("lost", DeletionPolicy::Delete);
    let id = format!("{}-lost", f.prefix);
    ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);
    // Someone deletes it behind the operator's back.
    f.rds
        .delete_db_instance()
        .db_instance_identifier(format!("{id}-writer"))
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete writer");
    f.rds
        .delete_db_cluster()
        .db_cluster_identifier(&id)
        .skip_final_snapshot(true)
        .send()
        .await
        .expect("delete cluster");
    // moto keeps the deleted cluster's automated snapshot (named by the minute) and would refuse
    // the re-creation with DBClusterSnapshotAlreadyExistsFault; AWS removes automated backups
    // with the cluster, so do what AWS does.
    let automated = f
        .rds
        .describe_db_cluster_snapshots()
        .db_cluster_identifier(&id)
        .snapshot_type("automated")
        .send()
        .await
        .expect("describe snapshots");
    for snapshot in automated.db_cluster_snapshots() {
        if let Some(name) = snapshot.db_cluster_snapshot_identifier() {
            f.rds
                .delete_db_cluster_snapshot()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await
                .expect("delete automated snapshot");
        }
    }
    db.recorded = Some(id.clone());

    db.deletion_policy = DeletionPolicy::Retain;
    match f.provider.ensure(&db).await.expect("ensure") {
        Outcome::Terminal { reason, message } => {
            assert_eq!(reason, "Missing");
            assert!(message.contains(&id), "{message}");
        }
        other => panic!("Retain must report the loss, got {other:?}"),
    }
    assert!(
        clusters_named(&f.rds, &id).await.is_empty(),
        "Retain creates nothing"
    );

    db.deletion_policy = DeletionPolicy::Delete;
    let (steps, outcome) = ensure_until_settled(|| f.provider.ensure(&db)).await;
    assert_eq!(
        steps.first().map(|s| s.reason),
        Some("Recreating"),
        "{steps:?}"
    );
    assert_eq!(ready(outcome).identifier, id);
    assert_eq!(clusters_named(&f.rds, &id).await.len(), 1);
    delete_until_done(|| f.provider.delete(&db)).await;
}

#[tokio::test]
async fn an_existing_cluster_can_be_adopted() {
    let f = fixture().await;
    let existing = format!("{}-legacy", f.prefix);
    f.rds
        .create_db_cluster()
        .db_cluster_identifier(&existing)
        .engine("aurora-postgresql")
        .master_username("legacy")
        .manage_master_user_password(true)
        .database_name("shop")
        .serverless_v2_scaling_configuration(
            ServerlessV2ScalingConfiguration::builder()
                .min_capacity(0.5)
                .max_capacity(2.0)
                .build(),
        )
        .send()
        .await
        .expect("create the cluster to adopt");

    let mut db = request("shop", DeletionPolicy::Retain);
    db.adopt = Some(existing.clone());
    db.capacity = Capacity {
        min_acu: 0.5,
        max_acu: 2.0,
    };
    let connection = ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);
    assert_eq!(connection.identifier, existing);
    assert!(
        connection.username.ends_with("-shop"),
        "the adopting tenant's own login role: {}",
        connection.username
    );
    assert!(
        clusters_named(&f.rds, &format!("{}-shop", f.prefix))
            .await
            .is_empty(),
        "adoption creates no new cluster"
    );
    let cluster = &clusters_named(&f.rds, &existing).await[0];
    assert_eq!(
        tag_value(cluster.tag_list(), "emporium.dev/adopted"),
        Some("true")
    );
    assert_eq!(
        tag_value(cluster.tag_list(), "emporium.dev/tenant"),
        Some("shop")
    );

    db.adopt = Some(format!("{}-absent", f.prefix));
    assert!(matches!(
        f.provider.ensure(&db).await.expect("ensure"),
        Outcome::Terminal {
            reason: "AdoptionFailed",
            ..
        }
    ));
}

#[tokio::test]
async fn pooled_tenants_share_the_pool_cluster_which_outlives_them() {
    let f = fixture().await;
    let mut a = request("a", DeletionPolicy::Delete);
    a.tier = Tier::Pooled;
    let mut b = request("b", DeletionPolicy::Delete);
    b.tier = Tier::Pooled;
    let first = ready(ensure_until_settled(|| f.provider.ensure(&a)).await.1);
    let second = ready(ensure_until_settled(|| f.provider.ensure(&b)).await.1);
    assert_eq!(
        (&first.identifier, &first.host, first.port),
        (&second.identifier, &second.host, second.port)
    );
    assert_ne!(first.username, second.username, "a login role each");
    assert_eq!(first.identifier, format!("{}-pool", f.prefix));
    delete_until_done(|| f.provider.delete(&a)).await;
    let pool = clusters_named(&f.rds, &first.identifier).await;
    assert_eq!(pool.len(), 1, "the pool stays");
    assert_eq!(pool[0].deletion_protection(), Some(true));
}

#[tokio::test]
async fn a_missing_subnet_group_without_subnet_ids_is_a_configuration_error() {
    let sdk = Stack::get().aws().await.expect("moto config");
    let mut config = AuroraConfig::new(unique("nosuchgroup"));
    config.prefix = unique("e");
    let provider = AuroraProvider::new(&sdk, config);
    match provider.ensure(&request("x", DeletionPolicy::Delete)).await {
        Err(e @ ProviderError::Config(_)) => {
            assert!(e.to_string().contains("does not exist"), "{e}")
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn an_engine_version_edit_reaches_the_cluster_minor_in_place_major_only_when_allowed() {
    let f = fixture().await;
    let mut db = request("upgrader", DeletionPolicy::Delete);
    let id = format!("{}-upgrader", f.prefix);
    ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);
    let running = |rds: aws_sdk_rds::Client, id: String| async move {
        clusters_named(&rds, &id).await[0]
            .engine_version()
            .map(str::to_owned)
    };
    assert_eq!(
        running(f.rds.clone(), id.clone()).await.as_deref(),
        Some("16.6")
    );

    // A minor version: ModifyDBCluster in place, reported as Upgrading.
    db.engine_version = Some("16.8".into());
    let outcome = f.provider.ensure(&db).await.expect("ensure");
    assert!(
        matches!(&outcome, Outcome::Progressing { reason: "Upgrading", message } if message.contains("16.6") && message.contains("16.8")),
        "{outcome:?}"
    );
    assert_eq!(
        running(f.rds.clone(), id.clone()).await.as_deref(),
        Some("16.8")
    );
    ready(ensure_until_settled(|| f.provider.ensure(&db)).await.1);

    // A major version is refused until the spec allows it; a downgrade always.
    db.engine_version = Some("17.4".into());
    let refused = f.provider.ensure(&db).await.expect("ensure");
    assert!(
        matches!(&refused, Outcome::Terminal { reason: "MajorUpgradeNotAllowed", message } if message.contains("allowMajorVersionUpgrade")),
        "{refused:?}"
    );
    assert_eq!(
        running(f.rds.clone(), id.clone()).await.as_deref(),
        Some("16.8")
    );
    db.allow_major_version_upgrade = true;
    let upgrading = f.provider.ensure(&db).await.expect("ensure");
    assert!(
        matches!(
            upgrading,
            Outcome::Progressing {
                reason: "Upgrading",
                ..
            }
        ),
        "{upgrading:?}"
    );
    assert_eq!(
        running(f.rds.clone(), id.clone()).await.as_deref(),
        Some("17.4")
    );
    db.engine_version = Some("16.8".into());
    let downgrade = f.provider.ensure(&db).await.expect("ensure");
    assert!(
        matches!(
            downgrade,
            Outcome::Terminal {
                reason: "DowngradeNotSupported",
                ..
            }
        ),
        "{downgrade:?}"
    );

    db.engine_version = Some("17.4".into());
    delete_until_done(|| f.provider.delete(&db)).await;
}

/// Connects with a tenant's DSN (the test-only override names the local server, plain TCP).
async fn login(dsn: &SecretString) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(dsn.expose(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

#[tokio::test]
async fn each_pooled_tenant_gets_a_login_role_that_reaches_only_its_own_rows() {
    let f = fixture().await;
    let mut a = request("a", DeletionPolicy::Delete);
    a.tier = Tier::Pooled;
    a.tenant_id = "3b0c1d52-5a0e-4f7e-9d0a-6c1f2e3d4b5a".into();
    let mut b = request("b", DeletionPolicy::Retain);
    b.tier = Tier::Pooled;
    b.tenant_id = "9f1e2d3c-1111-4f7e-9d0a-6c1f2e3d4b5a".into();
    let conn_a = ready(ensure_until_settled(|| f.provider.ensure(&a)).await.1);
    let conn_b = ready(ensure_until_settled(|| f.provider.ensure(&b)).await.1);
    assert!(conn_a.username.contains("3b0c1d52"), "{}", conn_a.username);
    // The override URL's user is the stand-in for the master login.
    assert!(
        !conn_a.dsn.expose().starts_with("postgres://emporium:"),
        "the tenant never gets the master login"
    );

    // Tenant A writes rows in its own schema, the way the runtime's migrations do.
    let pg_a = login(&conn_a.dsn).await.expect("tenant A logs in");
    pg_a.batch_execute(
        "CREATE TABLE customers (tenant_id text NOT NULL, email text NOT NULL);
         ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
         ALTER TABLE customers FORCE ROW LEVEL SECURITY;
         CREATE POLICY isolation ON customers
             USING (tenant_id = current_setting('app.tenant_id', true));
         SET app.tenant_id = 'a';
         INSERT INTO customers VALUES ('a', 'shopper@a.example');",
    )
    .await
    .expect("tenant A creates its tables and rows");
    let schema_a: String = pg_a
        .query_one("SELECT current_schema()::text", &[])
        .await
        .expect("current schema")
        .get(0);
    assert_eq!(
        schema_a, conn_a.username,
        "its tables live in its own schema"
    );

    // Tenant B cannot read them, whatever it sets, nor switch row-level security off.
    let pg_b = login(&conn_b.dsn).await.expect("tenant B logs in");
    let table = format!("\"{schema_a}\".customers");
    let read = pg_b
        .batch_execute(&format!("SET app.tenant_id = 'a'; SELECT * FROM {table}"))
        .await;
    let err = read.expect_err("tenant B reads tenant A's rows");
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{err}"
    );
    for escape in [
        format!("ALTER TABLE {table} DISABLE ROW LEVEL SECURITY"),
        format!("DROP TABLE {table}"),
        format!("GRANT \"{schema_a}\" TO CURRENT_USER"),
        "ALTER ROLE CURRENT_USER BYPASSRLS".to_owned(),
        "CREATE ROLE intruder LOGIN".to_owned(),
    ] {
        assert!(
            pg_b.batch_execute(&escape).await.is_err(),
            "tenant B may run: {escape}"
        );
    }
    let attributes = pg_b
        .query_one(
            "SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("role attributes");
    let flags: (bool, bool, bool, bool) = (
        attributes.get(0),
        attributes.get(1),
        attributes.get(2),
        attributes.get(3),
    );
    assert_eq!(flags, (false, false, false, false));

    // Rotation: a new annotation value gives a new password; the old one stops working.
    let mut rotated = a.clone();
    rotated.credentials_generation = Some("2026-12-03".into());
    let conn_rotated = ready(ensure_until_settled(|| f.provider.ensure(&rotated)).await.1);
    assert_eq!(conn_rotated.username, conn_a.username);
    assert_ne!(conn_rotated.dsn, conn_a.dsn, "a new password");
    assert!(
        login(&conn_a.dsn).await.is_err(),
        "the old password still logs in"
    );
    let pg_rotated = login(&conn_rotated.dsn)
        .await
        .expect("the new password logs in");
    let rows: i64 = pg_rotated
        .query_one(
            "SELECT count(*) FROM customers WHERE tenant_id = current_setting('app.tenant_id', true)",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(-1);
    assert!(rows >= 0, "the rotated login reads its own table");
    drop((pg_a, pg_rotated));

    // Delete drops A's role and schema; Retain keeps B's.
    delete_until_done(|| f.provider.delete(&rotated)).await;
    delete_until_done(|| f.provider.delete(&b)).await;
    assert!(login(&conn_rotated.dsn).await.is_err(), "A's login is gone");
    let admin = login(f.provider.config().sql_override.as_ref().expect("override"))
        .await
        .expect("admin");
    let schemas: Vec<String> = admin
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1) ORDER BY 1",
            &[&vec![conn_a.username.clone(), conn_b.username.clone()]],
        )
        .await
        .expect("schemas")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        schemas,
        vec![conn_b.username.clone()],
        "A's schema dropped, B's kept"
    );
}
