//! Builds the runtime: settings, shared state, the router, and serving with graceful shutdown.
//! The binary and the integration tests both go through [`build_state`] and [`router`].

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::Router;

use crate::{
    catalog_cache::CatalogCache,
    metrics::Metrics,
    sessions::SessionCache,
    storage::{
        bus::{Bus, Notice},
        ratelimit::RateLimiter,
    },
    tenants::Tenants,
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
    pub body_limit_bytes: usize,
    /// Longest a replica serves a catalog snapshot without reloading it.
    pub catalog_max_staleness: Duration,
    pub session_ttl: Duration,
    /// Longest a validated session is trusted from memory.
    pub session_cache_ttl: Duration,
    pub cart_ttl: Duration,
    /// How long checkout holds stock for an unpaid order.
    pub reservation_ttl: Duration,
    pub login_limit_per_ip: u32,
    pub login_limit_per_email: u32,
    pub login_window: Duration,
    /// Take the client IP from the last `X-Forwarded-For` entry (behind a load balancer).
    pub trust_forwarded_for: bool,
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
            body_limit_bytes: 64 * 1024,
            catalog_max_staleness: Duration::from_secs(30),
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            session_cache_ttl: Duration::from_secs(30),
            cart_ttl: Duration::from_secs(14 * 24 * 3600),
            reservation_ttl: Duration::from_secs(15 * 60),
            login_limit_per_ip: 30,
            login_limit_per_email: 5,
            login_window: Duration::from_secs(300),
            trust_forwarded_for: false,
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
    pub bus: Bus,
    pub limiter: RateLimiter,
    pub metrics: Arc<Metrics>,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub commerce: Arc<crate::commerce::CommerceServices>,
}

/// Connects to Redis and DynamoDB and starts listening for other replicas' notices.
pub async fn build_state(
    settings: Settings,
    aws: &aws_config::SdkConfig,
) -> anyhow::Result<AppState> {
    let redis = redis::Client::open(settings.redis_url.as_str())?;
    let bus = Bus::connect(&redis).await?;
    let dynamo = aws_sdk_dynamodb::Client::new(aws);
    let state = AppState {
        tenants: Arc::new(Tenants::new(
            dynamo.clone(),
            settings.pg_pool_size,
            settings.cart_ttl,
            settings.create_tables,
        )),
        catalog: Arc::new(CatalogCache::new(settings.catalog_max_staleness)),
        sessions: Arc::new(SessionCache::new(settings.session_cache_ttl)),
        limiter: RateLimiter::new(bus.connection()),
        metrics: Arc::new(Metrics::default()),
        settings: Arc::new(settings),
        bus: bus.clone(),
        dynamo,
        commerce: Arc::new(crate::commerce::CommerceServices::new(aws)),
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
    /// Loads every tenant's catalog (and search index) now, so the first shoppers do not wait.
    pub async fn warm(&self) {
        let tenants = self.tenants.all();
        self.metrics.tenants.set(tenants.len() as i64);
        for t in tenants {
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

pub fn router(state: AppState) -> Router {
    crate::http::router(state)
}

/// Serves until `shutdown` resolves, then finishes requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
