//! The tenant's PostgreSQL database, behind [`DatabaseProvider`]: `aurora` (Aurora PostgreSQL
//! through RDS) in production, `postgres` (an existing server) for development and tests.

mod aurora;
mod postgres;
mod rows;

pub use aurora::{AuroraConfig, AuroraProvider, ClusterState, cluster_state, instance_state};
pub use postgres::{PostgresConfig, PostgresProvider};
pub use rows::{RowPurge, TenantRows};

use super::{BoxFuture, Deletion, DeletionPolicy, Outcome, ProviderError, SecretString, Tier};

/// Serverless v2 capacity in Aurora capacity units (0.5 steps; 0 allows auto-pause).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub min_acu: f64,
    pub max_acu: f64,
}

/// What the reconcile step asks for: one tenant's database, filled from the `Storefront`, its
/// plan and its status.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantDatabase {
    /// The `Storefront`'s name; every name is derived from it.
    pub tenant: String,
    /// The tenant's data key (`status.tenantId`); aurora login roles carry its first
    /// characters, so a recreated Storefront of the same name gets a new role.
    pub tenant_id: String,
    /// The `emporium.dev/rotate-credentials` annotation's value: a new value gives the
    /// tenant's login role a new password (aurora).
    pub credentials_generation: Option<String>,
    pub tier: Tier,
    /// Aurora PostgreSQL engine version (e.g. `16.6`); `None` takes the AWS default. Ignored
    /// by the `postgres` provider.
    pub engine_version: Option<String>,
    /// Whether a change of `engine_version` may cross a major version (aurora, dedicated).
    pub allow_major_version_upgrade: bool,
    /// Serverless v2 capacity from the plan (dedicated tenants; the pool cluster's capacity is
    /// operator configuration). Ignored by the `postgres` provider.
    pub capacity: Capacity,
    pub deletion_policy: DeletionPolicy,
    /// An existing cluster identifier (aurora) or database name (postgres) to take over
    /// instead of creating one. Dedicated tenants only.
    pub adopt: Option<String>,
    /// The identifier the tenant's status says was provisioned, if any. When it is set and the
    /// resource is gone, the provider recreates it (Delete/Snapshot) or reports `Missing`
    /// (Retain) instead of silently making an empty one.
    pub recorded: Option<String>,
}

/// How the tenant reaches its database. Safe to log: the DSN redacts itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseConnection {
    /// The cluster identifier (aurora) or database name (postgres), for status.
    pub identifier: String,
    /// Host name of the writer endpoint.
    pub host: String,
    pub port: u16,
    /// Database name inside the server.
    pub database: String,
    /// The login role the DSN uses.
    pub username: String,
    /// `postgres://user:password@host:port/database[?sslmode=require]`: a secret, for the
    /// tenant config Secret only.
    pub dsn: SecretString,
    /// ARN of the RDS-managed master user secret (aurora), for status and IAM scoping.
    pub master_secret_arn: Option<String>,
}

/// Provisions and deletes tenants' databases. Every method is idempotent and returns after at
/// most one step (never waits for AWS): call it again while it answers `Progressing`.
pub trait DatabaseProvider: Send + Sync {
    /// `aurora` or `postgres`, for logs and condition messages.
    fn kind(&self) -> &'static str;

    /// Observes the tenant's database and takes the next step towards the request: create
    /// what is missing, modify what drifted (capacity, deletion protection), and report.
    fn ensure<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Outcome<DatabaseConnection>, ProviderError>>;

    /// Deletes (or retains) the tenant's database per `db.deletion_policy`. `Ready` means done:
    /// the finalizer may go.
    fn delete<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Outcome<Deletion>, ProviderError>>;

    /// The serverless v2 capacity the tenant's cluster (pooled: the pool cluster) is set to,
    /// as the cloud reports it, for the cost estimate; `None` when there is no such figure
    /// (the `postgres` provider, a cluster not created yet).
    fn capacity<'a>(
        &'a self,
        db: &'a TenantDatabase,
    ) -> BoxFuture<'a, Result<Option<Capacity>, ProviderError>> {
        let _ = db;
        Box::pin(async { Ok(None) })
    }
}

/// A role password derived, not stored: HMAC-SHA256 under `key` of `domain` followed by
/// `parts` separated by `/`, as hex. Both providers use it, so a crash between creating a role
/// and writing the tenant's Secret loses nothing.
pub(crate) fn derived_password(
    key: &[u8],
    domain: &str,
    parts: &[&str],
) -> Result<String, ProviderError> {
    use hmac::{Hmac, Mac as _};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key)
        .map_err(|_| ProviderError::Config("the role password key is unusable".into()))?;
    mac.update(domain.as_bytes());
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b"/");
        }
        mac.update(part.as_bytes());
    }
    Ok(mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Formats a PostgreSQL URL, percent-encoding the user and password.
pub(crate) fn postgres_url(
    user: &str,
    password: &str,
    host: &str,
    port: u16,
    database: &str,
    query: &str,
) -> String {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    let mut url = format!(
        "postgres://{}:{}@{host}:{port}/{}",
        percent_encode(user),
        percent_encode(password),
        percent_encode(database)
    );
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_encode_awkward_passwords() {
        let url = postgres_url(
            "admin",
            "P@55w0rd!/:",
            "db.example",
            5432,
            "emporium",
            "sslmode=require",
        );
        assert_eq!(
            url,
            "postgres://admin:P%4055w0rd%21%2F%3A@db.example:5432/emporium?sslmode=require"
        );
        let parsed: tokio_postgres::Config = url.parse().expect("tokio-postgres parses it");
        assert_eq!(parsed.get_password(), Some("P@55w0rd!/:".as_bytes()));
    }
}
