//! The `postgres` database provider against the stack's real PostgreSQL server.

mod common;

use common::ready;
use emporium_integration_tests::{postgres_admin, postgres_admin_url, unique};
use emporium_operator::providers::{
    Capacity, DatabaseProvider, DeletionPolicy, Outcome, PostgresConfig, PostgresProvider,
    SecretString, TenantDatabase, Tier,
};
use tokio_postgres::NoTls;

/// A provider with a prefix of its own, so tests never see each other's names.
fn provider(prefix: &str) -> PostgresProvider {
    let mut config = PostgresConfig::new(
        SecretString::new(postgres_admin_url()),
        SecretString::new("integration-test-key-0123456789"),
    );
    config.prefix = prefix.to_owned();
    PostgresProvider::new(config).expect("valid config")
}

fn request(tenant: &str, tier: Tier, policy: DeletionPolicy) -> TenantDatabase {
    TenantDatabase {
        tenant: tenant.to_owned(),
        tenant_id: tenant.to_owned(),
        credentials_generation: None,
        tier,
        engine_version: None,
        allow_major_version_upgrade: false,
        capacity: Capacity {
            min_acu: 0.5,
            max_acu: 2.0,
        },
        deletion_policy: policy,
        adopt: None,
        recorded: None,
    }
}

async fn database_count(name: &str) -> i64 {
    postgres_admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .await
        .expect("query")
        .get(0)
}

async fn connect(dsn: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(dsn, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The DSN with its database name (the last path segment) replaced.
fn with_database(dsn: &str, database: &str) -> String {
    let (base, _) = dsn.rsplit_once('/').expect("a DSN names a database");
    format!("{base}/{database}")
}

#[tokio::test]
async fn a_dedicated_tenant_gets_one_database_its_role_can_reach_and_nobody_else_can() {
    let prefix = unique("pg-");
    let provider = provider(&prefix);
    let acme = request("acme", Tier::Dedicated, DeletionPolicy::Delete);
    let globex = request("globex", Tier::Dedicated, DeletionPolicy::Delete);

    let first = ready(provider.ensure(&acme).await.expect("ensure"));
    let second = ready(provider.ensure(&acme).await.expect("ensure again"));
    let other = ready(provider.ensure(&globex).await.expect("ensure globex"));

    assert_eq!(first, second, "ensuring twice answers the same connection");
    assert_eq!(first.database, format!("{prefix}-acme"));
    assert_eq!(database_count(&first.database).await, 1);
    let parsed: tokio_postgres::Config = first.dsn.expose().parse().expect("the DSN parses");
    let password =
        String::from_utf8(parsed.get_password().expect("has a password").to_vec()).expect("utf-8");
    assert!(
        !format!("{first:?}").contains(&password),
        "Debug must not show the password"
    );

    // The role logs in with its generated password and works in its own database.
    let own = connect(first.dsn.expose())
        .await
        .expect("the tenant's role logs in to its database");
    own.batch_execute(
        "CREATE TABLE products (id int PRIMARY KEY); INSERT INTO products VALUES (1)",
    )
    .await
    .expect("the role owns its schema");
    let user: String = own
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(user, first.username);

    // It cannot reach another tenant's database, and the other tenant cannot reach its own.
    // Same user and password, another tenant's database.
    let into_other = with_database(first.dsn.expose(), &other.database);
    let Err(refused) = connect(&into_other).await else {
        panic!("acme's role is refused in globex's database");
    };
    assert_eq!(
        refused.as_db_error().map(|e| e.code().code()),
        Some("42501"),
        "{refused}"
    );
    let reverse = with_database(other.dsn.expose(), &first.database);
    assert!(
        connect(&reverse).await.is_err(),
        "globex's role is refused in acme's database"
    );

    // Delete drops both database and role.
    drop(own);
    ready(provider.delete(&acme).await.expect("delete"));
    ready(provider.delete(&globex).await.expect("delete globex"));
    assert_eq!(database_count(&first.database).await, 0);
    let roles: i64 = postgres_admin()
        .await
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname = $1",
            &[&first.username],
        )
        .await
        .expect("query")
        .get(0);
    assert_eq!(roles, 0);
    // Deleting again is a no-op.
    ready(provider.delete(&acme).await.expect("delete twice"));
}

#[tokio::test]
async fn pooled_tenants_share_the_pool_database_and_role_without_bypassrls() {
    let prefix = unique("pool-");
    let provider = provider(&prefix);
    let a = ready(
        provider
            .ensure(&request("a", Tier::Pooled, DeletionPolicy::Delete))
            .await
            .expect("ensure a"),
    );
    let b = ready(
        provider
            .ensure(&request("b", Tier::Pooled, DeletionPolicy::Delete))
            .await
            .expect("ensure b"),
    );
    assert_eq!(a, b);
    assert_eq!(a.database, format!("{prefix}_pool"));
    let client = connect(a.dsn.expose())
        .await
        .expect("the pool role logs in");
    let bypass: bool = client
        .query_one(
            "SELECT rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .expect("q")
        .get(0);
    assert!(!bypass, "row-level security must apply to the pool role");

    // Deleting a pooled tenant leaves the shared database alone.
    ready(
        provider
            .delete(&request("a", Tier::Pooled, DeletionPolicy::Delete))
            .await
            .expect("delete"),
    );
    assert_eq!(database_count(&a.database).await, 1);
    drop(client);
    let admin = postgres_admin().await;
    for sql in [
        format!("DROP DATABASE \"{}\" WITH (FORCE)", a.database),
        format!("DROP ROLE \"{}\"", a.username),
    ] {
        admin.batch_execute(&sql).await.expect("cleanup");
    }
}

#[tokio::test]
async fn retain_and_snapshot_keep_the_database_and_mark_it_orphaned() {
    let prefix = unique("keep-");
    let provider = provider(&prefix);
    for (tenant, policy) in [
        ("r", DeletionPolicy::Retain),
        ("s", DeletionPolicy::Snapshot),
    ] {
        let db = request(tenant, Tier::Dedicated, policy);
        let connection = ready(provider.ensure(&db).await.expect("ensure"));
        let deletion = ready(provider.delete(&db).await.expect("delete"));
        assert_eq!(
            database_count(&connection.database).await,
            1,
            "{policy:?} keeps the database"
        );
        let comment: Option<String> = postgres_admin()
            .await
            .query_one(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
                &[&connection.database],
            )
            .await
            .expect("query")
            .get(0);
        assert!(
            comment
                .unwrap_or_default()
                .starts_with("emporium.dev/orphaned=true")
        );
        if policy == DeletionPolicy::Snapshot {
            assert!(
                deletion.summary.contains("cannot take snapshots"),
                "{}",
                deletion.summary
            );
        }
        // Clean up what the test made.
        let cleanup = request(tenant, Tier::Dedicated, DeletionPolicy::Delete);
        ready(provider.delete(&cleanup).await.expect("cleanup"));
    }
}

#[tokio::test]
async fn a_recorded_database_that_vanished_is_recreated_or_reported() {
    let prefix = unique("gone-");
    let provider = provider(&prefix);
    let mut db = request("t", Tier::Dedicated, DeletionPolicy::Delete);
    let connection = ready(provider.ensure(&db).await.expect("ensure"));
    postgres_admin()
        .await
        .batch_execute(&format!(
            "DROP DATABASE \"{}\" WITH (FORCE)",
            connection.database
        ))
        .await
        .expect("drop");
    db.recorded = Some(connection.database.clone());

    db.deletion_policy = DeletionPolicy::Retain;
    match provider.ensure(&db).await.expect("ensure") {
        Outcome::Terminal { reason, message } => {
            assert_eq!(reason, "Missing");
            assert!(message.contains(&connection.database), "{message}");
        }
        other => panic!("Retain must report the loss, got {other:?}"),
    }
    assert_eq!(
        database_count(&connection.database).await,
        0,
        "Retain creates nothing"
    );

    db.deletion_policy = DeletionPolicy::Delete;
    let again = ready(provider.ensure(&db).await.expect("ensure"));
    assert_eq!(again, connection);
    assert_eq!(database_count(&connection.database).await, 1);
    connect(again.dsn.expose())
        .await
        .expect("the same password still works");
    ready(provider.delete(&db).await.expect("cleanup"));
}

#[tokio::test]
async fn an_existing_database_can_be_adopted() {
    let prefix = unique("adopt-");
    let provider = provider(&prefix);
    let existing = format!("{prefix}-legacy");
    postgres_admin()
        .await
        .batch_execute(&format!("CREATE DATABASE \"{existing}\""))
        .await
        .expect("create");

    let mut db = request("shop", Tier::Dedicated, DeletionPolicy::Delete);
    db.adopt = Some(existing.clone());
    let connection = ready(provider.ensure(&db).await.expect("adopt"));
    assert_eq!(connection.database, existing);
    assert_eq!(
        database_count(&format!("{prefix}-shop")).await,
        0,
        "adoption creates no new database"
    );
    connect(connection.dsn.expose())
        .await
        .expect("the tenant's role reaches the adopted database");

    db.adopt = Some(format!("{prefix}-absent"));
    assert!(matches!(
        provider.ensure(&db).await.expect("ensure"),
        Outcome::Terminal {
            reason: "AdoptionFailed",
            ..
        }
    ));

    db.adopt = Some(existing.clone());
    ready(provider.delete(&db).await.expect("cleanup"));
    assert_eq!(database_count(&existing).await, 0);
}
