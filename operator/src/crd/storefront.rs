//! `Storefront`: one tenant's store. Cluster-scoped so that the namespaced objects it owns,
//! in its own namespace or the pool's, are garbage-collected with it.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Hostname, Tier};

/// What a tenant wants: its plan, domains, database, catalog and payments.
#[derive(CustomResource, KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[kube(
    group = "emporium.dev",
    version = "v1alpha1",
    kind = "Storefront",
    shortname = "sf",
    status = "StorefrontStatus",
    doc = "One tenant's store: the operator turns it into a namespace, workload, routing, database and tables.",
    printcolumn(name = "Plan", type_ = "string", json_path = ".spec.plan"),
    printcolumn(name = "Tier", type_ = "string", json_path = ".status.tier"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "URL", type_ = "string", json_path = ".status.url"),
    printcolumn(name = "USD/Month", type_ = "string", json_path = ".status.cost.monthlyEstimate", priority = 1, description = "Estimated monthly cost at list prices (status.cost; see docs/cost.md)"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new("size(self.metadata.name) <= 40").message("a Storefront's name must be at most 40 characters: it becomes the tenant id and part of the namespace store-<name>"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("a Storefront's name must start with a letter and contain only lowercase letters, digits and hyphens"),
    validation = Rule::new("!has(self.spec.payments) || !has(self.spec.payments.secretRef) || !has(self.spec.payments.secretRef.namespace) || self.spec.payments.secretRef.namespace == 'store-' + self.metadata.name").message("spec.payments.secretRef.namespace must be the tenant's own namespace store-<name>, or be left out (the tenant's own namespace: store-<name> for a dedicated tenant, the pool namespace for a pooled one); the operator does not read Secrets of other namespaces for a tenant").field_path(".spec.payments.secretRef.namespace")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.domains.all(d, self.domains.exists_one(x, x == d))").message("domains must not list the same hostname twice"))]
pub struct StorefrontSpec {
    /// The store's name as shoppers see it.
    #[schemars(length(min = 1, max = 100))]
    pub display_name: String,
    /// Hostnames the store answers on; the first is its primary URL. Unique across tenants: a
    /// hostname already held by an older Storefront is not routed to this one.
    #[schemars(length(min = 1, max = 20))]
    pub domains: Vec<Hostname>,
    /// Name of the `StorefrontPlan` holding the tier parameters.
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')").message("plan must be the name of a StorefrontPlan: lowercase letters, digits and hyphens"))]
    pub plan: String,
    /// Shopper page accent colour, e.g. `#0f766e`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^#[0-9a-fA-F]{6}$')").message("themeColor must be a hex colour such as #0f766e"))]
    #[schemars(length(max = 7))]
    pub theme_color: Option<String>,
    /// The tenant's PostgreSQL database.
    #[serde(default)]
    pub database: DatabaseSpec,
    /// The tenant's DynamoDB catalog, carts and sessions tables.
    #[serde(default)]
    pub catalog: CatalogSpec,
    /// How shoppers pay.
    #[serde(default)]
    pub payments: PaymentsSpec,
    /// The merchant who owns the store: the runtime issues them a one-time invitation to the
    /// merchant app (`/admin/`) for this address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerSpec>,
    /// Stop reconciling this tenant without deleting anything.
    #[serde(default)]
    pub paused: bool,
}

/// The store's owner.
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerSpec {
    /// The owner's email address.
    #[schemars(length(min = 3, max = 254))]
    #[x_kube(validation = Rule::new("self.matches('^[^@\\\\s]+@[^@\\\\s]+\\\\.[^@\\\\s]+$')").message("owner.email must be an email address such as owner@example.com"))]
    pub email: String,
}

/// Database settings; sizing defaults come from the plan.
#[derive(KubeSchema, Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = Rule::new("!has(self.minCapacity) || !has(self.maxCapacity) || self.minCapacity <= self.maxCapacity").message("database.minCapacity must not be greater than database.maxCapacity"),
    validation = Rule::new("has(self.existingClusterIdentifier) == has(oldSelf.existingClusterIdentifier) && (!has(self.existingClusterIdentifier) || self.existingClusterIdentifier == oldSelf.existingClusterIdentifier)").message("database.existingClusterIdentifier is fixed at creation; create a new Storefront to adopt a different cluster")
)]
pub struct DatabaseSpec {
    /// Aurora PostgreSQL engine version, e.g. `16.4`.
    #[serde(default = "default_engine_version")]
    #[schemars(length(min = 2, max = 16))]
    #[x_kube(validation = Rule::new("self.matches('^1[4-7](\\\\.[0-9]+)?$')").message("database.engineVersion must be a PostgreSQL version from 14 to 17, e.g. 16.4"))]
    pub engine_version: String,
    /// Serverless v2 minimum capacity in ACUs; defaults to the plan's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 256.0))]
    pub min_capacity: Option<f64>,
    /// Serverless v2 maximum capacity in ACUs; defaults to the plan's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.5, max = 256.0))]
    pub max_capacity: Option<f64>,
    /// What happens to the database when the Storefront is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// Allow an `engineVersion` edit to move the tenant's cluster to another PostgreSQL major
    /// version (an in-place major upgrade, with downtime). Minor versions are always applied
    /// in place; without this a major change is refused with reason `MajorUpgradeNotAllowed`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_major_version_upgrade: bool,
    /// Adopt this existing Aurora cluster instead of creating one (dedicated tier only; a
    /// pooled plan refuses it). Fixed at creation. Refused when the cluster is tagged as
    /// another Storefront's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub existing_cluster_identifier: Option<String>,
    /// Whether `deletionPolicy` Snapshot or Delete also deletes an adopted cluster. Default
    /// `false`: an adopted cluster is retained (tagged orphaned) whatever the policy says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_adopted: bool,
}

fn default_engine_version() -> String {
    "16.4".to_owned()
}

impl Default for DatabaseSpec {
    fn default() -> Self {
        Self {
            engine_version: default_engine_version(),
            min_capacity: None,
            max_capacity: None,
            deletion_policy: DeletionPolicy::default(),
            allow_major_version_upgrade: false,
            existing_cluster_identifier: None,
            delete_adopted: false,
        }
    }
}

/// What deleting the Storefront does to its database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Leave the database in place, tagged as orphaned.
    Retain,
    /// Take a final snapshot, then delete.
    #[default]
    Snapshot,
    /// Delete without a snapshot.
    Delete,
}

/// DynamoDB settings.
#[derive(KubeSchema, Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.existingTables) == has(oldSelf.existingTables) && (!has(self.existingTables) || self.existingTables == oldSelf.existingTables)").message("catalog.existingTables is fixed at creation; create a new Storefront to adopt different tables"))]
pub struct CatalogSpec {
    /// Bill per request (PAY_PER_REQUEST) rather than provisioned capacity.
    #[serde(default = "yes")]
    pub on_demand: bool,
    /// Point-in-time recovery on the tenant's tables.
    #[serde(default = "yes")]
    pub point_in_time_recovery: bool,
    /// Adopt these existing DynamoDB tables instead of creating them (dedicated tier only; a
    /// pooled plan refuses it); each must have the partition key `pk` (string). Unnamed kinds
    /// are created as usual. Fixed at creation. Refused when a table is tagged as another
    /// Storefront's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_tables: Option<ExistingTables>,
    /// Whether `database.deletionPolicy` Snapshot or Delete also deletes adopted tables.
    /// Default `false`: adopted tables are retained (tagged orphaned) whatever the policy says.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_adopted: bool,
}

/// Existing DynamoDB tables a dedicated tenant takes over, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExistingTables {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255))]
    pub catalog: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255))]
    pub carts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 3, max = 255))]
    pub sessions: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for CatalogSpec {
    fn default() -> Self {
        Self {
            on_demand: true,
            point_in_time_recovery: true,
            existing_tables: None,
            delete_adopted: false,
        }
    }
}

/// Payment settings.
#[derive(KubeSchema, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider != 'stripe' || has(self.secretRef)").message("payments.secretRef is required when payments.provider is stripe: name the Secret holding the Stripe keys"))]
pub struct PaymentsSpec {
    #[serde(default)]
    pub provider: PaymentProvider,
    /// Secret with keys `secretKey` and `webhookSecret` (and optionally `apiBase`), in the
    /// tenant's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretReference>,
}

/// Payment provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentProvider {
    Stripe,
    /// Orders are paid outside Emporium (bank transfer, cash on delivery).
    #[default]
    Manual,
}

/// A Secret of the tenant's own namespace, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretReference {
    /// Left out: the tenant's own namespace (`store-<name>` for a dedicated tenant, the pool
    /// namespace for a pooled one). Set, it must be `store-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub namespace: Option<String>,
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
}

/// What the operator observed and did. Never holds secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StorefrontStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The tier of the plan the tenant runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The tenant's data key, which every row and item of the tenant carries: the
    /// Storefront's `metadata.uid` (its name for tenants created before identities). Recorded
    /// once and never changed; a new Storefront of the same name gets another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// `https://<first domain>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Namespace holding the tenant's workload and config Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The ALB ingress group the tenant was assigned to. Recorded so the assignment never moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress_group: Option<String>,
    /// Database identifier (cluster or database name; never credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_id: Option<String>,
    /// DynamoDB table names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the tenant is estimated to cost a month at list prices, refreshed at most every
    /// `--cost-refresh-seconds` (see `docs/cost.md`). An estimate, not a bill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostStatus>,
}

/// A tenant's monthly cost estimate and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostStatus {
    /// ISO 4217 currency of every figure (`USD`).
    pub currency: String,
    /// The month's estimate, a decimal string in whole cents, e.g. `68.92`: the sum of
    /// `breakdown[].monthly`.
    pub monthly_estimate: String,
    /// The price book the figures use: its region and the date its list prices were taken.
    pub price_book: String,
    /// When the estimate was computed (RFC 3339).
    pub computed_at: String,
    /// Made while the tenant's database, tables or queue were still being provisioned, so
    /// some figures are the plan's rather than observed; made again, at most every minute,
    /// until they are ready.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
    /// One line per component, always all of them (zero with the reason when unused).
    pub breakdown: Vec<CostLine>,
}

/// One component of a [`CostStatus`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    /// `aurora-capacity`, `aurora-storage`, `aurora-io`, `dynamodb-requests`,
    /// `dynamodb-storage`, `load-balancer`, `compute`, `sqs-requests` or `s3-storage`.
    pub component: String,
    /// A decimal string in whole cents.
    pub monthly: String,
    /// Where the quantity comes from: `Observed` (read from AWS or Kubernetes), `Declared`
    /// (the plan's `expectedUsage` or the price book's assumptions), `Unavailable` (could not
    /// be read: counted as 0) or `NotUsed`.
    pub source: String,
    /// The arithmetic, e.g. `0.5 ACU × 730 h × $0.12/ACU-h`.
    pub basis: String,
}

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum Phase {
    /// Accepted; children being created or waiting on a dependency.
    Provisioning,
    /// Every condition that Ready depends on is True.
    Ready,
    /// The spec cannot be reconciled as it stands (missing plan, hostname conflict, ...).
    Failed,
    /// `spec.paused` is true; nothing is changed.
    Paused,
    /// Being deleted; cleanup in progress.
    Deleting,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Provisioning,
        Phase::Ready,
        Phase::Failed,
        Phase::Paused,
        Phase::Deleting,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Provisioning => "Provisioning",
            Phase::Ready => "Ready",
            Phase::Failed => "Failed",
            Phase::Paused => "Paused",
            Phase::Deleting => "Deleting",
        }
    }
}

/// A status condition, shaped like `metav1.Condition` so `kubectl wait --for=condition=...`
/// works.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `DatabaseReady`, `TablesReady`, `QueueReady`, `WorkloadReady` or `RoutingReady`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase word a program can match on.
    pub reason: String,
    /// A sentence a person can act on.
    pub message: String,
    /// When `status` last changed (RFC 3339).
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
