//! The routing step: which ALB ingress group a tenant's Ingress joins. The arithmetic is
//! [`super::sharding`] (pure); this module gathers its inputs, the groups every other tenant
//! holds (from their statuses and this process's unrecorded assignments), and records the
//! choice.

use std::collections::BTreeMap;

use kube::ResourceExt as _;

use super::{
    Context,
    sharding::{self, Demand},
    validate::ValidatedTenant,
};
use crate::crd::{Storefront, Tier};

/// Picks the tenant's ALB ingress group: the one recorded in its status while it still fits.
/// `None` when the tenant has no domain to route.
pub fn assign(
    storefront: &Storefront,
    tenant: &ValidatedTenant,
    ctx: &Context,
) -> Option<(u32, Demand)> {
    if tenant.routed_domains.is_empty() {
        return None;
    }
    let prefix = &ctx.config.ingress_group_prefix;
    let name = storefront.name_any();
    let demand = Demand {
        rules: u32::try_from(tenant.routed_domains.len()).unwrap_or(u32::MAX),
        own_target_group: tenant.tier == Tier::Dedicated,
    };
    let mut assignments = ctx.assignments.lock();
    let mut placed: BTreeMap<String, (u32, Demand)> = ctx
        .cache
        .storefronts
        .state()
        .iter()
        .filter(|other| other.name_any() != name)
        .filter_map(|other| {
            let status = other.status.as_ref()?;
            let group = sharding::group_index(prefix, status.ingress_group.as_deref()?)?;
            let demand = Demand {
                rules: u32::try_from(other.spec.domains.len()).unwrap_or(u32::MAX),
                own_target_group: status.tier == Some(Tier::Dedicated),
            };
            Some((other.name_any(), (group, demand)))
        })
        .collect();
    for (tenant, assignment) in assignments.iter() {
        if *tenant != name {
            placed.insert(tenant.clone(), *assignment);
        }
    }
    let current = assignments.get(&name).map(|(group, _)| *group).or_else(|| {
        sharding::group_index(
            prefix,
            storefront.status.as_ref()?.ingress_group.as_deref()?,
        )
    });
    let group = sharding::assign(current, demand, &sharding::loads(placed.into_values()));
    assignments.insert(name, (group, demand));
    Some((group, demand))
}
