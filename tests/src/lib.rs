//! Shared harness for the integration tests: finds the running local stack (started by
//! `scripts/stack.sh`, which `make test` runs) through its env file and hands out clients.
//!
//! A test that cannot find the stack fails with a message saying how to start it; it never
//! skips silently.

use std::{collections::HashMap, path::PathBuf, sync::OnceLock};

use anyhow::{Context as _, anyhow};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    Api, Client,
    api::{DeleteParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};

/// What `scripts/stack.sh start` wrote to `.state/env`.
#[derive(Debug, Clone)]
pub struct Stack {
    vars: HashMap<String, String>,
}

impl Stack {
    /// Reads the env file named by `EMPORIUM_ENV_FILE`, or `<workspace>/.state/env`.
    pub fn get() -> &'static Stack {
        static STACK: OnceLock<Stack> = OnceLock::new();
        STACK.get_or_init(|| {
            // ring and aws-lc-rs are both linked in; rustls needs to be told which to use.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            Stack::load().unwrap_or_else(|e| {
                panic!("{e:#}\nStart the local stack first: `make test` does it, or `scripts/stack.sh start`.")
            })
        })
    }

    fn load() -> anyhow::Result<Stack> {
        let path = std::env::var_os("EMPORIUM_ENV_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".state/env"));
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the stack's env file {}", path.display()))?;
        let vars = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("export ").or(Some(l.trim())))
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
            .collect();
        Ok(Stack { vars })
    }

    /// A variable the stack wrote, e.g. `DATABASE_URL`.
    pub fn var(&self, name: &str) -> anyhow::Result<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| anyhow!("the stack's env file has no {name}; is that service started?"))
    }

    /// A kube client for the local control plane, as its admin.
    pub async fn kube(&self) -> anyhow::Result<Client> {
        let kubeconfig = Kubeconfig::read_from(self.var("KUBECONFIG")?)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// A DynamoDB client pointed at moto.
    pub async fn dynamodb(&self) -> anyhow::Result<aws_sdk_dynamodb::Client> {
        Ok(aws_sdk_dynamodb::Client::new(&self.aws().await?))
    }

    /// AWS config for moto: its endpoint, a fixed region and dummy credentials.
    pub async fn aws(&self) -> anyhow::Result<aws_config::SdkConfig> {
        let endpoint = self.var("AWS_ENDPOINT_URL")?;
        Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new(self.var("AWS_REGION")?.to_owned()))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing",
                "testing",
                None,
                None,
                "emporium-tests",
            ))
            .load()
            .await)
    }
}

/// The repository root. Found at run time (`EMPORIUM_ROOT`, else the nearest ancestor of the
/// working directory holding `Cargo.lock`): cargo runs tests from their package directory, and a
/// path baked in at compile time would be wrong when several checkouts share one target directory.
pub fn workspace_root() -> PathBuf {
    if let Some(root) = std::env::var_os("EMPORIUM_ROOT") {
        return PathBuf::from(root);
    }
    let start = std::env::current_dir().unwrap_or_default();
    start
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").exists() && dir.join("tests/controlplane").exists())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default()
        })
}

/// A namespace of its own for one test, deleted when dropped.
pub struct TestNamespace {
    pub name: String,
    client: Client,
}

impl TestNamespace {
    pub async fn create(client: &Client, prefix: &str) -> anyhow::Result<Self> {
        let name = format!(
            "{prefix}-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "emporium.dev/test": "true" } }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await?;
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

/// Polls `check` every 200 ms until it returns `Some`, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(
    what: &str,
    timeout: std::time::Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last_error = Some(e),
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => e.context(format!("{what}: not within {timeout:?}")),
                None => anyhow!("{what}: not within {timeout:?}"),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A real binary of the workspace (the operator, the runtime) run as a child process for one
/// test: SIGTERM, then SIGKILL, when dropped, pass or fail. Its stdout and stderr go to a log
/// file.
pub struct Process {
    child: std::process::Child,
    log: PathBuf,
}

impl Process {
    /// Starts `binary` from the target directory cargo built the tests into.
    pub fn start(
        binary: &str,
        args: &[String],
        log: &std::path::Path,
        env: &[(String, String)],
    ) -> Self {
        use std::process::{Command, Stdio};
        let path = binaries_dir().join(binary);
        assert!(
            path.exists(),
            "{} is missing: run `cargo build -p emporium-operator -p emporium-storefront --bins` (make test does)",
            path.display()
        );
        let log_file = std::fs::File::create(log).expect("create log file");
        let child = Command::new(&path)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
        Self {
            child,
            log: log.to_path_buf(),
        }
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, no chance to clean up (a crashed pod, an OOM kill); waits for the exit.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Fails the test with the process's log when it has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "{} exited ({status}); last lines:\n{}",
                self.log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // SIGTERM first so the binaries shut down the way they do in a cluster.
        let _ = std::process::Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `target/<profile>/`, where cargo puts the workspace's binaries (tests run from `deps/`).
pub fn binaries_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    exe.parent()
        .and_then(std::path::Path::parent)
        .map(std::path::Path::to_path_buf)
        .expect("target directory")
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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

/// Runs the stack's kubectl as the cluster admin and fails the test when it fails.
pub fn kubectl(args: &[&str]) -> String {
    let (ok, stdout, stderr) = kubectl_output(args);
    assert!(ok, "kubectl {args:?} failed: {stdout}{stderr}");
    stdout
}

/// Installs the Storefront API and the example plans, as a platform team does with kubectl.
pub fn install_storefront_api() {
    let root = workspace_root();
    let path = |p: &str| root.join(p).to_string_lossy().into_owned();
    kubectl(&["apply", "--server-side", "-f", &path("crds")]);
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/storefronts.emporium.dev",
        "crd/storefrontplans.emporium.dev",
        "--timeout=60s",
    ]);
    kubectl(&["apply", "--server-side", "-f", &path("examples/plans.yaml")]);
}

/// The stack's settings a child operator or runtime needs in its environment.
pub fn child_env() -> Vec<(String, String)> {
    let stack = Stack::get();
    [
        "KUBECONFIG",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "REDIS_URL",
    ]
    .iter()
    .map(|k| (k.to_string(), stack.var(k).expect(k).to_owned()))
    .collect()
}

/// Flags for a real operator on the local stack: databases on its PostgreSQL, tables on moto,
/// reconciling only Storefronts matching `selector`, naming everything with `prefix`.
pub fn operator_args(
    port: u16,
    selector: &str,
    prefix: &str,
    pool_namespace: &str,
    password_key: &str,
) -> Vec<String> {
    let stack = Stack::get();
    vec![
        format!("--http-addr=127.0.0.1:{port}"),
        "--log-format=json".into(),
        "--database-provider=postgres".into(),
        "--tables-provider=dynamodb".into(),
        format!(
            "--postgres-admin-url={}",
            stack.var("DATABASE_URL").expect("DATABASE_URL")
        ),
        format!("--postgres-password-key={password_key}"),
        "--postgres-tenant-host=127.0.0.1".into(),
        format!(
            "--postgres-tenant-port={}",
            stack.var("PGPORT").expect("PGPORT")
        ),
        // No load balancer controller here: routing is ready once the Ingress is applied.
        "--readiness-gate=applied".into(),
        format!("--storefront-selector={selector}"),
        format!("--name-prefix={prefix}"),
        format!("--pool-namespace={pool_namespace}"),
    ]
}

/// Server-side applies the checked-in CRDs (`crds/`) through the API and waits until the API
/// server serves them.
pub async fn install_crds(client: &Client) -> anyhow::Result<()> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};

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
