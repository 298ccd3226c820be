//! Operator-wide settings: what the builders need besides the Storefront and its plan.
//! Filled from command-line flags in `main.rs` (and Helm values), or directly by tests.

use clap::ValueEnum;

/// How a not-yet-wired provider slot (database, tables) affects `Ready`.
///
/// The database and table providers are added behind this choice (issue 4); until a tenant's
/// data is provisioned, `DatabaseReady`/`TablesReady` are `False`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DataProviderChoice {
    /// A provider is expected but none is configured: the condition is `False` with reason
    /// `ProviderNotConfigured`, and `Ready` stays `False`. The safe default.
    Unconfigured,
    /// Deliberately no provider (workload-only clusters, end-to-end tests of the Kubernetes
    /// side): the condition is `False` with reason `ProviderDisabled` and `Ready` ignores it.
    None,
}

/// What `WorkloadReady` (and `RoutingReady`) wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadinessGate {
    /// Production: at least one replica is available and the Ingress has a load balancer
    /// address.
    Available,
    /// Clusters without nodes or a load balancer controller (the local control plane): every
    /// child is applied and the Deployment controller has observed the current template.
    Applied,
}

/// Everything the reconcile pipeline needs besides the Storefront and its plan.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// The storefront runtime image every tenant runs.
    pub runtime_image: String,
    /// Namespace of the shared pool (pooled tenants' config Secrets, Ingresses, the pool
    /// Deployment).
    pub pool_namespace: String,
    /// Replica range of the shared pool.
    pub pool_min_replicas: i32,
    pub pool_max_replicas: i32,
    /// IRSA role ARN for tenant ServiceAccounts; `{tenant}` is replaced by the tenant name.
    /// Empty: no `eks.amazonaws.com/role-arn` annotation.
    pub tenant_role_arn: String,
    /// IngressClass of the AWS Load Balancer Controller.
    pub ingress_class: String,
    /// ALB scheme: `internet-facing` or `internal`.
    pub alb_scheme: String,
    /// ACM certificate ARN for HTTPS listeners (empty: HTTP only).
    pub certificate_arn: String,
    /// WAFv2 web ACL ARN (empty: none).
    pub waf_acl_arn: String,
    /// VPC CIDRs the load balancer sends traffic from (ALB `target-type: ip`), allowed to the
    /// runtime's HTTP port by each dedicated tenant's NetworkPolicy.
    pub load_balancer_cidrs: Vec<String>,
    /// Prefix of ALB ingress group names; groups are `<prefix>-<n>`.
    pub ingress_group_prefix: String,
    pub database_provider: DataProviderChoice,
    pub tables_provider: DataProviderChoice,
    pub readiness_gate: ReadinessGate,
    /// Only reconcile Storefronts matching this label selector (empty: all). Lets several
    /// operators (or tests) share one cluster.
    pub storefront_selector: String,
    /// Maximum Storefronts reconciled at once.
    pub concurrency: u16,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            runtime_image: "ghcr.io/emporium/storefront:latest".to_owned(),
            pool_namespace: "emporium-pool".to_owned(),
            pool_min_replicas: 2,
            pool_max_replicas: 20,
            tenant_role_arn: String::new(),
            ingress_class: "alb".to_owned(),
            alb_scheme: "internet-facing".to_owned(),
            certificate_arn: String::new(),
            waf_acl_arn: String::new(),
            load_balancer_cidrs: Vec::new(),
            ingress_group_prefix: "emporium".to_owned(),
            database_provider: DataProviderChoice::Unconfigured,
            tables_provider: DataProviderChoice::Unconfigured,
            readiness_gate: ReadinessGate::Available,
            storefront_selector: String::new(),
            concurrency: 8,
        }
    }
}
