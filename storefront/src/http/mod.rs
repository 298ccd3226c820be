//! The HTTP surface: one file per resource, the router and its middleware. Handlers are thin:
//! extract, call a service ([`crate::services`]), map its typed result to a response or an
//! [`error::ApiError`] problem document.

pub mod admin;
pub mod admin_auth;
pub mod auth;
pub mod carts;
pub mod catalog;
pub mod checkout;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod imports;
pub mod inventory;
pub mod me;
pub mod ops;
pub mod orders;
pub mod payments;
pub mod search;
pub mod staff;
pub mod store_settings;
pub mod webhooks;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, StatusCode, header},
    middleware,
    response::Response,
    routing::{delete, get, patch, post, put},
};
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    sensitive_headers::SetSensitiveRequestHeadersLayer,
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::app::AppState;
use error::problem_response;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/password-reset", post(auth::request_password_reset))
        .route(
            "/auth/password-reset/confirm",
            post(auth::confirm_password_reset),
        )
        .route("/auth/verify-email", post(auth::verify_email))
        .route("/me", get(me::show).patch(me::update))
        .route("/me/password", post(me::change_password))
        .route("/me/verification", post(me::resend_verification))
        .route("/products", get(catalog::list_products))
        .route("/products/{id}", get(catalog::show_product))
        .route("/categories", get(catalog::list_categories))
        .route("/search", get(search::search))
        .route("/carts", post(carts::create))
        .route("/carts/{id}", get(carts::show))
        .route("/carts/{id}/items", post(carts::add_item))
        .route(
            "/carts/{id}/items/{sku}",
            put(carts::set_item).delete(carts::remove_item),
        )
        .route("/admin/products", post(admin::create_product))
        .route(
            "/admin/products/{id}",
            put(admin::replace_product).delete(admin::delete_product),
        )
        .route("/admin/categories", post(admin::create_category))
        .route(
            "/admin/categories/{id}",
            put(admin::replace_category).delete(admin::delete_category),
        )
        .route("/carts/{id}/checkout", post(checkout::checkout))
        .route(
            "/carts/{id}/shipping-options",
            get(store_settings::shipping_options),
        )
        .route(
            "/me/addresses",
            get(store_settings::show_address_book).put(store_settings::set_address_book),
        )
        .route("/admin/promotions", get(store_settings::list_promotions))
        .route(
            "/admin/promotions/{code}",
            put(store_settings::set_promotion),
        )
        .route(
            "/admin/tax",
            get(store_settings::show_tax).put(store_settings::set_tax),
        )
        .route(
            "/admin/shipping",
            get(store_settings::show_shipping).put(store_settings::set_shipping),
        )
        .route("/me/orders", get(orders::my_orders))
        .route("/orders/{id}", get(orders::show))
        .route("/payments/webhook", post(payments::webhook))
        .route("/inventory/events", get(inventory::events))
        .route(
            "/admin/inventory/{sku}",
            put(inventory::set_stock).get(inventory::get_stock),
        )
        .route("/admin/orders", get(orders::admin_list))
        .route("/admin/orders/{id}", get(orders::admin_show))
        .route("/admin/orders/{id}/fulfil", post(orders::fulfil))
        .route("/admin/orders/{id}/cancel", post(orders::cancel))
        .route("/admin/orders/{id}/refund", post(orders::refund))
        .route("/admin/orders/{id}/refunds", post(orders::refund_part))
        .route("/admin/orders/{id}/mark-paid", post(orders::mark_paid))
        .route("/admin/staff", get(staff::list))
        .route("/admin/staff/invitations", post(staff::invite))
        .route("/admin/staff/{id}", delete(staff::remove))
        .route("/admin/staff/{id}/permissions", put(staff::set_permissions))
        .route("/admin/owner-invitation", post(staff::owner_invitation))
        .route(
            "/admin/tokens",
            get(staff::list_tokens).post(staff::create_token),
        )
        .route("/admin/tokens/{id}", delete(staff::delete_token))
        .route("/admin/tokens/{id}/rotate", post(staff::rotate_token))
        .route("/admin/admin-key", delete(staff::retire_admin_key))
        .route("/admin/audit", get(staff::audit))
        .route(
            "/admin/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/admin/webhooks/{id}",
            patch(webhooks::update).delete(webhooks::remove),
        )
        .route("/admin/notifications/deliveries", get(webhooks::deliveries))
        .route(
            "/admin/imports",
            get(imports::list)
                .post(imports::create)
                .layer(DefaultBodyLimit::max(
                    state.settings.import_body_limit_bytes,
                )),
        )
        .route("/admin/imports/{id}", get(imports::show))
        .route("/admin/exports/products", get(imports::export_products))
        .route("/admin/exports/orders", get(imports::export_orders))
        .route("/admin/exports/customers", get(imports::export_customers))
        // Every admin write an authenticated caller attempts lands in the audit log.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            admin_auth::audit,
        ));

    let timeout = state.settings.request_timeout;
    let body_limit = state.settings.body_limit_bytes;
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .nest("/api/v1", api)
        .merge(crate::pages::routes(state.settings.import_body_limit_bytes))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            crate::ops::metrics::track,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(SetSensitiveRequestHeadersLayer::new([header::AUTHORIZATION, header::COOKIE]))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::custom(|_| {
                    problem_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", None, None)
                }))
                .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout)),
        )
        .layer(middleware::map_response(problem_for_bare_errors))
        .with_state(state)
}

/// Error responses made by middleware or by axum's own extractors (timeouts, panics caught low
/// down, the body limit's `text/plain` 413, a form that cannot be read) become problem
/// documents like every other error, keeping their text as the detail. HTML error pages (the
/// shopper pages) and problem documents pass through untouched.
async fn problem_for_bare_errors(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let mime = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if matches!(
        mime.as_deref(),
        Some("application/problem+json" | "text/html" | "text/event-stream")
    ) {
        return res;
    }
    let (parts, body) = res.into_parts();
    // Rejection texts are one line; anything longer is not worth echoing.
    let detail = axum::body::to_bytes(body, 4096)
        .await
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .filter(|d| !d.is_empty() && mime.as_deref() == Some("text/plain"));
    let title = status.canonical_reason().unwrap_or("Error");
    let slug = title.to_ascii_lowercase().replace(' ', "-");
    let field = (status == StatusCode::PAYLOAD_TOO_LARGE).then(|| "body".to_owned());
    let mut problem = problem_response(status, &slug, title, detail, field);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().entry(name).or_insert(value.clone());
        }
    }
    problem
}

async fn method_not_allowed() -> Response {
    problem_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        None,
        None,
    )
}

/// Unknown paths: on an unknown host say so, so probing paths reveals nothing either.
async fn not_found(State(state): State<AppState>, req: Request) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if state.tenants.resolve(host).is_none() {
        return problem_response(
            StatusCode::NOT_FOUND,
            "unknown-host",
            "No store answers on this host",
            None,
            None,
        );
    }
    problem_response(
        StatusCode::NOT_FOUND,
        "not-found",
        "Not found",
        Some(format!("no route {}", req.uri().path())),
        None,
    )
}
