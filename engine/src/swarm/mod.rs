//! The swarm: nodes that share a storage root, found through heartbeats.
//!
//! There is no membership protocol. A member writes its [`Heartbeat`] every
//! interval ([`Membership`]); every node lists the heartbeat directory and
//! turns what it finds into its [`WorldView`] ([`Swarm::refresh`]). Leaving
//! gracefully deletes the heartbeat; dying leaves it to age into `dead`, and
//! any member eventually sweeps it.

pub mod heartbeat;
pub mod world;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apiary_catalog::root::StorageRoot;
use bytes::Bytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use heartbeat::{Capacity, Heartbeat, Load, HEARTBEAT_DIR};
pub use world::{NodeState, Peer, SwarmTimings, WorldView};

use crate::error::Result;

/// Where tasks and partial results live; swept of orphans by members.
const ORPHAN_DIRS: [&str; 2] = [
    crate::distributed::task::INBOX_DIR,
    crate::distributed::task::QUERIES_DIR,
];

/// Objects under [`ORPHAN_DIRS`] older than this belong to no live query.
const ORPHAN_AGE: Duration = Duration::from_secs(3600);

/// Heartbeats between two orphan sweeps of one node (10 min at 2 s).
const SWEEP_EVERY: u64 = 300;

/// Milliseconds since the Unix epoch on this machine's clock.
pub fn wall_clock_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One node's view of the swarm on a root, refreshed from storage.
#[derive(Debug)]
pub struct Swarm {
    root: StorageRoot,
    world: RwLock<WorldView>,
    /// Last listed version of each heartbeat object, so unchanged heartbeats
    /// are not fetched again.
    versions: Mutex<HashMap<String, String>>,
}

impl Swarm {
    pub fn new(root: StorageRoot, timings: SwarmTimings) -> Self {
        Swarm {
            root,
            world: RwLock::new(WorldView::new(timings)),
            versions: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the world view (a cheap copy of the last refresh).
    pub fn world(&self) -> WorldView {
        match self.world.read() {
            Ok(world) => world.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn timings(&self) -> SwarmTimings {
        self.world().timings()
    }

    /// Lists the heartbeats, fetches the ones that changed, and updates the
    /// world view. With `sweep`, deletes heartbeats of long-dead peers.
    pub async fn refresh(&self, sweep: bool) -> Result<()> {
        let dir = self.root.key(HEARTBEAT_DIR);
        let listing = self.root.list_after(&dir, None).await?;
        let mut listed = Vec::with_capacity(listing.len());
        let mut changed = Vec::new();
        {
            let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
            let mut seen = HashMap::with_capacity(listing.len());
            for meta in &listing {
                let Some(node_id) = meta
                    .location
                    .filename()
                    .and_then(|f| f.strip_suffix(".json"))
                else {
                    continue;
                };
                let version = format!("{:?}/{}/{}", meta.e_tag, meta.last_modified, meta.size);
                if versions.get(node_id) != Some(&version) {
                    changed.push(meta.location.clone());
                }
                seen.insert(node_id.to_string(), version);
                listed.push(node_id.to_string());
            }
            *versions = seen;
        }
        let mut read = Vec::with_capacity(changed.len());
        for key in changed {
            // A heartbeat deleted or torn between the listing and the read is
            // simply not fresh this round.
            if let Ok(Some(bytes)) = self.root.get(&key).await {
                match Heartbeat::decode(&bytes) {
                    Some(beat) => read.push(beat),
                    None => self.forget_version(&key),
                }
            }
        }
        let now = Instant::now();
        let sweepable = {
            let mut world = self.world.write().unwrap_or_else(|p| p.into_inner());
            world.observe(
                listed.iter().map(String::as_str),
                read,
                now,
                wall_clock_ms(),
            );
            if sweep {
                world.sweepable(now)
            } else {
                Vec::new()
            }
        };
        for node_id in sweepable {
            tracing::info!(peer = %node_id, "sweeping the heartbeat of a dead node");
            self.root
                .delete(&heartbeat_key(&self.root, &node_id))
                .await?;
            self.world
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .forget(&node_id);
        }
        Ok(())
    }

    /// Makes the next refresh read `key` again (it was unreadable).
    fn forget_version(&self, key: &object_store::path::Path) {
        if let Some(node_id) = key.filename().and_then(|f| f.strip_suffix(".json")) {
            self.versions
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(node_id);
        }
    }

    /// Deletes task hand-offs and partial results older than `age`: what
    /// coordinators that died mid-query left behind. Any member may do it;
    /// finished queries clean up after themselves.
    pub async fn sweep_orphans(&self, age: Duration) -> Result<usize> {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(age).unwrap_or_default();
        let mut swept = 0;
        for dir in [ORPHAN_DIRS[0], ORPHAN_DIRS[1]] {
            for meta in self.root.list_after(&self.root.key(dir), None).await? {
                if meta.last_modified < cutoff {
                    self.root.delete(&meta.location).await?;
                    swept += 1;
                }
            }
        }
        if swept > 0 {
            tracing::info!(objects = swept, "swept orphaned task objects");
        }
        Ok(swept)
    }

    async fn beat(&self, heartbeat: &Heartbeat) -> Result<()> {
        let key = heartbeat_key(&self.root, &heartbeat.node_id);
        self.root.put(&key, Bytes::from(heartbeat.encode())).await?;
        Ok(())
    }
}

fn heartbeat_key(root: &StorageRoot, node_id: &str) -> object_store::path::Path {
    root.key(&format!(
        "{HEARTBEAT_DIR}/{}",
        Heartbeat::file_name(node_id)
    ))
}

/// A node's membership: a task that writes its heartbeat and refreshes the
/// world view every interval until [`Membership::leave`].
#[derive(Debug)]
pub struct Membership {
    node_id: String,
    swarm: Arc<Swarm>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Membership {
    /// Writes the first heartbeat (so a failure to write is a start-up error)
    /// and starts the heartbeat task. `announce(seq)` builds each heartbeat
    /// from the node's current load.
    pub async fn join(
        swarm: Arc<Swarm>,
        announce: Arc<dyn Fn(u64) -> Heartbeat + Send + Sync>,
    ) -> Result<Self> {
        let first = announce(1);
        let node_id = first.node_id.clone();
        swarm.beat(&first).await?;
        swarm.refresh(true).await?;
        let (stop, mut stopped) = watch::channel(false);
        let interval = swarm.timings().interval;
        let task = {
            let swarm = swarm.clone();
            let node_id = node_id.clone();
            tokio::spawn(async move {
                let mut seq = 1;
                loop {
                    tokio::select! {
                        _ = stopped.changed() => break,
                        _ = tokio::time::sleep(interval) => {}
                    }
                    seq += 1;
                    let beat = announce(seq);
                    if let Err(e) = timeout(interval, swarm.beat(&beat)).await {
                        tracing::warn!(node_id = %node_id, error = %e, "cannot write the heartbeat");
                    }
                    if let Err(e) = timeout(interval, swarm.refresh(true)).await {
                        tracing::warn!(node_id = %node_id, error = %e, "cannot refresh the world view");
                    }
                    if seq % SWEEP_EVERY == 0 {
                        if let Err(e) = swarm.sweep_orphans(ORPHAN_AGE).await {
                            tracing::warn!(node_id = %node_id, error = %e, "cannot sweep orphaned task objects");
                        }
                    }
                }
            })
        };
        tracing::info!(node_id = %node_id, "joined the swarm");
        Ok(Membership {
            node_id,
            swarm,
            stop,
            task,
        })
    }

    /// Stops heartbeating and deletes the heartbeat, so peers see this node
    /// leave at their next refresh instead of after the dead timeout.
    pub async fn leave(self) -> Result<()> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let key = heartbeat_key(&self.swarm.root, &self.node_id);
        self.swarm.root.delete(&key).await?;
        tracing::info!(node_id = %self.node_id, "left the swarm");
        Ok(())
    }
}

/// Bounds one storage round trip of the heartbeat loop by the interval, so a
/// hung request cannot stall the loop.
async fn timeout<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit.max(Duration::from_secs(1)) * 5, work)
        .await
        .map_err(|_| {
            crate::error::EngineError::Timeout(format!(
                "a heartbeat storage request took longer than {:?}",
                limit * 5
            ))
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_task_objects_older_than_the_cutoff_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::parse(dir.path().to_str().unwrap()).unwrap();
        for key in [
            "_apiary/inbox/n1/old.json",
            "_apiary/queries/q1/s0/t0.arrow",
            "_apiary/registry/00000000000000000001.json",
        ] {
            root.put(&root.key(key), Bytes::from("x")).await.unwrap();
        }
        let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
        for path in [
            "_apiary/inbox/n1/old.json",
            "_apiary/registry/00000000000000000001.json",
        ] {
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(path))
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        let swarm = Swarm::new(root.clone(), SwarmTimings::default());
        assert_eq!(
            swarm
                .sweep_orphans(Duration::from_secs(3600))
                .await
                .unwrap(),
            1
        );
        assert!(root
            .get(&root.key("_apiary/inbox/n1/old.json"))
            .await
            .unwrap()
            .is_none());
        assert!(root
            .get(&root.key("_apiary/queries/q1/s0/t0.arrow"))
            .await
            .unwrap()
            .is_some());
        // The registry is never an orphan, however old.
        assert!(root
            .get(&root.key("_apiary/registry/00000000000000000001.json"))
            .await
            .unwrap()
            .is_some());
    }
}
