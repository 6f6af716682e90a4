//! The node: one Apiary process's (or Python client's) presence on a root.
//!
//! A node owns the catalog of its root, the DataFusion runtime its queries
//! share (a fair spill memory pool of `bees × bee memory`, spilling to the
//! node's scratch directory), its [`Colony`] load and its view of the
//! [`Swarm`]. [`Node::start`] joins the swarm: the node heartbeats into the
//! root until [`Node::shutdown`] deletes the heartbeat. [`Node::open`] only
//! reads (one-shot CLI commands).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apiary_catalog::provider::SystemSchemas;
use apiary_catalog::Catalog;
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use serde::Serialize;

use crate::cache::CellCache;
use crate::colony::{Backpressure, Colony, ColonyStatus, RegulationSettings};
use crate::distributed::worker::{register_root_store, WorkerContext};
use crate::distributed::{Bees, DistributeSettings, Distributor, Worker};
use crate::error::{EngineError, Result};
use crate::maintainer::{Maintainer, MaintenanceSettings};
use crate::session::Session;
use crate::swarm::heartbeat::HEARTBEAT_FORMAT;
use crate::swarm::{
    wall_clock_ms, Capacity, Heartbeat, Membership, NodeState, Swarm, SwarmTimings,
};

/// Everything that configures a node, built once from arguments and the
/// environment.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The name the user gave (`Apiary("name")`); also names the solo root.
    pub name: String,
    /// Storage root URI.
    pub storage: String,
    /// Unique per process (`APIARY_NODE_ID` overrides).
    pub node_id: String,
    /// Cores this process may use (cgroup CPU quota honoured).
    pub cores: usize,
    /// Memory this process may use (cgroup limit honoured).
    pub memory_bytes: u64,
    /// Memory budget of one bee (`APIARY_BEE_MEMORY`, e.g. `256MiB`);
    /// default: three quarters of the memory shared by the bees.
    pub bee_memory_bytes: u64,
    /// Where bees spill (`APIARY_SCRATCH_DIR`); removed on shutdown.
    pub scratch_dir: PathBuf,
    /// Where cells read from a remote root are cached (`APIARY_CACHE_DIR`).
    pub cache_dir: PathBuf,
    /// Cache size limit (`APIARY_CACHE_SIZE`, e.g. `10GiB`; `0` turns the
    /// cache off); default a quarter of the free disk.
    pub cache_bytes: u64,
    /// Heartbeat interval and failure thresholds (`APIARY_HEARTBEAT_INTERVAL`,
    /// `APIARY_DEAD_AFTER`, e.g. `2s`, `10s`).
    pub timings: SwarmTimings,
    /// The Postgres endpoint announced in the heartbeat (set by `apiary serve`).
    pub listen: Option<String>,
    /// When stages are distributed and how tasks are retried.
    pub distribute: DistributeSettings,
    /// How a hot node holds back writes and queries.
    pub regulation: RegulationSettings,
    /// Automatic compaction and vacuum (`APIARY_AUTO_MAINTENANCE`, …).
    pub maintenance: MaintenanceSettings,
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
        let node_id = match env("APIARY_NODE_ID") {
            Some(id) => validate_node_id(&id)?,
            None => generate_node_id(),
        };
        let cores = available_cores();
        let memory_bytes = available_memory();
        let bee_memory_bytes = match env("APIARY_BEE_MEMORY") {
            Some(text) => parse_size("APIARY_BEE_MEMORY", &text)?,
            None => memory_bytes / 4 * 3 / cores.max(1) as u64,
        };
        let scratch_dir = match env("APIARY_SCRATCH_DIR") {
            Some(dir) => PathBuf::from(dir).join(&node_id),
            None => std::env::temp_dir().join("apiary-scratch").join(&node_id),
        };
        let cache_dir = match env("APIARY_CACHE_DIR") {
            Some(dir) => PathBuf::from(dir).join(&node_id),
            None => std::env::temp_dir().join("apiary-cache").join(&node_id),
        };
        let cache_bytes = match env("APIARY_CACHE_SIZE") {
            Some(text) if text.trim() == "0" => 0,
            Some(text) => parse_size("APIARY_CACHE_SIZE", &text)?,
            None => CellCache::default_limit(&cache_dir),
        };
        let mut timings = SwarmTimings::default();
        if let Some(text) = env("APIARY_HEARTBEAT_INTERVAL") {
            timings.interval = parse_duration("APIARY_HEARTBEAT_INTERVAL", &text)?;
        }
        if let Some(text) = env("APIARY_DEAD_AFTER") {
            timings.dead_after = parse_duration("APIARY_DEAD_AFTER", &text)?;
            timings.suspect_after = timings.dead_after / 2;
            timings.sweep_after = (timings.dead_after * 6).max(Duration::from_secs(60));
        }
        if timings.dead_after <= timings.interval {
            return Err(EngineError::InvalidArgument(format!(
                "APIARY_DEAD_AFTER ({:?}) must be longer than APIARY_HEARTBEAT_INTERVAL ({:?}), or every node looks dead",
                timings.dead_after, timings.interval
            )));
        }
        let mut distribute = DistributeSettings::default();
        if let Some(text) = env("APIARY_DISTRIBUTE_MIN_CELLS") {
            distribute.min_cells = text.trim().parse().map_err(|_| {
                EngineError::InvalidArgument(format!(
                    "APIARY_DISTRIBUTE_MIN_CELLS={text:?} is not a whole number of cells"
                ))
            })?;
        }
        if let Some(text) = env("APIARY_TASK_LEASE") {
            distribute.lease = parse_duration("APIARY_TASK_LEASE", &text)?;
        }
        let mut regulation = RegulationSettings::default();
        if let Some(text) = env("APIARY_BACKPRESSURE") {
            regulation.backpressure = match text.trim().to_ascii_lowercase().as_str() {
                "wait" => Backpressure::Wait,
                "error" => Backpressure::Error,
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "APIARY_BACKPRESSURE={text:?} must be wait or error"
                    )))
                }
            };
        }
        if let Some(text) = env("APIARY_ADMISSION_WAIT") {
            regulation.admission_wait = parse_duration("APIARY_ADMISSION_WAIT", &text)?;
        }
        let maintenance = MaintenanceSettings::from_env(env, parse_duration)?;
        Ok(NodeConfig {
            name: name.to_string(),
            storage,
            node_id,
            cores,
            memory_bytes,
            bee_memory_bytes,
            scratch_dir,
            cache_dir,
            cache_bytes,
            timings,
            listen: None,
            distribute,
            regulation,
            maintenance,
        })
    }

    /// One bee per core.
    pub fn bees(&self) -> usize {
        self.cores.max(1)
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn parse_size(variable: &str, text: &str) -> Result<u64> {
    match text.trim().parse::<bytesize::ByteSize>() {
        Ok(size) if size.as_u64() >= 1 << 20 => Ok(size.as_u64()),
        _ => Err(EngineError::InvalidArgument(format!(
            "{variable}={text:?} is not a memory size of at least 1 MiB; write e.g. 64MiB or 2GiB"
        ))),
    }
}

fn parse_duration(variable: &str, text: &str) -> Result<Duration> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(EngineError::InvalidArgument(format!(
            "{variable}={text:?} is not a duration; write e.g. 500ms, 2s or 1m"
        ))),
    }
}

/// Node ids name heartbeat objects and scratch directories.
fn validate_node_id(id: &str) -> Result<String> {
    let ok = id.len() <= 128
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !id.starts_with('.');
    if ok {
        Ok(id.to_string())
    } else {
        Err(EngineError::InvalidArgument(format!(
            "APIARY_NODE_ID={id:?} must be at most 128 letters, digits, '-', '_' or '.'"
        )))
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
    let host: String = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .unwrap_or_default()
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(48)
        .collect();
    let host = if host.is_empty() { "node".into() } else { host };
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

/// A node as shown by `swarm_status()`.
#[derive(Debug, Clone, Serialize)]
pub struct NodeInfo {
    pub node_id: String,
    /// `alive` | `suspect` | `dead`.
    pub state: String,
    pub cores: usize,
    pub memory_gb: f64,
    pub bees: usize,
    pub bees_busy: usize,
    pub temperature: f64,
    /// Seconds since the node's heartbeat last changed.
    pub last_seen_s: f64,
    pub cached_cells: u64,
    /// The node's Postgres endpoint, when it serves one.
    pub listen: Option<String>,
    /// True for the node answering this call.
    pub this_node: bool,
}

/// What `swarm_status()` reports: every node with a heartbeat on the root.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmStatus {
    pub alive: usize,
    pub suspect: usize,
    pub dead: usize,
    /// Bees of the alive nodes.
    pub total_bees: usize,
    /// Memory of the alive nodes.
    pub total_memory_gb: f64,
    pub nodes: Vec<NodeInfo>,
}

const GIB: f64 = (1u64 << 30) as f64;

/// A running node.
pub struct Node {
    config: NodeConfig,
    catalog: Arc<Catalog>,
    runtime: Arc<RuntimeEnv>,
    colony: Arc<Colony>,
    swarm: Arc<Swarm>,
    distributor: Arc<Distributor>,
    membership: Mutex<Option<(Membership, Worker)>>,
    maintainer: Mutex<Option<Maintainer>>,
    vitals: Arc<Vitals>,
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
    /// Connects to the root (checking access), opens its catalog and joins
    /// the swarm: from now on this node heartbeats and takes part in queries.
    pub async fn start(config: NodeConfig) -> Result<Self> {
        let node = Node::open(config).await?;
        let announce: Arc<dyn Fn(u64) -> Heartbeat + Send + Sync> = {
            let vitals = node.vitals.clone();
            Arc::new(move |seq| vitals.heartbeat(seq))
        };
        let bees = Bees::new(
            node.config.bees(),
            node.config.bee_memory_bytes,
            &node.config.scratch_dir,
            node.catalog.root(),
            node.vitals.cache.as_ref(),
        )?;
        let worker = Worker::start(Arc::new(WorkerContext {
            node_id: node.config.node_id.clone(),
            root: node.catalog.root().clone(),
            bees,
            colony: node.colony.clone(),
            cache: node.vitals.cache.clone(),
        }));
        let membership = Membership::join(node.swarm.clone(), announce).await?;
        *node.membership.lock().unwrap_or_else(|p| p.into_inner()) = Some((membership, worker));
        node.vitals.member.store(true, Ordering::SeqCst);
        if node.config.maintenance.enabled {
            let maintainer = Maintainer::start(
                node.config.maintenance,
                node.config.node_id.clone(),
                node.catalog.clone(),
                node.colony.clone(),
                node.swarm.clone(),
            );
            *node.maintainer.lock().unwrap_or_else(|p| p.into_inner()) = Some(maintainer);
        }
        Ok(node)
    }

    /// Connects to the root and opens its catalog without joining the
    /// swarm: for one-shot commands (`apiary sql`, `apiary status`) that
    /// should not be handed work.
    pub async fn open(config: NodeConfig) -> Result<Self> {
        install_crypto_provider();
        let catalog = Catalog::open(&config.storage).await?;
        tokio::fs::create_dir_all(&config.scratch_dir)
            .await
            .map_err(|e| {
                EngineError::InvalidArgument(format!(
                    "cannot create the scratch directory {} (set APIARY_SCRATCH_DIR): {e}",
                    config.scratch_dir.display()
                ))
            })?;
        let bees = config.bees();
        let pool_bytes = config.bee_memory_bytes.saturating_mul(bees as u64) as usize;
        let pool: Arc<dyn MemoryPool> = Arc::new(FairSpillPool::new(pool_bytes));
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(pool.clone())
            .with_temp_file_path(config.scratch_dir.clone())
            .build_arc()?;
        let cache = match (catalog.root().remote_store(), config.cache_bytes) {
            (Some(_), limit) if limit > 0 => {
                Some(Arc::new(CellCache::open(config.cache_dir.clone(), limit)?))
            }
            _ => None,
        };
        register_root_store(&runtime, catalog.root(), cache.as_ref())?;
        let swarm = Arc::new(Swarm::new(catalog.root().clone(), config.timings));
        // A node that only opened the root still coordinates its queries
        // across the members it sees now.
        swarm.refresh(false).await?;
        let colony = Arc::new(Colony::new(bees, pool, pool_bytes, config.regulation));
        let distributor = Arc::new(Distributor::new(
            config.node_id.clone(),
            catalog.root().clone(),
            swarm.clone(),
            colony.clone(),
            config.distribute,
            cache.clone(),
            config.bee_memory_bytes,
        ));
        tracing::info!(
            node_id = %config.node_id,
            root = %catalog.root(),
            bees,
            bee_memory = %bytesize::ByteSize(config.bee_memory_bytes),
            cache = %cache.as_ref().map_or("off".to_string(), |c| format!("{} in {}", bytesize::ByteSize(config.cache_bytes), c.dir().display())),
            "node started"
        );
        let vitals = Arc::new(Vitals {
            config: config.clone(),
            colony: colony.clone(),
            swarm: swarm.clone(),
            cache: cache.clone(),
            endpoint: Mutex::new(config.listen.clone()),
            started_at_ms: wall_clock_ms(),
            member: AtomicBool::new(false),
        });
        Ok(Node {
            colony,
            distributor,
            vitals,
            config,
            catalog,
            runtime,
            swarm,
            membership: Mutex::new(None),
            maintainer: Mutex::new(None),
            started: Instant::now(),
        })
    }

    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The swarm this node sees (its world view is refreshed by the
    /// heartbeat task while the node is a member).
    pub fn swarm(&self) -> &Arc<Swarm> {
        &self.swarm
    }

    pub fn colony(&self) -> &Arc<Colony> {
        &self.colony
    }

    /// The Postgres endpoint other nodes and `swarm_status()` should show
    /// (the gateway calls this once it has bound its port).
    pub fn announce_endpoint(&self, endpoint: String) {
        *self
            .vitals
            .endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(endpoint);
    }

    /// Whether this node heartbeats (started, not only opened).
    pub fn is_member(&self) -> bool {
        self.vitals.member.load(Ordering::SeqCst)
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
            self.colony.running().clone(),
            system,
            Some(self.distributor.clone()),
            Some(self.vitals.clone()),
        )
    }

    /// Stops taking tasks, lets running ones finish (up to 30 s), leaves
    /// the swarm (deleting the heartbeat) and removes the scratch directory.
    /// Safe to call more than once.
    pub async fn shutdown(&self) {
        let maintainer = self
            .maintainer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(maintainer) = maintainer {
            maintainer.stop().await;
        }
        let membership = self
            .membership
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.vitals.member.store(false, Ordering::SeqCst);
        if let Some((membership, worker)) = membership {
            worker.stop(Duration::from_secs(30)).await;
            if let Err(e) = membership.leave().await {
                tracing::warn!(node_id = %self.config.node_id, error = %e, "cannot delete the heartbeat; peers will see this node die instead");
            }
        }
        let _ = tokio::fs::remove_dir_all(&self.config.scratch_dir).await;
        tracing::info!(node_id = %self.config.node_id, "node stopped");
    }

    /// The swarm as this node sees it. A member answers from the world view
    /// its heartbeat task keeps fresh; an opened node lists the heartbeats
    /// now.
    pub async fn swarm_status(&self) -> Result<SwarmStatus> {
        if !self.is_member() {
            self.swarm.refresh(false).await?;
        }
        Ok(self.swarm_status_now())
    }

    fn swarm_status_now(&self) -> SwarmStatus {
        self.vitals.swarm_status()
    }

    pub fn colony_status(&self) -> ColonyStatus {
        self.vitals.colony_status()
    }

    /// `status()`: who this node is and where it stores data.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.config.name,
            "node_id": self.config.node_id,
            "storage": self.catalog.root().url().as_str(),
            "mode": if self.is_member() { "swarm" } else { "client" },
            "state": "running",
            "cores": self.config.cores,
            "memory_gb": self.config.memory_bytes as f64 / GIB,
            "bees": self.config.bees(),
            "bee_memory_mb": self.config.bee_memory_bytes / (1 << 20),
            "scratch_dir": self.config.scratch_dir.display().to_string(),
            "cache": self.vitals.cache.as_ref().map(|c| {
                let (cells, bytes) = c.usage();
                serde_json::json!({"dir": c.dir().display().to_string(), "limit_bytes": self.config.cache_bytes, "cells": cells, "bytes": bytes})
            }),
            "uptime_s": self.started.elapsed().as_secs_f64(),
        })
    }
}

/// What a node reports about itself and the swarm it sees; shared with its
/// sessions so SQL can show it too (`SHOW SWARM`, `SHOW COLONY`).
#[derive(Debug)]
pub struct Vitals {
    config: NodeConfig,
    colony: Arc<Colony>,
    swarm: Arc<Swarm>,
    cache: Option<Arc<CellCache>>,
    /// The Postgres endpoint announced in heartbeats, once bound.
    endpoint: Mutex<Option<String>>,
    started_at_ms: u64,
    /// Heartbeating (started, and not yet shut down).
    member: AtomicBool,
}

impl Vitals {
    pub fn node_id(&self) -> &str {
        &self.config.node_id
    }

    pub fn colony(&self) -> &Arc<Colony> {
        &self.colony
    }

    /// This node's announcement with its current load.
    fn heartbeat(&self, seq: u64) -> Heartbeat {
        let config = &self.config;
        Heartbeat {
            format: HEARTBEAT_FORMAT,
            node_id: config.node_id.clone(),
            seq,
            written_at_ms: wall_clock_ms(),
            started_at_ms: self.started_at_ms,
            capacity: Capacity {
                cores: config.cores,
                memory_bytes: config.memory_bytes,
                bees: config.bees(),
                bee_memory_bytes: config.bee_memory_bytes,
            },
            load: self.colony.load(),
            cached_cells: self.cache.as_ref().map_or(0, |c| c.usage().0),
            cache: self.cache.as_ref().map_or_else(Vec::new, |c| c.announced()),
            listen: self
                .endpoint
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// The swarm from the last world view, with this node (when it is a
    /// member) at its current load.
    pub fn swarm_status(&self) -> SwarmStatus {
        let world = self.swarm.world();
        let now = Instant::now();
        let member = self.member.load(Ordering::SeqCst);
        let mut nodes: Vec<NodeInfo> = world
            .peers(now)
            .into_iter()
            .filter(|(p, _, _)| !(member && p.heartbeat.node_id == self.config.node_id))
            .map(|(peer, state, age)| node_info(&peer.heartbeat, state, age.as_secs_f64(), false))
            .collect();
        if member {
            nodes.push(node_info(&self.heartbeat(0), NodeState::Alive, 0.0, true));
        }
        nodes.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        let count = |state: &str| nodes.iter().filter(|n| n.state == state).count();
        let alive_nodes = nodes.iter().filter(|n| n.state == "alive");
        SwarmStatus {
            alive: count("alive"),
            suspect: count("suspect"),
            dead: count("dead"),
            total_bees: alive_nodes.clone().map(|n| n.bees).sum(),
            total_memory_gb: alive_nodes.map(|n| n.memory_gb).sum(),
            nodes,
        }
    }

    /// This node's load, with the mean temperature of the alive nodes.
    pub fn colony_status(&self) -> ColonyStatus {
        let alive: Vec<f64> = self
            .swarm_status()
            .nodes
            .iter()
            .filter(|n| n.state == "alive")
            .map(|n| n.temperature)
            .collect();
        let mean = if alive.is_empty() {
            self.colony.load().temperature
        } else {
            alive.iter().sum::<f64>() / alive.len() as f64
        };
        self.colony.status(mean)
    }
}

fn node_info(beat: &Heartbeat, state: NodeState, last_seen_s: f64, this_node: bool) -> NodeInfo {
    NodeInfo {
        node_id: beat.node_id.clone(),
        state: state.as_str().to_string(),
        cores: beat.capacity.cores,
        memory_gb: beat.capacity.memory_bytes as f64 / GIB,
        bees: beat.capacity.bees,
        bees_busy: beat.load.bees_busy,
        temperature: beat.load.temperature,
        last_seen_s,
        cached_cells: beat.cached_cells,
        listen: beat.listen.clone(),
        this_node,
    }
}

/// delta-rs's AWS SDK brings aws-lc-rs while object_store uses ring; rustls
/// needs one process-wide default (DESIGN §3).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
