//! `/account`: who is signed in and their orders, newest first (the orders service's history,
//! as `me/orders` serves it).

use axum::{extract::State, http::StatusCode, response::Response};
use maud::html;

use super::{PageError, Shopper, checkout::status_label, money};
use crate::{app::AppState, domain::ports::CustomerStore as _};

/// Orders shown, newest first.
const SHOWN_ORDERS: i64 = 50;

pub async fn show(State(state): State<AppState>, shop: Shopper) -> Result<Response, PageError> {
    let Some(session) = shop.session.clone() else {
        return Ok(shop.redirect("/signin"));
    };
    let Some(me) = shop.tenant.customers.by_id(session.customer_id).await? else {
        return Ok(shop.redirect("/signin"));
    };
    let page = state
        .orders(&shop.tenant)
        .page(Some(session.customer_id), None, None, Some(SHOWN_ORDERS))
        .await?;
    let c = &me.customer;
    let main = html! {
        h1 { "Your account" }
        p {
            @if !c.name.is_empty() { (c.name) " · " }
            (c.email)
            @if c.email_verified { " (confirmed)" } @else { " (not confirmed yet)" }
        }
        @if let Some(pending) = &c.pending_email {
            p class="hint" { "Changing to " (pending) " once you use the link we mailed there." }
        }
        @if c.pending_email.is_some() || !c.email_verified {
            form method="post" action="/account/verification" {
                (shop.csrf_field())
                button type="submit" { "Mail me a new confirmation link" }
            }
        }
        section aria-labelledby="orders-heading" {
            h2 id="orders-heading" { "Your orders" }
            @if page.orders.is_empty() {
                p { "You have no orders yet. " a href="/" { "Start shopping" } "." }
            } @else {
                table {
                    caption class="visually-hidden" { "Your orders, newest first" }
                    thead { tr { th scope="col" { "Order" } th scope="col" { "Placed" } th scope="col" { "Items" } th scope="col" { "Status" } th scope="col" class="num" { "Total" } } }
                    tbody {
                        @for o in &page.orders {
                            tr id={ "order-" (o.id) } {
                                td { (o.id) }
                                td { (o.created_at.format("%Y-%m-%d %H:%M UTC")) }
                                td {
                                    @for (i, l) in o.lines.iter().enumerate() {
                                        @if i > 0 { ", " }
                                        (l.title) " × " (l.quantity)
                                    }
                                }
                                td {
                                    (status_label(o.status))
                                    @if let Some(f) = &o.fulfilment { br; "Tracking: " (f.carrier) " " (f.tracking_number) }
                                    @if o.refunded.amount_minor > 0 { br; "Refunded " (money(&o.refunded)) }
                                }
                                td class="num" { (money(&o.total)) }
                            }
                        }
                    }
                }
                @if page.next_cursor.is_some() { p class="hint" { "Showing your 50 most recent orders." } }
            }
        }
    };
    Ok(shop.render(StatusCode::OK, "Your account", main))
}
