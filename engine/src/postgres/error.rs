//! Errors that carry Postgres's SQLSTATE from where they are raised.
//!
//! Most engine errors get their SQLSTATE from their kind at the edge; a
//! Postgres function that fails the way Postgres's does (`ln(0)` is 2201E,
//! an unknown setting 42704) says so itself, because clients branch on the
//! code: asyncpg, for one, expects 42704 for a setting the server lacks.

use std::fmt;

use datafusion::common::DataFusionError;

/// A Postgres error: its SQLSTATE and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: &'static str,
    pub message: String,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqlError {}

/// `message` with SQLSTATE `code`, as a DataFusion error.
pub fn sql_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(SqlError {
        code,
        message: message.into(),
    }))
}
