//! The node: one Apiary process's (or Python client's) presence on a root.
//!
//! A node owns the catalog of its root, the DataFusion runtime its queries
//! share, and its identity and resources. `start` connects to storage;
//! `shutdown` lets go. This slice runs solo: the node reports itself as the
//! whole swarm. Heartbeats in storage and distributed scans build on the same
//! `Node` (see the swarm design, DESIGN §6).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use apiary_catalog::provider::SystemSchemas;
use apiary_catalog::Catalog;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::session::Session;

/// Everything that configures a node, built once from arguments and the
/// environment.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The name the user gave (`Apiary("name")`); also names the solo root.
    pub name: String,
    /// Storage root URI.
    pub storage: String,
    /// Unique per process.
    pub node_id: String,
    pub cores: usize,
    pub memory_bytes: u64,
}

impl NodeConfig {
    /// A config for `name`; with no `storage` the root is the local
    /// directory `$APIARY_HOME/<name>` (default `~/.apiary/<name>`).
    pub fn new(name: &str, storage: Option<&str>) -> Result<Self> {
        if name.trim().is_empty() {
            return Err(EngineError::InvalidArgument(
                "the node name must not be empty".into(),
            ));
        }
        let storage = match storage {
            Some(s) if !s.trim().is_empty() => s.to_string(),
            _ => solo_root(name)?.to_string_lossy().into_owned(),
        };
        let node_id = std::env::var("APIARY_NODE_ID")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(generate_node_id);
        Ok(NodeConfig {
            name: name.to_string(),
            storage,
            node_id,
            cores: available_cores(),
            memory_bytes: available_memory(),
        })
    }
}

/// Where a solo node keeps its data when no storage is given.
pub fn solo_root(name: &str) -> Result<PathBuf> {
    if name.contains(['/', '\\']) || name.contains("..") {
        return Err(EngineError::InvalidArgument(format!(
            "node name {name:?} cannot name a directory; use letters, digits, '-' and '_'"
        )));
    }
    let base = match std::env::var_os("APIARY_HOME") {
        Some(home) if !home.is_empty() => PathBuf::from(home),
        _ => {
            let home = std::env::var_os("HOME").ok_or_else(|| {
                EngineError::InvalidArgument(
                    "neither APIARY_HOME nor HOME is set; pass storage= explicitly".into(),
                )
            })?;
            PathBuf::from(home).join(".apiary")
        }
    };
    Ok(base.join(name))
}

fn generate_node_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_string());
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    format!("{host}-{}-{suffix}", std::process::id())
}

/// Cores this process may use; honours cgroup CPU quotas.
fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Memory this process may use: the cgroup limit if one is set, else the host's.
fn available_memory() -> u64 {
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|s| s.trim().parse::<u64>().ok())
    .find(|v| *v < (1 << 60));
    let host = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    match (cgroup, host) {
        (Some(c), Some(h)) => c.min(h),
        (Some(c), None) => c,
        (None, Some(h)) => h,
        (None, None) => 1 << 30,
    }
}

/// This node as seen in `status()` / `swarm_status()`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub state: String,
    pub cores: usize,
    pub memory_gb: f64,
    pub bees: usize,
    pub bees_busy: usize,
    pub temperature: f64,
    pub last_seen_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SwarmStatus {
    pub alive: usize,
    pub suspect: usize,
    pub dead: usize,
    pub total_bees: usize,
    pub total_memory_gb: f64,
    pub nodes: Vec<NodeInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColonyStatus {
    /// Load in [0, 1].
    pub temperature: f64,
    /// cold | ideal | warm | hot | critical
    pub regulation: String,
    pub abandoned_tasks: u64,
    pub running_queries: usize,
    pub bees: usize,
}

/// A running node.
pub struct Node {
    config: NodeConfig,
    catalog: Arc<Catalog>,
    runtime: Arc<RuntimeEnv>,
    running: Arc<AtomicUsize>,
    started: Instant,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("config", &self.config)
            .finish()
    }
}

impl Node {
    /// Connects to the root (checking access) and opens its catalog.
    pub async fn start(config: NodeConfig) -> Result<Self> {
        install_crypto_provider();
        let catalog = Catalog::open(&config.storage).await?;
        let runtime = RuntimeEnvBuilder::new().build_arc()?;
        tracing::info!(node_id = %config.node_id, root = %catalog.root(), "node started");
        Ok(Node {
            config,
            catalog,
            runtime,
            running: Arc::new(AtomicUsize::new(0)),
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// A new SQL session on this node (current hive and box: `default`).
    pub fn session(&self) -> Session {
        self.session_with(SystemSchemas::default())
    }

    /// A new SQL session whose hives also show `system` schemas (the
    /// gateway's `pg_catalog`).
    pub fn session_with(&self, system: SystemSchemas) -> Session {
        Session::new(
            self.catalog.clone(),
            self.runtime.clone(),
            self.config.cores,
            self.running.clone(),
            system,
        )
    }

    /// Stops the node. Solo nodes hold nothing in storage, so this only logs.
    pub async fn shutdown(&self) {
        tracing::info!(node_id = %self.config.node_id, "node stopped");
    }

    fn bees(&self) -> usize {
        self.config.cores.max(1)
    }

    fn info(&self) -> NodeInfo {
        let busy = self.running.load(Ordering::SeqCst).min(self.bees());
        NodeInfo {
            node_id: self.config.node_id.clone(),
            state: "alive".into(),
            cores: self.config.cores,
            memory_gb: self.config.memory_bytes as f64 / (1u64 << 30) as f64,
            bees: self.bees(),
            bees_busy: busy,
            temperature: self.temperature(),
            last_seen_s: 0.0,
        }
    }

    fn temperature(&self) -> f64 {
        let running = self.running.load(Ordering::SeqCst) as f64;
        (running / self.bees() as f64).clamp(0.0, 1.0)
    }

    /// The swarm as this node sees it; a solo node sees only itself.
    pub fn swarm_status(&self) -> SwarmStatus {
        let me = self.info();
        SwarmStatus {
            alive: 1,
            suspect: 0,
            dead: 0,
            total_bees: me.bees,
            total_memory_gb: me.memory_gb,
            nodes: vec![me],
        }
    }

    pub fn colony_status(&self) -> ColonyStatus {
        let temperature = self.temperature();
        ColonyStatus {
            temperature,
            regulation: regulation(temperature).into(),
            abandoned_tasks: 0,
            running_queries: self.running.load(Ordering::SeqCst),
            bees: self.bees(),
        }
    }

    /// `status()`: who this node is and where it stores data.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.config.name,
            "node_id": self.config.node_id,
            "storage": self.catalog.root().url().as_str(),
            "mode": "solo",
            "state": "running",
            "cores": self.config.cores,
            "memory_gb": self.config.memory_bytes as f64 / (1u64 << 30) as f64,
            "bees": self.bees(),
            "uptime_s": self.started.elapsed().as_secs_f64(),
        })
    }
}

/// Names the load band of a temperature.
pub fn regulation(temperature: f64) -> &'static str {
    match temperature {
        t if t < 0.25 => "cold",
        t if t < 0.6 => "ideal",
        t if t < 0.8 => "warm",
        t if t < 0.95 => "hot",
        _ => "critical",
    }
}

/// delta-rs's AWS SDK brings aws-lc-rs while object_store uses ring; rustls
/// needs one process-wide default (DESIGN §3).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
