//! `kubectl emporium` run the way a platform engineer runs it: `kubectl` finds the
//! `kubectl-emporium` binary on `PATH`, against the real API server with an operator
//! reconciling a healthy and a broken Storefront.

mod common;

use std::{path::Path, process::Command, time::Duration};

use common::{plan, start_operator, storefront};
use emporium_integration_tests::{
    Stack, apply, eventually, install_crds, remove_storefronts, unique, workspace_root,
};
use emporium_operator::crd::{Phase, Storefront, StorefrontPlan};
use kube::Api;

const WAIT: Duration = Duration::from_secs(60);

/// `kubectl emporium <args>` with the plugin's directory first on `PATH`: (success, stdout, stderr).
fn kubectl_emporium(args: &[&str]) -> (bool, String, String) {
    let plugin = Path::new(env!("CARGO_BIN_EXE_kubectl-emporium"));
    let path = format!(
        "{}:{}",
        plugin.parent().expect("the plugin's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(workspace_root().join(".bin/kubectl"))
        .arg("emporium")
        .args(args)
        .env("PATH", path)
        .env(
            "KUBECONFIG",
            Stack::get().var("KUBECONFIG").expect("KUBECONFIG"),
        )
        .output()
        .expect("run kubectl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ok(args: &[&str]) -> String {
    let (success, stdout, stderr) = kubectl_emporium(args);
    assert!(
        success,
        "kubectl emporium {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_storefronts(&format!("emporium.dev/test-run={}", self.0));
    }
}

#[tokio::test]
async fn kubectl_emporium_shows_a_healthy_and_a_broken_store_and_pauses_one() -> anyhow::Result<()>
{
    let client = Stack::get().kube().await?;
    install_crds(&client).await?;
    let run = unique("plugin-");
    let _cleanup = Cleanup(run.clone());
    let plans: Api<StorefrontPlan> = Api::all(client.clone());
    let storefronts: Api<Storefront> = Api::all(client.clone());
    let operator = start_operator(&client, &run);

    apply(&plans, &run, plan(&run, "dedicated", 2)).await?;
    let healthy = format!("{run}-ok");
    let broken = format!("{run}-bad");
    apply(
        &storefronts,
        &healthy,
        storefront(&healthy, &run, &run, &[&format!("{healthy}.example.com")]),
    )
    .await?;
    let missing_plan = format!("{run}-missing");
    apply(
        &storefronts,
        &broken,
        storefront(
            &broken,
            &missing_plan,
            &run,
            &[&format!("{broken}.example.com")],
        ),
    )
    .await?;
    for (name, phase) in [(&healthy, Phase::Ready), (&broken, Phase::Failed)] {
        eventually(&format!("{name} {phase:?}"), WAIT, || async {
            let sf = storefronts.get(name).await?;
            Ok((sf.status.and_then(|s| s.phase) == Some(phase)).then_some(()))
        })
        .await?;
    }

    // The healthy store in one screen.
    let screen = ok(&["status", &healthy]);
    for expected in [
        format!("Storefront:    {healthy} (Test Store)"),
        "Phase:         Ready".to_owned(),
        format!("Namespace:     store-{healthy}"),
        format!("Deployment store-{healthy}/storefront"),
        "Runtime version: test".to_owned(),
        "WorkloadReady".to_owned(),
        "Runtime health:".to_owned(),
        format!("Storefront/{healthy}"),
        // The cost estimate and its breakdown (docs/cost.md).
        "Cost: $".to_owned(),
        "COMPONENT".to_owned(),
        "load-balancer".to_owned(),
    ] {
        assert!(
            screen.contains(&expected),
            "`{expected}` missing from:\n{screen}"
        );
    }
    assert!(!screen.contains("(none yet)"), "{screen}");

    // The broken one says why, and what to do.
    let screen = ok(&["status", &broken, "--no-probe"]);
    for expected in [
        "Phase:         Failed",
        "PlanNotFound",
        missing_plan.as_str(),
        "no Deployment found",
        "not asked (--no-probe)",
    ] {
        assert!(
            screen.contains(expected),
            "`{expected}` missing from:\n{screen}"
        );
    }

    // The fleet table, and its JSON.
    let table = ok(&["tenants"]);
    let line = |name: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from:\n{table}"))
            .to_owned()
    };
    let healthy_line = line(&healthy);
    assert!(
        healthy_line.contains("dedicated")
            && healthy_line.contains("Ready")
            && healthy_line.contains(" test "),
        "{healthy_line}"
    );
    assert!(line(&broken).contains("Failed"), "{table}");
    assert!(
        table.lines().next().is_some_and(|h| h.contains(" COST ")),
        "{table}"
    );
    assert!(
        healthy_line
            .split_whitespace()
            .any(|cell| cell.starts_with('$')),
        "a cost: {healthy_line}"
    );
    let json: serde_json::Value = serde_json::from_str(&ok(&["tenants", "-o", "json"]))?;
    let entry = json
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == broken.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(entry["phase"], "Failed", "{json}");
    let healthy_entry = json
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == healthy.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(healthy_entry["cost"]["currency"], "USD", "{json}");
    assert!(
        healthy_entry["cost"]["monthlyEstimate"].is_string()
            && healthy_entry["cost"]["breakdown"].as_array().map(Vec::len) == Some(9),
        "{json}"
    );
    let failed = ok(&["tenants", "--phase", "failed"]);
    assert!(
        failed.contains(&broken) && !failed.contains(&healthy),
        "{failed}"
    );

    // Pause and resume.
    let out = ok(&["pause", &healthy]);
    assert!(out.contains("paused"), "{out}");
    assert!(storefronts.get(&healthy).await?.spec.paused);
    eventually("Paused phase", WAIT, || async {
        let sf = storefronts.get(&healthy).await?;
        Ok((sf.status.and_then(|s| s.phase) == Some(Phase::Paused)).then_some(()))
    })
    .await?;
    assert!(ok(&["pause", &healthy]).contains("already paused"));
    assert!(ok(&["tenants", "--phase", "Paused"]).contains(&healthy));
    assert!(ok(&["resume", &healthy]).contains("resumed"));
    assert!(!storefronts.get(&healthy).await?.spec.paused);

    // A name that does not exist: a clear error and a failing exit code.
    let (success, _, stderr) = kubectl_emporium(&["status", &format!("{run}-nope")]);
    assert!(!success);
    assert!(stderr.contains("no Storefront named"), "{stderr}");

    // --help through kubectl.
    let help = ok(&["--help"]);
    for word in ["status", "tenants", "pause", "resume", "completion"] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
    operator.abort();
    Ok(())
}
