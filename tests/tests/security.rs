//! What every pod Emporium deploys must look like (issue 8, security): non-root, read-only root
//! filesystem, no privilege escalation, no capabilities, no host access; a NetworkPolicy beside
//! every tenant; images that run as a numeric non-root user.
//!
//! Checked on what users actually get: the Helm chart as `helm template` renders it (with each
//! provider), and the operator's rendered tenant objects (the build snapshots, which
//! `operator/src/reconcile/build/tests.rs` keeps identical to what the operator applies).

use std::process::Command;

use emporium_integration_tests::workspace_root;
use serde_json::Value;

/// Every document of a multi-document YAML stream, as JSON values.
fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---")
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.starts_with('#'))
        })
        .map(|d| serde_yaml::from_str::<Value>(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn name_of(doc: &Value) -> String {
    format!(
        "{}/{}",
        doc["kind"].as_str().unwrap_or("?"),
        doc["metadata"]["name"].as_str().unwrap_or("?")
    )
}

/// The pod template of a workload, if `doc` is one.
fn pod_spec(doc: &Value) -> Option<&Value> {
    match doc["kind"].as_str()? {
        "Deployment" | "StatefulSet" | "DaemonSet" | "Job" => {
            Some(&doc["spec"]["template"]["spec"])
        }
        "Pod" => Some(&doc["spec"]),
        _ => None,
    }
}

/// Every hardening rule a pod must follow; returns the violations.
fn violations(doc: &Value) -> Vec<String> {
    let Some(pod) = pod_spec(doc) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let who = name_of(doc);
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[key] == Value::Bool(true) {
            out.push(format!("{who}: {key} is on"));
        }
    }
    if pod["volumes"]
        .as_array()
        .is_some_and(|v| v.iter().any(|v| v.get("hostPath").is_some()))
    {
        out.push(format!("{who}: mounts a hostPath"));
    }
    if pod["automountServiceAccountToken"] == Value::Bool(true) && who.contains("storefront") {
        out.push(format!(
            "{who}: mounts a service account token it does not need"
        ));
    }
    let pod_ctx = &pod["securityContext"];
    let containers = pod["containers"]
        .as_array()
        .into_iter()
        .chain(pod["initContainers"].as_array())
        .flatten();
    let mut count = 0;
    for c in containers {
        count += 1;
        let ctx = &c["securityContext"];
        let name = format!("{who} container {}", c["name"].as_str().unwrap_or("?"));
        let non_root = ctx["runAsNonRoot"]
            .as_bool()
            .or(pod_ctx["runAsNonRoot"].as_bool());
        if non_root != Some(true) {
            out.push(format!("{name}: runAsNonRoot is not true"));
        }
        let uid = ctx["runAsUser"].as_i64().or(pod_ctx["runAsUser"].as_i64());
        if uid == Some(0) {
            out.push(format!("{name}: runs as uid 0"));
        }
        if ctx["readOnlyRootFilesystem"] != Value::Bool(true) {
            out.push(format!("{name}: readOnlyRootFilesystem is not true"));
        }
        if ctx["allowPrivilegeEscalation"] != Value::Bool(false) {
            out.push(format!("{name}: allowPrivilegeEscalation is not false"));
        }
        if ctx["privileged"] == Value::Bool(true) {
            out.push(format!("{name}: privileged"));
        }
        let drops_all = ctx["capabilities"]["drop"]
            .as_array()
            .is_some_and(|d| d.iter().any(|c| c == "ALL"));
        if !drops_all {
            out.push(format!("{name}: does not drop ALL capabilities"));
        }
        if ctx["capabilities"]["add"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            out.push(format!("{name}: adds capabilities"));
        }
        let seccomp = ctx["seccompProfile"]["type"]
            .as_str()
            .or(pod_ctx["seccompProfile"]["type"].as_str());
        if !matches!(seccomp, Some("RuntimeDefault" | "Localhost")) {
            out.push(format!("{name}: no RuntimeDefault seccomp profile"));
        }
    }
    if count == 0 {
        out.push(format!("{who}: has no containers"));
    }
    out
}

fn helm_template(extra: &[&str]) -> String {
    let root = workspace_root();
    let helm = root.join(".bin/helm");
    assert!(
        helm.exists(),
        "{} is missing: run scripts/install-tools.sh (make test does)",
        helm.display()
    );
    let out = Command::new(&helm)
        .current_dir(&root)
        .args([
            "template",
            "emporium",
            "charts/emporium",
            "--namespace",
            "emporium-system",
        ])
        .args(extra)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_chart_renders_only_hardened_pods() {
    let variants: [&[&str]; 3] = [
        &[],
        &[
            "--set",
            "providers.database=postgres",
            "--set",
            "providers.postgres.secretName=pg-admin",
        ],
        &[
            "--set",
            "providers.database=aurora",
            "--set",
            "providers.aurora.subnetGroup=emporium-db",
            "--set",
            "providers.tables=dynamodb",
        ],
    ];
    for extra in variants {
        let docs = documents(&helm_template(extra));
        let workloads: Vec<&Value> = docs.iter().filter(|d| pod_spec(d).is_some()).collect();
        assert!(
            !workloads.is_empty(),
            "helm template {extra:?} rendered no workload"
        );
        let bad: Vec<String> = workloads.iter().flat_map(|d| violations(d)).collect();
        assert!(
            bad.is_empty(),
            "helm template {extra:?}:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn every_tenant_pod_is_hardened_and_fenced_by_a_network_policy() {
    let dir = workspace_root().join("operator/src/reconcile/build/snapshots");
    let mut workloads = 0;
    for entry in std::fs::read_dir(&dir).expect("build snapshots") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "snap") {
            continue;
        }
        // An insta snapshot: a header document (source, expression), then the objects as a list.
        let docs: Vec<Value> = documents(&std::fs::read_to_string(&path).unwrap())
            .into_iter()
            .skip(1)
            .flat_map(|list| list.as_array().cloned().unwrap_or_default())
            .collect();
        let bad: Vec<String> = docs.iter().flat_map(violations).collect();
        assert!(bad.is_empty(), "{}:\n{}", path.display(), bad.join("\n"));
        let has_workload = docs.iter().any(|d| pod_spec(d).is_some());
        workloads += usize::from(has_workload);
        if has_workload {
            let policy = docs
                .iter()
                .find(|d| d["kind"] == "NetworkPolicy")
                .unwrap_or_else(|| {
                    panic!("{}: a workload without a NetworkPolicy", path.display())
                });
            let types = policy["spec"]["policyTypes"].to_string();
            assert!(
                types.contains("Ingress"),
                "{}: the NetworkPolicy does not restrict ingress: {types}",
                path.display()
            );
        }
    }
    assert!(
        workloads >= 2,
        "expected the dedicated and pool workloads in {}",
        dir.display()
    );
}

#[test]
fn images_run_as_a_numeric_non_root_user() {
    for dockerfile in ["operator/Dockerfile", "storefront/Dockerfile"] {
        let text = std::fs::read_to_string(workspace_root().join(dockerfile)).unwrap();
        // The last USER of the final stage decides.
        let user = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("USER "))
            .next_back()
            .unwrap_or_else(|| panic!("{dockerfile}: no USER"));
        let uid = user.split(':').next().unwrap().trim();
        let uid: u32 = uid.parse().unwrap_or_else(|_| {
            panic!("{dockerfile}: USER {user} is not numeric (runAsNonRoot needs a uid)")
        });
        assert_ne!(uid, 0, "{dockerfile}: runs as root");
    }
}
