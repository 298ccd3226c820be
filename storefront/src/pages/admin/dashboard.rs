//! `/admin/`: today's orders and revenue, stock running low, and the latest orders.

use axum::{extract::State, http::StatusCode, response::Response};
use maud::html;

use super::StaffPage;
use crate::{
    app::AppState,
    domain::{pricing::Money, staff::Permission},
    pages::{PageError, checkout::status_label, money},
    storage::dashboard,
};

/// Stock at or under this many units counts as low.
pub const LOW_STOCK: i32 = 5;

pub async fn show(State(state): State<AppState>, page: StaffPage) -> Result<Response, PageError> {
    let who = match page.signed_in() {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let tenant = &page.tenant;
    let midnight = chrono::Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_else(chrono::Utc::now);
    let sees_orders = who.actor.holds(Permission::Orders);
    let today = if sees_orders {
        dashboard::orders_since(&tenant.db, tenant.id(), midnight).await?
    } else {
        Vec::new()
    };
    let low = if who.actor.holds(Permission::Catalog) {
        dashboard::low_stock(&tenant.db, tenant.id(), LOW_STOCK, 20).await?
    } else {
        Vec::new()
    };
    let latest = if sees_orders {
        state
            .orders(tenant)
            .page(None, None, None, Some(5))
            .await?
            .orders
    } else {
        Vec::new()
    };
    let greeting = if who.member.name.is_empty() {
        who.member.email.clone()
    } else {
        who.member.name.clone()
    };
    let main = html! {
        h1 { "Dashboard" }
        p { "Signed in as " (greeting) " (" (who.member.role.as_str()) ")." }
        @if sees_orders {
            section aria-labelledby="today-heading" {
                h2 id="today-heading" { "Today (since 00:00 UTC)" }
                @if today.is_empty() {
                    p { "No orders yet today." }
                } @else {
                    ul class="stats" {
                        @for t in &today {
                            li { span class="figure" { (t.placed) } " orders placed (" (t.currency) ")" }
                            li { span class="figure" { (t.paid) } " paid" }
                            li { span class="figure" { (money(&Money { amount_minor: t.revenue_minor, currency: t.currency.clone() })) } " taken, before refunds" }
                        }
                    }
                }
            }
        }
        @if who.actor.holds(Permission::Catalog) {
            section aria-labelledby="low-heading" {
                h2 id="low-heading" { "Low stock (" (LOW_STOCK) " or fewer)" }
                @if low.is_empty() {
                    p { "Nothing is running low." }
                } @else {
                    table {
                        caption class="visually-hidden" { "SKUs running low, fewest first" }
                        thead { tr { th scope="col" { "SKU" } th scope="col" class="num" { "Available" } } }
                        tbody {
                            @for (sku, available) in &low {
                                tr { td { (sku) } td class="num" { (available) } }
                            }
                        }
                    }
                    p { a href="/admin/products" { "Update stock on the products page" } }
                }
            }
        }
        @if sees_orders {
            section aria-labelledby="latest-heading" {
                h2 id="latest-heading" { "Latest orders" }
                @if latest.is_empty() {
                    p { "No orders yet." }
                } @else {
                    ul {
                        @for o in &latest {
                            li {
                                a href={ "/admin/orders/" (o.id) } { (o.created_at.format("%Y-%m-%d %H:%M")) " · " (money(&o.total)) }
                                " · " (status_label(o.status))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page.render(StatusCode::OK, "Dashboard", main))
}
