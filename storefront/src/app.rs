//! Builds the runtime: settings, shared state, the router, and serving with graceful shutdown.
//! The binary and the integration tests both go through [`build_state`] and [`router`].

use std::{sync::Arc, time::Duration};

use axum::Router;

use crate::{
    catalog::CatalogCache,
    live::StockFeed,
    notifications::{Notifier, NotifySettings},
    ops::metrics::Metrics,
    services::{
        accounts::Accounts, carts::Carts, catalog_admin::CatalogAdmin, checkout::Checkout,
        orders::Orders, session_cache::SessionCache,
    },
    storage::{
        bus::{Bus, Notice},
        dynamo::{DynamoCarts, DynamoCatalog, DynamoSessions},
        orders::PgOrders,
        postgres::PgCustomers,
        ratelimit::RateLimiter,
    },
    tenants::{TenantRuntime, Tenants},
    workers::relay::OutboxRelay,
};

/// Runtime settings (the binary fills them from flags and environment).
#[derive(Debug, Clone)]
pub struct Settings {
    pub redis_url: String,
    /// Create missing DynamoDB tables (development only; the operator owns them in clusters).
    pub create_tables: bool,
    /// Connections per PostgreSQL database.
    pub pg_pool_size: usize,
    pub request_timeout: Duration,
    /// How long a client may take to send a request's headers (slow-loris bound).
    pub header_read_timeout: Duration,
    pub body_limit_bytes: usize,
    /// Largest import file (the import routes only; every other route has `body_limit_bytes`).
    pub import_body_limit_bytes: usize,
    /// Catalog freshness: a snapshot is checked against the catalog's version counter after a
    /// jittered [½, 1) × this, and never served unchecked for longer than 2 × this.
    pub catalog_max_staleness: Duration,
    /// Entries of each tenant's catalog change feed kept: a replica that falls further behind
    /// loads the whole catalog instead of applying what changed.
    pub catalog_feed_len: u64,
    /// Bytes of search answers kept across requests (0 disables the cache).
    pub search_cache_bytes: usize,
    /// Bytes of catalog snapshots (catalog + search index, estimated) this replica holds at
    /// most; the least recently read tenants' are evicted beyond it.
    pub catalog_memory_bytes: usize,
    pub session_ttl: Duration,
    /// Longest a validated session is trusted from memory.
    pub session_cache_ttl: Duration,
    pub cart_ttl: Duration,
    /// How long checkout holds stock for an unpaid order paid through a provider (Stripe).
    pub reservation_ttl: Duration,
    /// How long a manual-payment order holds its stock; `None` (the default): until the
    /// merchant marks it paid or cancels it.
    pub manual_payment_hold: Option<Duration>,
    pub login_limit_per_ip: u32,
    pub login_limit_per_email: u32,
    pub login_window: Duration,
    /// How long a password-reset link works.
    pub password_reset_ttl: Duration,
    /// How long an email-verification link works.
    pub verification_ttl: Duration,
    /// Reset and verification mails per address, and per client IP, in `account_mail_window`.
    pub account_mail_limit_per_email: u32,
    pub account_mail_limit_per_ip: u32,
    pub account_mail_window: Duration,
    /// Take the client IP from the last `X-Forwarded-For` entry (behind a load balancer).
    pub trust_forwarded_for: bool,
    /// Shopper mails and merchant webhooks (`crate::notifications`).
    pub notifications: NotifySettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            redis_url: "redis://127.0.0.1:6379".into(),
            create_tables: false,
            // Two cores: a few connections keep both busy while queries wait on the network;
            // more only queue inside PostgreSQL.
            pg_pool_size: 6,
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            body_limit_bytes: 64 * 1024,
            import_body_limit_bytes: 32 * 1024 * 1024,
            catalog_max_staleness: Duration::from_secs(30),
            catalog_feed_len: crate::storage::dynamo::catalog::DEFAULT_FEED_LEN,
            search_cache_bytes: 16 * 1024 * 1024,
            catalog_memory_bytes: crate::catalog::budget::DEFAULT_BYTES,
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            session_cache_ttl: Duration::from_secs(30),
            cart_ttl: Duration::from_secs(14 * 24 * 3600),
            reservation_ttl: Duration::from_secs(15 * 60),
            manual_payment_hold: None,
            login_limit_per_ip: 30,
            login_limit_per_email: 5,
            login_window: Duration::from_secs(300),
            password_reset_ttl: Duration::from_secs(30 * 60),
            verification_ttl: Duration::from_secs(48 * 3600),
            account_mail_limit_per_email: 3,
            account_mail_limit_per_ip: 20,
            account_mail_window: Duration::from_secs(3600),
            trust_forwarded_for: false,
            notifications: NotifySettings::default(),
        }
    }
}

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub tenants: Arc<Tenants>,
    pub catalog: Arc<CatalogCache>,
    pub sessions: Arc<SessionCache>,
    pub search_cache: Arc<crate::catalog::SearchCache>,
    pub bus: Bus,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
    pub dynamo: aws_sdk_dynamodb::Client,
    /// The HTTP client payment providers are called with.
    pub payments_http: reqwest::Client,
    /// Live stock changes, per tenant, for SSE streams.
    pub stock_feed: Arc<StockFeed>,
    /// Sends order events from the outbox to SQS.
    pub relay: Arc<OutboxRelay>,
    /// Consumes the order-event queues and sends mails and webhooks.
    pub notifier: Arc<Notifier>,
    /// This replica's import job runner (its lease id and wake-up bell).
    pub imports: Arc<crate::workers::imports::ImportRunner>,
}

/// Connects to Redis and DynamoDB and starts listening for other replicas' notices.
pub async fn build_state(
    settings: Settings,
    aws: &aws_config::SdkConfig,
) -> anyhow::Result<AppState> {
    let redis = redis::Client::open(settings.redis_url.as_str())?;
    let bus = Bus::connect(&redis).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    let catalog = Arc::new(CatalogCache::with_budget(
        settings.catalog_max_staleness,
        settings.catalog_memory_bytes,
    ));
    let search_cache = Arc::new(crate::catalog::SearchCache::new(
        settings.search_cache_bytes,
    ));
    // Queues are created where tables are: in development; in clusters the operator owns both.
    let relay = Arc::new(OutboxRelay::new(aws).creating_queues(settings.create_tables));
    let notifier = Arc::new(Notifier::new(aws, settings.notifications.clone()));
    let mut metrics = Metrics::default();
    metrics.register_caches(&catalog, &search_cache);
    metrics.register_relay(&relay);
    metrics.register_notifier(&notifier);
    let state = AppState {
        tenants: Arc::new(
            Tenants::new(
                dynamo.clone(),
                settings.pg_pool_size,
                settings.cart_ttl,
                settings.create_tables,
            )
            .with_catalog_feed_len(settings.catalog_feed_len),
        ),
        catalog,
        sessions: Arc::new(SessionCache::new(settings.session_cache_ttl)),
        search_cache,
        limiter: Arc::new(RateLimiter::new(bus.connection())),
        metrics: Arc::new(metrics),
        settings: Arc::new(settings),
        bus: bus.clone(),
        dynamo,
        payments_http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default(),
        stock_feed: Arc::default(),
        relay,
        notifier,
        imports: Arc::default(),
    };
    let (catalog, sessions) = (state.catalog.clone(), state.sessions.clone());
    bus.subscribe(
        redis,
        Arc::new(move |notice| match notice {
            Some(Notice::CatalogChanged { tenant }) => catalog.invalidate(&tenant),
            Some(Notice::SessionRevoked { tenant, token_hash }) => {
                sessions.revoke(&tenant, &token_hash)
            }
            // (Re)subscribed: notices may have been missed meanwhile.
            None => catalog.invalidate_all(),
        }),
    );
    Ok(state)
}

impl AppState {
    /// Loads tenants' catalogs (and search indexes) in the background after start, until half
    /// the catalog memory budget is used, so a dedicated tenant's first shoppers do not wait;
    /// the rest of a pool's tenants load on their first request. Readiness never waits for it.
    pub async fn warm(&self) {
        let tenants = self.tenants.all();
        self.metrics.tenants.set(tenants.len() as i64);
        for t in tenants {
            if self.catalog.held() >= self.catalog.budget() / 2 {
                tracing::info!(
                    loaded = self.catalog.snapshots_loaded.get(),
                    "half the catalog memory budget is used: other tenants load on first request"
                );
                break;
            }
            if let Err(e) = self.catalog.snapshot(&t.catalog).await {
                tracing::warn!(tenant = t.id(), error = %e, "catalog not loaded at start");
            }
        }
    }

    pub fn tenant_removed(&self, tenant: &str) {
        self.catalog.forget(tenant);
        self.metrics.tenants.set(self.tenants.all().len() as i64);
    }
}

/// The use cases, wired from the shared parts and one tenant's stores.
impl AppState {
    pub fn checkout<'a>(
        &'a self,
        tenant: &'a TenantRuntime,
    ) -> Checkout<'a, DynamoCarts, PgOrders, DynamoCatalog> {
        Checkout {
            carts: &tenant.carts,
            orders: &tenant.orders,
            catalog: &self.catalog,
            catalog_source: &tenant.catalog,
            payments: &tenant.config.payments,
            payments_http: &self.payments_http,
            reservation_ttl: self.settings.reservation_ttl,
            manual_payment_hold: self.settings.manual_payment_hold,
        }
    }

    pub fn carts<'a>(&'a self, tenant: &'a TenantRuntime) -> Carts<'a, DynamoCarts, DynamoCatalog> {
        Carts {
            carts: &tenant.carts,
            catalog: &self.catalog,
            catalog_source: &tenant.catalog,
        }
    }

    pub fn accounts<'a>(
        &'a self,
        tenant: &'a TenantRuntime,
    ) -> Accounts<'a, PgCustomers, DynamoSessions, DynamoCarts> {
        Accounts {
            tenant: tenant.id(),
            customers: &tenant.customers,
            sessions: &tenant.sessions,
            carts: &tenant.carts,
            session_cache: &self.sessions,
            bus: &self.bus,
            limiter: &self.limiter,
            settings: &self.settings,
            rate_limited: &self.metrics.logins_rate_limited,
            notifier: &self.notifier,
            runtime: tenant,
        }
    }

    pub fn catalog_admin<'a>(
        &'a self,
        tenant: &'a TenantRuntime,
    ) -> CatalogAdmin<'a, DynamoCatalog, PgOrders> {
        CatalogAdmin {
            tenant: tenant.id(),
            catalog: &tenant.catalog,
            inventory: &tenant.orders,
            cache: &self.catalog,
            bus: &self.bus,
        }
    }

    pub fn store_settings<'a>(
        &'a self,
        tenant: &'a TenantRuntime,
    ) -> crate::services::store_settings::StoreSettings<'a, PgOrders> {
        crate::services::store_settings::StoreSettings {
            store: &tenant.orders,
        }
    }

    pub fn orders<'a>(&'a self, tenant: &'a TenantRuntime) -> Orders<'a, PgOrders> {
        Orders {
            store: &tenant.orders,
        }
    }
}

pub fn router(state: AppState) -> Router {
    crate::http::router(state)
}

/// Largest request head (request line and headers) accepted on HTTP/1; larger gets 431. ALB
/// itself refuses heads over 64 KiB, so nothing legitimate is lost.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;
/// How long requests in flight may take to finish once shutdown has begun.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves until `shutdown` resolves, then finishes requests in flight (for at most 20 s).
///
/// Connections are served by hyper directly rather than `axum::serve`, which offers neither a
/// header-read timeout nor a header size limit: a client that dribbles its headers is cut off
/// after `header_read_timeout`, and a request head over [`MAX_HEADER_BYTES`] is answered 431.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::{
        rt::{TokioExecutor, TokioIo, TokioTimer},
        server::{conn::auto::Builder, graceful::GracefulShutdown},
        service::TowerToHyperService,
    };
    use tower::ServiceExt as _;

    let header_read_timeout = state.settings.header_read_timeout;
    let app = router(state);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_buf_size(MAX_HEADER_BYTES);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(MAX_HEADER_BYTES as u32);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(
            move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(remote));
                req
            },
        );
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service))
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, %remote, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the drain timeout; stopping anyway");
    }
    Ok(())
}
