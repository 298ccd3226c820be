//! The tenant's own login role on its cluster: the master credentials are used here, and only
//! here, to create it; the tenant config carries the role's credentials, never the master's.
//!
//! - role and schema `<prefix>-<tenant>-<key>` (`<key>`: the first 8 characters of the data
//!   key, so a recreated Storefront of the same name never gets the old role), `LOGIN
//!   NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT`, a member of no role;
//! - the schema of the same name, owned by the role: the runtime's migrations create its tables
//!   there (`search_path` starts with `"$user"`), so a pooled tenant's rows are in its own
//!   tables, which no other tenant's role can reach (no `USAGE` on the schema). Row-level
//!   security stays on inside; disabling it on its own tables shows the role nothing new;
//! - `CONNECT` on the database revoked from `PUBLIC` and granted to the role, `CREATE` on the
//!   `public` schema revoked from `PUBLIC` (the PostgreSQL 15 default, made explicit for
//!   older engines).
//!
//! The password is derived, not stored: HMAC-SHA256 over the cluster, the role and the
//! `emporium.dev/rotate-credentials` annotation's value, keyed by `--aurora-password-key` (or,
//! without one, by the master password, so the tenants' passwords change when RDS rotates it).
//! Annotating the Storefront with a new value rotates the password (`ALTER ROLE`) and the
//! tenant config follows. The role's state is cached per process, so a steady-state reconcile
//! opens no SQL connection.

use std::{collections::HashMap, time::Duration};

use sha2::{Digest as _, Sha256};
use tokio_postgres::{Client, NoTls, error::SqlState};
use tracing::{info, warn};

use super::AuroraProvider;
use crate::providers::{
    DeletionPolicy, ProviderError, SecretString,
    database::{
        TenantDatabase, derived_password,
        postgres::{pg_error, quote_ident, quote_literal},
    },
    names,
};

/// How long opening the master connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and as whom the operator runs the role statements.
pub(super) struct MasterLogin {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub username: String,
    pub password: SecretString,
}

/// The login role of `db` (and its schema's name).
pub fn login_role(prefix: &str, tenant: &str, tenant_id: &str) -> String {
    match names::identity_key(tenant, tenant_id) {
        None => names::postgres_identifier(prefix, tenant),
        Some(key) => names::postgres_identifier(prefix, &format!("{tenant}-{key}")),
    }
}

/// What this process last made true of the roles: role → fingerprint of its password.
pub(super) type LoginCache = parking_lot::Mutex<HashMap<String, [u8; 32]>>;

impl AuroraProvider {
    /// The tenant's role password on `cluster`.
    pub(super) fn login_password(
        &self,
        master: &MasterLogin,
        cluster: &str,
        role: &str,
        db: &TenantDatabase,
    ) -> Result<String, ProviderError> {
        let key = match &self.config.password_key {
            Some(key) => key.expose().as_bytes().to_vec(),
            None => master.password.expose().as_bytes().to_vec(),
        };
        let mut parts = vec![cluster, role];
        parts.extend(db.credentials_generation.as_deref());
        derived_password(&key, "emporium/aurora-login/", &parts)
    }

    /// Makes sure the tenant's login role and schema exist with `password`; a no-op when this
    /// process already did so for the same password.
    pub(super) async fn ensure_login(
        &self,
        master: &MasterLogin,
        role: &str,
        password: &str,
        db: &TenantDatabase,
    ) -> Result<(), ProviderError> {
        let mut fingerprint = [0u8; 32];
        fingerprint.copy_from_slice(&Sha256::digest(password.as_bytes()));
        let cache_key = format!("{}:{}/{role}", master.host, master.port);
        if self.logins.lock().get(&cache_key) == Some(&fingerprint) {
            return Ok(());
        }
        let _serialised = self.login_lock.lock().await;
        let client = self.master_client(master).await?;
        let exists = role_exists(&client, role).await?;
        // A SCRAM verifier, never the password: DDL takes no parameters, and statement text
        // reaches the server's log.
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        let attributes = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS NOINHERIT NOREPLICATION";
        let ident = quote_ident(role);
        if exists {
            // Also a rotation: the password changes, open sessions keep theirs until they end.
            let sql = format!(
                "ALTER ROLE {ident} WITH LOGIN PASSWORD {} {attributes}",
                quote_literal(&verifier)
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| pg_error(format!("setting the password of role {role}"), e))?;
        } else {
            info!(role = %role, tenant = %db.tenant, "creating the tenant's Aurora login role");
            let sql = format!(
                "CREATE ROLE {ident} WITH LOGIN PASSWORD {} {attributes}",
                quote_literal(&verifier)
            );
            match client.batch_execute(&sql).await {
                Ok(()) => {}
                Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => {}
                Err(e) => return Err(pg_error(format!("creating role {role}"), e)),
            }
        }
        let database = quote_ident(&master.database);
        // The master (rds_superuser) is not a superuser: it must be a member of the role to
        // make it a schema's owner.
        let grants = format!(
            "GRANT {ident} TO CURRENT_USER;
             CREATE SCHEMA IF NOT EXISTS {ident} AUTHORIZATION {ident};
             REVOKE ALL ON SCHEMA {ident} FROM PUBLIC;
             REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC;
             GRANT CONNECT ON DATABASE {database} TO {ident};
             REVOKE CREATE ON SCHEMA public FROM PUBLIC;
             ALTER ROLE {ident} SET search_path = \"$user\";"
        );
        client
            .batch_execute(&grants)
            .await
            .map_err(|e| pg_error(format!("granting role {role} its schema"), e))?;
        self.logins.lock().insert(cache_key, fingerprint);
        Ok(())
    }

    /// Removes the tenant's role and its schema (`Delete`/`Snapshot` of a pooled tenant, whose
    /// rows were exported first); `Retain` keeps both, unreachable by any new tenant.
    pub(super) async fn drop_login(
        &self,
        master: &MasterLogin,
        role: &str,
        db: &TenantDatabase,
    ) -> Result<String, ProviderError> {
        if db.deletion_policy == DeletionPolicy::Retain {
            return Ok(format!("login role and schema {role} retained"));
        }
        let _serialised = self.login_lock.lock().await;
        let client = self.master_client(master).await?;
        let exists = role_exists(&client, role).await?;
        if !exists {
            return Ok(format!("login role {role} gone"));
        }
        let ident = quote_ident(role);
        let database = quote_ident(&master.database);
        // Its sessions end first, so it cannot keep writing while its schema goes.
        client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
                &[&role],
            )
            .await
            .map_err(|e| pg_error(format!("ending the sessions of role {role}"), e))?;
        let sql = format!(
            "GRANT {ident} TO CURRENT_USER;
             DROP SCHEMA IF EXISTS {ident} CASCADE;
             REVOKE ALL ON DATABASE {database} FROM {ident};
             DROP OWNED BY {ident};
             DROP ROLE {ident};"
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| pg_error(format!("dropping role {role} and its schema"), e))?;
        self.logins
            .lock()
            .retain(|key, _| !key.ends_with(&format!("/{role}")));
        info!(role = %role, tenant = %db.tenant, "dropped the tenant's Aurora login role and schema");
        Ok(format!("login role and schema {role} dropped"))
    }

    async fn master_client(&self, master: &MasterLogin) -> Result<Client, ProviderError> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&master.host)
            .port(master.port)
            .dbname(&master.database)
            .user(&master.username)
            .password(master.password.expose())
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name("emporium-operator");
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|source| ProviderError::PostgresUnreachable { source })?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                warn!(error = %e, "Aurora master connection ended with an error");
            }
        });
        Ok(client)
    }
}

async fn role_exists(client: &Client, role: &str) -> Result<bool, ProviderError> {
    Ok(client
        .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(|e| pg_error(format!("looking up role {role}"), e))?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_roles_carry_the_identity_and_fit_postgres() {
        assert_eq!(
            login_role("emporium", "acme", "3b0c1d52-5a0e-4f7e"),
            "emporium-acme-3b0c1d52"
        );
        assert_eq!(login_role("emporium", "acme", "acme"), "emporium-acme");
        assert_ne!(
            login_role("emporium", "acme", "3b0c1d52"),
            login_role("emporium", "acme", "9f1e2d3c")
        );
        assert!(login_role("emporium", &"x".repeat(80), "3b0c1d52").len() <= 63);
    }
}
