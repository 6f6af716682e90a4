//! apiary-engine: a node and the SQL sessions it serves.
//!
//! Where a query goes: an edge (Python SDK, CLI, Postgres gateway) asks a
//! [`Node`] for a [`Session`] and calls [`Session::sql`] (or, to stream,
//! [`Session::prepare`] then [`Session::execute`]). The session refreshes the
//! registry, answers Apiary's own commands ([`command`]) from the catalog,
//! applies catalog statements (`CREATE TABLE`, …) itself, and hands
//! everything else to DataFusion, whose catalog is the root's hives, boxes
//! and frames (`apiary_catalog::provider`). Every write — SDK calls, SQL
//! `INSERT`/`DELETE`/`UPDATE`, `COPY` — ends in the catalog's one validated
//! commit path.
//!
//! A node started with [`Node::start`] is a member of the [`swarm`]: it
//! heartbeats into the root, and its world view of the other members comes
//! from their heartbeats alone. Its [`colony`] load travels in the heartbeat.

pub mod cache;
pub mod colony;
pub mod command;
pub mod constant_keys;
mod ddl;
pub mod distributed;
pub mod error;
pub mod maintainer;
pub mod maintenance;
mod merge;
pub mod node;
pub mod postgres;
pub mod session;
pub mod swarm;
pub mod yield_points;

pub use apiary_catalog as catalog;

/// The stack of every thread that plans or runs statements. Planning walks
/// expression trees recursively; with [`postgres::MAX_NESTING`] this leaves
/// room to spare (the default, 2 MiB, did not in debug builds). Untouched
/// stack pages cost no memory.
pub const STATEMENT_STACK_BYTES: usize = 16 << 20;
pub use colony::{regulation, ColonyStatus};
pub use error::{EngineError, Result};
pub use node::{Node, NodeConfig, NodeInfo, SwarmStatus};
pub use session::{transaction_control, Control, Outcome, Prepared, QueryResult, Session};
