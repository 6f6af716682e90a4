//! The listener: accepts Postgres connections, negotiates TLS, hands each
//! connection to pgwire with Apiary's handlers, and drains on shutdown.

use std::future::Future;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apiary_engine::Node;
use pgwire::api::auth::DefaultServerParameterProvider;
use pgwire::api::{ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers};
use pgwire::error::PgWireError;
use pgwire::tokio::tokio_rustls::rustls::ServerConfig;
use pgwire::tokio::{process_socket, TlsAcceptor};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::auth::{server_parameters, AuthConfig, Startup, Users};
use crate::cancel::{CancelQueries, Cancels};
use crate::handler::QueryService;
use crate::pg::PgCatalog;

/// How long running connections may finish after a shutdown signal.
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// Everything `apiary serve` is configured with besides the storage root.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `host:port` to listen on.
    pub listen: String,
    pub users: Users,
    /// PEM certificate chain and private key; TLS is off without them.
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// pgwire's view of the gateway: one set of handlers per connection.
struct Gateway {
    queries: Arc<QueryService>,
    auth: Arc<AuthConfig>,
}

impl PgWireServerHandlers for Gateway {
    fn simple_query_handler(&self) -> Arc<impl pgwire::api::query::SimpleQueryHandler> {
        self.queries.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl pgwire::api::query::ExtendedQueryHandler> {
        self.queries.clone()
    }

    /// A fresh handler per connection: SCRAM keeps per-login state.
    fn startup_handler(&self) -> Arc<impl pgwire::api::auth::StartupHandler> {
        Arc::new(Startup::new(self.auth.clone()))
    }

    fn copy_handler(&self) -> Arc<impl pgwire::api::copy::CopyHandler> {
        self.queries.clone()
    }

    fn cancel_handler(&self) -> Arc<impl pgwire::api::cancel::CancelHandler> {
        Arc::new(CancelQueries {
            cancels: self.queries.cancels(),
        })
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        Arc::new(LogErrors)
    }
}

struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C: ClientInfo>(&self, client: &C, error: &mut PgWireError) {
        tracing::debug!(client = %client.socket_addr(), %error, "statement failed");
    }
}

/// Loads a PEM certificate chain and key into a TLS acceptor.
fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> std::io::Result<TlsAcceptor> {
    let open = |p: &PathBuf| {
        std::fs::File::open(p)
            .map(BufReader::new)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut open(cert)?).collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut open(key)?)?.ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: no private key found", key.display()),
        )
    })?;
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `node` over the Postgres protocol until `shutdown` completes, then
/// stops accepting and gives open connections [`DRAIN_DEADLINE`] to finish.
/// TLS that is configured but cannot be loaded is an error, never a silent
/// fallback to plain text.
pub async fn serve(
    node: Arc<Node>,
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let tls = match &config.tls {
        Some((cert, key)) => Some(tls_acceptor(cert, key)?),
        None => None,
    };
    let connections = Arc::new(ConnectionManager::new());
    let cancels = Arc::new(Cancels::new(connections.clone()));
    let pg = Arc::new(
        PgCatalog::new(node.catalog().clone(), cancels.clone())
            .map_err(|e| std::io::Error::other(format!("pg_catalog: {e}")))?,
    );
    let params: Arc<DefaultServerParameterProvider> = Arc::new(server_parameters());
    let gateway = Arc::new(Gateway {
        queries: Arc::new(QueryService::new(node.clone(), pg, cancels)),
        auth: Arc::new(AuthConfig {
            users: Arc::new(config.users.clone()),
            catalog: node.catalog().clone(),
            connections,
            params,
        }),
    });
    let listener = TcpListener::bind(&config.listen).await.map_err(|e| {
        std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
    })?;
    // Announce the address actually bound (port 0 becomes a real port).
    node.announce_endpoint(listener.local_addr()?.to_string());
    tracing::info!(
        listen = %listener.local_addr()?,
        tls = tls.is_some(),
        auth = if config.users.is_empty() { "loopback only" } else { "scram-sha-256" },
        "Postgres gateway listening"
    );

    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let gateway = gateway.clone();
                    let tls = tls.clone();
                    connections.spawn(async move {
                        if let Err(e) = process_socket(socket, tls, gateway).await {
                            tracing::debug!(%peer, error = %e, "connection ended with an error");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    tracing::info!(open = connections.len(), "draining connections");
    let drained = tokio::time::timeout(DRAIN_DEADLINE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections still open after the drain deadline"
        );
        connections.abort_all();
    }
    Ok(())
}
