//! The order-event queue provisioner against moto: a queue with a dead-letter queue and a
//! redrive policy, created once, named by the tenant's identity, refused when another
//! Storefront owns the name, deleted or retained per deletion policy.

mod common;

use aws_sdk_sqs::types::QueueAttributeName;
use common::ready;
use emporium_integration_tests::{Stack, unique};
use emporium_operator::providers::{
    DeletionPolicy, QueueProvisioner as _, SqsQueues, TenantQueue, queues::queue_name,
};

#[tokio::test]
async fn a_tenant_gets_an_order_event_queue_with_a_dead_letter_queue() {
    let sdk = Stack::get().aws().await.expect("moto config");
    let prefix = unique("q");
    let queues = SqsQueues::new(&sdk, &prefix, 3);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let request = TenantQueue {
        tenant: "acme".into(),
        tenant_id: "3b0c1d52-5a0e-4f7e-9d0a-6c1f2e3d4b5a".into(),
        owner_uid: "uid-of-acme".into(),
        deletion_policy: DeletionPolicy::Delete,
    };

    let url = ready(queues.ensure(&request).await.expect("ensure"));
    assert_eq!(
        ready(queues.ensure(&request).await.expect("again")),
        url,
        "idempotent"
    );
    let name = queue_name(&prefix, "acme", &request.tenant_id);
    assert!(url.ends_with(&name), "{url}");
    assert!(name.contains("3b0c1d52"), "{name}");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let redrive: serde_json::Value = serde_json::from_str(
        attributes
            .get(&QueueAttributeName::RedrivePolicy)
            .expect("a redrive policy"),
    )
    .expect("JSON");
    assert!(
        redrive["deadLetterTargetArn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(&format!("{name}-dlq"))),
        "{redrive}"
    );
    let tags = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .expect("tags")
        .tags
        .unwrap_or_default();
    assert_eq!(
        tags.get("emporium.dev/owner-uid").map(String::as_str),
        Some("uid-of-acme")
    );

    // A queue of that name tagged for another Storefront is refused, never shared.
    let impostor = TenantQueue {
        owner_uid: "uid-of-someone-else".into(),
        ..request.clone()
    };
    match queues.ensure(&impostor).await.expect("ensure answers") {
        emporium_operator::providers::Outcome::Terminal { reason, message } => {
            assert_eq!(reason, "QueueOwnedByAnother");
            assert!(message.contains(&name), "{message}");
        }
        other => panic!("another owner's queue was accepted: {other:?}"),
    }

    // Retain tags both queues orphaned and keeps them; Delete removes them.
    let retain = TenantQueue {
        deletion_policy: DeletionPolicy::Retain,
        ..request.clone()
    };
    ready(queues.delete(&retain).await.expect("retain"));
    let tags = sqs
        .list_queue_tags()
        .queue_url(&url)
        .send()
        .await
        .expect("tags")
        .tags
        .unwrap_or_default();
    assert_eq!(
        tags.get("emporium.dev/orphaned").map(String::as_str),
        Some("true")
    );
    ready(queues.delete(&request).await.expect("delete"));
    for queue in [name.clone(), format!("{name}-dlq")] {
        assert!(
            sqs.get_queue_url().queue_name(&queue).send().await.is_err(),
            "{queue} still exists"
        );
    }
}
