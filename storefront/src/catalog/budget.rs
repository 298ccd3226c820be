//! The catalog memory budget of a replica: how many bytes of tenant snapshots the
//! [`CatalogCache`](super::CatalogCache) may hold before it evicts the least recently read.
//!
//! Unless `--catalog-memory-mib` says otherwise, the budget is a share of the container's memory
//! limit (the plan's `resources.limits.memory`, which the kubelet writes into the pod's cgroup),
//! so a bigger plan gets a bigger cache without a flag; outside a memory-limited cgroup it is
//! [`DEFAULT_BYTES`].

use std::path::Path;

/// The budget when no memory limit can be read (development, tests): 512 MiB.
pub const DEFAULT_BYTES: usize = 512 * 1024 * 1024;

/// Share of the memory limit given to snapshots, in percent. The rest is the process itself
/// (~35 MiB), the search answer cache (16 MiB by default), requests in flight, and what the
/// allocator keeps around loads: measured RSS ≈ 120 MiB + the estimate held, at 24 and 59 MiB
/// held (docs/decisions/0023-pool-memory-budget-and-cells.md).
pub const LIMIT_SHARE_PERCENT: u64 = 40;

/// cgroup v2, then v1: the file holding this container's memory limit.
const LIMIT_FILES: [&str; 2] = [
    "/sys/fs/cgroup/memory.max",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",
];

/// cgroup v1 reports "no limit" as a huge number (a page-rounded `i64::MAX`).
const UNLIMITED_V1: u64 = 1 << 60;

/// The budget for a replica: `mib` if given, else [`LIMIT_SHARE_PERCENT`] of the cgroup memory
/// limit, else [`DEFAULT_BYTES`].
pub fn resolve(mib: Option<u64>) -> usize {
    if let Some(mib) = mib {
        return usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    }
    LIMIT_FILES
        .iter()
        .find_map(|f| memory_limit(Path::new(f)))
        .map_or(DEFAULT_BYTES, share_of_limit)
}

/// The budget for a container limited to `limit` bytes.
pub fn share_of_limit(limit: u64) -> usize {
    usize::try_from(limit / 100 * LIMIT_SHARE_PERCENT).unwrap_or(usize::MAX)
}

/// The limit a cgroup file states, if it states one.
fn memory_limit(file: &Path) -> Option<u64> {
    parse_limit(&std::fs::read_to_string(file).ok()?)
}

fn parse_limit(text: &str) -> Option<u64> {
    let limit: u64 = text.trim().parse().ok()?; // "max" (v2, unlimited) does not parse
    (limit < UNLIMITED_V1).then_some(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_wins_then_a_cgroup_limit_then_the_default() {
        assert_eq!(resolve(Some(256)), 256 * 1024 * 1024);
        assert_eq!(parse_limit("1073741824\n"), Some(1 << 30));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None, "v1 unlimited");
        assert_eq!(share_of_limit(1 << 30), (1 << 30) / 100 * 40);
    }
}
