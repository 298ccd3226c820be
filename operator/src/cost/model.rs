//! The cost model: a tenant's monthly estimate from what it uses ([`Usage`]) and a
//! [`PriceBook`]. Pure, so the worked example of `docs/cost.md` is a unit test.
//!
//! Every component is always listed (zero when the tenant does not use it, with the reason), so
//! the breakdown reads the same for every tenant. Each line is rounded to the cent and the total
//! is the sum of the rounded lines: the breakdown adds up to the figure shown.

use super::PriceBook;

/// Where a quantity the estimate uses comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Read from AWS or the Kubernetes API at [`super::CostStatus::computed_at`].
    Observed,
    /// Declared in the plan (or the operator's configuration): an expectation, not a reading.
    Declared,
    /// Could not be read this time (AWS unreachable, no permission): counted as zero.
    Unavailable,
    /// The tenant does not use the component: zero.
    NotUsed,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Observed => "Observed",
            Source::Declared => "Declared",
            Source::Unavailable => "Unavailable",
            Source::NotUsed => "NotUsed",
        }
    }
}

/// The tenant's Aurora database: its own cluster, or its share of the pool cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct AuroraUsage {
    /// The cluster's ACUs (dedicated: its own; pooled: the pool cluster's).
    pub acu: f64,
    pub acu_source: Source,
    /// Tenants the cluster's capacity is split over (1 for a dedicated tenant).
    pub sharing: u32,
    /// The tenant's storage, GB-month (the plan's expectation).
    pub storage_gb: f64,
    /// The tenant's I/O, millions of requests a month (the plan's expectation).
    pub io_millions: f64,
}

/// How the tenant's DynamoDB throughput is billed.
#[derive(Debug, Clone, PartialEq)]
pub enum Throughput {
    /// Per request; millions of request units a month (the plan's expectation).
    OnDemand {
        read_millions: f64,
        write_millions: f64,
    },
    /// Per capacity unit-hour, for `tables` tables of `rcu`/`wcu` each (dedicated only).
    Provisioned { rcu: f64, wcu: f64, tables: u32 },
}

/// The tenant's DynamoDB tables: its own, or its share of the pool tables.
#[derive(Debug, Clone, PartialEq)]
pub struct DynamoUsage {
    pub throughput: Throughput,
    /// Bytes stored in the tables counted (dedicated: its three; pooled: the pool's).
    pub storage_bytes: f64,
    pub storage_source: Source,
    /// Tenants the stored bytes are split over (1 for a dedicated tenant).
    pub storage_sharing: u32,
}

/// The tenant's share of the ALB of its ingress group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadBalancerShare {
    /// Storefronts in the ingress group (one ALB), the tenant included.
    pub tenants_in_group: u32,
}

/// The pods serving the tenant: its own Deployment, or its share of the pool's.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputeUsage {
    pub replicas: f64,
    pub replicas_source: Source,
    /// CPU requests of one replica, vCPU.
    pub vcpu_per_replica: f64,
    /// Memory requests of one replica, GiB.
    pub gib_per_replica: f64,
    /// Tenants the pods are split over (1 for a dedicated tenant).
    pub sharing: u32,
}

/// Everything the estimate is made from. `None`: the tenant does not have that component.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Usage {
    pub aurora: Option<AuroraUsage>,
    pub dynamodb: Option<DynamoUsage>,
    pub load_balancer: Option<LoadBalancerShare>,
    pub compute: Option<ComputeUsage>,
    /// SQS requests a month, millions (the plan's expectation).
    pub queue_request_millions: Option<f64>,
    /// GB stored in a bucket of the tenant's.
    pub bucket_gb: Option<f64>,
    /// Why a component is absent or unreadable, by component name (shown as its basis).
    pub notes: Vec<(Component, String)>,
}

/// A line of the breakdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Component {
    AuroraCapacity,
    AuroraStorage,
    AuroraIo,
    DynamodbRequests,
    DynamodbStorage,
    LoadBalancer,
    Compute,
    QueueRequests,
    BucketStorage,
}

impl Component {
    pub const ALL: [Component; 9] = [
        Component::AuroraCapacity,
        Component::AuroraStorage,
        Component::AuroraIo,
        Component::DynamodbRequests,
        Component::DynamodbStorage,
        Component::LoadBalancer,
        Component::Compute,
        Component::QueueRequests,
        Component::BucketStorage,
    ];

    /// The name in `status.cost.breakdown[].component` and `docs/cost.md`.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::AuroraCapacity => "aurora-capacity",
            Component::AuroraStorage => "aurora-storage",
            Component::AuroraIo => "aurora-io",
            Component::DynamodbRequests => "dynamodb-requests",
            Component::DynamodbStorage => "dynamodb-storage",
            Component::LoadBalancer => "load-balancer",
            Component::Compute => "compute",
            Component::QueueRequests => "sqs-requests",
            Component::BucketStorage => "s3-storage",
        }
    }
}

/// One priced component.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub component: Component,
    /// Whole cents a month.
    pub cents: i64,
    pub source: Source,
    /// The arithmetic, in words a person can check.
    pub basis: String,
}

/// A tenant's monthly estimate.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    pub lines: Vec<Line>,
}

impl Estimate {
    /// The total in whole cents: the sum of the rounded lines.
    pub fn total_cents(&self) -> i64 {
        self.lines.iter().map(|l| l.cents).sum()
    }

    /// The line of `component`.
    pub fn line(&self, component: Component) -> Option<&Line> {
        self.lines.iter().find(|l| l.component == component)
    }
}

/// Cents as a decimal string: `4380` → `43.80`.
pub fn dollars(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

fn to_cents(amount: f64) -> i64 {
    // Round half away from zero on the cent; a small epsilon absorbs binary noise such as
    // 0.445 being stored as 0.44499999.
    let scaled = amount * 100.0;
    (scaled + scaled.signum() * 1e-6).round() as i64
}

/// `n` tenant(s) as a divisor phrase, empty for one.
fn split(sharing: u32) -> String {
    if sharing <= 1 {
        String::new()
    } else {
        format!(" ÷ {sharing} tenants")
    }
}

/// Prices `usage` with `prices`.
pub fn estimate(usage: &Usage, prices: &PriceBook) -> Estimate {
    let hours = prices.hours_per_month;
    let note = |component: Component, default: &str| -> String {
        usage
            .notes
            .iter()
            .find(|(c, _)| *c == component)
            .map_or_else(|| default.to_owned(), |(_, n)| n.clone())
    };
    let none = |component: Component, default: &str| Line {
        component,
        cents: 0,
        source: Source::NotUsed,
        basis: note(component, default),
    };
    let priced = |component: Component, amount: f64, source: Source, basis: String| {
        let basis = match (source, usage.notes.iter().find(|(c, _)| *c == component)) {
            (_, Some((_, n))) => format!("{basis} ({n})"),
            _ => basis,
        };
        Line {
            component,
            cents: if source == Source::Unavailable {
                0
            } else {
                to_cents(amount)
            },
            source,
            basis,
        }
    };
    let mut lines = Vec::with_capacity(Component::ALL.len());

    match &usage.aurora {
        Some(a) => {
            let sharing = a.sharing.max(1);
            lines.push(priced(
                Component::AuroraCapacity,
                a.acu * hours * prices.aurora_acu_hour / f64::from(sharing),
                a.acu_source,
                format!(
                    "{} ACU × {hours} h × ${}/ACU-h{}",
                    a.acu,
                    prices.aurora_acu_hour,
                    split(sharing)
                ),
            ));
            lines.push(priced(
                Component::AuroraStorage,
                a.storage_gb * prices.aurora_storage_gb_month,
                Source::Declared,
                format!(
                    "{} GB × ${}/GB-month (plan's expectedUsage)",
                    a.storage_gb, prices.aurora_storage_gb_month
                ),
            ));
            lines.push(priced(
                Component::AuroraIo,
                a.io_millions * prices.aurora_io_per_million,
                Source::Declared,
                format!(
                    "{}M I/O × ${}/M (plan's expectedUsage)",
                    a.io_millions, prices.aurora_io_per_million
                ),
            ));
        }
        None => {
            let why = "no Aurora database (database provider is not aurora)";
            lines.push(none(Component::AuroraCapacity, why));
            lines.push(none(Component::AuroraStorage, why));
            lines.push(none(Component::AuroraIo, why));
        }
    }

    match &usage.dynamodb {
        Some(d) => {
            let (amount, basis) = match d.throughput {
                Throughput::OnDemand {
                    read_millions,
                    write_millions,
                } => (
                    read_millions * prices.dynamodb_read_per_million
                        + write_millions * prices.dynamodb_write_per_million,
                    format!(
                        "{read_millions}M reads × ${}/M + {write_millions}M writes × ${}/M (plan's expectedUsage)",
                        prices.dynamodb_read_per_million, prices.dynamodb_write_per_million
                    ),
                ),
                Throughput::Provisioned { rcu, wcu, tables } => (
                    f64::from(tables)
                        * hours
                        * (rcu * prices.dynamodb_rcu_hour + wcu * prices.dynamodb_wcu_hour),
                    format!(
                        "{tables} tables × {hours} h × ({rcu} RCU × ${}/RCU-h + {wcu} WCU × ${}/WCU-h)",
                        prices.dynamodb_rcu_hour, prices.dynamodb_wcu_hour
                    ),
                ),
            };
            lines.push(priced(
                Component::DynamodbRequests,
                amount,
                Source::Declared,
                basis,
            ));
            let sharing = d.storage_sharing.max(1);
            let gb = d.storage_bytes / f64::from(1u32 << 30);
            lines.push(priced(
                Component::DynamodbStorage,
                gb * prices.dynamodb_storage_gb_month / f64::from(sharing),
                d.storage_source,
                format!(
                    "{} GB × ${}/GB-month{}",
                    round3(gb),
                    prices.dynamodb_storage_gb_month,
                    split(sharing)
                ),
            ));
        }
        None => {
            let why = "no DynamoDB tables (tables provider is not dynamodb)";
            lines.push(none(Component::DynamodbRequests, why));
            lines.push(none(Component::DynamodbStorage, why));
        }
    }

    match usage.load_balancer {
        Some(lb) => {
            let sharing = lb.tenants_in_group.max(1);
            lines.push(priced(
                Component::LoadBalancer,
                (prices.alb_hour + prices.alb_average_lcu * prices.alb_lcu_hour) * hours
                    / f64::from(sharing),
                Source::Declared,
                format!(
                    "(${}/h + {} LCU assumed × ${}/LCU-h) × {hours} h{}",
                    prices.alb_hour,
                    prices.alb_average_lcu,
                    prices.alb_lcu_hour,
                    split(sharing)
                ),
            ));
        }
        None => lines.push(none(
            Component::LoadBalancer,
            "not routed (no ingress group)",
        )),
    }

    match &usage.compute {
        Some(c) => {
            let sharing = c.sharing.max(1);
            let per_replica_hour =
                c.vcpu_per_replica * prices.vcpu_hour + c.gib_per_replica * prices.memory_gib_hour;
            lines.push(priced(
                Component::Compute,
                c.replicas * per_replica_hour * hours / f64::from(sharing),
                c.replicas_source,
                format!(
                    "{} replicas × ({} vCPU × ${}/vCPU-h + {} GiB × ${}/GiB-h) × {hours} h{}",
                    c.replicas,
                    c.vcpu_per_replica,
                    prices.vcpu_hour,
                    c.gib_per_replica,
                    prices.memory_gib_hour,
                    split(sharing)
                ),
            ));
        }
        None => lines.push(none(Component::Compute, "no workload")),
    }

    match usage.queue_request_millions {
        Some(millions) => lines.push(priced(
            Component::QueueRequests,
            millions * prices.sqs_per_million,
            Source::Declared,
            format!(
                "{millions}M requests × ${}/M (plan's expectedUsage)",
                prices.sqs_per_million
            ),
        )),
        None => lines.push(none(
            Component::QueueRequests,
            "no SQS queue (queues provider is not sqs)",
        )),
    }

    match usage.bucket_gb {
        Some(gb) => lines.push(priced(
            Component::BucketStorage,
            gb * prices.s3_storage_gb_month,
            Source::Observed,
            format!("{gb} GB × ${}/GB-month", prices.s3_storage_gb_month),
        )),
        None => lines.push(none(
            Component::BucketStorage,
            "no S3 bucket of the tenant's (offboarding exports are not a live tenant's)",
        )),
    }

    Estimate { lines }
}

/// Three decimals, for quantities computed from bytes (so a basis does not show 17 digits).
fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}
