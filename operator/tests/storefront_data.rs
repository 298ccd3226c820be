//! The providers wired into the reconcile pipeline, end to end: a Storefront on the real API
//! server gets a PostgreSQL database (the stack's server) and DynamoDB tables (moto) through
//! the in-process controller; its config Secret carries a DSN that works; status, Events and
//! logs never carry the secret; deletion honours `deletionPolicy`; a restarted controller
//! creates nothing twice; the `aurora` provider runs through the same flow on moto's RDS.
//!
//! Each test runs its own controller, restricted by a label selector to the Storefronts it
//! created, with a data prefix of its own (`--name-prefix`), so tests never see each other's
//! databases or tables.

mod common;

use std::{
    io::Write as _,
    sync::{Mutex, OnceLock},
    time::Duration,
};

use common::{condition_is_true, plan, spawn_operator, test_config};
use emporium_integration_tests::{
    Stack, apply, create_table, databases_like, eventually, install_crds, moto_subnets,
    postgres_admin, postgres_admin_url, roles_like, scratch_database, table_tags,
    tables_with_prefix, unique,
};
use emporium_operator::{
    config::{DataProviderChoice, DataSettings, OperatorConfig},
    crd::{Storefront, StorefrontPlan, StorefrontStatus},
    providers::{SecretString, names},
    reconcile::{build::config_secret_name, tenant_data::DataProviders},
};
use emporium_tenant_config::{TENANT_CONFIG_KEY, TenantConfig};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams},
};
use serde_json::json;
use tokio_postgres::NoTls;

const WAIT: Duration = Duration::from_secs(90);
const PASSWORD_KEY: &str = "storefront-data-test-key-0123456789";

// ---------------------------------------------------------------------------------------------
// Captured operator logs (every level, every target, including tokio-postgres's statement log)

#[derive(Clone)]
struct Capture;

static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut logs) = LOGS.get_or_init(Mutex::default).lock() {
            logs.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(|| Capture)
            .try_init();
    });
}

fn captured_logs() -> String {
    let _ = Capture.flush();
    LOGS.get_or_init(Mutex::default)
        .lock()
        .map(|logs| String::from_utf8_lossy(&logs).into_owned())
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Fixtures

/// One test's world: its label, data prefix and plans.
struct World {
    client: Client,
    run: String,
    prefix: String,
    plan_dedicated: String,
    plan_pooled: String,
}

impl World {
    async fn new(label: &str) -> anyhow::Result<Self> {
        capture_logs();
        let client = Stack::get().kube().await?;
        install_crds(&client).await?;
        let run = unique(label);
        let world = Self {
            client,
            prefix: unique("d"),
            plan_dedicated: format!("{run}-dedicated"),
            plan_pooled: format!("{run}-pooled"),
            run,
        };
        let plans: Api<StorefrontPlan> = Api::all(world.client.clone());
        for (name, tier) in [
            (&world.plan_dedicated, "dedicated"),
            (&world.plan_pooled, "pooled"),
        ] {
            apply(&plans, name, plan(name, tier, 2)).await?;
        }
        Ok(world)
    }

    /// The operator configuration for postgres + DynamoDB (the flags of the report:
    /// `--database-provider postgres --tables-provider dynamodb --postgres-admin-url ...`).
    fn postgres_dynamodb(&self) -> OperatorConfig {
        OperatorConfig {
            database_provider: DataProviderChoice::Postgres,
            tables_provider: DataProviderChoice::Dynamodb,
            queues_provider: DataProviderChoice::Sqs,
            data: DataSettings {
                name_prefix: self.prefix.clone(),
                aws_max_attempts: 3,
                postgres_admin_url: Some(SecretString::new(postgres_admin_url())),
                postgres_password_key: Some(SecretString::new(PASSWORD_KEY)),
                ..DataSettings::default()
            },
            ..test_config(&self.run)
        }
    }

    fn storefronts(&self) -> Api<Storefront> {
        Api::all(self.client.clone())
    }

    async fn create(
        &self,
        name: &str,
        tier: &str,
        database: serde_json::Value,
    ) -> anyhow::Result<()> {
        let plan = if tier == "pooled" {
            &self.plan_pooled
        } else {
            &self.plan_dedicated
        };
        let sf = json!({
            "apiVersion": "emporium.dev/v1alpha1",
            "kind": "Storefront",
            "metadata": { "name": name, "labels": { "emporium.dev/test-run": self.run } },
            "spec": {
                "displayName": "Data Store",
                "plan": plan,
                "domains": [format!("{name}.shop.example")],
                "database": database,
            },
        });
        apply(&self.storefronts(), name, sf).await?;
        Ok(())
    }

    /// Waits until the Storefront is Ready with both data conditions True.
    async fn wait_ready(&self, name: &str) -> anyhow::Result<StorefrontStatus> {
        let api = self.storefronts();
        eventually(&format!("{name} Ready with its data"), WAIT, || async {
            let sf = api.get(name).await?;
            let Some(status) = sf.status else {
                return Ok(None);
            };
            let is_true = |t: &str| condition_is_true(&status, t);
            Ok(
                (is_true("Ready") && is_true("DatabaseReady") && is_true("TablesReady"))
                    .then_some(status),
            )
        })
        .await
    }

    /// Creates dedicated Storefronts, each with its deletion policy, and waits until all are
    /// Ready with their data.
    async fn create_ready(&self, tenants: &[(&str, &str)]) -> anyhow::Result<()> {
        for (name, policy) in tenants {
            let database = json!({ "deletionPolicy": policy });
            self.create(name, "dedicated", database).await?;
        }
        for (name, _) in tenants {
            self.wait_ready(name).await?;
        }
        Ok(())
    }

    async fn delete_and_wait_gone(&self, name: &str) -> anyhow::Result<()> {
        let api = self.storefronts();
        api.delete(name, &DeleteParams::default()).await?;
        eventually(&format!("{name} gone"), WAIT, || async {
            Ok(api.get_opt(name).await?.is_none().then_some(()))
        })
        .await
    }

    /// The tenant config the operator wrote.
    async fn tenant_config(&self, name: &str, namespace: &str) -> anyhow::Result<TenantConfig> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = eventually("config Secret", WAIT, || async {
            Ok(secrets.get_opt(&config_secret_name(name)).await?)
        })
        .await?;
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(TENANT_CONFIG_KEY))
            .map(|b| b.0.clone());
        Ok(TenantConfig::from_secret_data(bytes.as_deref())?)
    }

    /// Removes what a test left on purpose (retained databases and tables).
    async fn drop_leftovers(&self) {
        let admin = postgres_admin().await;
        let like = format!("{}%", self.prefix);
        for name in databases_like(&admin, &like).await.unwrap_or_default() {
            let _ = admin
                .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                .await;
        }
        for name in roles_like(&admin, &like).await.unwrap_or_default() {
            let _ = admin
                .batch_execute(&format!("DROP ROLE IF EXISTS \"{name}\""))
                .await;
        }
        let dynamodb = Stack::get().dynamodb().await.expect("dynamodb");
        for table in tables_with_prefix(&dynamodb, &self.prefix).await {
            let _ = dynamodb
                .update_table()
                .table_name(&table)
                .deletion_protection_enabled(false)
                .send()
                .await;
            let _ = dynamodb.delete_table().table_name(&table).send().await;
        }
    }
}

/// Starts a controller with `config`; AWS providers talk to moto.
async fn start_operator(
    client: &Client,
    config: OperatorConfig,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    start_operator_with(client, config, Stack::get().aws().await?).await
}

/// Starts a controller whose AWS providers use `sdk`.
async fn start_operator_with(
    client: &Client,
    config: OperatorConfig,
    sdk: aws_config::SdkConfig,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let providers = DataProviders::from_config(&config, Some(&sdk)).await?;
    Ok(spawn_operator(client, config, providers))
}

/// The stack's databases whose names start with `prefix`.
async fn databases_with_prefix(prefix: &str) -> Vec<String> {
    let pattern = format!("{prefix}%");
    databases_like(&postgres_admin().await, &pattern)
        .await
        .expect("query")
}

/// The stack's roles whose names start with `prefix`.
async fn roles_with_prefix(prefix: &str) -> Vec<String> {
    let pattern = format!("{prefix}%");
    roles_like(&postgres_admin().await, &pattern)
        .await
        .expect("query")
}

fn dedicated_tables(prefix: &str, tenant: &str) -> Vec<String> {
    let mut tables: Vec<String> = ["carts", "catalog", "sessions"]
        .iter()
        .map(|kind| names::table_name(prefix, tenant, kind))
        .collect();
    tables.sort();
    tables
}

// ---------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn a_dedicated_tenant_gets_a_working_database_and_tables_and_no_secret_leaks()
-> anyhow::Result<()> {
    let world = World::new("data").await?;
    let operator = start_operator(&world.client, world.postgres_dynamodb()).await?;
    let name = world.run.clone();
    world
        .create(&name, "dedicated", json!({ "deletionPolicy": "Delete" }))
        .await?;

    let status = world.wait_ready(&name).await?;
    let database = names::postgres_identifier(&world.prefix, &name);
    assert_eq!(status.database_id.as_deref(), Some(database.as_str()));
    let tables = dedicated_tables(&world.prefix, &name);
    let mut in_status = status.tables.clone();
    in_status.sort();
    assert_eq!(in_status, tables, "status lists the tenant's tables");

    // The DSN connects as the tenant's own role, to the tenant's own database.
    let config = world.tenant_config(&name, &format!("store-{name}")).await?;
    let dsn: tokio_postgres::Config = config.database_url.parse()?;
    let password = String::from_utf8(dsn.get_password().unwrap_or_default().to_vec())?;
    assert!(password.len() >= 32, "a generated password");
    let (tenant_db, connection) = tokio_postgres::connect(&config.database_url, NoTls).await?;
    tokio::spawn(connection);
    let row = tenant_db
        .query_one("SELECT current_user::text, current_database()::text", &[])
        .await?;
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        (database.clone(), database.clone())
    );

    // The Secret names the tables moto has.
    let dynamodb = Stack::get().dynamodb().await?;
    let mut named = vec![
        config.tables.catalog.clone(),
        config.tables.carts.clone(),
        config.tables.sessions.clone(),
    ];
    named.sort();
    assert_eq!(named, tables);
    assert_eq!(tables_with_prefix(&dynamodb, &world.prefix).await, tables);
    let tags = table_tags(&dynamodb, &config.tables.catalog).await;
    assert!(
        tags.contains(&("emporium.dev/tenant".into(), name.clone())),
        "{tags:?}"
    );

    // The order-event queue: made by the operator, its URL in the Secret, with a dead-letter
    // queue, named by the tenant's identity.
    assert!(condition_is_true(&status, "QueueReady"), "{status:?}");
    let queue_url = config
        .order_events_queue_url
        .clone()
        .expect("the Secret carries the queue URL");
    let tenant_key: String = config
        .tenant_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    assert!(
        queue_url.ends_with(&format!(
            "{}-{name}-{tenant_key}-order-events",
            world.prefix
        )),
        "{queue_url}"
    );
    let sqs = aws_sdk_sqs::Client::new(&Stack::get().aws().await?);
    let redrive = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    assert!(
        redrive
            .get(&aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy)
            .is_some_and(|r| r.contains("-order-events-dlq")),
        "{redrive:?}"
    );

    // Neither the password nor the DSN is in status, Events or the operator's logs.
    let sf = world.storefronts().get(&name).await?;
    let status_json = serde_json::to_string(&sf.status)?;
    let events = Api::<Event>::all(world.client.clone())
        .list(&ListParams::default())
        .await?;
    let events_json = serde_json::to_string(&events)?;
    assert!(
        events_json.contains(&name),
        "the operator published Events about the tenant"
    );
    let logs = captured_logs();
    assert!(logs.contains(&name), "the logs were captured");
    assert!(
        logs.contains(&format!("CREATE ROLE \\\"{database}\\\"")),
        "tokio-postgres's statement log (debug) is captured too, so the check below covers it"
    );
    // The server checks the password (the DSN is not accepted by a trust rule).
    let wrong = config.database_url.replace(&password, "not-the-password");
    assert!(
        tokio_postgres::connect(&wrong, NoTls).await.is_err(),
        "a wrong password is refused"
    );
    for (place, text) in [
        ("status", &status_json),
        ("events", &events_json),
        ("logs", &logs),
    ] {
        assert!(
            !text.contains(&password),
            "the tenant's password appears in {place}"
        );
        assert!(
            !text.contains(&config.database_url),
            "the tenant's DSN appears in {place}"
        );
    }

    // Delete with deletionPolicy Delete: database, role, tables and queues are gone.
    drop(tenant_db);
    world.delete_and_wait_gone(&name).await?;
    assert!(databases_with_prefix(&world.prefix).await.is_empty());
    assert!(roles_with_prefix(&world.prefix).await.is_empty());
    assert!(
        sqs.get_queue_attributes()
            .queue_url(&queue_url)
            .send()
            .await
            .is_err(),
        "the order-event queue was deleted"
    );
    eventually("tables deleted", WAIT, || async {
        Ok(tables_with_prefix(&dynamodb, &world.prefix)
            .await
            .is_empty()
            .then_some(()))
    })
    .await?;
    let events = Api::<Event>::all(world.client.clone())
        .list(&ListParams::default())
        .await?;
    assert!(
        events
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("DataReleased")
                && e.involved_object.name.as_deref() == Some(name.as_str())),
        "a DataReleased Event says what was done"
    );
    operator.abort();
    Ok(())
}

#[tokio::test]
async fn pooled_tenants_share_the_pool_database_and_tables() -> anyhow::Result<()> {
    let world = World::new("pool").await?;
    let operator = start_operator(&world.client, world.postgres_dynamodb()).await?;
    let (a, b) = (format!("{}-a", world.run), format!("{}-b", world.run));
    world.create(&a, "pooled", json!({})).await?;
    world.create(&b, "pooled", json!({})).await?;
    let status_a = world.wait_ready(&a).await?;
    let status_b = world.wait_ready(&b).await?;
    let pool_db = names::postgres_pool_identifier(&world.prefix);
    assert_eq!(status_a.database_id.as_deref(), Some(pool_db.as_str()));
    assert_eq!(status_a.database_id, status_b.database_id);
    assert_eq!(status_a.tables, status_b.tables);

    let pool_ns = format!("pool-{}", world.run);
    let config_a = world.tenant_config(&a, &pool_ns).await?;
    let config_b = world.tenant_config(&b, &pool_ns).await?;
    assert_eq!(config_a.tables, config_b.tables);
    assert_eq!(
        config_a.tables.catalog,
        names::pool_table_name(&world.prefix, "catalog")
    );
    let dsn: tokio_postgres::Config = config_a.database_url.parse()?;
    assert_eq!(dsn.get_dbname(), Some(pool_db.as_str()));
    assert_eq!(config_a.database_url, config_b.database_url);
    let (pool, connection) = tokio_postgres::connect(&config_b.database_url, NoTls).await?;
    tokio::spawn(connection);
    pool.query_one("SELECT 1", &[]).await?;
    drop(pool);

    // One pool database and three pool tables, however many tenants.
    assert_eq!(
        databases_with_prefix(&world.prefix).await,
        vec![pool_db.clone()]
    );
    let dynamodb = Stack::get().dynamodb().await?;
    assert_eq!(tables_with_prefix(&dynamodb, &world.prefix).await.len(), 3);

    // Offboarding a pooled tenant leaves the shared pool alone.
    world.delete_and_wait_gone(&a).await?;
    assert_eq!(databases_with_prefix(&world.prefix).await, vec![pool_db]);
    assert_eq!(tables_with_prefix(&dynamodb, &world.prefix).await.len(), 3);
    world.wait_ready(&b).await?;

    world.delete_and_wait_gone(&b).await?;
    operator.abort();
    world.drop_leftovers().await;
    Ok(())
}

#[tokio::test]
async fn retain_keeps_and_marks_snapshot_backs_up_tables_then_deletes() -> anyhow::Result<()> {
    let world = World::new("policy").await?;
    let operator = start_operator(&world.client, world.postgres_dynamodb()).await?;
    let retain = format!("{}-r", world.run);
    let snapshot = format!("{}-s", world.run);
    world
        .create_ready(&[(&retain, "Retain"), (&snapshot, "Snapshot")])
        .await?;
    world.delete_and_wait_gone(&retain).await?;
    world.delete_and_wait_gone(&snapshot).await?;

    let dynamodb = Stack::get().dynamodb().await?;
    let admin = postgres_admin().await;
    let comment = |db: String| {
        let admin = &admin;
        async move {
            admin
                .query_opt(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
                    &[&db],
                )
                .await
                .expect("query")
                .and_then(|row| row.get::<_, Option<String>>(0))
        }
    };

    // Retain: database, role and tables stay, marked orphaned.
    let retained_db = names::postgres_identifier(&world.prefix, &retain);
    let note = comment(retained_db.clone()).await.unwrap_or_default();
    assert!(
        note.contains("emporium.dev/orphaned=true"),
        "comment: {note:?}"
    );
    assert!(roles_with_prefix(&retained_db).await.contains(&retained_db));
    for table in dedicated_tables(&world.prefix, &retain) {
        let tags = table_tags(&dynamodb, &table).await;
        assert!(
            tags.contains(&("emporium.dev/orphaned".into(), "true".into())),
            "{table}: {tags:?}"
        );
    }

    // Snapshot: each table was backed up under its deterministic name, then deleted. (The
    // postgres provider cannot snapshot: it retains and marks, as docs/operations.md says.)
    for table in dedicated_tables(&world.prefix, &snapshot) {
        let backups = dynamodb.list_backups().table_name(&table).send().await?;
        let names_seen: Vec<&str> = backups
            .backup_summaries()
            .iter()
            .filter_map(|b| b.backup_name())
            .collect();
        assert_eq!(names_seen, vec![names::final_backup_name(&table).as_str()]);
    }
    let remaining = tables_with_prefix(&dynamodb, &world.prefix).await;
    assert_eq!(remaining, dedicated_tables(&world.prefix, &retain));
    let snapshot_db = names::postgres_identifier(&world.prefix, &snapshot);
    let note = comment(snapshot_db).await.unwrap_or_default();
    assert!(
        note.contains("emporium.dev/orphaned=true"),
        "comment: {note:?}"
    );

    operator.abort();
    world.drop_leftovers().await;
    Ok(())
}

#[tokio::test]
async fn a_restarted_controller_creates_nothing_twice() -> anyhow::Result<()> {
    let world = World::new("restart").await?;
    let tenants: Vec<String> = (0..3).map(|i| format!("{}-{i}", world.run)).collect();
    for tenant in &tenants {
        world
            .create(tenant, "dedicated", json!({ "deletionPolicy": "Delete" }))
            .await?;
    }
    // Stop the first controller while it is still provisioning, then at steady state.
    for pause in [Duration::from_millis(700), Duration::from_millis(2500)] {
        let first = start_operator(&world.client, world.postgres_dynamodb()).await?;
        tokio::time::sleep(pause).await;
        first.abort();
        let _ = first.await;
    }
    let second = start_operator(&world.client, world.postgres_dynamodb()).await?;
    for tenant in &tenants {
        world.wait_ready(tenant).await?;
    }
    let mut expected_dbs: Vec<String> = tenants
        .iter()
        .map(|t| names::postgres_identifier(&world.prefix, t))
        .collect();
    expected_dbs.sort();
    assert_eq!(databases_with_prefix(&world.prefix).await, expected_dbs);
    assert_eq!(roles_with_prefix(&world.prefix).await, expected_dbs);
    let dynamodb = Stack::get().dynamodb().await?;
    let mut expected_tables: Vec<String> = tenants
        .iter()
        .flat_map(|t| dedicated_tables(&world.prefix, t))
        .collect();
    expected_tables.sort();
    assert_eq!(
        tables_with_prefix(&dynamodb, &world.prefix).await,
        expected_tables
    );

    // Once more: a fresh controller at steady state changes nothing and stays Ready.
    second.abort();
    let _ = second.await;
    let third = start_operator(&world.client, world.postgres_dynamodb()).await?;
    for tenant in &tenants {
        world.wait_ready(tenant).await?;
    }
    assert_eq!(databases_with_prefix(&world.prefix).await, expected_dbs);
    assert_eq!(
        tables_with_prefix(&dynamodb, &world.prefix).await,
        expected_tables
    );

    for tenant in &tenants {
        world.delete_and_wait_gone(tenant).await?;
    }
    third.abort();
    world.drop_leftovers().await;
    Ok(())
}

#[tokio::test]
async fn the_aurora_provider_runs_through_the_full_reconcile_on_moto() -> anyhow::Result<()> {
    let world = World::new("aurora").await?;
    let mut config = world.postgres_dynamodb();
    config.database_provider = DataProviderChoice::Aurora;
    config.tables_provider = DataProviderChoice::None;
    config.data.aurora_subnet_group = Some(format!("{}-subnets", world.prefix));
    config.data.aurora_subnet_ids = moto_subnets(Stack::get().var("AWS_ENDPOINT_URL")?).await?;
    // moto's clusters have no PostgreSQL: the login-role SQL goes to a scratch database.
    config.data.aurora_sql_override = Some(SecretString::new(scratch_database("sd_aurora").await));
    let operator = start_operator(&world.client, config).await?;
    let name = world.run.clone();
    world
        .create(
            &name,
            "dedicated",
            json!({ "deletionPolicy": "Delete", "engineVersion": "16.6" }),
        )
        .await?;

    let api = world.storefronts();
    let status = eventually("DatabaseReady on Aurora", WAIT, || async {
        let status = api.get(&name).await?.status.unwrap_or_default();
        let ready = condition_is_true(&status, "DatabaseReady");
        let all = condition_is_true(&status, "Ready");
        Ok((ready && all).then_some(status))
    })
    .await?;
    let cluster = names::cluster_identifier(&world.prefix, &name);
    assert_eq!(status.database_id.as_deref(), Some(cluster.as_str()));

    let rds = aws_sdk_rds::Client::new(&Stack::get().aws().await?);
    let described = rds
        .describe_db_clusters()
        .db_cluster_identifier(&cluster)
        .send()
        .await?;
    let found = described.db_clusters();
    assert_eq!(
        found.len(),
        1,
        "exactly one cluster with the deterministic id"
    );
    let tags: Vec<(&str, &str)> = found[0]
        .tag_list()
        .iter()
        .filter_map(|t| Some((t.key()?, t.value()?)))
        .collect();
    assert!(
        tags.contains(&("emporium.dev/tenant", name.as_str())),
        "{tags:?}"
    );
    assert!(
        tags.contains(&("emporium.dev/managed-by", "emporium-operator")),
        "{tags:?}"
    );
    let config = world.tenant_config(&name, &format!("store-{name}")).await?;
    assert!(config.database_url.starts_with("postgres://"));
    // The DSN is the tenant's own login role, not the master's, and it cannot bypass RLS.
    let (tenant_db, connection) = tokio_postgres::connect(&config.database_url, NoTls).await?;
    tokio::spawn(connection);
    let row = tenant_db
        .query_one(
            "SELECT current_user::text, rolsuper, rolbypassrls, current_schema()::text
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?;
    let (user, superuser, bypass, schema): (String, bool, bool, String) =
        (row.get(0), row.get(1), row.get(2), row.get(3));
    assert!(
        user.starts_with(&format!("{}-{name}-", world.prefix)),
        "{user}"
    );
    assert_eq!((superuser, bypass), (false, false));
    assert_eq!(schema, user, "its own schema");
    drop(tenant_db);
    let status_json = serde_json::to_string(&status)?;
    assert!(!status_json.contains(&config.database_url));

    world.delete_and_wait_gone(&name).await?;
    let left = rds
        .describe_db_clusters()
        .db_cluster_identifier(&cluster)
        .send()
        .await;
    let still_there = left
        .ok()
        .map(|out| {
            out.db_clusters()
                .iter()
                .any(|c| c.status() != Some("deleting"))
        })
        .unwrap_or(false);
    assert!(
        !still_there,
        "the cluster is deleted with deletionPolicy Delete"
    );
    operator.abort();
    Ok(())
}

#[tokio::test]
async fn a_dedicated_tenant_adopts_an_existing_database_and_table() -> anyhow::Result<()> {
    let world = World::new("adopt").await?;
    // What exists before the Storefront: a database and a catalog table of someone else's.
    let legacy_db = format!("{}-legacy", world.prefix);
    postgres_admin()
        .await
        .batch_execute(&format!("CREATE DATABASE \"{legacy_db}\""))
        .await?;
    let legacy_table = format!("{}-legacy-catalog", world.prefix);
    let dynamodb = Stack::get().dynamodb().await?;
    create_table(&dynamodb, &legacy_table, &["pk"]).await?;

    let operator = start_operator(&world.client, world.postgres_dynamodb()).await?;
    let name = world.run.clone();
    let api = world.storefronts();
    apply(
        &api,
        &name,
        json!({
            "apiVersion": "emporium.dev/v1alpha1",
            "kind": "Storefront",
            "metadata": { "name": name, "labels": { "emporium.dev/test-run": world.run } },
            "spec": {
                "displayName": "Data Store",
                "plan": world.plan_dedicated,
                "domains": [format!("{name}.shop.example")],
                "database": { "deletionPolicy": "Retain", "existingClusterIdentifier": legacy_db },
                "catalog": { "existingTables": { "catalog": legacy_table } },
            },
        }),
    )
    .await?;

    let status = world.wait_ready(&name).await?;
    assert_eq!(status.database_id.as_deref(), Some(legacy_db.as_str()));
    let config = world.tenant_config(&name, &format!("store-{name}")).await?;
    assert_eq!(
        config.tables.catalog, legacy_table,
        "the adopted table is used"
    );
    assert_eq!(
        config.tables.carts,
        names::table_name(&world.prefix, &name, "carts"),
        "unnamed kinds are created"
    );
    let tags = table_tags(&dynamodb, &legacy_table).await;
    assert!(
        tags.contains(&("emporium.dev/adopted".into(), "true".into())),
        "{tags:?}"
    );
    let (tenant_db, connection) = tokio_postgres::connect(&config.database_url, NoTls).await?;
    tokio::spawn(connection);
    let row = tenant_db
        .query_one("SELECT current_database()::text", &[])
        .await?;
    assert_eq!(row.get::<_, String>(0), legacy_db);
    drop(tenant_db);

    // Retain: the adopted database and table outlive the Storefront.
    world.delete_and_wait_gone(&name).await?;
    assert!(
        databases_with_prefix(&world.prefix)
            .await
            .contains(&legacy_db)
    );
    assert!(
        tables_with_prefix(&dynamodb, &world.prefix)
            .await
            .contains(&legacy_table)
    );
    operator.abort();
    world.drop_leftovers().await;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_dynamodb_is_named_in_the_condition_and_recovers() -> anyhow::Result<()> {
    let world = World::new("outage").await?;
    let mut config = world.postgres_dynamodb();
    config.data.aws_max_attempts = 1;
    // Nothing listens on port 9 (discard) locally: every DynamoDB call fails to connect.
    let dead = Stack::get()
        .aws()
        .await?
        .into_builder()
        .endpoint_url("http://127.0.0.1:9")
        .build();
    let outage = start_operator_with(&world.client, config, dead).await?;
    let name = world.run.clone();
    world
        .create(&name, "dedicated", json!({ "deletionPolicy": "Delete" }))
        .await?;
    let api = world.storefronts();
    let condition = eventually("TablesReady names the outage", WAIT, || async {
        let status = api.get(&name).await?.status.unwrap_or_default();
        let database_ready = condition_is_true(&status, "DatabaseReady");
        let workload_ready = condition_is_true(&status, "WorkloadReady");
        let tables = status
            .conditions
            .iter()
            .find(|c| c.type_ == "TablesReady" && c.status == "False")
            .cloned();
        Ok(tables.filter(|_| database_ready && workload_ready))
    })
    .await?;
    assert_eq!(condition.reason, "Unreachable");
    assert!(
        condition.message.contains("cannot reach AWS DynamoDB"),
        "{}",
        condition.message
    );
    let sf = api.get(&name).await?;
    let ready = sf
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.status.clone());
    assert_eq!(
        ready.as_deref(),
        Some("False"),
        "Ready waits for the tables"
    );
    outage.abort();
    let _ = outage.await;

    // AWS is back (a controller with a working endpoint): Ready, nothing twice.
    let operator = start_operator(&world.client, world.postgres_dynamodb()).await?;
    world.wait_ready(&name).await?;
    let dynamodb = Stack::get().dynamodb().await?;
    assert_eq!(
        tables_with_prefix(&dynamodb, &world.prefix).await,
        dedicated_tables(&world.prefix, &name)
    );
    world.delete_and_wait_gone(&name).await?;
    operator.abort();
    world.drop_leftovers().await;
    Ok(())
}

/// Makes the controller look at `name` again (the watch sees the metadata change).
async fn nudge(world: &World, name: &str) -> anyhow::Result<()> {
    world
        .storefronts()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "annotations": { "test/nudge": unique("n") } } })),
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn data_gone_from_underneath_is_recreated_or_reported_per_policy() -> anyhow::Result<()> {
    let world = World::new("gone").await?;
    let operator = start_operator(&world.client, world.postgres_dynamodb()).await?;
    let (deleted, retained) = (format!("{}-d", world.run), format!("{}-r", world.run));
    world
        .create_ready(&[(&deleted, "Delete"), (&retained, "Retain")])
        .await?;

    // Someone drops the Delete tenant's database and deletes the Retain tenant's sessions table.
    let database = names::postgres_identifier(&world.prefix, &deleted);
    postgres_admin()
        .await
        .batch_execute(&format!("DROP DATABASE \"{database}\" WITH (FORCE)"))
        .await?;
    let dynamodb = Stack::get().dynamodb().await?;
    let sessions = names::table_name(&world.prefix, &retained, "sessions");
    dynamodb
        .update_table()
        .table_name(&sessions)
        .deletion_protection_enabled(false)
        .send()
        .await?;
    dynamodb.delete_table().table_name(&sessions).send().await?;
    nudge(&world, &deleted).await?;
    nudge(&world, &retained).await?;

    // Delete policy: an empty database is made again and the tenant is Ready.
    eventually("database recreated", WAIT, || async {
        Ok(databases_with_prefix(&database)
            .await
            .contains(&database)
            .then_some(()))
    })
    .await?;
    world.wait_ready(&deleted).await?;

    // Retain policy: reported, not silently replaced.
    let api = world.storefronts();
    let condition = eventually("TablesReady Missing", WAIT, || async {
        let status = api.get(&retained).await?.status.unwrap_or_default();
        Ok(status
            .conditions
            .iter()
            .find(|c| c.type_ == "TablesReady" && c.reason == "Missing")
            .cloned())
    })
    .await?;
    assert!(
        condition.message.contains(&sessions),
        "{}",
        condition.message
    );
    assert!(
        !tables_with_prefix(&dynamodb, &world.prefix)
            .await
            .contains(&sessions)
    );
    let status = api.get(&retained).await?.status.unwrap_or_default();
    assert_eq!(status.tables.len(), 3, "the record of the tables is kept");
    assert_eq!(
        status.phase,
        Some(emporium_operator::crd::Phase::Failed),
        "a resource that needs a person fails the tenant"
    );

    world.delete_and_wait_gone(&deleted).await?;
    world.delete_and_wait_gone(&retained).await?;
    operator.abort();
    world.drop_leftovers().await;
    Ok(())
}

#[tokio::test]
async fn a_tenant_reconciled_before_tenant_ids_keeps_its_name_and_a_new_one_gets_its_uid()
-> anyhow::Result<()> {
    let world = World::new("ids").await?;
    let (legacy, new) = (format!("{}-old", world.run), format!("{}-new", world.run));
    world.create(&legacy, "pooled", json!({})).await?;
    world.create(&new, "pooled", json!({})).await?;
    // What an operator before tenant ids left: a status without `tenantId`.
    world
        .storefronts()
        .patch_status(
            &legacy,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready", "observedGeneration": 1}})),
        )
        .await?;
    let operator = start_operator(&world.client, world.postgres_dynamodb()).await?;
    let legacy_status = world.wait_ready(&legacy).await?;
    let new_status = world.wait_ready(&new).await?;
    let new_uid = world
        .storefronts()
        .get(&new)
        .await?
        .metadata
        .uid
        .unwrap_or_default();

    assert_eq!(legacy_status.tenant_id.as_deref(), Some(legacy.as_str()));
    assert_eq!(new_status.tenant_id.as_deref(), Some(new_uid.as_str()));
    let pool_ns = format!("pool-{}", world.run);
    let legacy_config = world.tenant_config(&legacy, &pool_ns).await?;
    assert_eq!(legacy_config.tenant_id, legacy, "nothing moves");
    assert_eq!(legacy_config.name.as_deref(), Some(legacy.as_str()));
    let new_config = world.tenant_config(&new, &pool_ns).await?;
    assert_eq!(new_config.tenant_id, new_uid);

    world.delete_and_wait_gone(&legacy).await?;
    world.delete_and_wait_gone(&new).await?;
    operator.abort();
    world.drop_leftovers().await;
    Ok(())
}
