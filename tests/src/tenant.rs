//! A tenant of the storefront runtime as the operator would configure it, for tests that run
//! the runtime without the operator.

use emporium_tenant_config::{PaymentProvider, Payments, Tables, TenantConfig, Tier};

use crate::unique;

/// A pooled tenant `name` with manual payments: a unique id, one unique `<name>-….test`
/// domain, a unique admin key, its data in the database at `database_url` (see
/// [`app_database`](crate::app_database)) and in the tables `<tables_prefix>-catalog`,
/// `-carts` and `-sessions`.
pub fn tenant(name: &str, database_url: &str, tables_prefix: &str) -> TenantConfig {
    TenantConfig {
        tenant_id: unique(&format!("{name}-")),
        name: None,
        display_name: name.to_owned(),
        domains: vec![format!("{}.test", unique(&format!("{name}-")))],
        tier: Tier::Pooled,
        theme_color: None,
        database_url: database_url.to_owned(),
        tables: Tables {
            catalog: format!("{tables_prefix}-catalog"),
            carts: format!("{tables_prefix}-carts"),
            sessions: format!("{tables_prefix}-sessions"),
        },
        admin_key: unique("admin_"),
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
