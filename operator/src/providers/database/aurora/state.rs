//! What an RDS cluster or instance status means for the operator, and the outcome it gives.

use crate::providers::Outcome;

/// What an RDS cluster or instance status means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// Usable.
    Available,
    /// AWS is working on it; `reason` is the condition reason to show.
    Busy { reason: &'static str },
    /// Someone stopped it; the operator does not start it on its own.
    Stopped,
    /// Being deleted.
    Deleting,
    /// A state AWS does not leave without a person (reason `Terminal`).
    Failed,
}

/// Maps an RDS DB cluster status (`DescribeDBClusters` `Status`) to a [`ClusterState`].
/// Unknown statuses count as busy: waiting is always safe, acting on a guess is not.
pub fn cluster_state(status: &str) -> ClusterState {
    match status {
        "available" => ClusterState::Available,
        "creating" => ClusterState::Busy { reason: "Creating" },
        "modifying"
        | "scaling-compute"
        | "scaling-capacity"
        | "renaming"
        | "resetting-master-credentials"
        | "update-iops"
        | "storage-optimization"
        | "configuring-iam-database-auth"
        | "configuring-activity-stream" => ClusterState::Busy {
            reason: "Modifying",
        },
        "backing-up" | "backtracking" => ClusterState::Busy {
            reason: "BackingUp",
        },
        "upgrading" | "maintenance" => ClusterState::Busy {
            reason: "Upgrading",
        },
        "starting"
        | "stopping"
        | "rebooting"
        | "failing-over"
        | "promoting"
        | "migrating"
        | "preparing-data-migration" => ClusterState::Busy { reason: "Busy" },
        "stopped" => ClusterState::Stopped,
        "deleting" => ClusterState::Deleting,
        "failed"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "incompatible-parameters"
        | "incompatible-restore"
        | "incompatible-network"
        | "migration-failed"
        | "cloning-failed"
        | "restore-error" => ClusterState::Failed,
        _ => ClusterState::Busy { reason: "Busy" },
    }
}

/// Maps an RDS DB instance status (`DBInstanceStatus`) to a [`ClusterState`].
pub fn instance_state(status: &str) -> ClusterState {
    match status {
        "available" => ClusterState::Available,
        "creating" => ClusterState::Busy {
            reason: "CreatingWriter",
        },
        "modifying"
        | "configuring-enhanced-monitoring"
        | "configuring-log-exports"
        | "configuring-iam-database-auth"
        | "renaming"
        | "resetting-master-credentials"
        | "storage-optimization" => ClusterState::Busy {
            reason: "Modifying",
        },
        "backing-up" => ClusterState::Busy {
            reason: "BackingUp",
        },
        "upgrading" | "maintenance" => ClusterState::Busy {
            reason: "Upgrading",
        },
        "stopped" => ClusterState::Stopped,
        "deleting" => ClusterState::Deleting,
        "failed"
        | "inaccessible-encryption-credentials"
        | "inaccessible-encryption-credentials-recoverable"
        | "incompatible-network"
        | "incompatible-option-group"
        | "incompatible-parameters"
        | "incompatible-restore"
        | "insufficient-capacity"
        | "restore-error"
        | "storage-full" => ClusterState::Failed,
        _ => ClusterState::Busy { reason: "Busy" },
    }
}

/// The outcome for a cluster (or instance) that is not [`ClusterState::Available`].
pub(super) fn not_available<T>(
    what: &str,
    status: &str,
    state: ClusterState,
) -> Option<Outcome<T>> {
    match state {
        ClusterState::Available => None,
        ClusterState::Busy { reason } => {
            Some(Outcome::progressing(reason, format!("{what} is {status}")))
        }
        ClusterState::Deleting => Some(Outcome::progressing(
            "Deleting",
            format!("{what} is being deleted; it is recreated once AWS has removed it"),
        )),
        ClusterState::Stopped => Some(Outcome::progressing(
            "Stopped",
            format!(
                "{what} is stopped; start it (aws rds start-db-cluster) — the operator does not start clusters it did not stop"
            ),
        )),
        ClusterState::Failed => Some(Outcome::terminal(
            "Terminal",
            format!("AWS reports {what} as '{status}'; it needs a person"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_running_states_requeue() {
        for status in [
            "creating",
            "modifying",
            "backing-up",
            "upgrading",
            "scaling-compute",
            "some-new-state",
        ] {
            let outcome: Option<Outcome<()>> =
                not_available("cluster c", status, cluster_state(status));
            assert!(
                matches!(outcome, Some(Outcome::Progressing { .. })),
                "{status}: {outcome:?}"
            );
        }
        assert_eq!(
            cluster_state("backing-up"),
            ClusterState::Busy {
                reason: "BackingUp"
            }
        );
        assert_eq!(
            cluster_state("creating"),
            ClusterState::Busy { reason: "Creating" }
        );
    }

    #[test]
    fn failed_states_are_terminal_with_the_aws_status() {
        for status in [
            "failed",
            "inaccessible-encryption-credentials",
            "incompatible-parameters",
            "migration-failed",
        ] {
            match not_available::<()>("cluster c", status, cluster_state(status)) {
                Some(Outcome::Terminal { reason, message }) => {
                    assert_eq!(reason, "Terminal");
                    assert!(message.contains(status), "{message}");
                }
                other => panic!("{status}: {other:?}"),
            }
        }
        assert_eq!(instance_state("storage-full"), ClusterState::Failed);
    }

    #[test]
    fn available_is_the_only_ready_state() {
        assert!(
            not_available::<()>("cluster c", "available", cluster_state("available")).is_none()
        );
        assert!(not_available::<()>("cluster c", "stopped", cluster_state("stopped")).is_some());
        assert!(not_available::<()>("cluster c", "deleting", cluster_state("deleting")).is_some());
    }
}
