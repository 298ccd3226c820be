//! Prometheus metrics. Labels are bounded: the route template (not the raw path), the method and
//! the status; no per-tenant label on request metrics, since tenants number in the thousands.

use std::{sync::Arc, time::Instant};

use axum::{
    extract::{MatchedPath, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

/// How a checkout ended, for `storefront_checkouts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub duration: HistogramFamily,
    pub tenants: Gauge,
    pub logins_rate_limited: Counter,
    /// Checkouts by outcome: `placed`, `replayed`, `out_of_stock`, `payment_refused`,
    /// `refused` (the request or the cart), `failed` (a store or provider error).
    pub checkouts: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("storefront");
        let requests = Family::<RequestLabels, Counter>::default();
        let duration: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_25, 2.0, 16)));
        let tenants = Gauge::default();
        let logins_rate_limited = Counter::default();
        let checkouts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            duration.clone(),
        );
        registry.register("tenants", "Tenants served by this replica", tenants.clone());
        registry.register(
            "login_rate_limited",
            "Login attempts refused by the rate limit",
            logins_rate_limited.clone(),
        );
        registry.register(
            "checkouts",
            "Checkouts by outcome (placed, replayed, out_of_stock, payment_refused, refused, failed)",
            checkouts.clone(),
        );
        Self {
            registry,
            requests,
            duration,
            tenants,
            logins_rate_limited,
            checkouts,
        }
    }
}

impl Metrics {
    /// Registers the catalog cache's and the search cache's counters.
    pub fn register_caches(
        &mut self,
        catalog: &crate::catalog::CatalogCache,
        search: &crate::catalog::SearchCache,
    ) {
        self.registry.register(
            "catalog_loads",
            "Full catalog loads (catalog query and search index build)",
            catalog.loads.clone(),
        );
        self.registry.register(
            "catalog_checks",
            "Catalog version checks that found the snapshot current (no load)",
            catalog.checks.clone(),
        );
        self.registry.register(
            "catalog_incremental_applies",
            "Catalog snapshots brought up to date from the change feed (changed products only, no full load)",
            catalog.applies.clone(),
        );
        self.registry.register(
            "catalog_feed_gaps",
            "Catalog changes the change feed no longer covered (trimmed), so the whole catalog was loaded",
            catalog.feed_gaps.clone(),
        );
        self.registry.register(
            "catalog_memory_budget_bytes",
            "Bytes of catalog snapshots (catalog and search index, estimated) this replica may hold",
            catalog.budget_bytes.clone(),
        );
        self.registry.register(
            "catalog_bytes_held",
            "Bytes of catalog snapshots (estimated) held now",
            catalog.bytes_held.clone(),
        );
        self.registry.register(
            "catalog_snapshots_loaded",
            "Tenants whose catalog snapshot is in memory",
            catalog.snapshots_loaded.clone(),
        );
        self.registry.register(
            "catalog_evictions",
            "Catalog snapshots evicted (least recently read) to stay within the memory budget",
            catalog.evictions.clone(),
        );
        self.registry.register(
            "catalog_reads",
            "Requests for a tenant's catalog snapshot",
            catalog.reads.clone(),
        );
        self.registry.register(
            "catalog_cold_reads",
            "Requests whose tenant's catalog was not in memory (1 - this / catalog_reads is the hit rate)",
            catalog.cold_read_count.clone(),
        );
        self.registry.register(
            "catalog_cold_read_seconds",
            "Wait of requests whose tenant's catalog was not in memory (loaded on first request or after eviction)",
            catalog.cold_reads.clone(),
        );
        self.registry.register(
            "search_cache_hits",
            "Search answers served from the cache",
            search.hits.clone(),
        );
        self.registry.register(
            "search_cache_misses",
            "Search answers computed (not in the cache)",
            search.misses.clone(),
        );
    }

    /// Registers the outbox relay's counter and gauge.
    pub fn register_relay(&mut self, relay: &crate::workers::relay::OutboxRelay) {
        self.registry.register(
            "outbox_events_relayed",
            "Order events handed to SQS",
            relay.relayed.clone(),
        );
        self.registry.register(
            "outbox_tenants_backing_off",
            "Tenants whose outbox relay is backing off (queue missing or unreachable); their events wait in the outbox",
            relay.backing_off.clone(),
        );
        self.registry.register(
            "outbox_backlog_events",
            "Order events waiting in the outbox of tenants whose relay is backing off",
            relay.backlog_events.clone(),
        );
        self.registry.register(
            "outbox_oldest_unsent_seconds",
            "Age of the oldest order event waiting in such an outbox (0: none waiting)",
            relay.oldest_unsent_seconds.clone(),
        );
    }

    pub fn register_notifier(&mut self, n: &crate::notifications::Notifier) {
        self.registry.register(
            "notifications_events_consumed",
            "Order events taken from the order-event queues (deliveries stored)",
            n.events_consumed.clone(),
        );
        self.registry.register(
            "notifications_sent",
            "Mails and webhook deliveries sent",
            n.sent.clone(),
        );
        self.registry.register(
            "notifications_attempts_failed",
            "Mail and webhook attempts that failed (each is retried until its window ends)",
            n.attempts_failed.clone(),
        );
        self.registry.register(
            "notifications_failed",
            "Deliveries given up (retry window over, or subscription deleted or disabled)",
            n.failed.clone(),
        );
        self.registry.register(
            "notifications_account_mails_sent",
            "Password-reset, verification and staff-invitation mails SES took",
            n.account_mails_sent.clone(),
        );
        self.registry.register(
            "notifications_account_mails_failed",
            "Account mails not sent (no sender configured, or SES refused them)",
            n.account_mails_failed.clone(),
        );
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            tracing::warn!("could not encode metrics");
        }
        out
    }
}

/// Route-layer middleware recording each matched request.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().to_string();
    let started = Instant::now();
    let res = next.run(req).await.into_response();
    let status = res.status().as_u16();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status,
        })
        .inc();
    metrics
        .duration
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    res
}
