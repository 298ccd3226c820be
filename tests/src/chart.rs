//! The Helm chart (`charts/emporium`) as `helm template` renders it, with the stack's helm.

use std::process::Command;

use crate::workspace_root;

/// `helm template <release> charts/emporium --namespace <namespace> <extra...>`: the rendered
/// manifests; fails the test when helm is missing or refuses.
pub fn helm_template(release: &str, namespace: &str, extra: &[&str]) -> String {
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
            release,
            "charts/emporium",
            "--namespace",
            namespace,
        ])
        .args(extra)
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm template {extra:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the stack's helm against the local control plane (its kubeconfig): (success, stdout,
/// stderr).
pub fn helm(args: &[&str]) -> (bool, String, String) {
    let root = workspace_root();
    let helm = root.join(".bin/helm");
    assert!(
        helm.exists(),
        "{} is missing: run scripts/install-tools.sh (make test does)",
        helm.display()
    );
    let out = Command::new(&helm)
        .current_dir(&root)
        .args(args)
        .env(
            "KUBECONFIG",
            crate::Stack::get().var("KUBECONFIG").expect("KUBECONFIG"),
        )
        .output()
        .expect("run helm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
