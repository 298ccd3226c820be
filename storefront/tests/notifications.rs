//! Notifications (issue 17) against moto (SQS, SES) and PostgreSQL: a checkout's order event
//! goes through the real outbox relay into the tenant's queue; the consumer stores its
//! deliveries and "dies" before deleting the messages; after the visibility timeout the next
//! consumer finds them again and stores nothing new; the dispatcher sends the receipt through
//! SES (read back from moto) and a signed webhook to a loopback receiver that fails three times
//! and then gets exactly one successful delivery of the event.

mod common;
#[path = "common/ses.rs"]
mod ses;
#[path = "common/checkout.rs"]
mod support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, body::Bytes, http::HeaderMap, http::StatusCode, routing::post};
use common::{TestApp, host};
use emporium_integration_tests::Stack;
use emporium_storefront::{
    notifications::{NotifySettings, consumer, dispatch, webhook},
    workers::relay,
};
use reqwest::Method;
use serde_json::json;
use ses::{PrivateMoto, sent_mail};
use support::*;

/// What the receiver saw: (event id, signature valid, status answered).
type Seen = Arc<Mutex<Vec<(String, bool, u16)>>>;

async fn receiver(secret: Arc<Mutex<String>>, fail_first: usize) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (seen, secret) = (s.clone(), secret.clone());
            async move {
                let sig = headers
                    .get(webhook::SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let ok = webhook::verify(
                    &secret.lock().unwrap(),
                    sig,
                    &body,
                    chrono::Utc::now().timestamp(),
                    Duration::from_secs(300),
                );
                let id = headers
                    .get(webhook::EVENT_ID_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let mut seen = seen.lock().unwrap();
                let status = if seen.len() < fail_first { 503 } else { 200 };
                seen.push((id, ok, status));
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), seen)
}

#[tokio::test]
async fn an_order_event_reaches_the_shoppers_mail_and_a_flaky_webhook_once_despite_a_consumer_crash()
 {
    let mut t = store("notify", None).await;
    t.display_name = "Notify Mugs".into();
    t.theme_color = Some("#1e3a8a".into());
    let ses = PrivateMoto::start().await;
    let mut settings = settings(Duration::from_secs(600));
    settings.notifications = NotifySettings {
        ses_endpoint_url: Some(ses.endpoint.clone()),
        mail_from: Some(format!("{}@shop.example.com", common::unique("orders-"))),
        verify_sender: true,
        retry_base: Duration::from_millis(100),
        retry_max_delay: Duration::from_millis(400),
        allow_loopback_webhooks: true,
        ..NotifySettings::default()
    };
    let app = TestApp::start(settings, std::slice::from_ref(&t)).await;
    let tenant = app
        .state
        .tenants
        .all()
        .into_iter()
        .find(|x| x.id() == t.tenant_id)
        .unwrap();
    let (notifier, relay_) = (app.state.notifier.clone(), app.state.relay.clone());
    notifier.verify_sender().await;
    stock_skus(&app, &t, &[("MUG-1", 1250, 10)]).await;

    let secret = Arc::new(Mutex::new(String::new()));
    let (url, seen) = receiver(secret.clone(), 3).await;
    let (s, sub, _) = app
        .call(
            Method::POST,
            host(&t),
            "/api/v1/admin/webhooks",
            Some(&t.admin_key),
            Some(json!({"url": url, "event_types": ["order.created"]})),
        )
        .await;
    assert_eq!(s, 201, "{sub}");
    *secret.lock().unwrap() = sub["secret"].as_str().unwrap().to_owned();

    let email = format!("{}@example.com", common::unique("ann-"));
    let c = cart(&app, host(&t), &[("MUG-1", 2)]).await;
    let (s, order, _) = checkout(
        &app,
        host(&t),
        &c,
        Some(&common::unique("k-")),
        Some(json!({"email": email})),
    )
    .await;
    assert_eq!(s, 201, "{order}");
    let total = emporium_storefront::pages::money(
        &serde_json::from_value(order["order"]["total"].clone()).unwrap(),
    );

    // The relay puts the event into the queue; make redelivery quick for the "crash".
    assert_eq!(
        relay::relay_tenant(&relay_, &tenant).await.expect("relay"),
        1
    );
    let queue = relay_.queue_url(&tenant).await.unwrap();
    let sqs = aws_sdk_sqs::Client::new(&Stack::get().aws().await.unwrap());
    sqs.set_queue_attributes()
        .queue_url(&queue)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .send()
        .await
        .unwrap();

    // The consumer stores the deliveries and dies before deleting the message.
    let batch = consumer::receive(&notifier, &relay_, &tenant)
        .await
        .unwrap();
    assert_eq!(batch.len(), 1);
    let (_handles, first) = consumer::store(&notifier, &tenant, &batch).await.unwrap();
    assert_eq!(first.deliveries_stored, 2, "a mail and a webhook");
    drop(batch);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The next consumer gets the message again, stores nothing new, and deletes it.
    let again = consumer::consume(&notifier, &relay_, &tenant)
        .await
        .unwrap();
    assert_eq!(
        (again.messages, again.deliveries_stored),
        (1, 0),
        "{again:?}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let empty = consumer::consume(&notifier, &relay_, &tenant)
        .await
        .unwrap();
    assert_eq!(empty.messages, 0, "the message was deleted");

    // The dispatcher sends; the receiver fails three times, then takes it.
    for _ in 0..60 {
        dispatch::dispatch(&notifier, &tenant).await.unwrap();
        if seen.lock().unwrap().iter().any(|(_, _, s)| *s == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seen = seen.lock().unwrap().clone();
    let statuses: Vec<u16> = seen.iter().map(|x| x.2).collect();
    assert_eq!(statuses, [503, 503, 503, 200], "{seen:?}");
    assert!(
        seen.iter().all(|(_, ok, _)| *ok),
        "every request signed: {seen:?}"
    );
    let ids: std::collections::BTreeSet<_> = seen.iter().map(|x| x.0.clone()).collect();
    assert_eq!(ids.len(), 1, "one event, retried under its id: {seen:?}");

    let mails = sent_mail(&ses.endpoint, &email).await;
    assert_eq!(mails.len(), 1, "one receipt: {mails:?}");
    assert!(
        mails[0].0.starts_with("Notify Mugs: your order"),
        "{mails:?}"
    );
    assert!(
        mails[0].1.contains(&total) && mails[0].1.contains("#1e3a8a"),
        "total {total} in {}",
        mails[0].1
    );

    let (s, log, _) = app
        .call(
            Method::GET,
            host(&t),
            "/api/v1/admin/notifications/deliveries?channel=webhook",
            Some(&t.admin_key),
            None,
        )
        .await;
    assert_eq!(s, 200, "{log}");
    assert_eq!(log[0]["status"], "sent", "{log}");
    assert_eq!(log[0]["history"].as_array().unwrap().len(), 4, "{log}");
}
