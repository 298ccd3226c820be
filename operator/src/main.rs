//! `emporium-operator`: watches `Storefront` resources and reconciles each tenant.

mod telemetry;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
    time::Duration,
};

use anyhow::Context as _;
use clap::Parser;
use emporium_operator::{
    config::{
        DataProviderChoice, DataSettings, OperatorConfig, RUNTIME_ENV_RESERVED, ReadinessGate,
        parse_key_value,
    },
    cost::{CostSettings, PriceBook},
    http::{Health, router},
    leader::LeaseConfig,
    metrics::Metrics,
    reconcile,
};

/// The Emporium operator: turns each `Storefront` into its tenant's namespace, workload,
/// autoscaling, routing and config, on the plan's terms.
///
/// Connects to the cluster from the in-cluster service account, or from $KUBECONFIG /
/// ~/.kube/config when run outside a cluster. Run two replicas with --leader-election: one
/// reconciles, the other takes over within --lease-seconds of its death.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address for /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "EMPORIUM_OPERATOR_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    http_addr: SocketAddr,
    /// Log format: `json` for log pipelines, `text` for a terminal.
    #[arg(long, env = "EMPORIUM_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: telemetry::LogFormat,
    /// The storefront runtime image every tenant runs.
    #[arg(
        long,
        env = "EMPORIUM_RUNTIME_IMAGE",
        default_value = "ghcr.io/emporium/storefront:latest"
    )]
    runtime_image: String,
    /// Node labels the runtime's pods must match, `key=value` (comma-separated), e.g.
    /// `emporium.dev/node=real` on the local real node; the pods also tolerate a `NoSchedule`
    /// taint of the same key and value. Empty: any node.
    #[arg(long, env = "EMPORIUM_RUNTIME_NODE_SELECTOR", value_delimiter = ',', value_parser = parse_key_value)]
    runtime_node_selector: Vec<(String, String)>,
    /// Extra environment of the runtime's containers, `KEY=VALUE` (repeatable; comma-separated
    /// in the variable), e.g. `REDIS_URL=redis://redis:6379/`. Not for secrets: the values are
    /// in the Deployment.
    #[arg(long, env = "EMPORIUM_RUNTIME_ENV", value_delimiter = ',', value_parser = parse_key_value)]
    runtime_env: Vec<(String, String)>,
    /// Namespace of the shared pool serving pooled tenants.
    #[arg(long, env = "EMPORIUM_POOL_NAMESPACE", default_value = "emporium-pool")]
    pool_namespace: String,
    /// Minimum replicas of the shared pool.
    #[arg(long, env = "EMPORIUM_POOL_MIN_REPLICAS", default_value_t = 2)]
    pool_min_replicas: i32,
    /// Maximum replicas of the shared pool.
    #[arg(long, env = "EMPORIUM_POOL_MAX_REPLICAS", default_value_t = 20)]
    pool_max_replicas: i32,
    /// IAM role ARN for dedicated tenants' ServiceAccounts (IRSA); `{tenant}` is replaced by
    /// the tenant name. Empty: no annotation.
    #[arg(long, env = "EMPORIUM_TENANT_ROLE_ARN", default_value = "")]
    tenant_role_arn: String,
    /// IngressClass of the AWS Load Balancer Controller.
    #[arg(long, env = "EMPORIUM_INGRESS_CLASS", default_value = "alb")]
    ingress_class: String,
    /// ALB scheme: internet-facing or internal.
    #[arg(long, env = "EMPORIUM_ALB_SCHEME", default_value = "internet-facing")]
    alb_scheme: String,
    /// ACM certificate ARN for the HTTPS listener (empty: HTTP only).
    #[arg(long, env = "EMPORIUM_CERTIFICATE_ARN", default_value = "")]
    certificate_arn: String,
    /// WAFv2 web ACL ARN attached to every load balancer (empty: none).
    #[arg(long, env = "EMPORIUM_WAF_ACL_ARN", default_value = "")]
    waf_acl_arn: String,
    /// VPC CIDRs the ALB sends traffic from; allowed to tenants' HTTP port (comma-separated).
    #[arg(long, env = "EMPORIUM_LOAD_BALANCER_CIDRS", value_delimiter = ',')]
    load_balancer_cidrs: Vec<String>,
    /// Prefix of ALB ingress group names (`<prefix>-<n>`).
    #[arg(
        long,
        env = "EMPORIUM_INGRESS_GROUP_PREFIX",
        default_value = "emporium"
    )]
    ingress_group_prefix: String,
    /// Database provider: `postgres` (an existing PostgreSQL server, see --postgres-*),
    /// `aurora` (Aurora PostgreSQL through RDS, see --aurora-*), `unconfigured`
    /// (DatabaseReady=False, reason ProviderNotConfigured, and Ready waits for it) or `none` (no
    /// database: ProviderDisabled, and Ready ignores it).
    #[arg(
        long,
        env = "EMPORIUM_DATABASE_PROVIDER",
        value_enum,
        default_value = "unconfigured"
    )]
    database_provider: DataProviderChoice,
    /// Tables provider: `dynamodb` (DynamoDB, or any compatible endpoint through
    /// AWS_ENDPOINT_URL), `unconfigured` or `none` (as for --database-provider).
    #[arg(
        long,
        env = "EMPORIUM_TABLES_PROVIDER",
        value_enum,
        default_value = "unconfigured"
    )]
    tables_provider: DataProviderChoice,
    /// Order-event queue provider: `sqs` (a queue and a dead-letter queue per tenant on SQS, or
    /// any compatible endpoint through AWS_ENDPOINT_URL; its URL goes into the tenant config),
    /// `unconfigured` or `none` (as for --database-provider; with `none` the runtime derives the
    /// queue name itself).
    #[arg(
        long,
        env = "EMPORIUM_QUEUES_PROVIDER",
        value_enum,
        default_value = "unconfigured"
    )]
    queues_provider: DataProviderChoice,
    #[command(flatten)]
    data: DataSettings,
    /// What WorkloadReady/RoutingReady wait for: `available` (the Deployment is Available and
    /// the load balancer has an address), `deployment-available` (the Deployment is Available;
    /// for clusters without a load balancer controller) or `applied` (objects applied and
    /// rolled out; kwok scale tests only).
    #[arg(
        long,
        env = "EMPORIUM_READINESS_GATE",
        value_enum,
        default_value = "available"
    )]
    readiness_gate: ReadinessGate,
    /// Only reconcile Storefronts matching this label selector (empty: all).
    #[arg(long, env = "EMPORIUM_STOREFRONT_SELECTOR", default_value = "")]
    storefront_selector: String,
    /// Maximum Storefronts reconciled at once.
    #[arg(long, env = "EMPORIUM_CONCURRENCY", default_value_t = 8)]
    concurrency: u16,
    /// The price book of the tenants' cost estimates (`status.cost`): a YAML file of unit
    /// prices, as the chart's `cost.priceBook` values render it. Left out: the built-in
    /// us-east-1 list prices (dated; see docs/cost.md).
    #[arg(long, env = "EMPORIUM_PRICE_BOOK")]
    price_book: Option<std::path::PathBuf>,
    /// How old a tenant's cost estimate may get before a reconcile computes it again (its AWS
    /// reads included); 0 turns the estimates off.
    #[arg(long, env = "EMPORIUM_COST_REFRESH_SECONDS", default_value_t = 3600)]
    cost_refresh_seconds: u64,
    /// Elect a leader through a Lease so several replicas can run.
    #[arg(long, env = "EMPORIUM_LEADER_ELECTION")]
    leader_election: bool,
    /// Namespace of the leader Lease (usually the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "emporium-system")]
    lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, env = "EMPORIUM_LEASE_NAME", default_value = "emporium-operator")]
    lease_name: String,
    /// How long a leader's Lease lasts without renewal before a standby takes over.
    #[arg(long, env = "EMPORIUM_LEASE_SECONDS", default_value_t = 15)]
    lease_seconds: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(args.log_format, "info,kube=warn");
    // ring (kube, reqwest) and aws-lc-rs (AWS SDK) are both linked in, so rustls cannot choose a
    // crypto provider by itself; without this the first TLS connection panics.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let metrics = Arc::new(Metrics::new());
    let ready = Arc::new(AtomicBool::new(false));
    if let Some((name, _)) = args
        .runtime_env
        .iter()
        .find(|(name, _)| RUNTIME_ENV_RESERVED.contains(&name.as_str()))
    {
        anyhow::bail!(
            "--runtime-env {name}: the operator sets {name} on every runtime container itself; leave it out"
        );
    }
    let prices = match &args.price_book {
        Some(path) => PriceBook::from_file(path)?,
        None => PriceBook::default(),
    };
    tracing::info!(price_book = %prices.label(), "cost estimates priced with this book");
    let config = OperatorConfig {
        runtime_image: args.runtime_image,
        runtime_node_selector: args.runtime_node_selector.into_iter().collect(),
        runtime_env: args.runtime_env,
        pool_namespace: args.pool_namespace,
        pool_min_replicas: args.pool_min_replicas,
        pool_max_replicas: args.pool_max_replicas,
        tenant_role_arn: args.tenant_role_arn,
        ingress_class: args.ingress_class,
        alb_scheme: args.alb_scheme,
        certificate_arn: args.certificate_arn,
        waf_acl_arn: args.waf_acl_arn,
        load_balancer_cidrs: args.load_balancer_cidrs,
        ingress_group_prefix: args.ingress_group_prefix,
        database_provider: args.database_provider,
        tables_provider: args.tables_provider,
        queues_provider: args.queues_provider,
        data: args.data,
        readiness_gate: args.readiness_gate,
        storefront_selector: args.storefront_selector,
        concurrency: args.concurrency,
        cost: CostSettings {
            prices,
            refresh: Duration::from_secs(args.cost_refresh_seconds),
        },
    };
    // Fail fast on provider settings that cannot work, before touching the cluster.
    let providers = reconcile::tenant_data::DataProviders::from_config(&config, None)
        .await
        .context("the database/tables provider settings are unusable")?;
    tracing::info!(?providers, "data providers");

    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_addr))?;
    tracing::info!(addr = %args.http_addr, "serving /healthz, /readyz and /metrics");
    let app = router(Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
    });

    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client: set KUBECONFIG or run in a cluster")?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    tracing::info!(server = %version.git_version, "connected to the Kubernetes API server");
    ready.store(true, std::sync::atomic::Ordering::Relaxed);

    let lease = args.leader_election.then(|| LeaseConfig {
        namespace: args.lease_namespace,
        name: args.lease_name,
        identity: std::env::var("POD_NAME")
            .unwrap_or_else(|_| format!("emporium-operator-{}", std::process::id())),
        lease_duration: Duration::from_secs(args.lease_seconds),
    });
    reconcile::run(client, config, providers, metrics, lease, shutdown_signal()).await?;
    tracing::info!("controller stopped");
    server.abort();
    Ok(())
}

/// Resolves on SIGTERM (Kubernetes stopping the pod) or Ctrl-C.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
