//! `postgres`: an existing PostgreSQL server, for development and tests. The operator owns
//! databases, roles and grants; the runtime owns the schema inside.
//!
//! - dedicated tenant: database `<prefix>-<tenant>` owned by the login role of the same name,
//!   `CONNECT` revoked from `PUBLIC`, so that role reaches only its own database and no other
//!   tenant's role reaches it.
//! - pooled tenants: one database and one login role, `<prefix>_pool`, owned by that role,
//!   without `BYPASSRLS`; tenants are separated by the runtime's row-level security.
//!
//! Role passwords are derived, not stored: HMAC-SHA256 of the role name under the operator's
//! password key. So a crash between `CREATE ROLE` and writing the tenant's Secret loses
//! nothing, and steady-state reconciles write nothing.

use tokio_postgres::{Client, NoTls, config::Host, error::SqlState};
use tracing::{info, warn};

use super::{DatabaseConnection, DatabaseProvider, TenantDatabase, derived_password, postgres_url};
use crate::providers::{
    BoxFuture, Deletion, DeletionPolicy, Outcome, ProviderError, SecretString, Tier, names, tags,
};

/// Operator-level settings of the `postgres` provider.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// A superuser (or `CREATEDB CREATEROLE`) connection URL to the server. Plain TCP only:
    /// this provider is for development and tests.
    pub admin_url: SecretString,
    /// Key the role passwords are derived from; changing it changes every derived password
    /// (existing roles keep their old one until reset).
    pub password_key: SecretString,
    /// Prefix of database and role names.
    pub prefix: String,
    /// Host the tenants' DSNs name (e.g. a Kubernetes Service); default: the admin URL's host.
    pub tenant_host: Option<String>,
    /// Port the tenants' DSNs name; default: the admin URL's port.
    pub tenant_port: Option<u16>,
    /// Query string appended to tenants' DSNs, e.g. `sslmode=require`.
    pub dsn_query: String,
}

impl PostgresConfig {
    pub fn new(admin_url: SecretString, password_key: SecretString) -> Self {
        Self {
            admin_url,
            password_key,
            prefix: names::DEFAULT_PREFIX.to_owned(),
            tenant_host: None,
            tenant_port: None,
            dsn_query: String::new(),
        }
    }
}

/// The `postgres` [`DatabaseProvider`].
pub struct PostgresProvider {
    config: PostgresConfig,
    admin: tokio_postgres::Config,
    host: String,
    port: u16,
}

impl PostgresProvider {
    /// Checks the configuration (no connection is made until the first call).
    pub fn new(config: PostgresConfig) -> Result<Self, ProviderError> {
        let admin: tokio_postgres::Config = config.admin_url.expose().parse().map_err(|_| {
            ProviderError::Config(
                "the PostgreSQL admin URL is not a valid connection string".into(),
            )
        })?;
        if config.password_key.expose().len() < 16 {
            return Err(ProviderError::Config(
                "the PostgreSQL password key must be at least 16 characters of random data".into(),
            ));
        }
        let admin_host = admin.get_hosts().iter().find_map(|h| match h {
            Host::Tcp(host) => Some(host.clone()),
            #[cfg(unix)]
            Host::Unix(_) => None,
        });
        let host = config.tenant_host.clone().or(admin_host).ok_or_else(|| {
            ProviderError::Config(
                "the PostgreSQL admin URL names no TCP host; set the tenant host explicitly".into(),
            )
        })?;
        let port = config
            .tenant_port
            .or_else(|| admin.get_ports().first().copied())
            .unwrap_or(5432);
        Ok(Self {
            config,
            admin,
            host,
            port,
        })
    }

    async fn connect(&self) -> Result<Client, ProviderError> {
        let (client, connection) = self
            .admin
            .connect(NoTls)
            .await
            .map_err(|source| ProviderError::PostgresUnreachable { source })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(error = %e, "PostgreSQL admin connection ended with an error");
            }
        });
        Ok(client)
    }

    /// The password of `role`, derived from the operator's key.
    fn password(&self, role: &str) -> Result<String, ProviderError> {
        derived_password(
            self.config.password_key.expose().as_bytes(),
            "emporium/postgres-role/",
            &[role],
        )
    }

    /// (database, role) of a request.
    fn target(&self, db: &TenantDatabase) -> (String, String) {
        match db.tier {
            Tier::Pooled => {
                let pool = names::postgres_pool_identifier(&self.config.prefix);
                (pool.clone(), pool)
            }
            Tier::Dedicated => {
                let own = names::postgres_identifier(&self.config.prefix, &db.tenant);
                (db.adopt.clone().unwrap_or_else(|| own.clone()), own)
            }
        }
    }

    async fn ensure_database(
        &self,
        db: &TenantDatabase,
    ) -> Result<Outcome<DatabaseConnection>, ProviderError> {
        let (database, role) = self.target(db);
        let client = self.connect().await?;
        let password = self.password(&role)?;

        let role_exists = client
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .map_err(|e| pg_error(format!("looking up role {role}"), e))?
            .is_some();
        if !role_exists {
            info!(role = %role, tenant = %db.tenant, "creating PostgreSQL login role");
            // Send a SCRAM-SHA-256 verifier, never the password: DDL cannot take parameters,
            // and tokio-postgres logs statement text at debug level.
            let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
            let sql = format!(
                "CREATE ROLE {} LOGIN PASSWORD {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
                quote_ident(&role),
                quote_literal(&verifier)
            );
            match client.batch_execute(&sql).await {
                Ok(()) => {}
                Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => {}
                Err(e) => return Err(pg_error(format!("creating role {role}"), e)),
            }
        }

        let owner: Option<String> = client
            .query_opt(
                "SELECT pg_get_userbyid(datdba)::text FROM pg_database WHERE datname = $1",
                &[&database],
            )
            .await
            .map_err(|e| pg_error(format!("looking up database {database}"), e))?
            .map(|row| row.get(0));
        match owner {
            None if db.adopt.is_some() && db.tier == Tier::Dedicated => {
                return Ok(Outcome::terminal(
                    "AdoptionFailed",
                    format!("database {database} named for adoption does not exist on the server"),
                ));
            }
            None if db.tier == Tier::Dedicated
                && db.deletion_policy == DeletionPolicy::Retain
                && db.recorded.as_deref() == Some(database.as_str()) =>
            {
                return Ok(Outcome::terminal(
                    "Missing",
                    format!(
                        "database {database} recorded in status no longer exists; with deletionPolicy Retain the operator does not create an empty one in its place. Restore it, or set deletionPolicy to Delete to get a new empty database"
                    ),
                ));
            }
            None => {
                info!(database = %database, tenant = %db.tenant, "creating PostgreSQL database");
                let sql = format!(
                    "CREATE DATABASE {} OWNER {}",
                    quote_ident(&database),
                    quote_ident(&role)
                );
                match client.batch_execute(&sql).await {
                    Ok(()) => {}
                    Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) => {}
                    Err(e) => return Err(pg_error(format!("creating database {database}"), e)),
                }
            }
            Some(owner) if owner != role => {
                info!(database = %database, from = %owner, to = %role, "taking over PostgreSQL database");
                let sql = format!(
                    "ALTER DATABASE {} OWNER TO {}",
                    quote_ident(&database),
                    quote_ident(&role)
                );
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| pg_error(format!("changing the owner of {database}"), e))?;
            }
            Some(_) => {}
        }

        // Nobody but the owner (and superusers) may connect: this is what keeps one tenant's
        // role out of another tenant's database. Checked every time, so a crash right after
        // CREATE DATABASE cannot leave it open.
        let public_can_connect: bool = client
            .query_one(
                "SELECT has_database_privilege('public', $1::text, 'CONNECT')",
                &[&database],
            )
            .await
            .map_err(|e| pg_error(format!("checking the grants on {database}"), e))?
            .get(0);
        if public_can_connect {
            let sql = format!(
                "REVOKE ALL ON DATABASE {} FROM PUBLIC",
                quote_ident(&database)
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| pg_error(format!("revoking PUBLIC on {database}"), e))?;
        }

        let dsn = postgres_url(
            &role,
            &password,
            &self.host,
            self.port,
            &database,
            &self.config.dsn_query,
        );
        Ok(Outcome::Ready(DatabaseConnection {
            identifier: database.clone(),
            host: self.host.clone(),
            port: self.port,
            database,
            username: role,
            dsn: SecretString::new(dsn),
            master_secret_arn: None,
        }))
    }

    async fn delete_database(
        &self,
        db: &TenantDatabase,
    ) -> Result<Outcome<Deletion>, ProviderError> {
        let (database, role) = self.target(db);
        if db.tier == Tier::Pooled {
            return Ok(Outcome::Ready(Deletion::new(format!(
                "pooled tenant: the shared database {database} stays (the tenant's rows are offboarded per its deletionPolicy)"
            ))));
        }
        let client = self.connect().await?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
            .await
            .map_err(|e| pg_error(format!("looking up database {database}"), e))?
            .is_some();
        match db.deletion_policy {
            DeletionPolicy::Retain | DeletionPolicy::Snapshot => {
                if exists {
                    let comment = format!(
                        "{}=true: retained after Storefront {} was deleted",
                        tags::ORPHANED,
                        db.tenant
                    );
                    let sql = format!(
                        "COMMENT ON DATABASE {} IS {}",
                        quote_ident(&database),
                        quote_literal(&comment)
                    );
                    client
                        .batch_execute(&sql)
                        .await
                        .map_err(|e| pg_error(format!("marking {database} orphaned"), e))?;
                }
                let summary = if db.deletion_policy == DeletionPolicy::Snapshot {
                    format!(
                        "the postgres provider cannot take snapshots (pg_dump is out of scope), so database {database} and role {role} were retained as with Retain and marked {}=true; dump and drop them by hand",
                        tags::ORPHANED
                    )
                } else {
                    format!(
                        "database {database} and role {role} retained, marked {}=true",
                        tags::ORPHANED
                    )
                };
                Ok(Outcome::Ready(Deletion::new(summary)))
            }
            DeletionPolicy::Delete => {
                info!(database = %database, role = %role, tenant = %db.tenant, "dropping PostgreSQL database and role");
                let sql = format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&database)
                );
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| pg_error(format!("dropping database {database}"), e))?;
                let sql = format!("DROP ROLE IF EXISTS {}", quote_ident(&role));
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| pg_error(format!("dropping role {role}"), e))?;
                Ok(Outcome::Ready(Deletion::new(format!(
                    "database {database} and role {role} dropped"
                ))))
            }
        }
    }
}

impl DatabaseProvider for PostgresProvider {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn ensure<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Outcome<DatabaseConnection>, ProviderError>> {
        Box::pin(self.ensure_database(db))
    }

    fn delete<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Outcome<Deletion>, ProviderError>> {
        Box::pin(self.delete_database(db))
    }
}

/// Server errors carry a SQLSTATE and a message that never includes the statement (so never a
/// password); anything else means the connection is gone.
pub(super) fn pg_error(action: String, e: tokio_postgres::Error) -> ProviderError {
    match e.as_db_error() {
        Some(db) => ProviderError::Postgres {
            action,
            message: format!("{} ({})", db.message(), db.code().code()),
            source: e,
        },
        None => ProviderError::PostgresUnreachable { source: e },
    }
}

pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

pub(super) fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(key: &str) -> PostgresProvider {
        let config = PostgresConfig::new(
            SecretString::new("postgres://admin:pw@127.0.0.1:5433/postgres"),
            SecretString::new(key),
        );
        PostgresProvider::new(config).expect("valid config")
    }

    #[test]
    fn passwords_are_stable_per_role_and_key() {
        let p = provider("0123456789abcdef0123");
        let a = p.password("emporium-acme").expect("derives");
        assert_eq!(a, p.password("emporium-acme").expect("derives"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, p.password("emporium-other").expect("derives"));
        assert_ne!(
            a,
            provider("another-key-of-20-chars")
                .password("emporium-acme")
                .expect("derives")
        );
    }

    #[test]
    fn short_keys_and_bad_urls_are_refused() {
        let short = PostgresConfig::new(
            SecretString::new("postgres://a@h/db"),
            SecretString::new("short"),
        );
        assert!(matches!(
            PostgresProvider::new(short),
            Err(ProviderError::Config(_))
        ));
        let bad = PostgresConfig::new(
            SecretString::new("not a url ://"),
            SecretString::new("0123456789abcdef"),
        );
        assert!(matches!(
            PostgresProvider::new(bad),
            Err(ProviderError::Config(_))
        ));
    }

    #[test]
    fn the_dsn_host_comes_from_the_admin_url_unless_overridden() {
        let p = provider("0123456789abcdef0123");
        assert_eq!((p.host.as_str(), p.port), ("127.0.0.1", 5433));
        let mut config = PostgresConfig::new(
            SecretString::new("postgres://admin:pw@127.0.0.1:5433/postgres"),
            SecretString::new("0123456789abcdef0123"),
        );
        config.tenant_host = Some("postgres.emporium.svc".into());
        config.tenant_port = Some(5432);
        let p = PostgresProvider::new(config).expect("valid config");
        assert_eq!((p.host.as_str(), p.port), ("postgres.emporium.svc", 5432));
    }

    #[test]
    fn identifiers_and_literals_are_quoted() {
        assert_eq!(quote_ident("emporium-a\"b"), "\"emporium-a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
