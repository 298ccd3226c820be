//! `StorefrontPlan`: a tier's parameters as data. Every Storefront names one; changing a plan
//! changes every tenant on it.

// The derive's repeated `printcolumn(type_ = ...)` arguments look like duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a tenant is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Served by the shared pool Deployment; data separated by tenant id.
    Pooled,
    /// Own namespace `store-<name>`, workload, database and tables.
    Dedicated,
}

impl From<Tier> for emporium_tenant_config::Tier {
    fn from(tier: Tier) -> Self {
        match tier {
            Tier::Pooled => emporium_tenant_config::Tier::Pooled,
            Tier::Dedicated => emporium_tenant_config::Tier::Dedicated,
        }
    }
}

impl std::fmt::Display for Tier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tier::Pooled => "pooled",
            Tier::Dedicated => "dedicated",
        })
    }
}

/// Tier parameters shared by every Storefront on the plan.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "emporium.dev",
    version = "v1alpha1",
    kind = "StorefrontPlan",
    shortname = "sfplan",
    doc = "Tier parameters (isolation, scaling, resources, quota, database sizing) shared by every Storefront on the plan.",
    printcolumn(name = "Tier", type_ = "string", json_path = ".spec.tier"),
    printcolumn(name = "Min", type_ = "integer", json_path = ".spec.replicas.min"),
    printcolumn(name = "Max", type_ = "integer", json_path = ".spec.replicas.max"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StorefrontPlanSpec {
    /// `pooled` or `dedicated`. Fixed once the plan exists: moving tenants between tiers
    /// moves their data, so it is a new plan, not an edit.
    #[x_kube(validation = Rule::new("self == oldSelf").message("a plan's tier cannot change after creation; create a new plan and move tenants to it"))]
    pub tier: Tier,
    /// Replica range of a dedicated tenant's Deployment (its HorizontalPodAutoscaler).
    pub replicas: ReplicaRange,
    /// Average CPU utilisation, in percent of requests, that the autoscaler aims for.
    #[serde(default = "default_cpu_target")]
    #[schemars(range(min = 10, max = 95))]
    pub target_cpu_utilization_percent: i32,
    /// Seconds the autoscaler waits after load drops before removing replicas.
    #[serde(default = "default_scale_down_stabilization")]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_down_stabilization_seconds: i32,
    /// Requests and limits of each storefront container.
    pub resources: PlanResources,
    /// The dedicated namespace's ResourceQuota. Ignored for pooled plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<PlanQuota>,
    /// Database sizing (Aurora Serverless v2 capacity in ACUs) for tenants on this plan.
    pub database: DatabaseSizing,
    /// Provisioned throughput of each of a dedicated tenant's DynamoDB tables, used when its
    /// Storefront sets `catalog.onDemand: false`.
    #[serde(default)]
    pub tables: TableThroughput,
    /// What one tenant on this plan is expected to use a month where the operator cannot
    /// measure it (database storage and I/O, DynamoDB and SQS requests): the cost estimate in
    /// `status.cost` prices these and says so (`source: Declared`). Left out: counted as 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_usage: Option<ExpectedUsage>,
}

/// A tenant's expected monthly usage of what the operator does not measure (see
/// `docs/cost.md`).
#[derive(KubeSchema, Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedUsage {
    /// Database storage, GB.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub database_storage_gb: f64,
    /// Database I/O, millions of requests a month (Aurora Standard bills them).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub database_io_millions: f64,
    /// DynamoDB read request units, millions a month (on-demand tables).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub dynamodb_read_millions: f64,
    /// DynamoDB write request units, millions a month (on-demand tables).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub dynamodb_write_millions: f64,
    /// SQS requests (send, receive, delete), millions a month.
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1000000.0))]
    pub sqs_request_millions: f64,
}

/// Provisioned DynamoDB throughput per table.
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableThroughput {
    #[schemars(range(min = 1, max = 40000))]
    pub read_capacity_units: i64,
    #[schemars(range(min = 1, max = 40000))]
    pub write_capacity_units: i64,
}

impl Default for TableThroughput {
    fn default() -> Self {
        Self {
            read_capacity_units: 5,
            write_capacity_units: 5,
        }
    }
}

fn default_cpu_target() -> i32 {
    70
}

fn default_scale_down_stabilization() -> i32 {
    300
}

/// Minimum and maximum replicas.
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("self.min <= self.max").message("replicas.min must not be greater than replicas.max"))]
pub struct ReplicaRange {
    #[schemars(range(min = 1, max = 100))]
    pub min: i32,
    #[schemars(range(min = 1, max = 100))]
    pub max: i32,
}

/// Container requests and limits (Kubernetes quantities such as `250m`, `256Mi`).
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[x_kube(validation = Rule::new("quantity(self.limits.cpu).compareTo(quantity(self.requests.cpu)) >= 0 && quantity(self.limits.memory).compareTo(quantity(self.requests.memory)) >= 0").message("resources.limits must be at least resources.requests for both cpu and memory"))]
pub struct PlanResources {
    pub requests: CpuMemory,
    pub limits: CpuMemory,
}

/// A CPU and memory pair.
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuMemory {
    /// CPU quantity, e.g. `250m` or `1`.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("cpu must be a Kubernetes quantity such as 250m or 1"))]
    pub cpu: String,
    /// Memory quantity, e.g. `256Mi`.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("memory must be a Kubernetes quantity such as 256Mi or 1Gi"))]
    pub memory: String,
}

/// Totals a dedicated tenant's namespace may use.
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanQuota {
    /// Total CPU requests, e.g. `8`.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("quota.cpu must be a Kubernetes quantity such as 8 or 4000m"))]
    pub cpu: String,
    /// Total memory requests, e.g. `16Gi`.
    #[schemars(length(min = 1, max = 32))]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("quota.memory must be a Kubernetes quantity such as 16Gi"))]
    pub memory: String,
    /// Maximum number of pods.
    #[schemars(range(min = 1, max = 1000))]
    pub pods: i32,
}

/// Aurora Serverless v2 capacity range, in ACUs.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minCapacity <= self.maxCapacity").message("database.minCapacity must not be greater than database.maxCapacity"))]
pub struct DatabaseSizing {
    #[schemars(range(min = 0.0, max = 256.0))]
    pub min_capacity: f64,
    #[schemars(range(min = 0.5, max = 256.0))]
    pub max_capacity: f64,
}
