//! The operator's RBAC, checked on the real API server (which runs `--authorization-mode=RBAC`):
//! the chart is rendered with `helm template`, its ServiceAccount, ClusterRole, Role and bindings
//! are applied into a namespace of this run, and `kubectl auth can-i --as=<the operator's
//! ServiceAccount>` answers a matrix of what the operator must and must not be able to do.
//!
//! Least privilege here means: everything the reconcile needs on tenant children anywhere (it
//! creates the namespaces it then fills, so those rules are cluster-wide), status and finalizers
//! on Storefronts, Events, and its leader Lease only in its own namespace; nothing that lets it
//! grant itself more (escalate/bind, ClusterRoles, webhooks, impersonation, tokens), touch
//! nodes, pods or CRDs, or delete a merchant's Storefront or edit the plans.

use emporium_integration_tests::{helm_template, kubectl, kubectl_output, unique, workspace_root};

/// Rendered kinds applied to the API server (the Deployment is not: no image runs here).
const RBAC_KINDS: &[&str] = &[
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
];

/// A tenant namespace (it need not exist: authorization does not look).
const TENANT_NS: &str = "store-rbac-matrix";

/// (verb, resource, namespace or "" for cluster-wide, extra flags) the operator must be allowed.
const MUST: &[(&str, &str, &str)] = &[
    ("watch", "storefronts.emporium.dev", ""),
    ("list", "storefrontplans.emporium.dev", ""),
    ("patch", "storefronts.emporium.dev", TENANT_NS), // finalizers
    ("patch", "storefronts.emporium.dev/status", TENANT_NS),
    ("create", "namespaces", ""),
    ("delete", "namespaces", ""),
    ("create", "secrets", TENANT_NS),
    ("patch", "secrets", TENANT_NS),
    ("create", "serviceaccounts", TENANT_NS),
    ("create", "services", TENANT_NS),
    ("create", "resourcequotas", TENANT_NS),
    ("create", "limitranges", TENANT_NS),
    ("create", "deployments.apps", TENANT_NS),
    ("patch", "deployments.apps", TENANT_NS),
    ("delete", "deployments.apps", TENANT_NS),
    ("patch", "horizontalpodautoscalers.autoscaling", TENANT_NS),
    ("patch", "poddisruptionbudgets.policy", TENANT_NS),
    ("patch", "ingresses.networking.k8s.io", TENANT_NS),
    ("patch", "networkpolicies.networking.k8s.io", TENANT_NS),
    ("create", "roles.rbac.authorization.k8s.io", TENANT_NS),
    (
        "create",
        "rolebindings.rbac.authorization.k8s.io",
        TENANT_NS,
    ),
    ("create", "events.events.k8s.io", TENANT_NS),
    ("patch", "events.events.k8s.io", TENANT_NS),
    ("get", "leases.coordination.k8s.io", "<own>"),
    ("create", "leases.coordination.k8s.io", "<own>"),
    ("update", "leases.coordination.k8s.io", "<own>"),
];

/// What the operator must not be able to do.
const MUST_NOT: &[(&str, &str, &str)] = &[
    ("*", "*", ""),
    ("*", "*", TENANT_NS),
    ("delete", "nodes", ""),
    ("get", "nodes", ""),
    ("create", "pods", TENANT_NS),
    ("create", "pods/exec", TENANT_NS),
    ("create", "serviceaccounts/token", TENANT_NS),
    ("create", "clusterroles.rbac.authorization.k8s.io", ""),
    (
        "create",
        "clusterrolebindings.rbac.authorization.k8s.io",
        "",
    ),
    ("escalate", "roles.rbac.authorization.k8s.io", TENANT_NS),
    ("bind", "roles.rbac.authorization.k8s.io", TENANT_NS),
    ("bind", "clusterroles.rbac.authorization.k8s.io", ""),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", ""),
    ("impersonate", "users", ""),
    ("impersonate", "serviceaccounts", TENANT_NS),
    (
        "create",
        "customresourcedefinitions.apiextensions.k8s.io",
        "",
    ),
    (
        "delete",
        "customresourcedefinitions.apiextensions.k8s.io",
        "",
    ),
    (
        "create",
        "validatingwebhookconfigurations.admissionregistration.k8s.io",
        "",
    ),
    (
        "create",
        "mutatingwebhookconfigurations.admissionregistration.k8s.io",
        "",
    ),
    ("delete", "storefronts.emporium.dev", TENANT_NS),
    ("create", "storefronts.emporium.dev", TENANT_NS),
    ("patch", "storefrontplans.emporium.dev", ""),
    ("delete", "storefrontplans.emporium.dev", ""),
    ("get", "configmaps", "kube-system"),
    ("update", "namespaces/finalize", ""),
    ("delete", "leases.coordination.k8s.io", "<own>"),
    ("get", "leases.coordination.k8s.io", "kube-system"),
    ("update", "leases.coordination.k8s.io", "kube-system"),
    ("create", "persistentvolumes", ""),
    (
        "create",
        "certificatesigningrequests.certificates.k8s.io",
        "",
    ),
];

/// Broad grants the design cannot avoid and the chart README documents: the operator creates
/// tenant namespaces and fills them, so its Secret rules come from a ClusterRole and reach every
/// namespace, kube-system included (RBAC cannot scope a rule to namespaces that do not exist
/// yet, nor to a label). Checked so that a change here is noticed, not because it is wanted.
const DOCUMENTED_BROAD: &[(&str, &str, &str)] = &[
    ("get", "secrets", "kube-system"),
    ("list", "secrets", ""),
    ("delete", "secrets", "kube-system"),
];

/// Removes what the test applied (cluster-scoped objects and the release namespace).
struct Cleanup {
    cluster_scoped: Vec<String>,
    namespace: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for object in &self.cluster_scoped {
            let _ = kubectl_output(&["delete", object, "--ignore-not-found", "--wait=false"]);
        }
        let _ = kubectl_output(&[
            "delete",
            "namespace",
            &self.namespace,
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

fn can_i(subject: &str, namespace: &str, verb: &str, resource: &str, ns: &str) -> bool {
    let ns = if ns == "<own>" { namespace } else { ns };
    let (resource, subresource) = match resource.split_once('/') {
        Some((r, s)) if r != "*" => (r, Some(s)),
        _ => (resource, None),
    };
    let mut args = vec![
        "auth".to_owned(),
        "can-i".to_owned(),
        verb.to_owned(),
        resource.to_owned(),
        format!("--as={subject}"),
        "--as-group=system:serviceaccounts".to_owned(),
        format!("--as-group=system:serviceaccounts:{namespace}"),
        "--as-group=system:authenticated".to_owned(),
    ];
    if let Some(sub) = subresource {
        args.push(format!("--subresource={sub}"));
    }
    if ns.is_empty() {
        args.push("--all-namespaces".to_owned());
    } else {
        args.push(format!("--namespace={ns}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, out, err) = kubectl_output(&args);
    match out.trim() {
        "yes" => true,
        "no" => false,
        other => panic!("kubectl auth can-i {args:?}: unexpected answer {other:?} {err}"),
    }
}

#[test]
fn operator_rbac_allows_what_it_needs_and_nothing_dangerous() {
    let run = unique("");
    let root = workspace_root();
    let namespace = format!("emporium-system-{run}");
    let release = format!("rbac{run}");
    let artifacts = root.join("tests/artifacts/rbac");
    std::fs::create_dir_all(&artifacts).expect("artifacts directory");

    let rendered = helm_template(&release, &namespace, &[]);
    let mut kinds = Vec::new();
    let mut cluster_scoped = Vec::new();
    let docs: Vec<&str> = rendered
        .split("\n---")
        .filter(|doc| {
            let kind = doc
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .map(str::trim)
                .unwrap_or_default();
            let keep = RBAC_KINDS.contains(&kind);
            if keep {
                kinds.push(kind.to_owned());
                let name = doc
                    .lines()
                    .skip_while(|l| !l.starts_with("metadata:"))
                    .find_map(|l| l.trim().strip_prefix("name: "))
                    .unwrap_or_default();
                if kind.starts_with("Cluster") {
                    cluster_scoped.push(format!("{}/{name}", kind.to_lowercase()));
                }
            }
            keep
        })
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "ServiceAccount"
        ],
        "the chart renders one of each RBAC object"
    );
    let manifest = artifacts.join(format!("rbac-{run}.yaml"));
    std::fs::write(&manifest, docs.join("\n---")).expect("write manifest");

    let _cleanup = Cleanup {
        cluster_scoped,
        namespace: namespace.clone(),
    };
    kubectl(&["create", "namespace", &namespace]);
    kubectl(&[
        "apply",
        "--namespace",
        &namespace,
        "-f",
        manifest.to_str().unwrap_or_default(),
    ]);

    let subject = format!("system:serviceaccount:{namespace}:emporium-operator");
    let mut failures = Vec::new();
    let mut report = String::new();
    for (expected, matrix) in [(true, MUST), (false, MUST_NOT), (true, DOCUMENTED_BROAD)] {
        for (verb, resource, ns) in matrix {
            let allowed = can_i(&subject, &namespace, verb, resource, ns);
            let scope = match *ns {
                "" => "all namespaces",
                "<own>" => namespace.as_str(),
                other => other,
            };
            let line = format!(
                "{:<5} {verb} {resource} in {scope} (expected {})\n",
                if allowed { "yes" } else { "no" },
                if expected { "yes" } else { "no" },
            );
            report.push_str(&line);
            if allowed != expected {
                failures.push(line);
            }
        }
    }
    std::fs::write(artifacts.join(format!("matrix-{run}.txt")), &report).ok();
    println!("{report}");
    assert!(
        failures.is_empty(),
        "the operator's RBAC differs from least privilege:\n{}",
        failures.concat()
    );
}
