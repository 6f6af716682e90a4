//! The world view: which nodes of the swarm are alive, as seen from here.
//!
//! Built only from heartbeat objects listed in storage. A peer's age is the
//! time since its heartbeat last *changed* as observed on this node's own
//! monotonic clock, so clock skew between machines cannot make a live node
//! look dead. Only a heartbeat seen for the first time is aged by the wall
//! clock it carries (clamped at zero), which is how a node that died long
//! ago is recognised as dead at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::heartbeat::Heartbeat;

/// How often nodes announce themselves and when silence means trouble.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SwarmTimings {
    /// Between two heartbeats of one node (and two refreshes of the view).
    pub interval: Duration,
    /// Silence after which a peer is suspect (not given new work).
    pub suspect_after: Duration,
    /// Silence after which a peer is dead (its tasks are reassigned).
    pub dead_after: Duration,
    /// Silence after which any node deletes a dead peer's heartbeat.
    pub sweep_after: Duration,
}

impl Default for SwarmTimings {
    fn default() -> Self {
        SwarmTimings {
            interval: Duration::from_secs(2),
            suspect_after: Duration::from_secs(5),
            dead_after: Duration::from_secs(10),
            sweep_after: Duration::from_secs(60),
        }
    }
}

/// A peer's health by the age of its heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    Alive,
    Suspect,
    Dead,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Alive => "alive",
            NodeState::Suspect => "suspect",
            NodeState::Dead => "dead",
        }
    }
}

/// A peer as last observed.
#[derive(Debug, Clone)]
pub struct Peer {
    pub heartbeat: Heartbeat,
    /// When this node saw the current heartbeat appear.
    seen_at: Instant,
    /// How old the heartbeat already was at `seen_at`.
    age_when_seen: Duration,
}

impl Peer {
    pub fn age(&self, now: Instant) -> Duration {
        self.age_when_seen + now.saturating_duration_since(self.seen_at)
    }
}

/// Every peer whose heartbeat is in storage, with its observed age.
#[derive(Debug, Clone, Default)]
pub struct WorldView {
    timings: SwarmTimings,
    peers: BTreeMap<String, Peer>,
}

impl WorldView {
    pub fn new(timings: SwarmTimings) -> Self {
        WorldView {
            timings,
            peers: BTreeMap::new(),
        }
    }

    pub fn timings(&self) -> SwarmTimings {
        self.timings
    }

    /// Applies one listing of the heartbeat directory. `listed` names every
    /// node whose heartbeat object exists; `read` holds the heartbeats that
    /// were (re)read and parsed. A listed node whose object was not read
    /// (unchanged, or torn mid-write) keeps its previous observation; a node
    /// no longer listed left the swarm.
    pub fn observe<'a>(
        &mut self,
        listed: impl IntoIterator<Item = &'a str>,
        read: Vec<Heartbeat>,
        now: Instant,
        wall_now_ms: u64,
    ) {
        let listed: std::collections::HashSet<&str> = listed.into_iter().collect();
        self.peers.retain(|id, _| listed.contains(id.as_str()));
        for beat in read {
            if !listed.contains(beat.node_id.as_str()) {
                continue;
            }
            let same = self.peers.get(&beat.node_id).is_some_and(|p| {
                p.heartbeat.seq == beat.seq && p.heartbeat.started_at_ms == beat.started_at_ms
            });
            if same {
                continue;
            }
            let age_when_seen = if self.peers.contains_key(&beat.node_id) {
                Duration::ZERO
            } else {
                Duration::from_millis(wall_now_ms.saturating_sub(beat.written_at_ms))
            };
            self.peers.insert(
                beat.node_id.clone(),
                Peer {
                    heartbeat: beat,
                    seen_at: now,
                    age_when_seen,
                },
            );
        }
    }

    /// Forgets a peer (after its heartbeat was swept).
    pub fn forget(&mut self, node_id: &str) {
        self.peers.remove(node_id);
    }

    pub fn state(&self, peer: &Peer, now: Instant) -> NodeState {
        let age = peer.age(now);
        if age >= self.timings.dead_after {
            NodeState::Dead
        } else if age >= self.timings.suspect_after {
            NodeState::Suspect
        } else {
            NodeState::Alive
        }
    }

    /// Every peer with its state and age, ordered by node id.
    pub fn peers(&self, now: Instant) -> Vec<(&Peer, NodeState, Duration)> {
        self.peers
            .values()
            .map(|p| (p, self.state(p, now), p.age(now)))
            .collect()
    }

    /// Nodes that may be given work now.
    pub fn alive(&self, now: Instant) -> Vec<&Heartbeat> {
        self.peers(now)
            .into_iter()
            .filter(|(_, state, _)| *state == NodeState::Alive)
            .map(|(p, _, _)| &p.heartbeat)
            .collect()
    }

    /// Dead peers silent for longer than the sweep delay.
    pub fn sweepable(&self, now: Instant) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(_, p)| p.age(now) >= self.timings.sweep_after)
            .map(|(id, _)| id.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::swarm::heartbeat::{Capacity, Load, HEARTBEAT_FORMAT};

    fn beat(node: &str, seq: u64, written_at_ms: u64) -> Heartbeat {
        Heartbeat {
            format: HEARTBEAT_FORMAT,
            node_id: node.into(),
            seq,
            written_at_ms,
            started_at_ms: 1,
            capacity: Capacity {
                cores: 2,
                memory_bytes: 1 << 30,
                bees: 2,
                bee_memory_bytes: 1 << 28,
            },
            load: Load::default(),
            cached_cells: 0,
            cache: Vec::new(),
            listen: None,
        }
    }

    fn states(view: &WorldView, now: Instant) -> Vec<(String, NodeState)> {
        view.peers(now)
            .into_iter()
            .map(|(p, s, _)| (p.heartbeat.node_id.clone(), s))
            .collect()
    }

    #[test]
    fn a_silent_peer_turns_suspect_then_dead_and_a_fresh_beat_revives_it() {
        let t0 = Instant::now();
        let mut view = WorldView::new(SwarmTimings::default());
        view.observe(["a"], vec![beat("a", 1, 1_000)], t0, 1_000);
        assert_eq!(states(&view, t0), [("a".into(), NodeState::Alive)]);
        let later = t0 + Duration::from_secs(6);
        // Listed again but unchanged: the age keeps growing.
        view.observe(["a"], vec![beat("a", 1, 1_000)], later, 7_000);
        assert_eq!(states(&view, later), [("a".into(), NodeState::Suspect)]);
        let much_later = t0 + Duration::from_secs(11);
        assert_eq!(states(&view, much_later), [("a".into(), NodeState::Dead)]);
        view.observe(["a"], vec![beat("a", 2, 12_000)], much_later, 12_000);
        assert_eq!(states(&view, much_later), [("a".into(), NodeState::Alive)]);
    }

    #[test]
    fn a_heartbeat_seen_first_is_aged_by_its_wall_clock_and_skew_never_makes_it_negative() {
        let now = Instant::now();
        let mut view = WorldView::new(SwarmTimings::default());
        view.observe(
            ["old", "skewed"],
            vec![beat("old", 9, 1_000), beat("skewed", 1, 99_000)],
            now,
            61_000,
        );
        assert_eq!(
            states(&view, now),
            [
                ("old".into(), NodeState::Dead),
                ("skewed".into(), NodeState::Alive)
            ]
        );
        assert_eq!(view.sweepable(now), ["old".to_string()]);
    }

    #[test]
    fn unlisted_peers_leave_and_torn_reads_keep_the_last_observation() {
        let now = Instant::now();
        let mut view = WorldView::new(SwarmTimings::default());
        view.observe(["a", "b"], vec![beat("a", 1, 0), beat("b", 1, 0)], now, 0);
        // b's object could not be parsed this round: still known, same age.
        view.observe(["a", "b"], vec![beat("a", 2, 0)], now, 0);
        assert_eq!(view.alive(now).len(), 2);
        view.observe(["b"], vec![], now, 0);
        assert_eq!(states(&view, now), [("b".into(), NodeState::Alive)]);
    }
}
