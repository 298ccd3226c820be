//! The contract between the operator and the storefront runtime: what a tenant config Secret
//! holds and how it is labelled. The operator writes one Secret per tenant; the runtime watches
//! Secrets with [`TENANT_SECRET_SELECTOR`] and serves every tenant it finds.
//!
//! Neither side depends on the other's crate; both depend on this one.

use serde::{Deserialize, Serialize};

/// Label every tenant config Secret carries, so the runtime can watch just those.
pub const TENANT_SECRET_LABEL: &str = "emporium.dev/tenant-config";
/// Label selector for [`TENANT_SECRET_LABEL`].
pub const TENANT_SECRET_SELECTOR: &str = "emporium.dev/tenant-config=true";
/// Label naming the tenant (the `Storefront`'s name) on everything the operator creates.
pub const TENANT_LABEL: &str = "emporium.dev/tenant";
/// The Secret data key holding the JSON-encoded [`TenantConfig`].
pub const TENANT_CONFIG_KEY: &str = "tenant.json";

/// The start of every DynamoDB partition key of the tenant with data key `tenant_id`
/// ([`TenantConfig::tenant_id`]): the runtime builds its keys on it and the operator purges
/// an offboarded tenant's items by it. Neither a Storefront name nor a UID contains `#`, so
/// no tenant's prefix starts another's.
pub fn item_key_prefix(tenant_id: &str) -> String {
    format!("{tenant_id}#")
}

/// How a tenant is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Served by the shared pool; data separated by tenant id (row-level security, key prefix).
    Pooled,
    /// Own namespace, workload, database and tables.
    Dedicated,
}

/// Everything the runtime needs to serve one tenant. Secret values (DSN with password, admin
/// key, payment keys) live here and nowhere else; they must never be logged.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantConfig {
    /// The tenant's data key: every PostgreSQL row (`tenant_id` column, row-level security)
    /// and every DynamoDB item (partition keys start with [`item_key_prefix`]) of the tenant
    /// carries it. The operator sets the `Storefront`'s `metadata.uid`, which a new Storefront
    /// of the same name never gets, so a recreated store reaches none of the old one's data;
    /// tenants created before identities keep their name (see
    /// `docs/decisions/0016-tenant-identity.md`). Never reused, never changed.
    pub tenant_id: String,
    /// The `Storefront`'s name, for logs and messages (absent in configs written before
    /// identities, and in development files: then [`TenantConfig::tenant_id`] is the name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub display_name: String,
    /// Hostnames this tenant answers on.
    pub domains: Vec<String>,
    pub tier: Tier,
    /// CSS colour for the shopper pages, e.g. `#0f766e`.
    #[serde(default)]
    pub theme_color: Option<String>,
    /// PostgreSQL connection string (contains a password).
    pub database_url: String,
    pub tables: Tables,
    /// The merchant admin API key.
    pub admin_key: String,
    pub payments: Payments,
    /// The store owner's email (`spec.owner.email`): the runtime issues the owner's one-time
    /// invitation for it (see `docs/decisions/0019-staff-accounts-and-admin-app.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_email: Option<String>,
    /// URL of the SQS queue the runtime relays this tenant's order events to, created by the
    /// operator with a dead-letter queue. Absent in development files and configs of operators
    /// run without `--queues-provider sqs`: the runtime then derives the queue name from the
    /// tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_events_queue_url: Option<String>,
}

impl std::fmt::Debug for TenantConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantConfig")
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("display_name", &self.display_name)
            .field("domains", &self.domains)
            .field("tier", &self.tier)
            .field("database_url", &"<redacted>")
            .field("tables", &self.tables)
            .field("admin_key", &"<redacted>")
            .field("payments", &self.payments.provider)
            .field("owner_email", &self.owner_email.as_ref().map(|_| "<set>"))
            .field("order_events_queue_url", &self.order_events_queue_url)
            .finish()
    }
}

/// DynamoDB table names for the tenant (shared pool tables for pooled tenants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tables {
    pub catalog: String,
    pub carts: String,
    pub sessions: String,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payments {
    pub provider: PaymentProvider,
    /// Stripe secret key (for `stripe`).
    #[serde(default)]
    pub secret_key: Option<String>,
    /// Stripe webhook signing secret (for `stripe`).
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// Override of the Stripe API base URL (stripe-mock in tests).
    #[serde(default)]
    pub api_base: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PaymentProvider {
    Stripe,
    Manual,
}

/// A tenant config that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TenantConfigError {
    #[error(
        "the Secret has no `{TENANT_CONFIG_KEY}` key; the operator writes it, check the Storefront's status"
    )]
    Missing,
    #[error("`{TENANT_CONFIG_KEY}` is not valid tenant config JSON: {0}")]
    Invalid(#[from] serde_json::Error),
    #[error("tenant `{0}` has no domains; give the Storefront at least one")]
    NoDomains(String),
}

impl TenantConfig {
    /// The name to show in logs: the Storefront's name, else the tenant id.
    pub fn display_id(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.tenant_id)
    }

    /// Parses the Secret's `tenant.json` bytes and checks the invariants the runtime relies on.
    pub fn from_secret_data(data: Option<&[u8]>) -> Result<Self, TenantConfigError> {
        let bytes = data.ok_or(TenantConfigError::Missing)?;
        let config: TenantConfig = serde_json::from_slice(bytes)?;
        if config.domains.is_empty() {
            return Err(TenantConfigError::NoDomains(config.tenant_id));
        }
        Ok(config)
    }

    pub fn to_secret_data(&self) -> Vec<u8> {
        // Serialising a struct of strings and enums cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> TenantConfig {
        TenantConfig {
            tenant_id: "3b0c1d52-5a0e-4f7e-9d0a-6c1f2e3d4b5a".into(),
            name: Some("acme".into()),
            display_name: "Acme".into(),
            domains: vec!["acme.localhost".into()],
            tier: Tier::Pooled,
            theme_color: None,
            database_url: "postgres://u:hunter2@127.0.0.1/db".into(),
            tables: Tables {
                catalog: "emporium-pool-catalog".into(),
                carts: "emporium-pool-carts".into(),
                sessions: "emporium-pool-sessions".into(),
            },
            admin_key: "sk_admin_secret".into(),
            payments: Payments {
                provider: PaymentProvider::Manual,
                secret_key: None,
                webhook_secret: None,
                api_base: None,
            },
            owner_email: None,
            order_events_queue_url: Some(
                "http://127.0.0.1:5000/000000000000/emporium-acme-3b0c1d52-order-events".into(),
            ),
        }
    }

    #[test]
    fn round_trips_through_secret_bytes() {
        let config = sample();
        let parsed = TenantConfig::from_secret_data(Some(&config.to_secret_data())).unwrap();
        assert_eq!(parsed, config);
    }

    #[test]
    fn configs_written_before_identities_read_as_keyed_by_name() {
        let legacy = br#"{"tenantId":"acme","displayName":"Acme","domains":["acme.localhost"],
            "tier":"pooled","databaseUrl":"postgres://u@h/db",
            "tables":{"catalog":"c","carts":"k","sessions":"s"},"adminKey":"sk",
            "payments":{"provider":"manual"}}"#;
        let config = TenantConfig::from_secret_data(Some(legacy)).unwrap();
        assert_eq!(config.display_id(), "acme");
        assert_eq!((config.tenant_id.as_str(), config.name), ("acme", None));
        assert_eq!(sample().display_id(), "acme");
    }

    #[test]
    fn item_prefixes_of_two_tenants_never_nest() {
        assert_eq!(item_key_prefix("shop"), "shop#");
        assert!(!item_key_prefix("shop-2").starts_with(&item_key_prefix("shop")));
    }

    #[test]
    fn owner_email_is_optional_and_kept_out_of_debug_output() {
        let mut config = sample();
        assert!(
            !String::from_utf8(config.to_secret_data())
                .unwrap()
                .contains("ownerEmail")
        );
        config.owner_email = Some("olive@example.com".into());
        let parsed = TenantConfig::from_secret_data(Some(&config.to_secret_data())).unwrap();
        assert_eq!(parsed.owner_email.as_deref(), Some("olive@example.com"));
        assert!(!format!("{config:?}").contains("olive@"));
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let shown = format!("{:?}", sample());
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("sk_admin_secret"), "{shown}");
    }

    #[test]
    fn refuses_missing_and_domainless_configs() {
        assert!(matches!(
            TenantConfig::from_secret_data(None),
            Err(TenantConfigError::Missing)
        ));
        let mut config = sample();
        config.domains.clear();
        assert!(matches!(
            TenantConfig::from_secret_data(Some(&config.to_secret_data())),
            Err(TenantConfigError::NoDomains(_))
        ));
    }
}
