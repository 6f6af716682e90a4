//! Distributed execution through the bucket (DESIGN §6).
//!
//! The coordinator is whichever node received the query. [`plan::Distribute`]
//! cuts scan stages out of the physical plan and assigns their cells to the
//! alive nodes; [`exchange::ExchangeExec`] hands the tasks over through each
//! assignee's inbox, follows them to completion (reassigning the tasks of
//! nodes that die or miss their lease) and streams the partial results in.
//! [`worker::Worker`] is the other side: it claims tasks from its own inbox
//! and runs each in one bee. Nothing travels node to node; every message is an
//! object under `_apiary/`.

pub mod exchange;
pub mod explain;
pub mod plan;
pub mod task;
pub mod worker;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apiary_catalog::root::StorageRoot;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;

pub use exchange::{ExchangeExec, TaskReport};
pub use plan::Distribute;
pub use worker::{Bees, Worker};

use crate::cache::CellCache;
use crate::colony::Colony;
use crate::swarm::Swarm;

/// When a stage is worth distributing and how hard to try.
#[derive(Debug, Clone, Copy)]
pub struct DistributeSettings {
    /// Stages with fewer cells run locally (`APIARY_DISTRIBUTE_MIN_CELLS`).
    pub min_cells: usize,
    /// Attempts per task before the query fails.
    pub max_attempts: u32,
    /// A task not finished this long after it was handed over is reassigned
    /// (`APIARY_TASK_LEASE`).
    pub lease: Duration,
}

impl Default for DistributeSettings {
    fn default() -> Self {
        DistributeSettings {
            min_cells: 2,
            max_attempts: 3,
            lease: Duration::from_secs(300),
        }
    }
}

/// What a coordinator needs to distribute: who it is, the root, the swarm
/// it sees and its own capacity.
pub struct Distributor {
    pub(crate) node_id: String,
    pub(crate) root: StorageRoot,
    pub(crate) swarm: Arc<Swarm>,
    pub(crate) colony: Arc<Colony>,
    pub(crate) settings: DistributeSettings,
    /// This node's cell cache, for locality.
    pub(crate) cache: Option<Arc<CellCache>>,
    /// This node's bee budget.
    pub(crate) bee_memory_bytes: u64,
    /// Decodes fragments the way a worker will, to check them before
    /// shipping.
    decode: Arc<TaskContext>,
}

impl std::fmt::Debug for Distributor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Distributor")
            .field("node_id", &self.node_id)
            .field("settings", &self.settings)
            .finish()
    }
}

impl Distributor {
    pub fn new(
        node_id: String,
        root: StorageRoot,
        swarm: Arc<Swarm>,
        colony: Arc<Colony>,
        settings: DistributeSettings,
        cache: Option<Arc<CellCache>>,
        bee_memory_bytes: u64,
    ) -> Self {
        // Checked against what a worker decodes with: DataFusion's
        // functions and the Postgres ones a session plans.
        let mut state = SessionStateBuilder::new().with_default_features().build();
        if let Err(e) = crate::postgres::register_functions(&mut state) {
            tracing::warn!(error = %e, "cannot register the Postgres functions for fragment checks");
        }
        let decode = SessionContext::new_with_state(state);
        if let Err(e) = worker::register_root_store(&decode.runtime_env(), &root, None) {
            tracing::warn!(error = %e, "cannot check fragments against the root's store; queries will run locally");
        }
        Distributor {
            node_id,
            root,
            swarm,
            colony,
            settings,
            cache,
            bee_memory_bytes,
            decode: decode.task_ctx(),
        }
    }

    /// One slot per bee of every alive node (this one included), coolest
    /// nodes first and interleaved, so consecutive tasks land on different
    /// nodes.
    pub(crate) fn slots(&self, now: Instant) -> Vec<String> {
        let world = self.swarm.world();
        let mut nodes: Vec<(f64, String, usize)> = world
            .alive(now)
            .into_iter()
            .filter(|beat| beat.node_id != self.node_id)
            .map(|beat| {
                (
                    beat.load.temperature,
                    beat.node_id.clone(),
                    beat.capacity.bees.max(1),
                )
            })
            .collect();
        let own = self.colony.load();
        nodes.push((own.temperature, self.node_id.clone(), self.colony.bees()));
        nodes.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let rounds = nodes.iter().map(|n| n.2).max().unwrap_or(1);
        let mut slots = Vec::new();
        for round in 0..rounds {
            for (_, node, bees) in &nodes {
                if round < *bees {
                    slots.push(node.clone());
                }
            }
        }
        slots
    }

    /// The cells each alive node (this one included) announced as cached.
    pub(crate) fn cached_cells(&self, now: Instant) -> HashMap<String, HashSet<u64>> {
        let mut cached: HashMap<String, HashSet<u64>> = self
            .swarm
            .world()
            .alive(now)
            .into_iter()
            .map(|beat| (beat.node_id.clone(), beat.cache.iter().copied().collect()))
            .collect();
        if let Some(cache) = &self.cache {
            cached.insert(
                self.node_id.clone(),
                cache.announced().into_iter().collect(),
            );
        }
        cached
    }

    /// The smallest bee budget among the alive nodes: tasks are cut so
    /// that any of them can take one.
    pub(crate) fn smallest_bee_budget(&self, now: Instant) -> u64 {
        self.swarm
            .world()
            .alive(now)
            .iter()
            .map(|beat| beat.capacity.bee_memory_bytes)
            .chain(std::iter::once(self.bee_memory_bytes))
            .min()
            .unwrap_or(self.bee_memory_bytes)
            .max(1)
    }

    /// The nodes that may be given work now (this one included).
    pub(crate) fn alive_nodes(&self, now: Instant) -> HashSet<String> {
        self.swarm
            .world()
            .alive(now)
            .into_iter()
            .map(|beat| beat.node_id.clone())
            .chain(std::iter::once(self.node_id.clone()))
            .collect()
    }

    /// The coolest alive peer not in `exclude`; `None` means run it here.
    pub(crate) fn reassign_target(&self, exclude: &[String], now: Instant) -> Option<String> {
        let world = self.swarm.world();
        world
            .alive(now)
            .into_iter()
            .filter(|beat| beat.node_id != self.node_id && !exclude.contains(&beat.node_id))
            .min_by(|a, b| a.load.temperature.total_cmp(&b.load.temperature))
            .map(|beat| beat.node_id.clone())
    }

    /// Serializes a fragment, or `None` if a worker could not decode it.
    pub(crate) fn encode(&self, plan: Arc<dyn ExecutionPlan>) -> Option<Vec<u8>> {
        let check = datafusion_proto::bytes::physical_plan_to_bytes(plan).and_then(|bytes| {
            datafusion_proto::bytes::physical_plan_from_bytes(&bytes, &self.decode).map(|_| bytes)
        });
        match check {
            Ok(bytes) => Some(bytes.to_vec()),
            Err(e) => {
                tracing::debug!(error = %e, "a stage fragment does not round-trip through datafusion-proto; running it locally");
                None
            }
        }
    }
}
