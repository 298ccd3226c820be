//! Tax (issue 15 item 2) end to end: the merchant's rates by country, region and class, prices
//! entered with tax (German VAT, one line per rate) or without (a US state's sales tax), tax
//! lines on the order, totals to the minor unit. Random orders are the property test in
//! `domain/totals.rs`.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::time::Duration;

use common::{TestApp, host};
use emporium_tenant_config::TenantConfig;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

fn money(amount_minor: i64, currency: &str) -> Value {
    json!({"amount_minor": amount_minor, "currency": currency})
}

async fn admin(
    app: &TestApp,
    t: &TenantConfig,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let (s, b, _) = app
        .call(method, host(t), path, Some(&t.admin_key), body)
        .await;
    (s, b)
}

async fn product(
    app: &TestApp,
    t: &TenantConfig,
    sku: &str,
    price: i64,
    currency: &str,
    class: Option<&str>,
) {
    let mut p = common::product(sku, "", &[], &[(sku, price, &[])]);
    p["variants"][0]["price"]["currency"] = json!(currency);
    if let Some(c) = class {
        p["variants"][0]["tax_class"] = json!(c);
    }
    let (s, b) = admin(app, t, Method::POST, "/api/v1/admin/products", Some(p)).await;
    assert_eq!(s, 201, "{b}");
    set_stock(app, t, sku, 50).await;
}

fn address(country: &str, region: Option<&str>) -> Value {
    json!({"name": "Ann Example", "line1": "Hauptstr. 1", "city": "Köln", "country": country, "region": region})
}

#[tokio::test]
async fn german_vat_inclusive_prices_show_one_tax_line_per_rate() {
    let t = store("vat", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    let vat = json!({"prices_include_tax": true, "default_country": "DE", "rates": [
        {"country": "DE", "class": "standard", "rate_bp": 1900, "name": "MwSt. 19 %"},
        {"country": "DE", "class": "reduced", "rate_bp": 700, "name": "MwSt. 7 %"}]});
    let mut bad = vat.clone();
    bad["rates"][1]["rate_bp"] = json!(20_000);
    let (s, b) = admin(&app, &t, Method::PUT, "/api/v1/admin/tax", Some(bad)).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("rates[1].rate_bp")),
        "{b}"
    );
    let (s, b) = admin(&app, &t, Method::PUT, "/api/v1/admin/tax", Some(vat)).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["shipping_tax_class"], "standard", "{b}");
    let zones = json!({"zones": [{"id": "de", "name": "Germany", "countries": ["DE"], "methods": [
        {"id": "standard", "name": "DHL Paket", "price": money(490, "EUR")}]}]});
    assert_eq!(
        admin(&app, &t, Method::PUT, "/api/v1/admin/shipping", Some(zones))
            .await
            .0,
        200
    );
    product(&app, &t, "VAT-MUG", 1190, "EUR", None).await;
    product(&app, &t, "VAT-BOOK", 1070, "EUR", Some("reduced")).await;

    let h = host(&t);
    let c = cart(&app, h, &[("VAT-MUG", 1), ("VAT-BOOK", 1)]).await;
    let body = json!({"email": "ann@example.com", "shipping_address": address("DE", None), "shipping_method": "standard"});
    let (s, b, _) = checkout(&app, h, &c, Some("vat-1"), Some(body)).await;
    assert_eq!(s, 201, "{b}");
    let o = &b["order"];
    // 11.90 + 10.70 + 4.90 shipping, VAT included: 16.80 at 19 % holds 2.68, 10.70 at 7 % 0.70.
    assert_eq!(o["total"], money(2750, "EUR"), "{o}");
    assert_eq!(o["tax"]["prices_include_tax"], true);
    assert_eq!(
        o["tax"]["lines"],
        json!([
            {"name": "MwSt. 19 %", "rate_bp": 1900, "taxable": money(1412, "EUR"), "amount": money(268, "EUR")},
            {"name": "MwSt. 7 %", "rate_bp": 700, "taxable": money(1000, "EUR"), "amount": money(70, "EUR")}
        ])
    );
    assert_eq!(o["tax_total"], money(338, "EUR"));
    let stored = admin_order(&app, &t, o["id"].as_str().unwrap()).await;
    assert_eq!(stored["tax"], o["tax"]);
    assert_eq!(stored["tax_total"], o["tax_total"]);
    assert_eq!(stored["total"], o["total"]);
}

#[tokio::test]
async fn sales_tax_is_added_to_prices_entered_without_it_by_region() {
    let t = store("salestax", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    let tax = json!({"prices_include_tax": false, "rates": [
        {"country": "US", "region": "CA", "rate_bp": 725, "name": "California sales tax"}]});
    assert_eq!(
        admin(&app, &t, Method::PUT, "/api/v1/admin/tax", Some(tax))
            .await
            .0,
        200
    );
    let zones = json!({"zones": [{"id": "us", "name": "USA", "countries": ["US"], "methods": [
        {"id": "ground", "name": "Ground", "price": money(0, "USD")}]}]});
    assert_eq!(
        admin(&app, &t, Method::PUT, "/api/v1/admin/shipping", Some(zones))
            .await
            .0,
        200
    );
    product(&app, &t, "TAX-LAMP", 1000, "USD", None).await;
    let h = host(&t);
    for (region, total, lines) in [("CA", 1073, 1), ("NY", 1000, 0)] {
        let c = cart(&app, h, &[("TAX-LAMP", 1)]).await;
        let body =
            json!({"shipping_address": address("US", Some(region)), "shipping_method": "ground"});
        let (s, b, _) = checkout(&app, h, &c, Some(&format!("st-{region}")), Some(body)).await;
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["order"]["total"], money(total, "USD"), "{region}: {b}");
        assert_eq!(
            b["order"]["tax"]["lines"].as_array().map(Vec::len),
            Some(lines),
            "{b}"
        );
    }
}
