//! The `apiary` command: run SQL against a storage root, show a node's
//! status, and (with the Postgres gateway) serve clients.
//!
//! Every subcommand builds one [`NodeConfig`] from its flags and the
//! environment (`APIARY_STORAGE`, `AWS_*`) and talks to the engine's
//! Session API; nothing here knows about storage or DataFusion.

use std::process::ExitCode;

use apiary_engine::{Node, NodeConfig};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "apiary",
    version,
    about = "Apiary: a lakehouse for small compute that scales out"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(clap::Args)]
struct RootArgs {
    /// Storage root: a directory, file://, s3://bucket/prefix, gs://, az://.
    /// Defaults to $APIARY_STORAGE, else the solo directory ~/.apiary/default.
    #[arg(long, env = "APIARY_STORAGE")]
    storage: Option<String>,
}

#[derive(Subcommand)]
enum Commands {
    /// Run one SQL statement and print the result as a table.
    Sql {
        #[command(flatten)]
        root: RootArgs,
        /// The statement, e.g. "SELECT * FROM analytics.events.clicks LIMIT 10".
        query: String,
    },
    /// Print this node's status and the swarm it sees.
    Status {
        #[command(flatten)]
        root: RootArgs,
    },
    /// Serve the Postgres wire protocol (not available yet).
    Serve {
        #[command(flatten)]
        root: RootArgs,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APIARY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn start(root: RootArgs) -> Result<Node, String> {
    let config = NodeConfig::new("default", root.storage.as_deref()).map_err(|e| e.to_string())?;
    Node::start(config).await.map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Commands::Sql { root, query } => {
            let node = start(root).await?;
            let result = node
                .session()
                .sql(&query)
                .await
                .map_err(|e| e.to_string())?;
            let table = arrow::util::pretty::pretty_format_batches(&result.batches)
                .map_err(|e| e.to_string())?;
            println!("{table}");
            println!("({} rows)", result.num_rows());
            node.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Status { root } => {
            let node = start(root).await?;
            let status = serde_json::json!({
                "node": node.status(),
                "swarm": node.swarm_status(),
                "colony": node.colony_status(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?
            );
            node.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Serve { .. } => {
            eprintln!(
                "apiary serve: the Postgres wire server is not built yet; it arrives with the \
                 Postgres gateway. Until then use `apiary sql` or the Python SDK."
            );
            Ok(ExitCode::from(2))
        }
    }
}
