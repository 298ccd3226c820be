//! The trigger fingerprints as tables: each row changes one thing about an object and says
//! whether that must start a reconcile (the fingerprint changes) or not.

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentCondition, DeploymentSpec, DeploymentStatus},
        autoscaling::v2::{HorizontalPodAutoscaler, HorizontalPodAutoscalerStatus},
        networking::v1::{
            Ingress, IngressLoadBalancerIngress, IngressLoadBalancerStatus, IngressSpec,
            IngressStatus,
        },
    },
    apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, OwnerReference, Time},
    jiff::Timestamp,
};
use kube::api::ObjectMeta;

use super::triggers::storefront_fingerprint;
use super::*;
use crate::reconcile::build::tests::sample_storefront;

fn meta() -> ObjectMeta {
    ObjectMeta {
        name: Some("storefront".into()),
        namespace: Some("store-acme".into()),
        labels: Some([(TENANT_LABEL.to_owned(), "acme".to_owned())].into()),
        annotations: Some(
            [(
                "emporium.dev/applied-hash".to_owned(),
                "sha256:1".to_owned(),
            )]
            .into(),
        ),
        owner_references: Some(vec![OwnerReference {
            api_version: "emporium.dev/v1alpha1".into(),
            kind: "Storefront".into(),
            name: "acme".into(),
            uid: "u1".into(),
            controller: Some(true),
            block_owner_deletion: None,
        }]),
        resource_version: Some("100".into()),
        generation: Some(1),
        uid: Some("d1".into()),
        ..ObjectMeta::default()
    }
}

fn deployment() -> Deployment {
    Deployment {
        metadata: meta(),
        spec: DeploymentSpec {
            min_ready_seconds: Some(5),
            ..DeploymentSpec::default()
        },
        status: Some(DeploymentStatus {
            observed_generation: Some(1),
            available_replicas: Some(2),
            replicas: Some(2),
            conditions: Some(vec![available_condition("True")]),
            ..DeploymentStatus::default()
        }),
    }
}

fn available_condition(status: &str) -> DeploymentCondition {
    DeploymentCondition {
        type_: Some("Available".into()),
        status: Some(status.into()),
        ..DeploymentCondition::default()
    }
}

fn time() -> Time {
    Time(Timestamp::from_second(1_700_000_000).expect("a valid time"))
}

/// Whether `change` to `before` changes its fingerprint with replica availability as a
/// readiness input (`available`) or not.
fn changes<K: Child>(before: &K, change: fn(&mut K), available: bool) -> bool {
    let mut after = before.clone();
    change(&mut after);
    fingerprint(before, available) != fingerprint(&after, available)
}

#[test]
fn a_deployment_triggers_on_what_the_reconciler_reads() {
    type Change = fn(&mut Deployment);
    // (what changes, the change, with `--readiness-gate=available`, triggers)
    let cases: [(&str, Change, bool, bool); 20] = [
        ("nothing", |_| {}, true, false),
        (
            "resourceVersion",
            |d| d.metadata.resource_version = Some("101".into()),
            true,
            false,
        ),
        (
            "generation",
            |d| d.metadata.generation = Some(2),
            true,
            false,
        ),
        ("uid", |d| d.metadata.uid = Some("d2".into()), true, false),
        (
            "creationTimestamp",
            |d| d.metadata.creation_timestamp = Some(time()),
            true,
            false,
        ),
        (
            "managedFields",
            |d| d.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]),
            true,
            false,
        ),
        (
            "the Deployment controller's revision annotation",
            |d| {
                d.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert("deployment.kubernetes.io/revision".into(), "2".into());
            },
            true,
            false,
        ),
        (
            "status conditions",
            |d| {
                d.status.get_or_insert_with(Default::default).conditions = Some(vec![
                    available_condition("True"),
                    DeploymentCondition {
                        type_: Some("Progressing".into()),
                        status: Some("True".into()),
                        ..DeploymentCondition::default()
                    },
                ])
            },
            true,
            false,
        ),
        (
            "the replica count while some are available",
            |d| {
                let status = d.status.get_or_insert_with(Default::default);
                status.available_replicas = Some(5);
                status.replicas = Some(5);
            },
            true,
            false,
        ),
        (
            "the Deployment turns unavailable, gate applied",
            |d| {
                let status = d.status.get_or_insert_with(Default::default);
                status.available_replicas = Some(0);
                status.conditions = Some(vec![available_condition("False")]);
            },
            false,
            false,
        ),
        (
            "the Deployment turns unavailable, gate available",
            |d| {
                let status = d.status.get_or_insert_with(Default::default);
                status.available_replicas = Some(0);
                status.conditions = Some(vec![available_condition("False")]);
            },
            true,
            true,
        ),
        (
            "the status gone, gate available",
            |d| d.status = None,
            true,
            true,
        ),
        (
            "observedGeneration",
            |d| {
                d.status
                    .get_or_insert_with(Default::default)
                    .observed_generation = Some(2)
            },
            false,
            true,
        ),
        (
            "the spec",
            |d| d.spec.min_ready_seconds = Some(10),
            false,
            true,
        ),
        (
            "a label",
            |d| {
                d.metadata
                    .labels
                    .get_or_insert_with(Default::default)
                    .insert("team".into(), "a".into());
            },
            false,
            true,
        ),
        (
            "an annotation",
            |d| {
                d.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert("emporium.dev/applied-hash".into(), "sha256:2".into());
            },
            false,
            true,
        ),
        (
            "the owner",
            |d| d.metadata.owner_references = None,
            false,
            true,
        ),
        (
            "deletionTimestamp",
            |d| d.metadata.deletion_timestamp = Some(time()),
            false,
            true,
        ),
        (
            "finalizers",
            |d| d.metadata.finalizers = Some(vec!["example.com/hold".into()]),
            false,
            true,
        ),
        (
            "the name (the cache key, not the fingerprint)",
            |d| d.metadata.name = Some("other".into()),
            false,
            false,
        ),
    ];
    for (what, change, available, triggers) in cases {
        assert_eq!(
            changes(&deployment(), change, available),
            triggers,
            "{what} (gate available: {available})"
        );
    }
}

#[test]
fn an_ingress_triggers_on_its_load_balancer_only_among_status_fields() {
    let ingress = Ingress {
        metadata: meta(),
        spec: Some(IngressSpec {
            ingress_class_name: Some("alb".into()),
            ..IngressSpec::default()
        }),
        status: None,
    };
    let load_balancer = |hostname: &str| {
        Some(IngressStatus {
            load_balancer: Some(IngressLoadBalancerStatus {
                ingress: Some(vec![IngressLoadBalancerIngress {
                    hostname: Some(hostname.into()),
                    ..IngressLoadBalancerIngress::default()
                }]),
            }),
        })
    };
    type Change = fn(&mut Ingress);
    let cases: [(&str, Change, bool); 4] = [
        (
            "resourceVersion",
            |i| i.metadata.resource_version = Some("7".into()),
            false,
        ),
        (
            "an empty status",
            |i| i.status = Some(IngressStatus::default()),
            false,
        ),
        (
            "the ingress class",
            |i| {
                i.spec
                    .get_or_insert_with(Default::default)
                    .ingress_class_name = Some("nginx".into())
            },
            true,
        ),
        (
            "a load balancer address",
            |i| {
                i.status = Some(IngressStatus {
                    load_balancer: Some(IngressLoadBalancerStatus {
                        ingress: Some(vec![IngressLoadBalancerIngress {
                            hostname: Some("lb.example.com".into()),
                            ..IngressLoadBalancerIngress::default()
                        }]),
                    }),
                })
            },
            true,
        ),
    ];
    for (what, change, triggers) in cases {
        for available in [false, true] {
            assert_eq!(changes(&ingress, change, available), triggers, "{what}");
        }
    }
    // Another address is another fingerprint.
    let mut one = ingress.clone();
    one.status = load_balancer("a.example.com");
    let mut two = ingress;
    two.status = load_balancer("b.example.com");
    assert_ne!(fingerprint(&one, true), fingerprint(&two, true));
}

#[test]
fn a_kind_without_observed_status_ignores_its_whole_status() {
    let autoscaler = HorizontalPodAutoscaler {
        metadata: meta(),
        spec: Default::default(),
        status: None,
    };
    let mut scaled = autoscaler.clone();
    scaled.status = Some(HorizontalPodAutoscalerStatus {
        current_replicas: Some(4),
        desired_replicas: 6,
        ..HorizontalPodAutoscalerStatus::default()
    });
    for available in [false, true] {
        assert_eq!(
            fingerprint(&autoscaler, available),
            fingerprint(&scaled, available)
        );
    }
}

#[test]
fn a_storefront_triggers_on_spec_generation_and_metadata_never_on_status() {
    let before = || {
        let mut storefront = sample_storefront("acme", "premium");
        storefront.metadata.generation = Some(1);
        storefront.metadata.resource_version = Some("10".into());
        storefront
    };
    type Change = fn(&mut Storefront);
    let cases: [(&str, Change, bool); 9] = [
        ("nothing", |_| {}, false),
        (
            "its status",
            |s| {
                s.status = Some(crate::crd::StorefrontStatus {
                    phase: Some(crate::crd::Phase::Ready),
                    ..Default::default()
                })
            },
            false,
        ),
        (
            "resourceVersion",
            |s| s.metadata.resource_version = Some("11".into()),
            false,
        ),
        (
            "managedFields",
            |s| s.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]),
            false,
        ),
        (
            "a new generation (a spec edit)",
            |s| s.metadata.generation = Some(2),
            true,
        ),
        (
            "deletionTimestamp",
            |s| s.metadata.deletion_timestamp = Some(time()),
            true,
        ),
        (
            "finalizers",
            |s| s.metadata.finalizers = Some(vec!["emporium.dev/cleanup".into()]),
            true,
        ),
        (
            "a label",
            |s| s.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into()),
            true,
        ),
        (
            "an annotation (a person asking for a reconcile)",
            |s| s.metadata.annotations = Some([("poke".to_owned(), "1".to_owned())].into()),
            true,
        ),
    ];
    for (what, change, triggers) in cases {
        let mut after = before();
        change(&mut after);
        assert_eq!(
            storefront_fingerprint(&before()) != storefront_fingerprint(&after),
            triggers,
            "{what}"
        );
    }
}
