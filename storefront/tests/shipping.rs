//! Addresses and shipping (issue 15 item 1): the merchant's zones and rates, options priced for
//! a cart, checkout requiring an address and a method for goods that ship, and the order
//! keeping what it was charged. Digital goods need no address.

mod common;
#[path = "common/checkout.rs"]
mod support;

use std::time::Duration;

use common::{TestApp, host};
use emporium_tenant_config::TenantConfig;
use reqwest::Method;
use serde_json::{Value, json};
use support::*;

fn eur(amount_minor: i64) -> Value {
    json!({"amount_minor": amount_minor, "currency": "EUR"})
}

pub fn shipping_settings() -> Value {
    json!({"zones": [
        {"id": "de", "name": "Germany", "countries": ["DE", "AT"], "methods": [
            {"id": "standard", "name": "Standard parcel", "price": eur(490), "free_over": eur(5000)},
            {"id": "express", "name": "Express", "price": eur(500), "per_kg": eur(150)}]},
        {"id": "heligoland", "name": "Heligoland", "countries": ["DE"], "regions": ["HL"], "methods": [
            {"id": "boat", "name": "By boat", "price": eur(1500)}]}
    ]})
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

/// A mug (400 g, 12.00) and an e-book (digital, 9.00), 100 of each.
async fn shop(app: &TestApp, t: &TenantConfig) {
    let mut mug = common::product("Mug", "", &[], &[("SHIP-MUG", 1200, &[])]);
    mug["variants"][0]["weight_grams"] = json!(400);
    let mut book = common::product("E-book", "", &[], &[("SHIP-EBOOK", 900, &[])]);
    book["variants"][0]["requires_shipping"] = json!(false);
    for p in [mug, book] {
        let (s, b) = admin(app, t, Method::POST, "/api/v1/admin/products", Some(p)).await;
        assert_eq!(s, 201, "{b}");
    }
    set_stock(app, t, "SHIP-MUG", 100).await;
    set_stock(app, t, "SHIP-EBOOK", 100).await;
}

fn address(country: &str, region: Option<&str>) -> Value {
    json!({"name": "Ann Example", "line1": "Hauptstr. 1", "city": "München",
           "postal_code": "80331", "country": country, "region": region})
}

#[tokio::test]
async fn the_merchant_sets_zones_and_checkout_charges_the_chosen_method() {
    let t = store("ship", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    shop(&app, &t).await;
    let h = host(&t);

    // Before any zone the store does not ship: no address needed (collection).
    let c = cart(&app, h, &[("SHIP-MUG", 1)]).await;
    let (s, b, _) = checkout(&app, h, &c, Some("s0"), None).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["order"]["shipping"], Value::Null);

    // Invalid settings are refused naming the field; valid ones are stored as sent.
    let mut bad = shipping_settings();
    bad["zones"][1]["methods"][0]["id"] = json!("standard");
    let (s, b) = admin(&app, &t, Method::PUT, "/api/v1/admin/shipping", Some(bad)).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("zones[1].methods[0].id")),
        "{b}"
    );
    let (s, b) = admin(
        &app,
        &t,
        Method::PUT,
        "/api/v1/admin/shipping",
        Some(shipping_settings()),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = admin(&app, &t, Method::GET, "/api/v1/admin/shipping", None).await;
    assert_eq!((s, b.clone()), (200, shipping_settings()), "{b}");

    // Three mugs: 1.2 kg, 36.00. Options by destination, priced for the cart.
    let c = cart(&app, h, &[("SHIP-MUG", 3)]).await;
    let options = |q: &'static str| {
        let (app, c) = (&app, c.clone());
        async move {
            app.call(
                Method::GET,
                h,
                &format!("/api/v1/carts/{c}/shipping-options?{q}"),
                None,
                None,
            )
            .await
        }
    };
    let (s, o, _) = options("country=DE&region=BY").await;
    assert_eq!(s, 200, "{o}");
    assert_eq!(
        o,
        json!([{"id": "standard", "name": "Standard parcel", "price": eur(490)},
               {"id": "express", "name": "Express", "price": eur(500 + 2 * 150)}])
    );
    let (_, o, _) = options("country=DE&region=HL").await;
    assert_eq!(o[0]["id"], "boat", "{o}");
    let (_, o, _) = options("country=FR").await;
    assert_eq!(o, json!([]));
    let (s, o, _) = options("country=Germany").await;
    assert_eq!((s, o["field"].as_str()), (422, Some("country")), "{o}");

    // Checkout needs an address and a method the address's zone offers.
    let (s, b, _) = checkout(&app, h, &c, Some("s1"), None).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("shipping_address")),
        "{b}"
    );
    let body = |country: &str, method: Option<&str>| json!({"email": "ann@example.com", "shipping_address": address(country, Some("BY")), "shipping_method": method});
    let (s, b, _) = checkout(&app, h, &c, Some("s2"), Some(body("DE", None))).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("shipping_method")),
        "{b}"
    );
    let (s, b, _) = checkout(&app, h, &c, Some("s3"), Some(body("DE", Some("boat")))).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("shipping_method")),
        "{b}"
    );
    let (s, b, _) = checkout(&app, h, &c, Some("s4"), Some(body("FR", Some("standard")))).await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("shipping_address.country")),
        "{b}"
    );
    assert_eq!(
        stock(&app, &t, "SHIP-MUG").await,
        99,
        "refused checkouts reserve nothing"
    );

    let (s, b, _) = checkout(&app, h, &c, Some("s5"), Some(body("DE", Some("express")))).await;
    assert_eq!(s, 201, "{b}");
    let order = &b["order"];
    assert_eq!(order["subtotal"], eur(3600));
    assert_eq!(
        order["shipping"],
        json!({"method_id": "express", "name": "Express", "price": eur(800)})
    );
    assert_eq!(order["total"], eur(4400));
    assert_eq!(order["shipping_address"]["country"], "DE");
    assert_eq!(
        order["billing_address"], order["shipping_address"],
        "billing defaults to shipping"
    );
    let stored = admin_order(&app, &t, order["id"].as_str().unwrap()).await;
    assert_eq!(stored["shipping"], order["shipping"]);
    assert_eq!(stored["shipping_address"], order["shipping_address"]);

    // Free over 50.00: five mugs ship for nothing with the standard parcel.
    let c = cart(&app, h, &[("SHIP-MUG", 5)]).await;
    let (s, b, _) = checkout(&app, h, &c, Some("s6"), Some(body("AT", Some("standard")))).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["order"]["shipping"]["price"], eur(0));
    assert_eq!(b["order"]["total"], eur(6000));
}

#[tokio::test]
async fn digital_goods_need_no_address() {
    let t = store("digital", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    shop(&app, &t).await;
    let (s, b) = admin(
        &app,
        &t,
        Method::PUT,
        "/api/v1/admin/shipping",
        Some(shipping_settings()),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let h = host(&t);
    let c = cart(&app, h, &[("SHIP-EBOOK", 1)]).await;
    let (s, o, _) = app
        .call(
            Method::GET,
            h,
            &format!("/api/v1/carts/{c}/shipping-options?country=DE"),
            None,
            None,
        )
        .await;
    assert_eq!((s, o), (200, json!([])));
    let (s, b, _) = checkout(
        &app,
        h,
        &c,
        Some("d1"),
        Some(json!({"shipping_method": "standard"})),
    )
    .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("shipping_method")),
        "{b}"
    );
    let (s, b, _) = checkout(
        &app,
        h,
        &c,
        Some("d2"),
        Some(json!({"email": "ann@example.com"})),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["order"]["shipping"], Value::Null);
    assert_eq!(b["order"]["total"], eur(900));
}

#[tokio::test]
async fn a_signed_in_customer_keeps_an_address_book_of_their_own() {
    let t = store("book", None).await;
    let app = TestApp::start(settings(Duration::from_secs(900)), std::slice::from_ref(&t)).await;
    let h = host(&t);
    let mut tokens = Vec::new();
    for email in ["ann@example.com", "bob@example.com"] {
        assert_eq!(app.register(h, email, "long-enough-pw").await.0, 201);
        let (s, b) = app.login(h, email, "long-enough-pw", None).await;
        assert_eq!(s, 200, "{b}");
        tokens.push(b["token"].as_str().unwrap().to_owned());
    }
    let (s, b, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/me/addresses",
            Some(&tokens[0]),
            None,
        )
        .await;
    assert_eq!((s, b), (200, json!({"addresses": []})));
    let book = json!({"addresses": [address("DE", Some("BY")), address("AT", None)]});
    let (s, b, _) = app
        .call(
            Method::PUT,
            h,
            "/api/v1/me/addresses",
            Some(&tokens[0]),
            Some(book.clone()),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, b, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/me/addresses",
            Some(&tokens[0]),
            None,
        )
        .await;
    assert_eq!(b["addresses"].as_array().map(Vec::len), Some(2), "{b}");
    assert_eq!(b["addresses"][1]["country"], "AT");
    // Another customer's book is their own; a bad address is named.
    let (_, b, _) = app
        .call(
            Method::GET,
            h,
            "/api/v1/me/addresses",
            Some(&tokens[1]),
            None,
        )
        .await;
    assert_eq!(b, json!({"addresses": []}));
    let bad = json!({"addresses": [address("DE", None), address("Austria", None)]});
    let (s, b, _) = app
        .call(
            Method::PUT,
            h,
            "/api/v1/me/addresses",
            Some(&tokens[1]),
            Some(bad),
        )
        .await;
    assert_eq!(
        (s, b["field"].as_str()),
        (422, Some("addresses[1].country")),
        "{b}"
    );
    let (s, _, _) = app
        .call(Method::GET, h, "/api/v1/me/addresses", None, None)
        .await;
    assert_eq!(s, 401);
}
