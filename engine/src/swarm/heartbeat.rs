//! The heartbeat object: what a node tells the swarm about itself.
//!
//! Each live node overwrites `_apiary/heartbeats/{node_id}.json` every
//! heartbeat interval. The object is the node's whole announcement: identity,
//! capacity and load. Readers tolerate a missing or unreadable object (a node
//! that is starting, stopping, or was swept) by skipping it.

use serde::{Deserialize, Serialize};

/// Where heartbeats live, relative to the storage root.
pub const HEARTBEAT_DIR: &str = "_apiary/heartbeats";

/// Bumped when a field changes meaning; readers skip versions they do not know.
pub const HEARTBEAT_FORMAT: u32 = 1;

/// One node's announcement, as stored in its heartbeat object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub format: u32,
    pub node_id: String,
    /// Increases with every write, so readers can tell a fresh heartbeat
    /// from a stale one without trusting clocks.
    pub seq: u64,
    /// Writer's wall clock (ms since the Unix epoch) when written; used only
    /// to age a heartbeat the reader sees for the first time.
    pub written_at_ms: u64,
    pub started_at_ms: u64,
    pub capacity: Capacity,
    pub load: Load,
    /// Cells this node holds in its local cache.
    #[serde(default)]
    pub cached_cells: u64,
    /// Path hashes ([`crate::cache::cell_hash`]) of the cells it used most
    /// recently, so coordinators can send their tasks back to it.
    #[serde(default)]
    pub cache: Vec<u64>,
    /// The Postgres endpoint the node listens on, when it serves one.
    #[serde(default)]
    pub listen: Option<String>,
}

/// What a node can do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    pub cores: usize,
    pub memory_bytes: u64,
    pub bees: usize,
    /// Memory budget of each bee.
    pub bee_memory_bytes: u64,
}

/// What a node is doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    pub bees_busy: usize,
    /// Work waiting for a free bee.
    pub queue: usize,
    /// Share of the node's memory pool in use, in [0, 1].
    pub memory_pressure: f64,
    /// The colony temperature, in [0, 1].
    pub temperature: f64,
}

impl Heartbeat {
    /// The object name of `node_id`'s heartbeat under [`HEARTBEAT_DIR`].
    pub fn file_name(node_id: &str) -> String {
        format!("{node_id}.json")
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serializing plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses a heartbeat; `None` for a torn, foreign or future-format object.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Heartbeat>(bytes)
            .ok()
            .filter(|h| h.format == HEARTBEAT_FORMAT && !h.node_id.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Heartbeat {
        Heartbeat {
            format: HEARTBEAT_FORMAT,
            node_id: "n1".into(),
            seq: 3,
            written_at_ms: 1_700_000_000_000,
            started_at_ms: 1_699_999_990_000,
            capacity: Capacity {
                cores: 4,
                memory_bytes: 8 << 30,
                bees: 4,
                bee_memory_bytes: 1 << 30,
            },
            load: Load::default(),
            cached_cells: 0,
            cache: vec![42],
            listen: Some("0.0.0.0:5432".into()),
        }
    }

    #[test]
    fn a_heartbeat_round_trips() {
        let beat = sample();
        assert_eq!(Heartbeat::decode(&beat.encode()), Some(beat));
    }

    #[test]
    fn torn_and_foreign_objects_are_skipped() {
        let bytes = sample().encode();
        assert_eq!(Heartbeat::decode(&bytes[..bytes.len() / 2]), None);
        assert_eq!(Heartbeat::decode(b""), None);
        let mut future = sample();
        future.format = HEARTBEAT_FORMAT + 1;
        assert_eq!(Heartbeat::decode(&future.encode()), None);
    }
}
