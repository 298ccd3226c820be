//! `emporium-storefront`: the shared runtime that serves every tenant's shoppers.

mod telemetry;

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::{Router, routing::get};
use clap::Parser;

/// The Emporium storefront runtime.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Address shoppers and the load balancer reach.
    #[arg(long, env = "EMPORIUM_LISTEN", default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Log format: `json` for log pipelines, `text` for a terminal.
    #[arg(long, env = "EMPORIUM_LOG_FORMAT", value_enum, default_value = "json")]
    log_format: telemetry::LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    telemetry::init(args.log_format, "info");
    let app = Router::new().route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %args.listen, "storefront runtime listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
