//! `emporium-operator`: watches `Storefront` resources and reconciles each tenant.

mod telemetry;

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::{Router, routing::get};
use clap::Parser;

/// The Emporium operator.
///
/// Connects to the cluster from the in-cluster service account, or from $KUBECONFIG /
/// ~/.kube/config when run outside a cluster.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address for /healthz and /readyz.
    #[arg(
        long,
        env = "EMPORIUM_OPERATOR_HTTP_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    http_addr: SocketAddr,
    /// Log format: `json` for log pipelines, `text` for a terminal.
    #[arg(long, env = "EMPORIUM_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(args.log_format, "info,kube=warn");
    // ring and aws-lc-rs are both linked in; rustls needs to be told which to use.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = kube::Client::try_default()
        .await
        .context("cannot build a Kubernetes client: set KUBECONFIG or run in a cluster")?;
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    tracing::info!(server = %version.git_version, "connected to the Kubernetes API server");

    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.http_addr))?;
    tracing::info!(addr = %args.http_addr, "serving health endpoints");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
