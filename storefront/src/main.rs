//! `emporium-storefront`: the shared runtime that serves every tenant's shoppers.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::Parser;
use emporium_storefront::{
    Settings, app,
    notifications::{self, NotifySettings, mail::Locale},
    ops::telemetry,
    tenants, workers,
};

// mimalloc returns freed memory to the OS where glibc kept catalog reloads' garbage resident
// (docs/decisions/0011-runtime-catalog-memory-and-caching.md).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The Emporium storefront runtime.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address shoppers and the load balancer reach.
    #[arg(long, env = "EMPORIUM_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Log format: `json` for log pipelines, `text` for a terminal.
    #[arg(long, env = "EMPORIUM_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: telemetry::LogFormat,
    /// A JSON or YAML list of tenant configs to serve (development).
    #[arg(long, env = "EMPORIUM_TENANTS_FILE")]
    tenants_file: Option<PathBuf>,
    /// Serve the tenants of the operator's tenant config Secrets, following changes.
    #[arg(long, env = "EMPORIUM_WATCH_SECRETS")]
    watch_secrets: bool,
    /// Watch tenant config Secrets in this namespace only (default: every namespace).
    #[arg(long, env = "EMPORIUM_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Redis for cross-replica cache invalidation and rate limits.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// Create missing DynamoDB tables (development only; in clusters the operator owns them).
    #[arg(long, env = "EMPORIUM_CREATE_TABLES")]
    create_tables: bool,
    /// Connections per PostgreSQL database.
    #[arg(long, env = "EMPORIUM_PG_POOL_SIZE", default_value_t = 6)]
    pg_pool_size: usize,
    /// Seconds a request may take.
    #[arg(long, env = "EMPORIUM_REQUEST_TIMEOUT_SECS", default_value_t = 10)]
    request_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers; slower connections are closed.
    #[arg(long, env = "EMPORIUM_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "EMPORIUM_BODY_LIMIT_BYTES", default_value_t = 65536)]
    body_limit_bytes: usize,
    /// Largest import file accepted (`POST /api/v1/admin/imports` and the admin app's import
    /// form only), in bytes: 32 MiB holds about 120,000 Shopify CSV rows.
    #[arg(long, env = "EMPORIUM_IMPORT_BODY_LIMIT_BYTES", default_value_t = 32 * 1024 * 1024)]
    import_body_limit_bytes: usize,
    /// Catalog freshness, in seconds: a snapshot not verified current (one read of the
    /// catalog's version counter) for a jittered this is checked in the background while still
    /// served; one unverified for twice this is never served.
    #[arg(
        long,
        env = "EMPORIUM_CATALOG_MAX_STALENESS_SECS",
        default_value_t = 30
    )]
    catalog_max_staleness_secs: u64,
    /// Catalog change-feed entries kept per tenant: a replica that falls more writes behind
    /// than this loads the tenant's whole catalog instead of applying what changed.
    #[arg(long, env = "EMPORIUM_CATALOG_FEED_ENTRIES", default_value_t = 1000)]
    catalog_feed_entries: u64,
    /// Longest a validated session is trusted from memory, in seconds (0 disables the cache).
    #[arg(long, env = "EMPORIUM_SESSION_CACHE_SECS", default_value_t = 30)]
    session_cache_secs: u64,
    /// MiB of catalog snapshots (products and search index, estimated) this replica holds; the
    /// least recently read tenants' catalogs are evicted beyond it and load again on their next
    /// request. Default: 40% of the container's memory limit (the plan's), or 512 MiB without one.
    #[arg(long, env = "EMPORIUM_CATALOG_MEMORY_MIB")]
    catalog_memory_mib: Option<u64>,
    /// MiB of search answers kept for repeated queries (0 disables the cache).
    #[arg(long, env = "EMPORIUM_SEARCH_CACHE_MIB", default_value_t = 16)]
    search_cache_mib: usize,
    /// Login attempts allowed per client IP per window.
    #[arg(long, env = "EMPORIUM_LOGIN_LIMIT_PER_IP", default_value_t = 30)]
    login_limit_per_ip: u32,
    /// Login attempts allowed per email per window.
    #[arg(long, env = "EMPORIUM_LOGIN_LIMIT_PER_EMAIL", default_value_t = 5)]
    login_limit_per_email: u32,
    /// Password-reset and verification mails allowed per address per hour.
    #[arg(
        long,
        env = "EMPORIUM_ACCOUNT_MAIL_LIMIT_PER_EMAIL",
        default_value_t = 3
    )]
    account_mail_limit_per_email: u32,
    /// Password-reset and verification mails allowed per client IP per hour.
    #[arg(long, env = "EMPORIUM_ACCOUNT_MAIL_LIMIT_PER_IP", default_value_t = 20)]
    account_mail_limit_per_ip: u32,
    /// Minutes a password-reset link works.
    #[arg(long, env = "EMPORIUM_PASSWORD_RESET_MINS", default_value_t = 30)]
    password_reset_mins: u64,
    /// Take the client IP from `X-Forwarded-For` (only behind a load balancer that sets it).
    #[arg(long, env = "EMPORIUM_TRUST_FORWARDED_FOR")]
    trust_forwarded_for: bool,
    /// Minutes a manual-payment order holds its stock before it expires; unset: until the
    /// merchant marks it paid or cancels it.
    #[arg(long, env = "EMPORIUM_MANUAL_PAYMENT_HOLD_MINS")]
    manual_payment_hold_mins: Option<u64>,
    /// Sender of shopper mails (receipts, shipping, refunds) through SES: an address SES has
    /// verified, or one of a verified domain. Unset: no mail is sent; webhooks still are.
    #[arg(long, env = "EMPORIUM_MAIL_FROM")]
    mail_from: Option<String>,
    /// SES endpoint of its own (SES in another region or a VPC endpoint); unset: the same
    /// endpoint as the other AWS clients (AWS_ENDPOINT_URL or the region's).
    #[arg(long, env = "EMPORIUM_SES_ENDPOINT_URL")]
    ses_endpoint_url: Option<String>,
    /// Language of shopper mails.
    #[arg(long, env = "EMPORIUM_MAIL_LOCALE", value_enum, default_value = "en")]
    mail_locale: Locale,
    /// Seconds before a failed mail or webhook is first retried; each retry doubles the wait.
    #[arg(long, env = "EMPORIUM_NOTIFY_RETRY_BASE_SECS", default_value_t = 30)]
    notify_retry_base_secs: u64,
    /// Longest wait between two attempts, in seconds.
    #[arg(long, env = "EMPORIUM_NOTIFY_RETRY_MAX_SECS", default_value_t = 3600)]
    notify_retry_max_secs: u64,
    /// Hours after the event a mail or webhook is still retried; then it fails.
    #[arg(long, env = "EMPORIUM_NOTIFY_RETRY_WINDOW_HOURS", default_value_t = 24)]
    notify_retry_window_hours: u64,
    /// Failed webhook attempts in a row after which the subscription is disabled.
    #[arg(long, env = "EMPORIUM_WEBHOOK_DISABLE_AFTER", default_value_t = 30)]
    webhook_disable_after: i32,
    /// Accept `http://` webhook URLs on loopback (development only).
    #[arg(long, env = "EMPORIUM_ALLOW_LOOPBACK_WEBHOOKS")]
    allow_loopback_webhooks: bool,
    /// Seconds between polls of a tenant's order-event queue when this replica's relay sent
    /// it nothing (a queue this replica just sent to is polled at once).
    #[arg(long, env = "EMPORIUM_NOTIFY_IDLE_POLL_SECS", default_value_t = 60)]
    notify_idle_poll_secs: u64,
    /// Consume the tenants' order-event queues in this process and turn the events into mails
    /// and webhooks (decision 0022). `false` leaves the queues to another consumer (the
    /// platform's own pipeline, or a replica set of its own), which then sees every event.
    #[arg(long, env = "EMPORIUM_NOTIFICATIONS_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    notifications_worker: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(args.log_format, "info,tantivy=warn");
    // ring (kube, reqwest) and aws-lc-rs (AWS SDK) are both linked in, so rustls cannot choose a
    // crypto provider by itself; without this the first TLS connection panics.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let settings = Settings {
        redis_url: args.redis_url.clone(),
        create_tables: args.create_tables,
        pg_pool_size: args.pg_pool_size,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs.max(1)),
        body_limit_bytes: args.body_limit_bytes,
        import_body_limit_bytes: args.import_body_limit_bytes,
        catalog_max_staleness: Duration::from_secs(args.catalog_max_staleness_secs),
        catalog_feed_len: args.catalog_feed_entries,
        session_cache_ttl: Duration::from_secs(args.session_cache_secs),
        search_cache_bytes: args.search_cache_mib.saturating_mul(1024 * 1024),
        catalog_memory_bytes: emporium_storefront::catalog::budget::resolve(
            args.catalog_memory_mib,
        ),
        login_limit_per_ip: args.login_limit_per_ip,
        login_limit_per_email: args.login_limit_per_email,
        account_mail_limit_per_email: args.account_mail_limit_per_email,
        account_mail_limit_per_ip: args.account_mail_limit_per_ip,
        password_reset_ttl: Duration::from_secs(args.password_reset_mins.max(1) * 60),
        trust_forwarded_for: args.trust_forwarded_for,
        manual_payment_hold: args
            .manual_payment_hold_mins
            .map(|m| Duration::from_secs(m * 60)),
        notifications: NotifySettings {
            mail_from: args.mail_from.clone(),
            ses_endpoint_url: args.ses_endpoint_url.clone(),
            mail_locale: args.mail_locale,
            // Development (moto): the runtime makes what the operator makes in clusters.
            verify_sender: args.create_tables,
            retry_base: Duration::from_secs(args.notify_retry_base_secs.max(1)),
            retry_max_delay: Duration::from_secs(args.notify_retry_max_secs.max(1)),
            retry_window: Duration::from_secs(args.notify_retry_window_hours * 3600),
            webhook_disable_after: args.webhook_disable_after.max(1),
            allow_loopback_webhooks: args.allow_loopback_webhooks,
            idle_poll: Duration::from_secs(args.notify_idle_poll_secs.max(1)),
            ..NotifySettings::default()
        },
        ..Settings::default()
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let state = app::build_state(settings, &aws)
        .await
        .context("cannot start: Redis unreachable?")?;

    if let Some(path) = &args.tenants_file {
        for config in tenants::read_file(path)? {
            let id = config.tenant_id.clone();
            state
                .tenants
                .upsert(tenants::Source::File, config)
                .await
                .with_context(|| format!("tenant `{id}`"))?;
        }
    }
    if args.watch_secrets {
        let client = kube::Client::try_default()
            .await
            .context("--watch-secrets needs a kubeconfig or in-cluster config")?;
        let (registry, watcher_state) = (state.tenants.clone(), state.clone());
        let namespace = args.watch_namespace.clone();
        tokio::spawn(async move {
            tenants::watch::run(client, namespace.as_deref(), registry, move |id| {
                watcher_state.tenant_removed(id)
            })
            .await;
        });
    }
    if args.tenants_file.is_none() && !args.watch_secrets {
        tracing::warn!("no --tenants-file and no --watch-secrets: every host will get 404");
    }
    let warm = state.clone();
    tokio::spawn(async move { warm.warm().await });
    // Reservation expiry and the order-event outbox relay run on every replica.
    workers::spawn(&state.tenants, &state.relay);
    workers::imports::spawn(state.clone());
    // Order events from the tenants' queues become mails and webhooks (decision 0022).
    if args.notifications_worker {
        notifications::spawn(
            state.notifier.clone(),
            state.relay.clone(),
            state.tenants.clone(),
        );
    } else {
        tracing::info!(
            "notifications worker off: the order-event queues are left to another consumer"
        );
    }

    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %args.listen, "storefront runtime listening");
    app::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C or SIGTERM (what Kubernetes sends) starts a graceful shutdown.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}
