//! The chart's monitoring (templates/monitoring/): its PrometheusRule is valid and its alerts
//! fire as `tests/monitoring/rules-test.yaml` says under Prometheus' own `promtool`; every
//! Grafana panel's query parses; every operator metric they name exists.

use std::{collections::BTreeSet, path::Path, process::Command};

use emporium_integration_tests::{helm_template, workspace_root};
use serde::Deserialize as _;
use serde_json::Value;

const NAMESPACE: &str = "emporium-system";

fn rendered() -> Vec<Value> {
    let out = helm_template(
        "emporium",
        NAMESPACE,
        &[
            "--set",
            "monitoring.serviceMonitor.enabled=true,monitoring.prometheusRules.enabled=true,monitoring.grafanaDashboard.enabled=true",
        ],
    );
    serde_yaml::Deserializer::from_str(&out)
        .filter_map(|doc| Value::deserialize(doc).ok())
        .filter(|v| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let promtool = workspace_root().join(".bin/promtool");
    assert!(
        promtool.exists(),
        "{} is missing: run scripts/install-tools.sh (make test does)",
        promtool.display()
    );
    let out = Command::new(&promtool)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

/// Metric names a PromQL expression reads (identifiers followed by `{`, `[` or a space that
/// start with one of our prefixes).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
        if word.starts_with("emporium_operator_") || word.starts_with("storefront_") {
            names.insert(word.to_owned());
        }
    }
    names
}

#[test]
fn the_chart_alerts_pass_promtool_and_fire_as_specified() {
    let docs = rendered();
    let rules = of_kind(&docs, "PrometheusRule");
    assert_eq!(rules.len(), 1, "one PrometheusRule");
    assert_eq!(of_kind(&docs, "ServiceMonitor").len(), 1);
    assert_eq!(of_kind(&docs, "PodMonitor").len(), 1);

    let dir = tempdir();
    let groups = serde_json::json!({ "groups": rules[0]["spec"]["groups"] });
    std::fs::write(
        dir.join("rules.yaml"),
        serde_yaml::to_string(&groups).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        workspace_root().join("tests/monitoring/rules-test.yaml"),
        dir.join("rules-test.yaml"),
    )
    .unwrap();
    let checked = promtool(&["check", "rules", "rules.yaml"], &dir);
    assert!(checked.contains("SUCCESS"), "{checked}");
    promtool(&["test", "rules", "rules-test.yaml"], &dir);

    // Every alert has a test case, so a new alert cannot ship untested.
    let tests = std::fs::read_to_string(dir.join("rules-test.yaml")).unwrap();
    for group in groups["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            if let Some(alert) = rule["alert"].as_str() {
                assert!(
                    tests.contains(&format!("alertname: {alert}")),
                    "alert {alert} has no case in tests/monitoring/rules-test.yaml"
                );
            }
        }
    }
}

#[test]
fn every_dashboard_query_parses_and_every_operator_metric_exists() {
    let docs = rendered();
    let maps = of_kind(&docs, "ConfigMap");
    let dashboard = maps
        .iter()
        .find(|m| m["metadata"]["name"] == "emporium-dashboard")
        .expect("the dashboard ConfigMap");
    let json: Value = serde_json::from_str(dashboard["data"]["emporium.json"].as_str().unwrap())
        .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for panel in json["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(
                target["expr"]
                    .as_str()
                    .expect("expr")
                    .replace("$storefront", ".*"),
            );
        }
    }
    assert!(exprs.len() >= 10, "{exprs:?}");

    // promtool parses PromQL in rule files: each query as a recording rule.
    let rules: Vec<Value> = exprs
        .iter()
        .enumerate()
        .map(|(i, e)| serde_json::json!({ "record": format!("dashboard:query{i}"), "expr": e }))
        .collect();
    let dir = tempdir();
    let file = serde_json::json!({ "groups": [{ "name": "dashboard", "rules": rules }] });
    std::fs::write(
        dir.join("dashboard.yaml"),
        serde_yaml::to_string(&file).unwrap(),
    )
    .unwrap();
    promtool(&["check", "rules", "dashboard.yaml"], &dir);

    // The operator's metrics the dashboard and the alerts read are ones it exports.
    let rule_docs = of_kind(&docs, "PrometheusRule");
    let mut names: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for group in rule_docs[0]["spec"]["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            names.extend(metric_names(rule["expr"].as_str().unwrap()));
        }
    }
    // Families without a sample are not rendered: record one of each first.
    let metrics = emporium_operator::metrics::Metrics::new();
    metrics.reconcile_started();
    metrics.reconcile_finished(std::time::Duration::from_millis(5));
    metrics.reconcile_failed("Example");
    metrics.api_write("patch", "Deployment");
    metrics.apply_skipped("Deployment");
    metrics.set_leader(true);
    metrics.set_phase("acme", Some(emporium_operator::crd::Phase::Ready));
    let exported = metrics.render();
    for name in names.iter().filter(|n| n.starts_with("emporium_operator_")) {
        let family = name.trim_end_matches("_bucket").trim_end_matches("_total");
        assert!(
            exported.contains(&format!("# TYPE {family} ")),
            "{name} is not an operator metric:\n{exported}"
        );
    }
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("emporium-monitoring-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
