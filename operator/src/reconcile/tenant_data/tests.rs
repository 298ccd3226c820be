//! The data step's pure parts: policy mapping, table names, outcomes as condition parts.

use super::*;
use crate::{crd, providers, providers::names};

#[test]
fn deletion_policies_map_one_to_one() {
    assert_eq!(
        providers::DeletionPolicy::from(crd::DeletionPolicy::Retain),
        providers::DeletionPolicy::Retain
    );
    assert_eq!(
        providers::DeletionPolicy::from(crd::DeletionPolicy::Snapshot),
        providers::DeletionPolicy::Snapshot
    );
    assert_eq!(
        providers::DeletionPolicy::from(crd::DeletionPolicy::Delete),
        providers::DeletionPolicy::Delete
    );
}

#[test]
fn table_names_match_the_provider() {
    let dedicated = table_names("acme", Tier::Dedicated);
    assert_eq!(
        dedicated.carts,
        names::table_name("emporium", "acme", "carts")
    );
    let pooled = table_names("acme", Tier::Pooled);
    assert_eq!(
        pooled.catalog,
        names::pool_table_name("emporium", "catalog")
    );
}

#[test]
fn outcomes_become_condition_parts() {
    let progressing: Result<Outcome<()>, ProviderError> = Ok(Outcome::Progressing {
        reason: "Creating",
        message: "cluster x is creating".into(),
    });
    let (part, again) = not_ready_part(progressing).unwrap_err();
    assert_eq!((part.reason.as_str(), again), ("Creating", true));
    let terminal: Result<Outcome<()>, ProviderError> = Ok(Outcome::Terminal {
        reason: "Terminal",
        message: "cluster x is failed".into(),
    });
    let (part, again) = not_ready_part(terminal).unwrap_err();
    assert_eq!(
        (part.reason.as_str(), part.message.as_str(), again),
        ("Terminal", "cluster x is failed", false)
    );
    let outage: Result<Outcome<()>, ProviderError> = Err(ProviderError::Unreachable {
        service: "RDS",
        operation: "DescribeDBClusters",
        message: "connection refused".into(),
    });
    let (part, again) = not_ready_part(outage).unwrap_err();
    assert_eq!(part.reason, "Unreachable");
    assert!(part.message.contains("connection refused") && again);
}
