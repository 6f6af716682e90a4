//! Colony status: how hard this node is working.
//!
//! The colony temperature is one number in [0, 1] that other nodes read from
//! the heartbeat (to pick who gets work) and that users read from
//! `colony_status()`. It blends the three ways a node runs out of room:
//! busy bees, work queued behind them, and the memory pool filling up. Its
//! band (`cold` … `critical`) is the regulation the node applies.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::execution::memory_pool::MemoryPool;
use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::swarm::Load;

/// Temperatures from which the colony regulates.
const HOT: f64 = 0.8;
const CRITICAL: f64 = 0.95;

/// What a write does when the node is hot (`APIARY_BACKPRESSURE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    /// Wait for the node to cool down, up to the admission deadline.
    Wait,
    /// Refuse the write at once, so the client can retry elsewhere.
    Error,
}

/// How the colony protects a hot node.
#[derive(Debug, Clone, Copy)]
pub struct RegulationSettings {
    pub backpressure: Backpressure,
    /// Longest a statement waits to be let in (`APIARY_ADMISSION_WAIT`).
    pub admission_wait: Duration,
}

impl Default for RegulationSettings {
    fn default() -> Self {
        RegulationSettings {
            backpressure: Backpressure::Wait,
            admission_wait: Duration::from_secs(30),
        }
    }
}

/// The kind of statement asking to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Query,
    Write,
}

/// The load of one node: statements and tasks running, and its memory pool.
#[derive(Debug)]
pub struct Colony {
    bees: usize,
    /// Statements and tasks running now (shared with every session).
    running: Arc<AtomicUsize>,
    pool: Arc<dyn MemoryPool>,
    pool_bytes: usize,
    abandoned: AtomicU64,
    settings: RegulationSettings,
}

/// What `colony_status()` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ColonyStatus {
    /// Load in [0, 1].
    pub temperature: f64,
    /// `cold` | `ideal` | `warm` | `hot` | `critical`.
    pub regulation: String,
    /// Tasks given up after their last attempt failed.
    pub abandoned_tasks: u64,
    pub bees: usize,
    pub bees_busy: usize,
    /// Statements waiting for a bee.
    pub queue: usize,
    /// Share of the memory pool in use, in [0, 1].
    pub memory_pressure: f64,
    pub running_queries: usize,
    /// Mean temperature of the alive nodes this node sees (itself included).
    pub swarm_temperature: f64,
}

impl Colony {
    pub fn new(
        bees: usize,
        pool: Arc<dyn MemoryPool>,
        pool_bytes: usize,
        settings: RegulationSettings,
    ) -> Self {
        Colony {
            bees: bees.max(1),
            running: Arc::new(AtomicUsize::new(0)),
            pool,
            pool_bytes: pool_bytes.max(1),
            abandoned: AtomicU64::new(0),
            settings,
        }
    }

    /// Lets a statement in, or holds it back while the node is too hot:
    /// writes while `hot` (back-pressure: wait or refuse, per setting),
    /// anything while `critical` (admission control). Waiting ends at the
    /// admission deadline with an error that says how loaded the node is.
    pub async fn admit(&self, work: Work) -> Result<()> {
        let limit = match work {
            Work::Write => HOT,
            Work::Query => CRITICAL,
        };
        let started = Instant::now();
        let mut delay = Duration::from_millis(10);
        loop {
            let load = self.load();
            if load.temperature < limit {
                return Ok(());
            }
            let refuse = work == Work::Write && self.settings.backpressure == Backpressure::Error;
            if refuse || started.elapsed() >= self.settings.admission_wait {
                return Err(EngineError::Overloaded(format!(
                    "this node is {} (temperature {:.2}: {} of {} bees busy, {} statements queued, memory pool {:.0}% used) and {}; retry later, send it to another node, or add nodes",
                    regulation(load.temperature),
                    load.temperature,
                    load.bees_busy,
                    self.bees,
                    load.queue,
                    load.memory_pressure * 100.0,
                    if refuse {
                        "refuses writes while hot (APIARY_BACKPRESSURE=error)".to_string()
                    } else {
                        format!("did not cool down within {:?}", self.settings.admission_wait)
                    }
                )));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(250));
        }
    }

    pub fn bees(&self) -> usize {
        self.bees
    }

    /// The counter sessions bump while a statement runs.
    pub fn running(&self) -> &Arc<AtomicUsize> {
        &self.running
    }

    /// Records a task abandoned after its last attempt.
    pub fn abandon(&self) {
        self.abandoned.fetch_add(1, Ordering::Relaxed);
    }

    pub fn load(&self) -> Load {
        let running = self.running.load(Ordering::SeqCst);
        let bees_busy = running.min(self.bees);
        let queue = running.saturating_sub(self.bees);
        let memory_pressure =
            (self.pool.reserved() as f64 / self.pool_bytes as f64).clamp(0.0, 1.0);
        Load {
            bees_busy,
            queue,
            memory_pressure,
            temperature: temperature(self.bees, bees_busy, queue, memory_pressure),
        }
    }

    /// This node's status; `swarm_temperature` comes from the world view.
    pub fn status(&self, swarm_temperature: f64) -> ColonyStatus {
        let load = self.load();
        ColonyStatus {
            temperature: load.temperature,
            regulation: regulation(load.temperature).to_string(),
            abandoned_tasks: self.abandoned.load(Ordering::Relaxed),
            bees: self.bees,
            bees_busy: load.bees_busy,
            queue: load.queue,
            memory_pressure: load.memory_pressure,
            running_queries: self.running.load(Ordering::SeqCst),
            swarm_temperature,
        }
    }
}

/// All bees busy is `warm` (0.7); a queue as long as the bee count on top of
/// that, or a full memory pool, is `critical` (1.0).
pub fn temperature(bees: usize, busy: usize, queue: usize, memory_pressure: f64) -> f64 {
    let bees = bees.max(1) as f64;
    let work = 0.7 * (busy as f64 / bees).min(1.0) + 0.3 * (queue as f64 / bees).min(1.0);
    work.max(memory_pressure).clamp(0.0, 1.0)
}

/// Names the regulation band of a temperature.
pub fn regulation(temperature: f64) -> &'static str {
    match temperature {
        t if t < 0.25 => "cold",
        t if t < 0.6 => "ideal",
        t if t < 0.8 => "warm",
        t if t < 0.95 => "hot",
        _ => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;

    fn colony(backpressure: Backpressure, wait_ms: u64) -> Arc<Colony> {
        Arc::new(Colony::new(
            2,
            Arc::new(GreedyMemoryPool::new(1 << 20)),
            1 << 20,
            RegulationSettings {
                backpressure,
                admission_wait: Duration::from_millis(wait_ms),
            },
        ))
    }

    #[tokio::test]
    async fn a_critical_node_holds_queries_back_until_it_cools_down() {
        let colony = colony(Backpressure::Wait, 5_000);
        colony.running().store(4, Ordering::SeqCst); // 2 busy + 2 queued
        let cooler = colony.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            cooler.running().store(1, Ordering::SeqCst);
        });
        let started = Instant::now();
        colony.admit(Work::Query).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_node_that_stays_critical_refuses_after_the_deadline() {
        let colony = colony(Backpressure::Wait, 50);
        colony.running().store(4, Ordering::SeqCst);
        let err = colony.admit(Work::Query).await.unwrap_err();
        assert!(matches!(err, EngineError::Overloaded(_)), "{err}");
        assert!(err.to_string().contains("critical"), "{err}");
    }

    #[tokio::test]
    async fn writes_meet_back_pressure_when_hot_but_queries_still_run() {
        let colony = colony(Backpressure::Error, 5_000);
        colony.running().store(3, Ordering::SeqCst); // hot: 2 busy + 1 queued
        assert_eq!(regulation(colony.load().temperature), "hot");
        colony.admit(Work::Query).await.unwrap();
        let err = colony.admit(Work::Write).await.unwrap_err();
        assert!(err.to_string().contains("APIARY_BACKPRESSURE"), "{err}");
    }

    #[test]
    fn temperature_rises_with_busy_bees_queue_and_memory() {
        assert_eq!(temperature(4, 0, 0, 0.0), 0.0);
        assert_eq!(regulation(temperature(4, 0, 0, 0.0)), "cold");
        assert_eq!(regulation(temperature(4, 2, 0, 0.0)), "ideal");
        assert_eq!(regulation(temperature(4, 4, 0, 0.0)), "warm");
        assert_eq!(regulation(temperature(4, 4, 2, 0.0)), "hot");
        assert_eq!(regulation(temperature(4, 4, 4, 0.0)), "critical");
        assert_eq!(regulation(temperature(4, 0, 0, 0.97)), "critical");
    }
}
