//! `admin/inventory/{sku}` (the merchant's stock count) and `inventory/events`: stock changes as
//! Server-Sent Events, with `Last-Event-ID` resume and a heartbeat.

use std::{convert::Infallible, time::Duration};

use axum::{
    Json,
    extract::{Path, State},
    http::HeaderMap,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{Stream, StreamExt as _, stream};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use super::{
    admin_auth::{Admin, perm},
    error::{ApiError, ApiResult, Problem},
    extract::{ApiJson, Tenant},
};
use crate::{
    app::AppState,
    domain::{inventory::StockChange, ports::InventoryStore as _},
};

/// How often an idle stream sends a comment so proxies and clients know it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// Most missed events replayed on resume; a client further behind should reload the stock.
const MAX_REPLAY: i64 = 10_000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetStock {
    /// Units available to sell (0 to 1,000,000,000), not counting units reserved by unpaid orders.
    pub available: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Stock {
    pub sku: String,
    pub available: i32,
}

#[utoipa::path(put, path = "/api/v1/admin/inventory/{sku}", tag = "admin", security(("admin_key" = [])),
    params(("sku" = String, Path)), request_body = SetStock,
    responses((status = 200, body = Stock), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json", description = "`available` out of range, or `sku` is sold by no product in the catalog")))]
pub async fn set_stock(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    Path(sku): Path<String>,
    ApiJson(req): ApiJson<SetStock>,
) -> ApiResult<Json<Stock>> {
    let level = state
        .catalog_admin(&tenant)
        .set_stock(&sku, req.available)
        .await?;
    Ok(Json(Stock {
        sku: level.sku,
        available: level.available,
    }))
}

#[utoipa::path(get, path = "/api/v1/admin/inventory/{sku}", tag = "admin", security(("admin_key" = [])),
    params(("sku" = String, Path)),
    responses((status = 200, body = Stock), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 404, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn get_stock(
    State(state): State<AppState>,
    Admin { tenant, .. }: Admin<perm::Catalog>,
    Path(sku): Path<String>,
) -> ApiResult<Json<Stock>> {
    let level = state.catalog_admin(&tenant).stock(&sku).await?;
    Ok(Json(Stock {
        sku: level.sku,
        available: level.available,
    }))
}

fn event(change: &StockChange) -> Event {
    Event::default()
        .id(change.seq.to_string())
        .event("stock")
        .json_data(change)
        .unwrap_or_else(|_| Event::default().comment("unserialisable event"))
}

/// Live events after `high`; ends when the subscriber lags (the client resumes from its last id).
fn live(rx: Receiver<StockChange>, high: i64) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold((rx, high), |(mut rx, high)| async move {
        loop {
            match rx.recv().await {
                Ok(c) if c.seq <= high => continue,
                Ok(c) => {
                    let next = c.seq;
                    return Some((Ok(event(&c)), (rx, next)));
                }
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
            }
        }
    })
}

#[utoipa::path(get, path = "/api/v1/inventory/events", tag = "orders",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this event")),
    responses((status = 200, content_type = "text/event-stream", description = "`stock` events: {seq, sku, available}; id = seq"),
              (status = 422, body = Problem, content_type = "application/problem+json")))]
pub async fn events(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let last = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| ApiError::invalid("Last-Event-ID", "must be an event id"))
        })
        .transpose()?;
    // Subscribe before reading the backlog, so nothing falls between the two.
    let rx = state
        .stock_feed
        .subscribe(tenant.id(), &tenant.config.database_url)
        .await;
    let backlog = match last {
        Some(seq) => tenant.orders.stock_events_after(seq, MAX_REPLAY).await?,
        None => Vec::new(),
    };
    let high = backlog.last().map(|c| c.seq).or(last).unwrap_or(0);
    let replayed = stream::iter(backlog.iter().map(|c| Ok(event(c))).collect::<Vec<_>>());
    let stream = replayed.chain(live(rx, high));
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat")))
}
