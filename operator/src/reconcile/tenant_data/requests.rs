//! The provider requests for a Storefront: its database (sizing from the plan unless the spec
//! overrides it) and tables (adoption for dedicated tenants), and the deterministic table
//! names.

use emporium_tenant_config::Tables;
use kube::ResourceExt as _;

use crate::{
    crd::{self, Storefront, Tier},
    providers::{self, AdoptTables, Capacity, TenantDatabase, TenantQueue, TenantTables, names},
    reconcile::{Error, identity},
};

impl From<crd::DeletionPolicy> for providers::DeletionPolicy {
    fn from(policy: crd::DeletionPolicy) -> Self {
        match policy {
            crd::DeletionPolicy::Retain => providers::DeletionPolicy::Retain,
            crd::DeletionPolicy::Snapshot => providers::DeletionPolicy::Snapshot,
            crd::DeletionPolicy::Delete => providers::DeletionPolicy::Delete,
        }
    }
}

/// Annotating a Storefront with a new value of this rotates its database login's password.
pub const ROTATE_CREDENTIALS: &str = "emporium.dev/rotate-credentials";

/// The database request for `storefront` on `tier`, its sizing from `plan` unless the spec
/// overrides it.
pub(crate) fn database_request(
    storefront: &Storefront,
    tier: Tier,
    plan: Option<&crd::StorefrontPlanSpec>,
) -> Result<TenantDatabase, Error> {
    let spec = &storefront.spec.database;
    let (plan_min, plan_max) = plan
        .map(|p| (p.database.min_capacity, p.database.max_capacity))
        .unwrap_or((0.5, 2.0));
    Ok(TenantDatabase {
        tenant: storefront.name_any(),
        tenant_id: identity::resolve(storefront)?.tenant_id,
        credentials_generation: storefront
            .annotations()
            .get(ROTATE_CREDENTIALS)
            .filter(|v| !v.is_empty())
            .cloned(),
        tier: tier.into(),
        engine_version: Some(spec.engine_version.clone()),
        allow_major_version_upgrade: spec.allow_major_version_upgrade,
        capacity: Capacity {
            min_acu: spec.min_capacity.unwrap_or(plan_min),
            max_acu: spec.max_capacity.unwrap_or(plan_max),
        },
        // An adopted cluster is retained whatever the policy, unless the spec says
        // `deleteAdopted: true`.
        deletion_policy: match (&tier, &spec.existing_cluster_identifier) {
            (Tier::Dedicated, Some(_)) if !spec.delete_adopted => providers::DeletionPolicy::Retain,
            _ => spec.deletion_policy.into(),
        },
        adopt: match tier {
            Tier::Dedicated => spec.existing_cluster_identifier.clone(),
            Tier::Pooled => None,
        },
        recorded: storefront
            .status
            .as_ref()
            .and_then(|s| s.database_id.clone()),
    })
}

/// The tables request for `storefront` on `tier`; with `catalog.onDemand: false`, provisioned
/// at the throughput of `plan` (its defaults when the plan is not at hand).
pub(crate) fn tables_request(
    storefront: &Storefront,
    tier: Tier,
    plan: Option<&crd::StorefrontPlanSpec>,
) -> TenantTables {
    let catalog = &storefront.spec.catalog;
    let adopt = match (tier, &catalog.existing_tables) {
        (Tier::Dedicated, Some(existing)) => AdoptTables {
            catalog: existing.catalog.clone(),
            carts: existing.carts.clone(),
            sessions: existing.sessions.clone(),
        },
        _ => AdoptTables::default(),
    };
    TenantTables {
        tenant: storefront.name_any(),
        tier: tier.into(),
        point_in_time_recovery: catalog.point_in_time_recovery,
        deletion_policy: storefront.spec.database.deletion_policy.into(),
        provisioned: (!catalog.on_demand).then(|| {
            let throughput = plan.map(|p| p.tables.clone()).unwrap_or_default();
            (
                throughput.read_capacity_units,
                throughput.write_capacity_units,
            )
        }),
        adopt,
        delete_adopted: catalog.delete_adopted,
        owner_uid: storefront.uid().unwrap_or_default(),
        recorded: storefront
            .status
            .as_ref()
            .is_some_and(|s| !s.tables.is_empty()),
    }
}

/// The order-event queue request for `storefront`: named by its data key, deleted or retained
/// with its database.
pub(super) fn queue_request(storefront: &Storefront) -> Result<TenantQueue, Error> {
    Ok(TenantQueue {
        tenant: storefront.name_any(),
        tenant_id: identity::resolve(storefront)?.tenant_id,
        owner_uid: storefront.uid().unwrap_or_default(),
        deletion_policy: storefront.spec.database.deletion_policy.into(),
    })
}

/// Deterministic table names (the default prefix): the pool's shared tables for pooled
/// tenants, the tenant's own otherwise. The same names the DynamoDB provider creates.
pub fn table_names(tenant: &str, tier: Tier) -> Tables {
    table_names_with_prefix(names::DEFAULT_PREFIX, tenant, tier)
}

/// [`table_names`] with the operator's `--name-prefix`.
pub fn table_names_with_prefix(prefix: &str, tenant: &str, tier: Tier) -> Tables {
    let name = |kind: &str| match tier {
        Tier::Pooled => names::pool_table_name(prefix, kind),
        Tier::Dedicated => names::table_name(prefix, tenant, kind),
    };
    Tables {
        catalog: name("catalog"),
        carts: name("carts"),
        sessions: name("sessions"),
    }
}
