//! The local control plane as tests use it: kubectl as the cluster admin, the Storefront API
//! installed, server-side apply, namespaces of a test's own and clean-up of a run's Storefronts.

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DeleteParams, Patch, PatchParams, PostParams},
};

use crate::{Stack, eventually, unique, workspace_root};

/// A namespace of its own for one test, deleted when dropped.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Creates `<prefix>-<random>`, labelled `emporium.dev/test=true`.
    pub async fn create(client: &Client, prefix: &str) -> anyhow::Result<Self> {
        let name = unique(&format!("{prefix}-"));
        create_namespace(client, &name).await?;
        Ok(Self {
            name,
            client: client.clone(),
        })
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let (client, name) = (self.client.clone(), self.name.clone());
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let _ = Api::<Namespace>::all(client)
                    .delete(&name, &DeleteParams::default())
                    .await;
            });
        }
    }
}

/// Creates namespace `name`, labelled `emporium.dev/test=true`; the caller deletes it.
pub async fn create_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    let ns: Namespace = serde_json::from_value(serde_json::json!({
        "metadata": { "name": name, "labels": { "emporium.dev/test": "true" } }
    }))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    Ok(())
}

/// Server-side applies `value` as `name` (forced, field manager `emporium-tests`), the way
/// `kubectl apply --server-side --force-conflicts` does.
pub async fn apply<K>(api: &Api<K>, name: &str, value: serde_json::Value) -> Result<K, kube::Error>
where
    K: kube::Resource + Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply("emporium-tests").force(),
        &Patch::Apply(&value),
    )
    .await
}

/// Runs the stack's kubectl as the cluster admin; returns (success, stdout, stderr).
pub fn kubectl_output(args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new(workspace_root().join(".bin/kubectl"))
        .args(args)
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

/// Runs the stack's kubectl as the cluster admin: its stdout, or an error with its output.
pub fn try_kubectl(args: &[&str]) -> anyhow::Result<String> {
    let (ok, stdout, stderr) = kubectl_output(args);
    anyhow::ensure!(ok, "kubectl {args:?} failed: {stdout}{stderr}");
    Ok(stdout)
}

/// Runs the stack's kubectl as the cluster admin and fails the test when it fails.
pub fn kubectl(args: &[&str]) -> String {
    try_kubectl(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Installs the Storefront API and the example plans, as a platform team does with kubectl.
pub fn install_storefront_api() {
    install_storefront_api_with(&[]);
}

/// [`install_storefront_api`] with kubectl flags first (`--kubeconfig` of another control plane).
pub fn install_storefront_api_with(flags: &[&str]) {
    let root = workspace_root();
    let path = |p: &str| root.join(p).to_string_lossy().into_owned();
    let run = |args: &[&str]| kubectl(&[flags, args].concat());
    run(&["apply", "--server-side", "-f", &path("crds")]);
    run(&[
        "wait",
        "--for=condition=Established",
        "crd/storefronts.emporium.dev",
        "crd/storefrontplans.emporium.dev",
        "--timeout=60s",
    ]);
    run(&["apply", "--server-side", "-f", &path("examples/plans.yaml")]);
}

/// Server-side applies the checked-in CRDs (`crds/`) through the API and waits until the API
/// server serves them.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in [
        "storefronts.emporium.dev.yaml",
        "storefrontplans.emporium.dev.yaml",
    ] {
        let text = std::fs::read_to_string(workspace_root().join("crds").join(file))?;
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text)?;
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(
            &name,
            &PatchParams::apply("emporium-tests").force(),
            &Patch::Apply(&crd),
        )
        .await?;
        eventually(
            "CRD established",
            std::time::Duration::from_secs(60),
            || async {
                let crd = crds.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(established.then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// Takes the Storefronts matching `selector` off the shared API server when no operator runs
/// any more: their finalizers are dropped, then they are deleted without waiting. Errors are
/// ignored (this runs from `Drop`, pass or fail).
pub fn remove_storefronts(selector: &str) {
    let (_, names, _) = kubectl_output(&["get", "storefronts", "-l", selector, "-o", "name"]);
    for name in names.lines() {
        let _ = kubectl_output(&[
            "patch",
            name,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
    }
    let _ = kubectl_output(&["delete", "storefronts", "-l", selector, "--wait=false"]);
}
