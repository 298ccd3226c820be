//! The stack's PostgreSQL server: its admin connection, and fresh databases for the runtime.

use tokio_postgres::NoTls;

use crate::{Stack, unique};

/// The stack's PostgreSQL server as its superuser (`DATABASE_URL`).
pub fn postgres_admin_url() -> String {
    Stack::get()
        .var("DATABASE_URL")
        .expect("the stack's DATABASE_URL")
        .to_owned()
}

/// A connection to the stack's PostgreSQL as its superuser (where the operator makes tenant
/// databases and roles).
pub async fn postgres_admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_admin_url(), NoTls)
        .await
        .expect("connect to the stack's PostgreSQL as its superuser");
    tokio::spawn(connection);
    client
}

/// A fresh database owned by a fresh non-superuser role (so row-level security applies to it),
/// as a connection string for that role.
pub async fn app_database() -> String {
    let admin_url = postgres_admin_url();
    let client = postgres_admin().await;
    let (role, db, password) = (unique("app_"), unique("app_db_"), unique("pw"));
    client
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD '{password}' NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"
        ))
        .await
        .expect("create role");
    client
        .batch_execute(&format!("CREATE DATABASE {db} OWNER {role}"))
        .await
        .expect("create database");
    let cfg: tokio_postgres::Config = admin_url.parse().expect("DATABASE_URL parses");
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "127.0.0.1".into(),
    };
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    format!("host={host} port={port} user={role} password={password} dbname={db}")
}

/// A fresh, empty database on the stack's PostgreSQL, as a URL for its superuser: where a
/// test points the `aurora` provider's SQL (`--aurora-sql-override`), since moto's clusters
/// have no server behind them.
pub async fn scratch_database(prefix: &str) -> String {
    let db = unique(prefix).replace('-', "_");
    postgres_admin()
        .await
        .batch_execute(&format!("CREATE DATABASE {db}"))
        .await
        .expect("create database");
    let admin_url = postgres_admin_url();
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("DATABASE_URL ends with /<database>");
    format!("{base}/{db}")
}

/// The databases whose names match the SQL `LIKE` pattern, sorted.
pub async fn databases_like(
    pg: &tokio_postgres::Client,
    pattern: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    names_like(
        pg,
        "SELECT datname::text FROM pg_database WHERE datname LIKE $1 ORDER BY 1",
        pattern,
    )
    .await
}

/// The roles whose names match the SQL `LIKE` pattern, sorted.
pub async fn roles_like(
    pg: &tokio_postgres::Client,
    pattern: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    names_like(
        pg,
        "SELECT rolname::text FROM pg_roles WHERE rolname LIKE $1 ORDER BY 1",
        pattern,
    )
    .await
}

async fn names_like(
    pg: &tokio_postgres::Client,
    sql: &str,
    pattern: &str,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(pg
        .query(sql, &[&pattern])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
