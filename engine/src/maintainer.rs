//! Automatic maintenance: while the colony is cold, compact frames that
//! have gathered many small cells (Z-ordered by their indexes) and now and
//! then vacuum what no version within Delta's 7-day retention needs.
//!
//! One node of the swarm maintains: the alive node with the smallest id,
//! so nodes do not compact the same frame at once. A compaction is a Delta
//! commit that changes no data; one that conflicts with a user's write
//! fails and is tried again on a later round, so a user write never waits
//! for maintenance. Every action is logged, and its commit names the
//! maintaining node as `writer` in `DESCRIBE HISTORY`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use apiary_catalog::maintenance::DEFAULT_RETENTION;
use apiary_catalog::{Catalog, FrameName};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::colony::{regulation, Colony};
use crate::error::{EngineError, Result};
use crate::swarm::Swarm;

/// Turns automatic maintenance on (default) or off.
pub const ENABLED_ENV: &str = "APIARY_AUTO_MAINTENANCE";
/// How often the maintaining node looks at the frames (default 60s).
pub const INTERVAL_ENV: &str = "APIARY_MAINTENANCE_INTERVAL";
/// Small cells a frame may have before it is compacted (default 100).
pub const SMALL_CELLS_ENV: &str = "APIARY_MAINTENANCE_SMALL_CELLS";

/// A cell below this size is small: a compaction would merge it.
const SMALL_CELL_BYTES: u64 = 32 * 1024 * 1024;
/// Rounds between vacuums of each frame (an hour at the default interval).
const VACUUM_EVERY_ROUNDS: u64 = 60;

/// When and how much the maintainer works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaintenanceSettings {
    pub enabled: bool,
    pub interval: Duration,
    pub small_cells: usize,
}

impl Default for MaintenanceSettings {
    fn default() -> Self {
        MaintenanceSettings {
            enabled: true,
            interval: Duration::from_secs(60),
            small_cells: 100,
        }
    }
}

impl MaintenanceSettings {
    /// The defaults, with what the environment sets.
    pub fn from_env(
        env: impl Fn(&str) -> Option<String>,
        parse_duration: impl Fn(&str, &str) -> Result<Duration>,
    ) -> Result<Self> {
        let mut settings = MaintenanceSettings::default();
        if let Some(text) = env(ENABLED_ENV) {
            settings.enabled = match text.trim().to_ascii_lowercase().as_str() {
                "on" | "true" | "1" => true,
                "off" | "false" | "0" => false,
                _ => {
                    return Err(EngineError::InvalidArgument(format!(
                        "{ENABLED_ENV}={text:?} must be on or off"
                    )))
                }
            };
        }
        if let Some(text) = env(INTERVAL_ENV) {
            settings.interval = parse_duration(INTERVAL_ENV, &text)?;
        }
        if let Some(text) = env(SMALL_CELLS_ENV) {
            settings.small_cells =
                text.trim()
                    .parse()
                    .ok()
                    .filter(|n| *n >= 2)
                    .ok_or_else(|| {
                        EngineError::InvalidArgument(format!(
                        "{SMALL_CELLS_ENV}={text:?} must be a whole number of cells, at least 2"
                    ))
                    })?;
        }
        Ok(settings)
    }
}

/// The maintenance task of a node that joined the swarm.
pub struct Maintainer {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What the maintenance rounds share.
struct Context {
    settings: MaintenanceSettings,
    node_id: String,
    catalog: Arc<Catalog>,
    colony: Arc<Colony>,
    swarm: Arc<Swarm>,
}

impl Maintainer {
    pub fn start(
        settings: MaintenanceSettings,
        node_id: String,
        catalog: Arc<Catalog>,
        colony: Arc<Colony>,
        swarm: Arc<Swarm>,
    ) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let context = Context {
            settings,
            node_id,
            catalog,
            colony,
            swarm,
        };
        let task = tokio::spawn(async move {
            let mut round: u64 = 0;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(context.settings.interval) => {}
                    _ = stopped.changed() => return,
                }
                round += 1;
                context.round(round).await;
            }
        });
        Maintainer { stop, task }
    }

    /// Stops after the action under way, if any.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Context {
    async fn round(&self, round: u64) {
        let temperature = self.colony.load().temperature;
        if regulation(temperature) != "cold" {
            tracing::debug!(temperature, "maintenance skipped: the colony is not cold");
            return;
        }
        let world = self.swarm.world();
        let maintainer = world
            .alive(Instant::now())
            .into_iter()
            .map(|beat| beat.node_id.as_str())
            .min()
            .map(str::to_string);
        if maintainer.as_deref() != Some(self.node_id.as_str()) {
            return;
        }
        let snapshot = match self.catalog.refresh().await {
            Ok(snapshot) => snapshot,
            Err(e) => {
                tracing::warn!(error = %e, "maintenance skipped: cannot read the registry");
                return;
            }
        };
        for (hive, hivedef) in &snapshot.hives {
            for (boxname, boxdef) in &hivedef.boxes {
                for (frame, def) in &boxdef.frames {
                    let Ok(name) = FrameName::new(hive, boxname, frame) else {
                        continue;
                    };
                    let name = name.located(def);
                    self.compact(&name, &def.clustering_key()).await;
                    if round.is_multiple_of(VACUUM_EVERY_ROUNDS) {
                        self.vacuum(&name).await;
                    }
                    // Give way as soon as users bring work.
                    if regulation(self.colony.load().temperature) != "cold" {
                        return;
                    }
                }
            }
        }
    }

    async fn compact(&self, name: &FrameName, zorder: &[String]) {
        let frames = self.catalog.frames();
        let small = match frames.small_cells(name, SMALL_CELL_BYTES).await {
            Ok(small) => small,
            Err(e) => {
                tracing::debug!(frame = %name, error = %e, "maintenance cannot read the frame");
                return;
            }
        };
        if small < self.settings.small_cells {
            return;
        }
        let writer = format!("auto-maintenance@{}", self.node_id);
        match frames.optimize(name, &[], zorder, Some(&writer)).await {
            Ok(done) => tracing::info!(
                frame = %name,
                small_cells = small,
                files_removed = done.files_removed,
                files_added = done.files_added,
                version = done.version,
                "maintenance compacted the frame"
            ),
            // A write got there first: it wins, and the next round retries.
            Err(e) => tracing::info!(frame = %name, error = %e, "maintenance compaction gave way"),
        }
    }

    async fn vacuum(&self, name: &FrameName) {
        match self
            .catalog
            .frames()
            .vacuum(name, DEFAULT_RETENTION, true, false)
            .await
        {
            Ok(deleted) if !deleted.is_empty() => tracing::info!(
                frame = %name,
                files_deleted = deleted.len(),
                "maintenance vacuumed the frame"
            ),
            Ok(_) => {}
            Err(e) => tracing::info!(frame = %name, error = %e, "maintenance vacuum failed"),
        }
    }
}
