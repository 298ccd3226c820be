//! What the API server refuses on `kubectl apply` (each message names the field), and what only
//! a reconcile can find, shown as a `Ready` condition with a reason rather than only in a log.

mod common;

use std::time::Duration;

use common::{plan, start_operator, storefront};
use emporium_integration_tests::{
    Stack, apply, eventually, install_crds, kubectl_output, remove_storefronts, unique,
};
use emporium_operator::crd::{Storefront, StorefrontPlan};
use kube::{Api, api::DeleteParams};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

/// `kubectl apply -f` of `object`: whether it was accepted, and kubectl's output.
fn kubectl_apply(object: &Value) -> (bool, String) {
    let path = std::env::temp_dir().join(format!("{}.json", unique("sf-validation-")));
    std::fs::write(&path, object.to_string()).expect("write the manifest");
    let (ok, stdout, stderr) = kubectl_output(&["apply", "-f", &path.to_string_lossy()]);
    let _ = std::fs::remove_file(&path);
    (ok, format!("{stdout}{stderr}"))
}

#[tokio::test]
async fn kubectl_apply_refuses_unroutable_domains_and_foreign_secrets_naming_the_field()
-> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("valid-");
    let with_domain = |domain: &str| storefront(&run, "basic", &run, &[domain]);
    let cases: Vec<(&str, Value, &[&str])> = vec![
        (
            "an IPv4 literal",
            with_domain("127.0.0.1"),
            &["spec.domains[0]", "not an IP address"],
        ),
        (
            "a single-label host",
            with_domain("localhost"),
            &["spec.domains[0]", "single-label host"],
        ),
        (
            "a wildcard",
            with_domain("*.example.com"),
            &["spec.domains[0]", "wildcard hostnames are not supported"],
        ),
        (
            "a payments Secret in kube-system",
            {
                let mut sf = with_domain(&format!("{run}.example.com"));
                sf["spec"]["payments"] = json!({
                    "provider": "stripe",
                    "secretRef": { "namespace": "kube-system", "name": "stripe" },
                });
                sf
            },
            &[
                "spec.payments.secretRef.namespace",
                "the tenant's own namespace",
            ],
        ),
    ];
    for (what, object, expected) in cases {
        let (accepted, output) = kubectl_apply(&object);
        assert!(!accepted, "{what} was accepted: {output}");
        for part in expected {
            assert!(output.contains(part), "{what}: `{output}` lacks `{part}`");
        }
    }

    // The tenant's own namespace is accepted, and so is leaving the namespace out.
    let mut own = with_domain(&format!("{run}.example.com"));
    own["spec"]["payments"] = json!({
        "provider": "stripe",
        "secretRef": { "namespace": format!("store-{run}"), "name": "stripe" },
    });
    let (accepted, output) = kubectl_apply(&own);
    assert!(accepted, "{output}");

    // Adoption is fixed at creation: neither added nor changed later.
    let mut adopted = own.clone();
    adopted["spec"]["catalog"] = json!({ "existingTables": { "catalog": "legacy-catalog" } });
    let (accepted, output) = kubectl_apply(&adopted);
    assert!(!accepted, "existingTables added after creation: {output}");
    assert!(
        output.contains("spec.catalog") && output.contains("catalog.existingTables is fixed"),
        "{output}"
    );
    let name = format!("{run}-adopt");
    let mut first = storefront(&name, "basic", &run, &[&format!("{name}.example.com")]);
    first["spec"]["catalog"] = json!({ "existingTables": { "catalog": "legacy-catalog" } });
    let (accepted, output) = kubectl_apply(&first);
    assert!(accepted, "{output}");
    first["spec"]["catalog"]["existingTables"]["catalog"] = json!("someone-elses-catalog");
    let (accepted, output) = kubectl_apply(&first);
    assert!(!accepted, "existingTables changed: {output}");
    assert!(
        output.contains("catalog.existingTables is fixed"),
        "{output}"
    );
    let mut cluster = storefront(&name, "basic", &run, &[&format!("{name}.example.com")]);
    cluster["spec"]["catalog"] = first["spec"]["catalog"].clone();
    cluster["spec"]["catalog"]["existingTables"]["catalog"] = json!("legacy-catalog");
    cluster["spec"]["database"] = json!({ "existingClusterIdentifier": "legacy-cluster" });
    let (accepted, output) = kubectl_apply(&cluster);
    assert!(!accepted, "existingClusterIdentifier added: {output}");
    assert!(
        output.contains("database.existingClusterIdentifier is fixed"),
        "{output}"
    );

    remove_storefronts(&format!("emporium.dev/test-run={run}"));
    Ok(())
}

#[tokio::test]
async fn what_only_a_reconcile_finds_is_a_condition_with_a_reason() -> anyhow::Result<()> {
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("recval-");
    let plans: Api<StorefrontPlan> = Api::all(client.clone());
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let operator = start_operator(&client, &run);
    let pooled = format!("{run}-pooled");
    apply(&plans, &pooled, plan(&pooled, "pooled", 2)).await?;
    apply(&plans, &run, plan(&run, "dedicated", 2)).await?;

    // Adoption on a pooled plan: the schema cannot see the plan's tier, the reconcile can.
    let adopting = format!("{run}-adopt");
    let mut object = storefront(
        &adopting,
        &pooled,
        &run,
        &[&format!("{adopting}.example.com")],
    );
    object["spec"]["catalog"] = json!({ "existingTables": { "catalog": "legacy-catalog" } });
    apply(&storefronts, &adopting, object).await?;

    // A payments Secret that does not exist in the tenant's namespace.
    let paying = format!("{run}-pay");
    let mut object = storefront(&paying, &run, &run, &[&format!("{paying}.example.com")]);
    object["spec"]["payments"] = json!({ "provider": "stripe", "secretRef": { "name": "absent" } });
    apply(&storefronts, &paying, object).await?;

    for (name, reason, words) in [
        (
            &adopting,
            "DedicatedOnlyField",
            "spec.catalog.existingTables",
        ),
        (&paying, "PaymentsSecretMissing", "absent"),
    ] {
        let ready = eventually(&format!("{name}: Ready=False {reason}"), WAIT, || async {
            let sf = storefronts.get(name).await?;
            Ok(sf
                .status
                .unwrap_or_default()
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.reason == reason))
        })
        .await?;
        assert_eq!(ready.status, "False");
        assert!(ready.message.contains(words), "{}", ready.message);
    }

    for name in [&adopting, &paying] {
        storefronts.delete(name, &DeleteParams::default()).await?;
    }
    eventually("Storefronts gone", WAIT, || async {
        let left = storefronts
            .list(&kube::api::ListParams::default().labels(&format!("emporium.dev/test-run={run}")))
            .await?;
        Ok(left.items.is_empty().then_some(()))
    })
    .await?;
    plans.delete(&pooled, &DeleteParams::default()).await?;
    plans.delete(&run, &DeleteParams::default()).await?;
    operator.abort();
    Ok(())
}
