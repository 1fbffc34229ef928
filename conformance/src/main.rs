//! `clipgate-conformance`: the conformance suite runner and the in-memory Weaviate double.

use std::net::SocketAddr;

use clap::{Args, Parser, Subcommand};
use conformance::double::{self, ApiKey, Double};
use tracing_subscriber::EnvFilter;

#[derive(Debug, Parser)]
#[command(name = "clipgate-conformance", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve an in-memory Weaviate double (an unmodified Weaviate without vectorizer modules).
    Double(DoubleArgs),
    /// Run the conformance suite against a Weaviate-compatible URL; ends with `N passed, M failed`.
    Run(RunArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Base URL of the target: clipgate, or a Weaviate with the multi2vec-clip module.
    #[arg(long, env = "CONFORMANCE_TARGET")]
    target: String,
    /// Directory of scenario files (`*.json`).
    #[arg(long, default_value = "fixtures/conformance")]
    cases: std::path::PathBuf,
    /// Only run scenario files whose name contains this text.
    #[arg(long)]
    filter: Option<String>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 120)]
    timeout_secs: u64,
}

async fn run_suite(args: RunArgs) -> anyhow::Result<std::process::ExitCode> {
    let summary = conformance::suite::run(&conformance::suite::RunOptions {
        target: args.target,
        cases: args.cases,
        filter: args.filter,
        timeout: std::time::Duration::from_secs(args.timeout_secs),
    })
    .await?;
    println!("{}", summary.line());
    Ok(if summary.failed() == 0 && summary.passed() > 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

#[derive(Debug, Args)]
struct DoubleArgs {
    /// Address to listen on.
    #[arg(long, env = "DOUBLE_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Address of the gRPC API (`weaviate.v1.Weaviate` + `grpc.health.v1.Health`).
    #[arg(long, env = "DOUBLE_GRPC_LISTEN", default_value = "127.0.0.1:50051")]
    grpc_listen: SocketAddr,
    /// Require this API key (`Authorization: Bearer <key>`); repeat for several keys.
    /// `KEY=ClassA,ClassB` limits the key to those classes. Without any, access is anonymous.
    #[arg(long = "api-key", value_name = "KEY[=CLASSES]")]
    api_keys: Vec<String>,
}

fn parse_key(spec: &str, n: usize) -> ApiKey {
    let user = format!("user{n}");
    match spec.split_once('=') {
        Some((key, classes)) => ApiKey::new(key, user)
            .only_classes(classes.split(',').map(str::trim).filter(|c| !c.is_empty())),
        None => ApiKey::new(spec, user),
    }
}

async fn run_double(args: DoubleArgs) -> anyhow::Result<()> {
    let keys: Vec<ApiKey> = args
        .api_keys
        .iter()
        .enumerate()
        .map(|(i, k)| parse_key(k, i))
        .collect();
    let double = Double::new().with_api_keys(keys);
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "Weaviate double listening");
    let grpc_listener = tokio::net::TcpListener::bind(args.grpc_listen).await?;
    tracing::info!(addr = %grpc_listener.local_addr()?, "Weaviate double gRPC listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let grpc_stop = {
        let mut rx = stop_rx;
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let grpc = tokio::spawn(double::grpc::serve_with_shutdown(
        grpc_listener,
        double.clone(),
        grpc_stop,
    ));
    let shutdown = async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    };
    double::serve_with_shutdown(listener, double, shutdown).await?;
    grpc.await??;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match Cli::parse().command {
        Command::Double(args) => run_double(args)
            .await
            .map(|()| std::process::ExitCode::SUCCESS),
        Command::Run(args) => run_suite(args).await,
    }
}
