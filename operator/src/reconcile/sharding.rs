//! Assigns tenants to ALB ingress groups so no load balancer passes its limits (100 listener
//! rules and 100 target groups, AWS defaults). Pure and stable: a tenant keeps the group
//! recorded in its status while that group can still hold it, so adding tenants never moves an
//! existing one. See `docs/decisions/0002-ingress-group-sharding.md`.

use std::collections::BTreeMap;

/// ALB rules per load balancer (excluding the default rule).
pub const MAX_RULES: u32 = 100;
/// Target groups per load balancer.
pub const MAX_TARGET_GROUPS: u32 = 100;

/// What one tenant costs a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Demand {
    /// One listener rule per routed hostname.
    pub rules: u32,
    /// Dedicated tenants bring their own Service (one target group); pooled tenants share the
    /// pool Service's target group.
    pub own_target_group: bool,
}

/// What a group already carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupLoad {
    pub rules: u32,
    pub target_groups: u32,
    /// Whether the pool Service's target group is already in this group.
    pub has_pool_target_group: bool,
}

impl GroupLoad {
    /// Adds a tenant's demand.
    pub fn add(&mut self, demand: Demand) {
        self.rules += demand.rules;
        if demand.own_target_group {
            self.target_groups += 1;
        } else if !self.has_pool_target_group {
            self.has_pool_target_group = true;
            self.target_groups += 1;
        }
    }

    fn fits(&self, demand: Demand) -> bool {
        let mut after = *self;
        after.add(demand);
        after.rules <= MAX_RULES && after.target_groups <= MAX_TARGET_GROUPS
    }
}

/// Adds up the load of every other tenant's recorded assignment, by group index.
pub fn loads<'a>(
    assignments: impl IntoIterator<Item = (u32, Demand)> + 'a,
) -> BTreeMap<u32, GroupLoad> {
    let mut loads = BTreeMap::<u32, GroupLoad>::new();
    for (group, demand) in assignments {
        loads.entry(group).or_default().add(demand);
    }
    loads
}

/// The group for a tenant: its `current` group if that still fits (its own load excluded from
/// `others`), else the lowest-numbered group with room, else a new one.
pub fn assign(current: Option<u32>, demand: Demand, others: &BTreeMap<u32, GroupLoad>) -> u32 {
    let load_of = |group: u32| others.get(&group).copied().unwrap_or_default();
    if let Some(group) = current
        && load_of(group).fits(demand)
    {
        return group;
    }
    (0..)
        .find(|&group| load_of(group).fits(demand))
        .unwrap_or(u32::MAX)
}

/// The ingress group name for a group index, e.g. `emporium-0`.
pub fn group_name(prefix: &str, index: u32) -> String {
    format!("{prefix}-{index}")
}

/// The index back from a recorded group name; `None` for a name with another prefix.
pub fn group_index(prefix: &str, name: &str) -> Option<u32> {
    name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEDICATED_ONE_HOST: Demand = Demand {
        rules: 1,
        own_target_group: true,
    };
    const POOLED_ONE_HOST: Demand = Demand {
        rules: 1,
        own_target_group: false,
    };

    /// Assigns tenants one after another, as a growing fleet would be onboarded.
    fn onboard(demands: &[Demand]) -> Vec<u32> {
        let mut placed: Vec<(u32, Demand)> = Vec::new();
        for &demand in demands {
            let group = assign(None, demand, &loads(placed.clone()));
            placed.push((group, demand));
        }
        placed.into_iter().map(|(group, _)| group).collect()
    }

    #[test]
    fn no_group_passes_the_alb_limits() {
        let demands: Vec<Demand> = (0..1000)
            .map(|i| match i % 3 {
                0 => DEDICATED_ONE_HOST,
                1 => POOLED_ONE_HOST,
                _ => Demand {
                    rules: 3,
                    own_target_group: true,
                },
            })
            .collect();
        let groups = onboard(&demands);
        let totals = loads(groups.iter().copied().zip(demands.iter().copied()));
        for (group, load) in &totals {
            assert!(
                load.rules <= MAX_RULES,
                "group {group} has {} rules",
                load.rules
            );
            assert!(
                load.target_groups <= MAX_TARGET_GROUPS,
                "group {group}: {} target groups",
                load.target_groups
            );
        }
        assert!(
            totals.len() >= 16,
            "1,666 rules need at least 17 groups, got {}",
            totals.len()
        );
    }

    #[test]
    fn adding_a_tenant_never_moves_an_existing_one() {
        let demands = vec![DEDICATED_ONE_HOST; 250];
        let before = onboard(&demands);
        let mut placed: Vec<(u32, Demand)> = before
            .iter()
            .copied()
            .zip(demands.iter().copied())
            .collect();
        placed.push((
            assign(None, POOLED_ONE_HOST, &loads(placed.clone())),
            POOLED_ONE_HOST,
        ));
        for (index, (group, demand)) in placed.iter().enumerate().take(before.len()) {
            let others = loads(
                placed
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != index)
                    .map(|(_, p)| *p),
            );
            assert_eq!(
                assign(Some(*group), *demand, &others),
                *group,
                "tenant {index} moved"
            );
        }
    }

    #[test]
    fn a_freed_slot_is_reused_by_the_next_tenant() {
        let mut placed: Vec<(u32, Demand)> = onboard(&vec![DEDICATED_ONE_HOST; 150])
            .into_iter()
            .map(|group| (group, DEDICATED_ONE_HOST))
            .collect();
        placed.remove(10); // a tenant of group 0 offboards
        assert_eq!(assign(None, DEDICATED_ONE_HOST, &loads(placed)), 0);
    }

    #[test]
    fn pooled_tenants_share_one_target_group_per_group() {
        let mut load = GroupLoad::default();
        for _ in 0..100 {
            load.add(POOLED_ONE_HOST);
        }
        assert_eq!(load.target_groups, 1);
        assert_eq!(load.rules, 100);
    }

    #[test]
    fn a_tenant_that_outgrows_its_group_moves_to_one_with_room() {
        let mut others = BTreeMap::new();
        others.insert(
            0,
            GroupLoad {
                rules: 98,
                target_groups: 50,
                has_pool_target_group: false,
            },
        );
        let grown = Demand {
            rules: 5,
            own_target_group: true,
        };
        assert_eq!(assign(Some(0), grown, &others), 1);
    }

    #[test]
    fn group_names_round_trip() {
        assert_eq!(group_name("emporium", 7), "emporium-7");
        assert_eq!(group_index("emporium", "emporium-7"), Some(7));
        assert_eq!(group_index("emporium", "other-7"), None);
    }
}
