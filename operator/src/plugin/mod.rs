//! `kubectl emporium`: the platform team's terminal view of the fleet (a kubectl plugin: the
//! binary `kubectl-emporium` on `PATH` is what `kubectl emporium ...` runs).
//!
//! - `status NAME`: one screen about one store: phase and conditions, database, tables,
//!   ingress group, the Deployment and pods serving it, the runtime's own `/readyz`, recent
//!   events.
//! - `tenants`: the fleet, one line per Storefront (phase, plan, tier, runtime version).
//! - `pause NAME` / `resume NAME`: stop and restart reconciling a store (nothing is deleted).
//! - `completion SHELL`: a completion script for bash, zsh, fish, elvish or PowerShell.
//!
//! Talks only to the API server, with the caller's kubeconfig and RBAC (read Storefronts,
//! Deployments, HPAs, pods and Events; `pods/proxy` for the health probe; patch Storefronts
//! for pause/resume).

mod gather;
mod table;
pub mod view;

use std::path::PathBuf;

use clap::{CommandFactory as _, Parser, Subcommand};
use kube::{
    Client, Config,
    config::{KubeConfigOptions, Kubeconfig},
};

/// Why a `kubectl emporium` command failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error(
        "no Storefront named `{0}` (`kubectl emporium tenants` lists them; Storefronts are cluster-scoped, no namespace needed)"
    )]
    NotFound(String),
    #[error("cannot {what}: {source} (check the kubeconfig context and that your RBAC allows it)")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("cannot read the kubeconfig {path}: {source}")]
    Kubeconfig {
        path: PathBuf,
        #[source]
        source: kube::config::KubeconfigError,
    },
    #[error(
        "cannot find a cluster to talk to: {0} (set KUBECONFIG, pass --kubeconfig, or run inside a pod)"
    )]
    Config(String),
    #[error("cannot connect to the API server: {0}")]
    Client(#[source] kube::Error),
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    #[error("cannot render JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// Emporium's view of the fleet, for platform engineers (a kubectl plugin).
#[derive(Debug, Parser)]
#[command(name = "kubectl-emporium", bin_name = "kubectl emporium", version, about, long_about = None)]
pub struct Cli {
    /// The kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true)]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// One screen about one store: conditions, database, tables, routing, pods, runtime health, cost, events.
    Status {
        /// The Storefront's name.
        name: String,
        /// Do not ask the runtime's /readyz through the API server's pod proxy.
        #[arg(long)]
        no_probe: bool,
    },
    /// The fleet: one line per Storefront with tier, plan, phase, Ready, runtime version and estimated monthly cost.
    Tenants {
        /// Only Storefronts in this phase (Provisioning, Ready, Failed, Paused, Deleting, Pending).
        #[arg(long)]
        phase: Option<String>,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Stop reconciling a store (spec.paused=true); nothing is deleted, shoppers keep being served.
    Pause {
        /// The Storefront's name.
        name: String,
    },
    /// Reconcile a paused store again (spec.paused=false).
    Resume {
        /// The Storefront's name.
        name: String,
    },
    /// Print a shell completion script (e.g. `kubectl-emporium completion bash > /etc/bash_completion.d/kubectl-emporium`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

async fn client(cli: &Cli) -> Result<Client, PluginError> {
    let options = KubeConfigOptions {
        context: cli.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &cli.kubeconfig {
        Some(path) => {
            let kubeconfig =
                Kubeconfig::read_from(path).map_err(|source| PluginError::Kubeconfig {
                    path: path.clone(),
                    source,
                })?;
            Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| PluginError::Config(e.to_string()))?
        }
        None if cli.context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| PluginError::Config(e.to_string()))?,
        None => Config::infer()
            .await
            .map_err(|e| PluginError::Config(e.to_string()))?,
    };
    Client::try_from(config).map_err(PluginError::Client)
}

/// Runs one command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut impl std::io::Write) -> Result<(), PluginError> {
    if let Command::Completion { shell } = &cli.command {
        let mut command = Cli::command();
        clap_complete::generate(*shell, &mut command, "kubectl-emporium", out);
        return Ok(());
    }
    let client = client(&cli).await?;
    match &cli.command {
        Command::Status { name, no_probe } => {
            let view = gather::tenant(&client, name, !no_probe).await?;
            out.write_all(view::render_status(&view).as_bytes())?;
        }
        Command::Tenants { phase, output } => {
            let rows = gather::fleet(&client, phase.as_deref()).await?;
            match output {
                Output::Table => out.write_all(view::render_fleet(&rows).as_bytes())?,
                Output::Json => {
                    let json: Vec<serde_json::Value> = rows
                        .iter()
                        .map(|r| {
                            serde_json::json!({
                                "name": r.name, "tier": r.tier, "plan": r.plan,
                                "phase": r.phase, "ready": r.ready, "version": r.version,
                                "url": r.url, "cost": r.cost, "ageSeconds": r.age_seconds,
                            })
                        })
                        .collect();
                    serde_json::to_writer_pretty(&mut *out, &json)?;
                    writeln!(out)?;
                }
            }
        }
        Command::Pause { name } => {
            let changed = gather::set_paused(&client, name, true).await?;
            let note = if changed {
                "paused: the operator stops reconciling it; nothing is deleted and shoppers are still served"
            } else {
                "was already paused"
            };
            writeln!(out, "storefront.emporium.dev/{name} {note}")?;
        }
        Command::Resume { name } => {
            let changed = gather::set_paused(&client, name, false).await?;
            let note = if changed {
                "resumed: the operator reconciles it again"
            } else {
                "was not paused"
            };
            writeln!(out, "storefront.emporium.dev/{name} {note}")?;
        }
        Command::Completion { .. } => unreachable!("handled above"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[tokio::test]
    async fn completion_scripts_name_the_subcommands() {
        let cli = Cli::try_parse_from(["kubectl-emporium", "completion", "bash"]).unwrap();
        let mut out = Vec::new();
        run(cli, &mut out).await.unwrap();
        let script = String::from_utf8(out).unwrap();
        for word in ["status", "tenants", "pause", "resume"] {
            assert!(script.contains(word), "{word} missing from {script}");
        }
    }
}
