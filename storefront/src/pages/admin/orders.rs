//! `/admin/orders`: orders filtered by status, an order's detail, fulfilment with carrier and
//! tracking number, and refunds (an amount with a reason, optionally restocking). The orders
//! service does the work, as for the merchant API; refunds need the `refunds` permission.

use std::collections::HashMap;

use axum::{
    Form,
    extract::{Path, Query, State, rejection::FormRejection},
    http::StatusCode,
    response::Response,
};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{StaffPage, alert, message_of, notice, parse_price, price_input};
use crate::{
    app::AppState,
    domain::{
        orders::{Fulfilment, Order, OrderStatus, RefundRequest},
        pricing::Money,
        staff::{Access, Permission},
    },
    http::error::ApiError,
    pages::{PageError, checkout::status_label, money, status_of},
    payments::Provider,
};

const ORDERS: Access = Access::Permission(Permission::Orders);
const REFUNDS: Access = Access::Permission(Permission::Refunds);

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    cursor: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    page: StaffPage,
    Query(q): Query<ListQuery>,
) -> Result<Response, PageError> {
    if let Err(r) = page.authorise(&state, ORDERS, "order.list", "").await {
        return Ok(*r);
    }
    let status = OrderStatus::parse(q.status.trim());
    let result = state
        .orders(&page.tenant)
        .page(
            None,
            status,
            q.cursor.as_deref().filter(|c| !c.is_empty()),
            Some(50),
        )
        .await
        .map_err(ApiError::from);
    let listing = match result {
        Ok(p) => p,
        Err(ApiError::Invalid(_)) => {
            state
                .orders(&page.tenant)
                .page(None, status, None, Some(50))
                .await?
        }
        Err(e) => return Err(e.into()),
    };
    let chosen = status.map(OrderStatus::as_str).unwrap_or("");
    let main = html! {
        h1 { "Orders" }
        form method="get" action="/admin/orders" class="toolbar" {
            div {
                label for="status" { "Status" }
                div class="row" {
                    select id="status" name="status" {
                        option value="" selected[chosen.is_empty()] { "All" }
                        @for s in OrderStatus::ALL {
                            option value=(s.as_str()) selected[chosen == s.as_str()] { (status_label(s)) }
                        }
                    }
                    button type="submit" { "Filter" }
                }
            }
        }
        @if listing.orders.is_empty() {
            p { "No orders." }
        } @else {
            table {
                caption class="visually-hidden" { "Orders, newest first" }
                thead { tr { th scope="col" { "Order" } th scope="col" { "Placed" } th scope="col" { "Customer" } th scope="col" { "Status" } th scope="col" class="num" { "Total" } } }
                tbody {
                    @for o in &listing.orders {
                        tr {
                            td { a href={ "/admin/orders/" (o.id) } { (short_id(o.id)) } }
                            td { (o.created_at.format("%Y-%m-%d %H:%M")) }
                            td { (o.email.as_deref().unwrap_or("guest")) }
                            td { (status_label(o.status)) }
                            td class="num" { (money(&o.total)) }
                        }
                    }
                }
            }
            @if let Some(next) = &listing.next_cursor {
                p { a href={ "/admin/orders?status=" (chosen) "&cursor=" (next) } { "Older orders" } }
            }
        }
    };
    Ok(page.render(StatusCode::OK, "Orders", main))
}

fn short_id(id: Uuid) -> String {
    id.to_string()
        .chars()
        .rev()
        .take(8)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect()
}

fn order_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw).map_err(|_| PageError::NotFound)
}

fn left_to_refund(o: &Order) -> Money {
    Money {
        amount_minor: (o.total.amount_minor - o.refunded.amount_minor).max(0),
        currency: o.total.currency.clone(),
    }
}

fn render_order(
    page: &StaffPage,
    o: &Order,
    can_refund: bool,
    message: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let left = left_to_refund(o);
    let refundable =
        matches!(o.status, OrderStatus::Paid | OrderStatus::Fulfilled) && left.amount_minor > 0;
    let key = crate::domain::accounts::new_session_token();
    let main = html! {
        p { a href="/admin/orders" { "← Orders" } }
        h1 { "Order " (short_id(o.id)) }
        (notice(message))
        (alert(error))
        dl class="facts" {
            dt { "Status" } dd id="order-status" { (status_label(o.status)) }
            dt { "Placed" } dd { (o.created_at.format("%Y-%m-%d %H:%M UTC")) }
            dt { "Customer" } dd { (o.email.as_deref().unwrap_or("guest")) }
            dt { "Total" } dd { (money(&o.total)) }
            @if o.refunded.amount_minor > 0 { dt { "Refunded" } dd id="order-refunded" { (money(&o.refunded)) } }
            @if let Some(f) = &o.fulfilment { dt { "Shipped with" } dd { (f.carrier) ", tracking " (f.tracking_number) } }
            @if let Some(a) = &o.shipping_address { dt { "Ship to" } dd { (a.name) ", " (a.line1) ", " @if let Some(p) = &a.postal_code { (p) " " } (a.city) ", " (a.country) } }
        }
        h2 { "Items" }
        table {
            caption class="visually-hidden" { "Items of the order" }
            thead { tr { th scope="col" { "Item" } th scope="col" { "SKU" } th scope="col" class="num" { "Qty" } } }
            tbody {
                @for l in &o.lines {
                    tr { td { (l.title) } td { (l.sku) } td class="num" { (l.quantity) } }
                }
            }
        }
        @if !o.refunds.is_empty() {
            h2 { "Refunds" }
            ul { @for r in &o.refunds { li { (money(&r.amount)) " · " (r.reason) } } }
        }
        @if o.status == OrderStatus::Paid {
            section aria-labelledby="fulfil-heading" {
                h2 id="fulfil-heading" { "Fulfil" }
                form method="post" action={ "/admin/orders/" (o.id) "/fulfil" } {
                    (page.csrf_field())
                    div class="row" {
                        div { label for="carrier" { "Carrier" } input type="text" id="carrier" name="carrier" maxlength="100"; }
                        div { label for="tracking" { "Tracking number" } input type="text" id="tracking" name="tracking_number" maxlength="100"; }
                    }
                    p class="hint" { "Leave both empty to fulfil without tracking." }
                    p { button type="submit" { "Mark as fulfilled" } }
                }
            }
        }
        @if refundable {
            section aria-labelledby="refund-heading" {
                h2 id="refund-heading" { "Refund" }
                @if can_refund {
                    form method="post" action={ "/admin/orders/" (o.id) "/refund" } {
                        (page.csrf_field())
                        input type="hidden" name="key" value=(key);
                        div class="row" {
                            div {
                                label for="amount" { "Amount (" (left.currency) ")" }
                                input type="text" inputmode="decimal" id="amount" name="amount" value=(price_input(left.amount_minor, &left.currency)) required;
                            }
                            div {
                                label for="reason" { "Reason" }
                                input type="text" id="reason" name="reason" required maxlength="500";
                            }
                        }
                        p class="hint" { "Up to " (money(&left)) " is left to refund." }
                        p { button type="submit" { "Refund" } }
                    }
                } @else {
                    p { "Refunds need the `refunds` permission; ask the store's owner." }
                }
            }
        }
    };
    page.render(status, "Order", main)
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    done: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    page: StaffPage,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let who = match page.authorise(&state, ORDERS, "order.view", &id).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let order = state.orders(&page.tenant).get(order_id(&id)?).await?;
    let message = match q.done.as_deref() {
        Some("fulfilled") => Some("Order marked as fulfilled."),
        Some("refunded") => Some("Refund made."),
        _ => None,
    };
    Ok(render_order(
        &page,
        &order,
        who.actor.may(REFUNDS),
        message,
        None,
        StatusCode::OK,
    ))
}

fn field<'a>(form: &'a HashMap<String, String>, key: &str) -> &'a str {
    form.get(key).map(String::as_str).unwrap_or("")
}

async fn answer(
    state: &AppState,
    page: &StaffPage,
    who: &super::SignedInStaff,
    id: Uuid,
    action: &str,
    result: Result<Order, ApiError>,
    done: &str,
) -> Result<Response, PageError> {
    let target = id.to_string();
    match result {
        Ok(_) => {
            page.record(state, &who.actor, action, &target, StatusCode::OK)
                .await;
            Ok(page.redirect(&format!("/admin/orders/{id}?done={done}")))
        }
        Err(e) => {
            let Some(message) = message_of(&e) else {
                return Err(e.into());
            };
            let status = status_of(&e);
            page.record(state, &who.actor, action, &target, status)
                .await;
            let order = state.orders(&page.tenant).get(id).await?;
            Ok(render_order(
                page,
                &order,
                who.actor.may(REFUNDS),
                None,
                Some(&message),
                status,
            ))
        }
    }
}

pub async fn fulfil(
    State(state): State<AppState>,
    page: StaffPage,
    Path(id): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(field(&form, "csrf"))?;
    let who = match page.authorise(&state, ORDERS, "order.fulfil", &id).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let id = order_id(&id)?;
    let (carrier, tracking) = (
        field(&form, "carrier").trim(),
        field(&form, "tracking_number").trim(),
    );
    let fulfilment = (!carrier.is_empty() || !tracking.is_empty()).then(|| Fulfilment {
        carrier: carrier.to_owned(),
        tracking_number: tracking.to_owned(),
        fulfilled_at: None,
    });
    let result = state
        .orders(&page.tenant)
        .fulfil(id, fulfilment)
        .await
        .map_err(ApiError::from);
    answer(&state, &page, &who, id, "order.fulfil", result, "fulfilled").await
}

pub async fn refund(
    State(state): State<AppState>,
    page: StaffPage,
    Path(id): Path<String>,
    form: Result<Form<HashMap<String, String>>, FormRejection>,
) -> Result<Response, PageError> {
    let Form(form) = form?;
    page.check_csrf(field(&form, "csrf"))?;
    let who = match page.authorise(&state, REFUNDS, "order.refund", &id).await {
        Ok(w) => w,
        Err(r) => return Ok(*r),
    };
    let id = order_id(&id)?;
    let tenant = page.tenant.clone();
    let result: Result<Order, ApiError> = async {
        let order = state.orders(&tenant).get(id).await?;
        let currency = order.total.currency.clone();
        let amount_minor = parse_price("amount", field(&form, "amount"), &currency)?;
        let key = crate::domain::inventory::check_idempotency_key(Some(field(&form, "key")))?;
        let req = RefundRequest {
            lines: Vec::new(),
            amount: Some(Money {
                amount_minor,
                currency,
            }),
            reason: field(&form, "reason").trim().to_owned(),
            restock: false,
        };
        let provider = || Provider::for_tenant(&tenant.config.payments, &state.payments_http);
        Ok(state
            .orders(&tenant)
            .refund_part(id, key, req, provider)
            .await?)
    }
    .await;
    answer(&state, &page, &who, id, "order.refund", result, "refunded").await
}
