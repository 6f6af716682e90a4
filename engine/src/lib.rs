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

pub mod command;
mod ddl;
pub mod error;
pub mod node;
pub mod session;

pub use apiary_catalog as catalog;
pub use error::{EngineError, Result};
pub use node::{regulation, ColonyStatus, Node, NodeConfig, NodeInfo, SwarmStatus};
pub use session::{Outcome, Prepared, QueryResult, Session};
