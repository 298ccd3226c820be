//! The tenants this runtime serves, learnt from a file and/or the operator's Secrets, indexed by
//! host. Adding or removing a tenant swaps the index; requests in flight keep the tenant they
//! resolved.

use std::{
    collections::{BTreeMap, HashMap},
    path::Path,
    sync::Arc,
    time::Duration,
};

use emporium_tenant_config::TenantConfig;
use parking_lot::{Mutex, RwLock};

use crate::{
    domain::{ports::StoreError, tenancy},
    storage::{
        dynamo::{self, DynamoCarts, DynamoCatalog, DynamoSessions},
        orders::PgOrders,
        postgres::{Database, PgCustomers},
    },
};

pub mod watch;

/// Everything needed to serve one tenant: its config and storage adapters bound to its id.
pub struct TenantRuntime {
    pub config: TenantConfig,
    pub db: Arc<Database>,
    pub customers: PgCustomers,
    /// Orders, inventory and the outbox (PostgreSQL).
    pub orders: PgOrders,
    pub sessions: DynamoSessions,
    pub carts: DynamoCarts,
    pub catalog: DynamoCatalog,
}

impl TenantRuntime {
    /// The tenant's data key, which every row, item and cache entry of the tenant is keyed by.
    pub fn id(&self) -> &str {
        &self.config.tenant_id
    }

    /// The Storefront's name, for logs.
    pub fn name(&self) -> &str {
        self.config.display_id()
    }
}

/// Where a tenant came from; Secrets override the file for the same tenant id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File,
    /// `namespace/name` of the Secret.
    Secret(String),
}

#[derive(Default)]
struct Index {
    from_file: BTreeMap<String, Arc<TenantRuntime>>,
    from_secrets: BTreeMap<String, Arc<TenantRuntime>>,
    by_host: HashMap<String, Arc<TenantRuntime>>,
}

pub struct Tenants {
    index: RwLock<Index>,
    databases: Mutex<HashMap<String, Arc<Database>>>,
    dynamo: aws_sdk_dynamodb::Client,
    pool_size: usize,
    cart_ttl: Duration,
    create_tables: bool,
    /// Catalog change-feed entries each tenant's catalog keeps.
    catalog_feed_len: u64,
}

/// Reads a JSON or YAML list of tenant configs.
pub fn read_file(path: &Path) -> anyhow::Result<Vec<TenantConfig>> {
    use anyhow::Context as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read tenants file {}", path.display()))?;
    let configs: Vec<TenantConfig> = if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text)?
    } else {
        serde_yaml::from_str(&text)?
    };
    for c in &configs {
        anyhow::ensure!(
            !c.domains.is_empty(),
            "tenant `{}` has no domains",
            c.tenant_id
        );
    }
    Ok(configs)
}

impl Tenants {
    pub fn new(
        dynamo: aws_sdk_dynamodb::Client,
        pool_size: usize,
        cart_ttl: Duration,
        create_tables: bool,
    ) -> Self {
        Self {
            index: RwLock::default(),
            databases: Mutex::default(),
            dynamo,
            pool_size,
            cart_ttl,
            create_tables,
            catalog_feed_len: dynamo::catalog::DEFAULT_FEED_LEN,
        }
    }

    /// Keeps `entries` catalog change-feed entries per tenant (see `storage::dynamo::catalog`).
    pub fn with_catalog_feed_len(mut self, entries: u64) -> Self {
        self.catalog_feed_len = entries.max(1);
        self
    }

    /// The tenant answering on `host`, if any.
    pub fn resolve(&self, host: &str) -> Option<Arc<TenantRuntime>> {
        let host = tenancy::normalize_host(host)?;
        self.read().by_host.get(&host).cloned()
    }

    pub fn all(&self) -> Vec<Arc<TenantRuntime>> {
        let index = self.read();
        let mut by_id: BTreeMap<&str, Arc<TenantRuntime>> = BTreeMap::new();
        for t in index.from_file.values().chain(index.from_secrets.values()) {
            by_id.insert(t.id(), t.clone());
        }
        by_id.into_values().collect()
    }

    pub fn databases(&self) -> Vec<Arc<Database>> {
        self.databases.lock().values().cloned().collect()
    }

    fn read(&self) -> parking_lot::RwLockReadGuard<'_, Index> {
        self.index.read()
    }

    fn database(&self, dsn: &str) -> Result<Arc<Database>, StoreError> {
        let mut dbs = self.databases.lock();
        if let Some(db) = dbs.get(dsn) {
            return Ok(db.clone());
        }
        let db = Arc::new(Database::new(dsn, self.pool_size)?);
        dbs.insert(dsn.to_owned(), db.clone());
        Ok(db)
    }

    async fn build(&self, config: TenantConfig) -> Result<Arc<TenantRuntime>, StoreError> {
        let db = self.database(&config.database_url)?;
        if self.create_tables {
            dynamo::ensure_table(&self.dynamo, &config.tables.catalog, false).await?;
            dynamo::ensure_table(&self.dynamo, &config.tables.carts, true).await?;
            dynamo::ensure_table(&self.dynamo, &config.tables.sessions, true).await?;
        }
        // Apply migrations now so the first shopper does not wait; failure is retried on use.
        if let Err(e) = db.migrate().await {
            tracing::warn!(tenant = %config.display_id(), error = %e, "database not ready yet");
        }
        let tenant = config.tenant_id.clone();
        Ok(Arc::new(TenantRuntime {
            customers: PgCustomers {
                db: db.clone(),
                tenant: tenant.as_str().into(),
            },
            orders: PgOrders::new(db.clone(), &tenant),
            sessions: DynamoSessions {
                client: self.dynamo.clone(),
                table: config.tables.sessions.clone(),
                tenant: tenant.clone(),
            },
            carts: DynamoCarts {
                client: self.dynamo.clone(),
                table: config.tables.carts.clone(),
                tenant: tenant.clone(),
                ttl: self.cart_ttl,
            },
            catalog: DynamoCatalog {
                client: self.dynamo.clone(),
                table: config.tables.catalog.clone(),
                tenant,
                feed_len: self.catalog_feed_len,
            },
            db,
            config,
        }))
    }

    /// Adds or replaces a tenant. Unchanged configs are ignored (watch resyncs repeat them).
    pub async fn upsert(&self, source: Source, config: TenantConfig) -> Result<(), StoreError> {
        {
            let index = self.read();
            let existing = match &source {
                Source::File => index.from_file.get(&config.tenant_id),
                Source::Secret(key) => index.from_secrets.get(key),
            };
            if existing.is_some_and(|t| t.config == config) {
                return Ok(());
            }
        }
        let runtime = self.build(config).await?;
        tracing::info!(tenant = runtime.name(), tenant_id = runtime.id(), domains = ?runtime.config.domains, ?source, "serving tenant");
        let mut index = self.index.write();
        match source {
            Source::File => index.from_file.insert(runtime.id().to_owned(), runtime),
            Source::Secret(key) => index.from_secrets.insert(key, runtime),
        };
        reindex(&mut index);
        self.forget_unused_databases(&index);
        Ok(())
    }

    /// Stops serving the tenant of a deleted Secret; returns its id.
    pub fn remove_secret(&self, key: &str) -> Option<String> {
        let mut index = self.index.write();
        let removed = index.from_secrets.remove(key)?;
        reindex(&mut index);
        self.forget_unused_databases(&index);
        tracing::info!(
            tenant = removed.name(),
            tenant_id = removed.id(),
            "no longer serving tenant"
        );
        Some(removed.id().to_owned())
    }

    /// Drops the connection pools no served tenant uses any more, so `/readyz` reports only the
    /// databases of tenants served now (a deleted tenant's database is forgotten at once).
    fn forget_unused_databases(&self, index: &Index) {
        let used: std::collections::HashSet<&str> = index
            .from_file
            .values()
            .chain(index.from_secrets.values())
            .map(|t| t.config.database_url.as_str())
            .collect();
        self.databases
            .lock()
            .retain(|dsn, _| used.contains(dsn.as_str()));
    }

    /// Secret keys currently served.
    pub fn secret_keys(&self) -> Vec<String> {
        self.read().from_secrets.keys().cloned().collect()
    }
}

fn reindex(index: &mut Index) {
    let mut by_id: BTreeMap<String, Arc<TenantRuntime>> = BTreeMap::new();
    for t in index.from_file.values().chain(index.from_secrets.values()) {
        by_id.insert(t.id().to_owned(), t.clone());
    }
    let (hosts, conflicts) = tenancy::index_hosts(
        by_id
            .values()
            .map(|t| (t.id(), t.config.domains.as_slice())),
    );
    for c in conflicts {
        tracing::warn!(host = %c.host, kept = %c.kept, refused = %c.refused, "two tenants claim one host");
    }
    index.by_host = hosts
        .into_iter()
        .filter_map(|(host, id)| by_id.get(&id).map(|t| (host, t.clone())))
        .collect();
}

#[cfg(test)]
mod tests {
    use emporium_tenant_config::{PaymentProvider, Payments, Tables, Tier};

    use super::*;

    fn config(id: &str, dsn: &str) -> TenantConfig {
        TenantConfig {
            tenant_id: id.into(),
            name: None,
            display_name: id.into(),
            domains: vec![format!("{id}.example.com")],
            tier: Tier::Dedicated,
            theme_color: None,
            database_url: dsn.into(),
            tables: Tables {
                catalog: format!("{id}-catalog"),
                carts: format!("{id}-carts"),
                sessions: format!("{id}-sessions"),
            },
            admin_key: "sk_admin_test".into(),
            payments: Payments {
                provider: PaymentProvider::Manual,
                secret_key: None,
                webhook_secret: None,
                api_base: None,
            },
            owner_email: None,
            order_events_queue_url: None,
        }
    }

    fn tenants() -> Tenants {
        let dynamo = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
                .build(),
        );
        Tenants::new(dynamo, 1, Duration::from_secs(60), false)
    }

    #[tokio::test]
    async fn a_deleted_tenants_database_is_forgotten_at_once() {
        let tenants = tenants();
        // Nothing listens on port 1: the migration attempt fails at once and is only logged.
        let dedicated = "postgres://u:p@127.0.0.1:1/dedicated";
        let shared = "postgres://u:p@127.0.0.1:1/shared";
        for (key, id, dsn) in [
            ("store-a/tenant-a", "a", dedicated),
            ("pool/tenant-b", "b", shared),
            ("pool/tenant-c", "c", shared),
        ] {
            tenants
                .upsert(Source::Secret(key.into()), config(id, dsn))
                .await
                .expect("upsert");
        }
        assert_eq!(tenants.databases().len(), 2);

        tenants.remove_secret("store-a/tenant-a");
        assert_eq!(
            tenants.databases().len(),
            1,
            "the dedicated database is forgotten"
        );
        tenants.remove_secret("pool/tenant-b");
        assert_eq!(
            tenants.databases().len(),
            1,
            "tenant c still uses the shared one"
        );

        // A tenant moved to another database forgets the old one too.
        tenants
            .upsert(
                Source::Secret("pool/tenant-c".into()),
                config("c", "postgres://u:p@127.0.0.1:1/moved"),
            )
            .await
            .expect("upsert");
        assert_eq!(tenants.databases().len(), 1);
        tenants.remove_secret("pool/tenant-c");
        assert!(tenants.databases().is_empty());
    }
}
