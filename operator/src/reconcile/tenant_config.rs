//! The tenant-config step: assembles the runtime's [`TenantConfig`] (written to the tenant's
//! config Secret by the build step) from the validated tenant, its data key
//! ([`super::identity`]), the data step's DSN and table names, the admin key already in the Secret and the payment keys from the referenced Secret.

use emporium_tenant_config::{
    PaymentProvider as ConfigPaymentProvider, Payments, TENANT_CONFIG_KEY, TenantConfig,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use rand::{Rng as _, distr::Alphanumeric};

use super::{
    Context, Error, build::config_secret_name, tenant_data::TenantData, validate::ValidatedTenant,
};
use crate::crd::{PaymentProvider, Storefront};

/// The runtime's tenant config: data from the provider step, the admin key kept from the
/// existing Secret (generated once), payment keys from the referenced Secret.
pub async fn assemble(
    storefront: &Storefront,
    tenant: &ValidatedTenant,
    tenant_id: &str,
    data: &TenantData,
    namespace: &str,
    ctx: &Context,
) -> Result<TenantConfig, Error> {
    let secret_name = config_secret_name(&tenant.name);
    let existing = read_secret(ctx, namespace, &secret_name).await?;
    let existing_config = existing
        .as_ref()
        .and_then(|secret| secret.data.as_ref()?.get(TENANT_CONFIG_KEY).cloned())
        .and_then(|bytes| TenantConfig::from_secret_data(Some(&bytes.0)).ok());
    // While the database provider cannot say (AWS busy or unreachable), the tenant keeps the
    // DSN it has rather than losing its database.
    let database_url = if data.database_url.is_empty() && ctx.providers.database.is_some() {
        existing_config
            .as_ref()
            .map(|config| config.database_url.clone())
            .unwrap_or_default()
    } else {
        data.database_url.clone()
    };
    // Likewise the queue URL: a tenant whose queue cannot be checked keeps sending to it.
    let order_events_queue_url = match &data.queue_url {
        Some(url) => Some(url.clone()),
        None if ctx.providers.queues.is_some() => existing_config
            .as_ref()
            .and_then(|config| config.order_events_queue_url.clone()),
        None => None,
    };
    let admin_key = existing_config
        .map(|config| config.admin_key)
        .filter(|key| !key.is_empty())
        .unwrap_or_else(|| {
            let key: String = rand::rng()
                .sample_iter(Alphanumeric)
                .take(40)
                .map(char::from)
                .collect();
            format!("sk_admin_{key}")
        });
    let payments = match (
        &storefront.spec.payments.provider,
        &storefront.spec.payments.secret_ref,
    ) {
        (PaymentProvider::Stripe, Some(reference)) => {
            // Left out: the tenant's own namespace (validation refused any other).
            let secret_namespace = reference.namespace.as_deref().unwrap_or(namespace);
            let secret = read_secret(ctx, secret_namespace, &reference.name).await?;
            let value = |key: &'static str| {
                secret
                    .as_ref()
                    .and_then(|s| s.data.as_ref()?.get(key))
                    .map(|bytes| String::from_utf8_lossy(&bytes.0).into_owned())
            };
            let missing = |key| Error::PaymentsSecret {
                namespace: secret_namespace.to_owned(),
                name: reference.name.clone(),
                key,
            };
            Payments {
                provider: ConfigPaymentProvider::Stripe,
                secret_key: Some(value("secretKey").ok_or_else(|| missing("secretKey"))?),
                webhook_secret: Some(
                    value("webhookSecret").ok_or_else(|| missing("webhookSecret"))?,
                ),
                api_base: value("apiBase"),
            }
        }
        _ => Payments {
            provider: ConfigPaymentProvider::Manual,
            secret_key: None,
            webhook_secret: None,
            api_base: None,
        },
    };
    Ok(TenantConfig {
        tenant_id: tenant_id.to_owned(),
        name: Some(tenant.name.clone()),
        display_name: storefront.spec.display_name.clone(),
        domains: tenant.routed_domains.iter().map(|d| d.0.clone()).collect(),
        tier: tenant.tier.into(),
        theme_color: storefront.spec.theme_color.clone(),
        database_url,
        tables: data.table_names.clone(),
        admin_key,
        payments,
        owner_email: storefront.spec.owner.as_ref().map(|o| o.email.clone()),
        order_events_queue_url,
    })
}

/// The Secret from the cache when the operator made it (its config Secret), else from the API
/// server: a Secret it has just created may not be cached yet, and the admin key in it must
/// never be generated twice.
async fn read_secret(ctx: &Context, namespace: &str, name: &str) -> Result<Option<Secret>, Error> {
    if let Some(cached) = ctx.cache.secrets.get(namespace, name) {
        return Ok(Some(cached.as_ref().clone()));
    }
    match Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
    {
        Ok(secret) => Ok(secret),
        // The dedicated namespace does not exist before the first apply.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(source) => Err(Error::ReadSecret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        }),
    }
}
