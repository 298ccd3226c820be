//! The dedicated tenant's HorizontalPodAutoscaler (`autoscaling/v2`): the plan's replica range
//! and CPU target, with scale-down stabilisation so a short lull does not drop capacity.

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;

use super::{BuildError, BuildInput, WORKLOAD_NAME, autoscaler_spec, metadata, object};
use crate::config::OperatorConfig;

pub fn build(
    input: &BuildInput,
    config: &OperatorConfig,
) -> Result<HorizontalPodAutoscaler, BuildError> {
    let plan = &input.plan;
    object(
        "HorizontalPodAutoscaler",
        &input.tenant,
        serde_json::json!({
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": metadata(input, config, WORKLOAD_NAME),
            "spec": autoscaler_spec(
                WORKLOAD_NAME,
                plan.replicas.min,
                plan.replicas.max,
                plan.target_cpu_utilization_percent,
                plan.scale_down_stabilization_seconds,
            ),
        }),
    )
}
