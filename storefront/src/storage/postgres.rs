//! PostgreSQL: connection pools, migrations, and the customer store.
//!
//! Every transaction first runs `set_config('app.tenant_id', $1, true)` (transaction-local), and
//! every table forces row-level security on that setting, so a query that forgot it sees nothing.

use std::{sync::Arc, time::Duration};

use deadpool_postgres::{
    ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime, Timeouts, Transaction,
};
use tokio::sync::OnceCell;
use tokio_postgres::{NoTls, error::SqlState};
use uuid::Uuid;

use chrono::{DateTime, Utc};

use crate::domain::{
    accounts::{Customer, TokenPurpose},
    ports::{CustomerCredentials, CustomerStore, EmailTaken, StoreError},
};

/// Numbered migrations, applied in order once per database at first use.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "customers",
        include_str!("../../migrations/0001_customers.sql"),
    ),
    (
        20,
        "inventory_orders",
        include_str!("../../migrations/0020_inventory_orders.sql"),
    ),
    (
        100,
        "cart_orders",
        include_str!("../../migrations/0100_cart_orders.sql"),
    ),
    (
        101,
        "manual_payment_holds",
        include_str!("../../migrations/0101_manual_payment_holds.sql"),
    ),
    (
        102,
        "shipping",
        include_str!("../../migrations/0102_shipping.sql"),
    ),
    (
        103,
        "tax_and_discounts",
        include_str!("../../migrations/0103_tax_and_discounts.sql"),
    ),
    (
        104,
        "promotions",
        include_str!("../../migrations/0104_promotions.sql"),
    ),
    (
        105,
        "refunds_and_fulfilment",
        include_str!("../../migrations/0105_refunds_and_fulfilment.sql"),
    ),
    (
        110,
        "staff",
        include_str!("../../migrations/0110_staff.sql"),
    ),
    (
        120,
        "notifications",
        include_str!("../../migrations/0120_notifications.sql"),
    ),
    (
        130,
        "account_tokens",
        include_str!("../../migrations/0130_account_tokens.sql"),
    ),
    (
        131,
        "imports",
        include_str!("../../migrations/0131_imports.sql"),
    ),
];

/// Arbitrary constant key for the advisory lock that serialises migrations across replicas.
const MIGRATION_LOCK: i64 = 0x656d_706f_7269_756d;

fn pg_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::caused_by("postgres", e)
}

/// A numbered migration that did not apply.
#[derive(Debug, thiserror::Error)]
#[error("migration {version} ({name}): {source}")]
struct MigrationFailed {
    version: i32,
    name: &'static str,
    source: tokio_postgres::Error,
}

/// One PostgreSQL database (shared by every pooled tenant whose DSN names it).
pub struct Database {
    pool: Pool,
    migrated: OnceCell<()>,
}

impl Database {
    /// Creates the pool; connections open lazily, so an unreachable server is reported by
    /// `/readyz` and by requests, not at start.
    pub fn new(dsn: &str, pool_size: usize) -> Result<Self, StoreError> {
        let mut cfg = deadpool_postgres::Config::new();
        cfg.url = Some(dsn.to_owned());
        cfg.manager = Some(ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        });
        let mut pool_cfg = PoolConfig::new(pool_size);
        pool_cfg.timeouts = Timeouts {
            wait: Some(Duration::from_secs(5)),
            create: Some(Duration::from_secs(5)),
            recycle: Some(Duration::from_secs(5)),
        };
        cfg.pool = Some(pool_cfg);
        // The DSN holds a password: report only the kind of failure.
        let pool = cfg
            .create_pool(Some(Runtime::Tokio1), NoTls)
            .map_err(|_| StoreError::new("postgres", "invalid database URL"))?;
        Ok(Self {
            pool,
            migrated: OnceCell::new(),
        })
    }

    /// A pooled connection, after making sure migrations ran.
    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.migrated
            .get_or_try_init(|| migrate(&self.pool))
            .await?;
        self.pool.get().await.map_err(pg_err)
    }

    /// Applies pending migrations now (at start), rather than on first use.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        self.migrated
            .get_or_try_init(|| migrate(&self.pool))
            .await
            .map(|_| ())
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let client = self.pool.get().await.map_err(pg_err)?;
        client.simple_query("SELECT 1").await.map_err(pg_err)?;
        Ok(())
    }
}

async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await.map_err(pg_err)?;
    let tx = client.transaction().await.map_err(pg_err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(pg_err)?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .map_err(pg_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await.map_err(|source| {
            pg_err(MigrationFailed {
                version: *version,
                name,
                source,
            })
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(pg_err)?;
        tracing::info!(version, name, "applied migration");
    }
    tx.commit().await.map_err(pg_err)
}

/// Opens a transaction scoped to `tenant` by the row-level security setting.
pub async fn tenant_transaction<'a>(
    client: &'a mut deadpool_postgres::Object,
    tenant: &str,
) -> Result<Transaction<'a>, StoreError> {
    let tx = client.transaction().await.map_err(pg_err)?;
    let stmt = tx
        .prepare_cached("SELECT set_config('app.tenant_id', $1, true)")
        .await
        .map_err(pg_err)?;
    tx.execute(&stmt, &[&tenant]).await.map_err(pg_err)?;
    Ok(tx)
}

/// Customers of one tenant.
#[derive(Clone)]
pub struct PgCustomers {
    pub db: Arc<Database>,
    pub tenant: Arc<str>,
}

const CUSTOMER_COLUMNS: &str =
    "id, email, name, created_at, password_hash, email_verified_at IS NOT NULL, pending_email";

fn credentials(row: &tokio_postgres::Row) -> CustomerCredentials {
    CustomerCredentials {
        customer: Customer {
            id: row.get(0),
            email: row.get(1),
            name: row.get(2),
            created_at: row.get(3),
            email_verified: row.get(5),
            pending_email: row.get(6),
        },
        password_hash: row.get(4),
    }
}

fn is_email_taken(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|d| {
        d.code() == &SqlState::UNIQUE_VIOLATION && d.constraint() == Some("customers_email_unique")
    })
}

impl PgCustomers {
    async fn query_one(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Option<CustomerCredentials>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let stmt = tx.prepare_cached(sql).await.map_err(pg_err)?;
        let row = tx.query_opt(&stmt, params).await.map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.as_ref().map(credentials))
    }
}

impl CustomerStore for PgCustomers {
    async fn create(
        &self,
        email: &str,
        password_hash: &str,
        name: &str,
    ) -> Result<Result<Customer, EmailTaken>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let sql = format!(
            "INSERT INTO customers (tenant_id, id, email, password_hash, name) VALUES ($1, $2, $3, $4, $5) RETURNING {CUSTOMER_COLUMNS}"
        );
        let stmt = tx.prepare_cached(&sql).await.map_err(pg_err)?;
        let id = Uuid::now_v7();
        match tx
            .query_one(&stmt, &[&&*self.tenant, &id, &email, &password_hash, &name])
            .await
        {
            Ok(row) => {
                tx.commit().await.map_err(pg_err)?;
                Ok(Ok(credentials(&row).customer))
            }
            Err(e) if is_email_taken(&e) => Ok(Err(EmailTaken)),
            Err(e) => Err(pg_err(e)),
        }
    }

    async fn by_email(&self, email: &str) -> Result<Option<CustomerCredentials>, StoreError> {
        let sql =
            format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND email = $2");
        self.query_one(&sql, &[&&*self.tenant, &email]).await
    }

    async fn by_id(&self, id: Uuid) -> Result<Option<CustomerCredentials>, StoreError> {
        let sql =
            format!("SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND id = $2");
        self.query_one(&sql, &[&&*self.tenant, &id]).await
    }

    async fn update_profile(
        &self,
        id: Uuid,
        email: Option<&str>,
        name: Option<&str>,
    ) -> Result<Result<Option<Customer>, EmailTaken>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let sql = format!(
            "UPDATE customers SET email = COALESCE($3, email), name = COALESCE($4, name), updated_at = now()
             WHERE tenant_id = $1 AND id = $2 RETURNING {CUSTOMER_COLUMNS}"
        );
        let stmt = tx.prepare_cached(&sql).await.map_err(pg_err)?;
        match tx
            .query_opt(&stmt, &[&&*self.tenant, &id, &email, &name])
            .await
        {
            Ok(row) => {
                tx.commit().await.map_err(pg_err)?;
                Ok(Ok(row.as_ref().map(|r| credentials(r).customer)))
            }
            Err(e) if is_email_taken(&e) => Ok(Err(EmailTaken)),
            Err(e) => Err(pg_err(e)),
        }
    }

    async fn set_password_hash(&self, id: Uuid, hash: &str) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let stmt = tx
            .prepare_cached("UPDATE customers SET password_hash = $3, updated_at = now() WHERE tenant_id = $1 AND id = $2")
            .await
            .map_err(pg_err)?;
        tx.execute(&stmt, &[&&*self.tenant, &id, &hash])
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn issue_token(
        &self,
        customer: Uuid,
        purpose: TokenPurpose,
        email: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        insert_token(
            &tx,
            &self.tenant,
            customer,
            purpose,
            email,
            token_hash,
            expires_at,
        )
        .await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn token_holder(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let row = tx
            .query_opt(
                "SELECT customer_id FROM customer_tokens
                  WHERE tenant_id = $1 AND token_hash = $2 AND purpose = $3 AND expires_at > now()",
                &[&&*self.tenant, &token_hash, &purpose.as_str()],
            )
            .await
            .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn reset_password(
        &self,
        token_hash: &str,
        password_hash: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let Some((customer, email)) =
            take_token(&tx, &self.tenant, token_hash, TokenPurpose::PasswordReset).await?
        else {
            return Ok(None);
        };
        let updated = tx
            .execute(
                "UPDATE customers SET password_hash = $4, updated_at = now(),
                        email_verified_at = COALESCE(email_verified_at, now())
                  WHERE tenant_id = $1 AND id = $2 AND email = $3",
                &[&&*self.tenant, &customer, &email, &password_hash],
            )
            .await
            .map_err(pg_err)?;
        if updated == 0 {
            // Mailed to an address the customer has since left: the link is dead (and gone).
            tx.commit().await.map_err(pg_err)?;
            return Ok(None);
        }
        tx.execute(
            "DELETE FROM customer_tokens WHERE tenant_id = $1 AND customer_id = $2 AND purpose = $3",
            &[&&*self.tenant, &customer, &TokenPurpose::PasswordReset.as_str()],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(customer))
    }

    async fn verify_email(
        &self,
        token_hash: &str,
    ) -> Result<Result<Option<Customer>, EmailTaken>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let Some((customer, email)) =
            take_token(&tx, &self.tenant, token_hash, TokenPurpose::VerifyEmail).await?
        else {
            return Ok(Ok(None));
        };
        let sql = format!(
            "UPDATE customers SET email = $3, email_verified_at = now(), updated_at = now(),
                    pending_email = CASE WHEN pending_email = $3 THEN NULL ELSE pending_email END
              WHERE tenant_id = $1 AND id = $2 AND (email = $3 OR pending_email = $3)
              RETURNING {CUSTOMER_COLUMNS}"
        );
        let row = match tx
            .query_opt(sql.as_str(), &[&&*self.tenant, &customer, &email])
            .await
        {
            Ok(row) => row,
            Err(e) if is_email_taken(&e) => return Ok(Err(EmailTaken)),
            Err(e) => return Err(pg_err(e)),
        };
        if row.is_some() {
            // Reset links went to the old address; it is no longer the customer's.
            tx.execute(
                "DELETE FROM customer_tokens WHERE tenant_id = $1 AND customer_id = $2 AND purpose = $3 AND email <> $4",
                &[&&*self.tenant, &customer, &TokenPurpose::PasswordReset.as_str(), &email],
            )
            .await
            .map_err(pg_err)?;
        }
        tx.commit().await.map_err(pg_err)?;
        Ok(Ok(row.as_ref().map(|r| credentials(r).customer)))
    }

    async fn request_email_change(
        &self,
        id: Uuid,
        new_email: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Option<Customer>, StoreError> {
        let mut client = self.db.client().await?;
        let tx = tenant_transaction(&mut client, &self.tenant).await?;
        let sql = format!(
            "UPDATE customers SET pending_email = $3, updated_at = now()
              WHERE tenant_id = $1 AND id = $2 RETURNING {CUSTOMER_COLUMNS}"
        );
        let Some(row) = tx
            .query_opt(sql.as_str(), &[&&*self.tenant, &id, &new_email])
            .await
            .map_err(pg_err)?
        else {
            return Ok(None);
        };
        insert_token(
            &tx,
            &self.tenant,
            id,
            TokenPurpose::VerifyEmail,
            new_email,
            token_hash,
            expires_at,
        )
        .await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(credentials(&row).customer))
    }
}

/// Inserts a link, deleting the customer's earlier ones of the purpose (only the newest works).
async fn insert_token(
    tx: &Transaction<'_>,
    tenant: &str,
    customer: Uuid,
    purpose: TokenPurpose,
    email: &str,
    token_hash: &str,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM customer_tokens WHERE tenant_id = $1 AND customer_id = $2 AND purpose = $3",
        &[&tenant, &customer, &purpose.as_str()],
    )
    .await
    .map_err(pg_err)?;
    tx.execute(
        "INSERT INTO customer_tokens (tenant_id, token_hash, customer_id, purpose, email, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[&tenant, &token_hash, &customer, &purpose.as_str(), &email, &expires_at],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// Deletes a live link of `purpose` and returns whom and which address it was for; the
/// delete is what makes it single-use (two concurrent uses: one gets the row, one nothing).
async fn take_token(
    tx: &Transaction<'_>,
    tenant: &str,
    token_hash: &str,
    purpose: TokenPurpose,
) -> Result<Option<(Uuid, String)>, StoreError> {
    let row = tx
        .query_opt(
            "DELETE FROM customer_tokens
              WHERE tenant_id = $1 AND token_hash = $2 AND purpose = $3 AND expires_at > now()
              RETURNING customer_id, email",
            &[&tenant, &token_hash, &purpose.as_str()],
        )
        .await
        .map_err(pg_err)?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}
