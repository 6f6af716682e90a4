//! The `apiary` command: run SQL against a storage root, show a node's
//! status, serve Postgres clients (`apiary serve`), and check that a
//! served node answers (`apiary health`, a container's health check).
//!
//! Every subcommand builds one [`NodeConfig`] from its flags and the
//! environment (`APIARY_STORAGE`, `AWS_*`) and talks to the engine's
//! Session API; nothing here knows about storage or DataFusion.

use std::process::ExitCode;

use std::path::PathBuf;
use std::sync::Arc;

use apiary_engine::{Node, NodeConfig};
use apiary_gateway::{serve, ServeConfig, Users};
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
    /// Print the swarm on a root (every node with a heartbeat) as JSON.
    Status {
        #[command(flatten)]
        root: RootArgs,
    },
    /// Exit 0 if the node serving on this machine answers the Postgres
    /// protocol, 1 if not: a container's HEALTHCHECK.
    Health {
        /// The node's address (`0.0.0.0` and `::` mean this machine).
        #[arg(long, env = "APIARY_LISTEN", default_value = "0.0.0.0:5432")]
        listen: String,
    },
    /// Serve the Postgres wire protocol until SIGTERM or Ctrl-C.
    Serve {
        #[command(flatten)]
        root: RootArgs,
        /// Address to listen on.
        #[arg(long, env = "APIARY_LISTEN", default_value = "0.0.0.0:5432")]
        listen: String,
        /// User clients log in as (SCRAM-SHA-256); with no users configured
        /// only clients on this machine (loopback) may connect.
        #[arg(long, env = "APIARY_USER")]
        user: Option<String>,
        /// Password for --user (prefer the environment variable).
        #[arg(long, env = "APIARY_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// File of `user:password` lines, in addition to --user.
        #[arg(long, env = "APIARY_USERS_FILE")]
        users_file: Option<PathBuf>,
        /// PEM certificate chain; with --tls-key enables TLS (sslmode=require).
        #[arg(long, env = "APIARY_TLS_CERT", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-cert.
        #[arg(long, env = "APIARY_TLS_KEY", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("APIARY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(apiary_engine::STATEMENT_STACK_BYTES)
        .build()
    {
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

fn config(root: RootArgs) -> Result<NodeConfig, String> {
    NodeConfig::new("default", root.storage.as_deref()).map_err(|e| e.to_string())
}

/// Opens the root for a one-shot command, without joining the swarm.
async fn open(root: RootArgs) -> Result<Node, String> {
    Node::open(config(root)?).await.map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Commands::Sql { root, query } => {
            let node = open(root).await?;
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
            let node = open(root).await?;
            let swarm = node.swarm_status().await.map_err(|e| e.to_string())?;
            let status = serde_json::json!({
                "node": node.status(),
                "swarm": swarm,
                "colony": node.colony_status(),
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&status).map_err(|e| e.to_string())?
            );
            node.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Commands::Health { listen } => {
            let address = listen
                .replace("0.0.0.0:", "127.0.0.1:")
                .replace("[::]:", "[::1]:");
            match answers_postgres(&address).await {
                Ok(()) => {
                    println!("ok: {address} answers");
                    Ok(ExitCode::SUCCESS)
                }
                Err(why) => {
                    eprintln!("unhealthy: {address}: {why}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        Commands::Serve {
            root,
            listen,
            user,
            password,
            users_file,
            tls_cert,
            tls_key,
        } => {
            let mut users = Users::default();
            match (user, password) {
                (Some(user), Some(password)) => users.insert(&user, &password),
                (None, None) => {}
                _ => return Err("set both APIARY_USER and APIARY_PASSWORD, or neither".into()),
            }
            if let Some(path) = users_file {
                users.read_file(&path).map_err(|e| e.to_string())?;
            }
            let stop = shutdown_signal();
            let mut config = config(root)?;
            config.listen = Some(listen.clone());
            let node = Arc::new(Node::start(config).await.map_err(|e| e.to_string())?);
            let config = ServeConfig {
                listen,
                users,
                tls: tls_cert.zip(tls_key),
            };
            serve(node.clone(), config, stop)
                .await
                .map_err(|e| e.to_string())?;
            node.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Whether a Postgres server at `address` answers an SSLRequest (with `S`
/// or `N`, as any server must) within 5 s, as `pg_isready` checks.
async fn answers_postgres(address: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| e.to_string())?;
        // Length 8, then the SSLRequest code 80877103.
        let request: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        stream
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        let mut reply = [0u8; 1];
        stream
            .read_exact(&mut reply)
            .await
            .map_err(|e| e.to_string())?;
        match reply[0] {
            b'S' | b'N' => Ok(()),
            other => Err(format!("unexpected reply {other:#04x} to an SSLRequest")),
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(5), check)
        .await
        .map_err(|_| "no answer within 5 s".to_string())?
}

/// Completes on SIGTERM (container stop) or SIGINT (Ctrl-C). The handlers
/// are installed when this is called, not when the future is first polled,
/// so a stop request during start-up is not lost (or fatal).
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{signal, SignalKind};
        signal(SignalKind::terminate())
            .ok()
            .zip(signal(SignalKind::interrupt()).ok())
    };
    async move {
        #[cfg(unix)]
        match signals {
            Some((mut term, mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested");
    }
}
