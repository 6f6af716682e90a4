//! Who may connect, and to which database.
//!
//! With users configured (`APIARY_USER`/`APIARY_PASSWORD`, or a users file)
//! clients authenticate with SCRAM-SHA-256. Without, the node trusts only
//! loopback clients and tells a remote client how to get in. Either way the
//! requested database must be a hive; the client's default (its user name,
//! or `postgres`) falls back to the `default` hive. Passwords are never
//! logged.

use std::collections::HashMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use apiary_engine::catalog::{Catalog, DEFAULT_HIVE};
use async_trait::async_trait;
use futures::{Sink, SinkExt};
use pgwire::api::auth::sasl::scram::{gen_salted_password, ScramAuth};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, AuthSource,
    DefaultServerParameterProvider, LoginInfo, Password, StartupHandler,
};
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PgWireConnectionState,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator, METADATA_DATABASE, METADATA_USER,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use crate::pg::SERVER_VERSION;
use crate::sqlstate::fatal;

/// Connection metadata key holding the hive the client connected to.
pub const METADATA_HIVE: &str = "apiary.hive";

/// SCRAM iteration count announced to clients.
const SCRAM_ITERATIONS: usize = 4096;

/// How long a new connection waits for the registry before it goes on with
/// the one this node read last.
const CONNECT_REGISTRY_WAIT: Duration = Duration::from_secs(2);

/// User names and their passwords.
#[derive(Clone, Default)]
pub struct Users(HashMap<String, String>);

impl Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: a password must never reach a log.
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Users {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn insert(&mut self, user: &str, password: &str) {
        self.0.insert(user.to_string(), password.to_string());
    }

    /// Reads `user:password` lines; blank lines and `#` comments are skipped.
    pub fn read_file(&mut self, path: &Path) -> std::io::Result<()> {
        let text = std::fs::read_to_string(path)?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, password) = line.split_once(':').ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: expected user:password", path.display(), n + 1),
                )
            })?;
            self.insert(user.trim(), password);
        }
        Ok(())
    }
}

/// Salted passwords for SCRAM, computed per login from the configured ones.
#[derive(Debug)]
struct UserSource(Arc<Users>);

#[async_trait]
impl AuthSource for UserSource {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let password = self
            .0
             .0
            .get(user)
            .ok_or_else(|| PgWireError::InvalidPassword(user.to_string()))?;
        let salt = uuid::Uuid::new_v4().as_bytes().to_vec();
        let salted = gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        Ok(Password::new(Some(salt), salted))
    }
}

/// The parameters strict drivers check at startup.
pub fn server_parameters() -> DefaultServerParameterProvider {
    let mut params = DefaultServerParameterProvider::default();
    params.server_version = SERVER_VERSION.to_string();
    params.date_style = "ISO, MDY".to_string();
    params.time_zone = "UTC".to_string();
    params
}

/// Everything a connection's startup needs, shared by all connections.
pub struct AuthConfig {
    pub users: Arc<Users>,
    pub catalog: Arc<Catalog>,
    pub connections: Arc<ConnectionManager>,
    pub params: Arc<DefaultServerParameterProvider>,
}

/// Connection process ids, distinct across the node: `pg_stat_activity`
/// lists them and `pg_cancel_backend` takes them.
static PIDS: LazyLock<Arc<RandomPidSecretKeyGenerator>> = LazyLock::new(Arc::default);

/// One connection's startup: access rule, database check, then SCRAM or trust.
pub struct Startup {
    config: Arc<AuthConfig>,
    scram: Option<SASLAuthStartupHandler<DefaultServerParameterProvider>>,
}

impl Startup {
    pub fn new(config: Arc<AuthConfig>) -> Self {
        let scram = (!config.users.is_empty()).then(|| {
            let mut auth = ScramAuth::new(Arc::new(UserSource(config.users.clone())));
            auth.set_iterations(SCRAM_ITERATIONS);
            SASLAuthStartupHandler::new(config.params.clone())
                .with_scram(auth)
                .with_connection_manager(config.connections.clone())
                .with_pid_secret_key_generator(PIDS.clone())
        });
        Startup { config, scram }
    }

    /// The hive a client asked for: its database if that is a hive, the
    /// default hive for the usual client defaults, else an error listing
    /// the hives.
    async fn hive_for(&self, database: Option<&str>, user: Option<&str>) -> PgWireResult<String> {
        // A connection does not hang on one storage call: when the
        // registry cannot be read now, the one this node read last decides,
        // and only a database missing from it fails the connection.
        let refreshed =
            tokio::time::timeout(CONNECT_REGISTRY_WAIT, self.config.catalog.refresh()).await;
        let (snapshot, unread) = match refreshed {
            Ok(Ok(snapshot)) => (snapshot, None),
            Ok(Err(e)) => (self.config.catalog.snapshot(), Some(e.to_string())),
            Err(_) => (
                self.config.catalog.snapshot(),
                Some(format!(
                    "storage did not answer within {} s while reading the registry",
                    CONNECT_REGISTRY_WAIT.as_secs()
                )),
            ),
        };
        if let Some(e) = &unread {
            tracing::warn!(error = %e, "could not read the registry for a new connection; using the last one read");
        }
        let Some(database) = database.filter(|d| !d.is_empty()) else {
            return Ok(DEFAULT_HIVE.to_string());
        };
        let folded = database.to_ascii_lowercase();
        if snapshot.hives.contains_key(&folded) {
            return Ok(folded);
        }
        if folded == "postgres" || Some(database) == user {
            return Ok(DEFAULT_HIVE.to_string());
        }
        if let Some(e) = unread {
            return Err(fatal("58030", e));
        }
        let hives: Vec<&str> = snapshot.hives.keys().map(|h| h.as_str()).collect();
        Err(fatal(
            "3D000",
            format!(
                "database \"{database}\" does not exist; databases are Apiary hives: {}",
                hives.join(", ")
            ),
        ))
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let PgWireFrontendMessage::Startup(startup) = &message {
            if self.scram.is_none() && !client.socket_addr().ip().is_loopback() {
                return Err(fatal(
                    "28000",
                    format!(
                        "connection from {} refused: this Apiary node has no users configured, so it only accepts connections from its own machine. Set APIARY_USER and APIARY_PASSWORD (or APIARY_USERS_FILE) on the node to allow remote clients",
                        client.socket_addr().ip()
                    ),
                ));
            }
            let hive = self
                .hive_for(
                    startup
                        .parameters
                        .get(METADATA_DATABASE)
                        .map(String::as_str),
                    startup.parameters.get(METADATA_USER).map(String::as_str),
                )
                .await?;
            client.metadata_mut().insert(METADATA_HIVE.into(), hive);
        }
        match &self.scram {
            Some(scram) => scram
                .on_startup(client, message)
                .await
                .map_err(|e| postgres_auth_error(client, e)),
            None => self.trust(client, message).await,
        }
    }
}

/// PostgreSQL's wording for a wrong password, naming the startup's user:
/// pgwire names the user of the SCRAM message, which libpq leaves empty.
fn postgres_auth_error<C: ClientInfo>(client: &C, error: PgWireError) -> PgWireError {
    match error {
        PgWireError::InvalidPassword(_) => {
            let user = client
                .metadata()
                .get(METADATA_USER)
                .cloned()
                .unwrap_or_default();
            fatal(
                "28P01",
                format!("password authentication failed for user \"{user}\""),
            )
        }
        other => other,
    }
}

impl Startup {
    /// Startup without a password (loopback clients, no users configured).
    async fn trust<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let PgWireFrontendMessage::Startup(startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, &startup).await?;
        save_startup_parameters_to_metadata(client, &startup);
        let (pid, secret_key) = PIDS.generate(client);
        client.set_pid_and_secret_key(pid, secret_key.clone());
        let (handle, guard) = self.config.connections.register(pid, secret_key);
        client
            .session_extensions()
            .insert::<Arc<ConnectionHandle>>(handle);
        client.session_extensions().insert::<ConnectionGuard>(guard);
        finish_authentication(client, self.config.params.as_ref()).await?;
        let _ = client.flush().await;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }
}
