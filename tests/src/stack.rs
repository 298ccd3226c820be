//! The running local stack (started by `scripts/stack.sh`, which `make test` runs), found through
//! its env file, and the clients and settings tests take from it.

use std::{collections::HashMap, path::PathBuf, sync::OnceLock};

use anyhow::{Context as _, anyhow};
use kube::{
    Client,
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

/// The stack's settings a child operator or runtime needs in its environment.
pub fn child_env() -> Vec<(String, String)> {
    stack_env(&[
        "KUBECONFIG",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "REDIS_URL",
    ])
}

/// These variables of the stack as `(name, value)` pairs for a child's environment.
pub fn stack_env(names: &[&str]) -> Vec<(String, String)> {
    let stack = Stack::get();
    names
        .iter()
        .map(|k| (k.to_string(), stack.var(k).expect(k).to_owned()))
        .collect()
}
