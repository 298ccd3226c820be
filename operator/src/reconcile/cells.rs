//! Placement of pooled tenants in pool cells (issue 19 item 3; design in
//! `docs/decisions/0023-pool-memory-budget-and-cells.md`). Pure and stable, like ingress-group
//! sharding: a tenant keeps the cell recorded in its status whatever happens to the others, so
//! adding a tenant never moves one; a new tenant goes to the least loaded cell with room among
//! the configured ones (ties to the lowest index), and when every cell is full, to the first
//! cell beyond them that has room (a new cell).
//!
//! Not wired into the reconciler yet: the per-cell Deployments, databases and tables and the
//! `status.cell` field are the next step (see the decision record).

use std::collections::BTreeMap;

/// How cells are sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellPolicy {
    /// Cells kept open even when empty (`--pool-cells`).
    pub cells: u32,
    /// Pooled tenants a cell takes at most.
    pub capacity: u32,
}

/// Tenants per cell, from every other tenant's recorded cell.
pub fn loads(recorded: impl IntoIterator<Item = u32>) -> BTreeMap<u32, u32> {
    let mut loads = BTreeMap::new();
    for cell in recorded {
        *loads.entry(cell).or_insert(0) += 1;
    }
    loads
}

/// The cell for a tenant: its `current` one if it has one (a tenant is never moved by
/// placement, even into an over-full cell after the capacity was lowered), else the least
/// loaded configured cell with room, else the first cell past them with room.
pub fn place(current: Option<u32>, policy: CellPolicy, others: &BTreeMap<u32, u32>) -> u32 {
    if let Some(cell) = current {
        return cell;
    }
    let load = |cell: u32| others.get(&cell).copied().unwrap_or(0);
    let configured = policy.cells.max(1);
    if let Some(cell) = (0..configured)
        .filter(|&c| load(c) < policy.capacity)
        .min_by_key(|&c| (load(c), c))
    {
        return cell;
    }
    (configured..)
        .find(|&c| load(c) < policy.capacity.max(1))
        .unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: CellPolicy = CellPolicy {
        cells: 3,
        capacity: 4,
    };

    /// Places tenants one after another, as a growing fleet would be onboarded.
    fn onboard(n: usize, policy: CellPolicy) -> Vec<u32> {
        let mut placed = Vec::new();
        for _ in 0..n {
            let cell = place(None, policy, &loads(placed.clone()));
            placed.push(cell);
        }
        placed
    }

    #[test]
    fn new_tenants_go_to_the_least_loaded_cell() {
        assert_eq!(onboard(6, POLICY), vec![0, 1, 2, 0, 1, 2]);
        // Room freed by offboarding is filled first.
        let mut placed = onboard(6, POLICY);
        placed.remove(1); // a tenant of cell 1 leaves
        assert_eq!(place(None, POLICY, &loads(placed)), 1);
    }

    #[test]
    fn adding_tenants_never_moves_one() {
        let mut placed = onboard(10, POLICY);
        let before = placed.clone();
        for _ in 0..20 {
            let cell = place(None, POLICY, &loads(placed.clone()));
            placed.push(cell);
        }
        for (i, cell) in before.iter().enumerate() {
            let mut others = placed.clone();
            others.remove(i);
            assert_eq!(
                place(Some(*cell), POLICY, &loads(others)),
                *cell,
                "tenant {i} moved"
            );
        }
        // Even a smaller capacity later does not move anyone.
        let tighter = CellPolicy {
            capacity: 1,
            ..POLICY
        };
        assert_eq!(place(Some(0), tighter, &loads(placed)), 0);
    }

    #[test]
    fn a_new_cell_is_used_when_the_configured_ones_are_full() {
        let placed = onboard(12, POLICY);
        assert!(loads(placed.clone()).values().all(|&n| n == 4));
        assert_eq!(place(None, POLICY, &loads(placed.clone())), 3);
        let more = onboard(17, POLICY);
        assert_eq!(&more[12..], &[3, 3, 3, 3, 4]);
        let totals = loads(more);
        assert!(totals.values().all(|&n| n <= POLICY.capacity), "{totals:?}");
    }
}
