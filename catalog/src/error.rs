//! The one error type of the catalog crate.
//!
//! Each variant carries what a user needs to act on it: the name that was
//! rejected and the rule, the column that failed validation, the root that
//! could not be reached. The gateway maps these to SQLSTATEs and the Python
//! SDK to exception classes; nothing here knows about either.

use thiserror::Error;

/// Result alias used throughout the catalog crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of catalog object a name refers to; used in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Hive,
    Box,
    Frame,
    Column,
    Index,
}

impl std::fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ObjectKind::Hive => "hive",
            ObjectKind::Box => "box",
            ObjectKind::Frame => "frame",
            ObjectKind::Column => "column",
            ObjectKind::Index => "index",
        })
    }
}

#[derive(Debug, Error)]
pub enum Error {
    /// A hive, box, frame or column name breaks the naming rule.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        kind: ObjectKind,
        name: String,
        reason: String,
    },

    #[error("{kind} {name} already exists")]
    AlreadyExists { kind: ObjectKind, name: String },

    #[error("{kind} {name} does not exist{hint}")]
    NotFound {
        kind: ObjectKind,
        name: String,
        /// Extra guidance, e.g. the names that do exist; starts with "; ".
        hint: String,
    },

    /// A schema given to `create_frame` is malformed.
    #[error("invalid frame schema: {0}")]
    InvalidSchema(String),

    /// Data offered to a frame does not fit its schema.
    #[error("column {column:?}: {detail}")]
    SchemaMismatch { column: String, detail: String },

    /// The storage root URI cannot be understood.
    #[error("invalid storage root {uri:?}: {reason}")]
    InvalidRoot { uri: String, reason: String },

    /// The storage root exists in principle but cannot be used
    /// (missing bucket, wrong credentials, unreachable endpoint).
    #[error("storage root {root} is not usable: {detail}")]
    StorageUnavailable { root: String, detail: String },

    /// An object-store operation failed.
    #[error("storage error at {root}: {source}")]
    Storage {
        root: String,
        #[source]
        source: object_store::Error,
    },

    /// A Delta Lake operation on a frame failed.
    #[error("frame {frame}: {source}")]
    Delta {
        frame: String,
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },

    /// The shared registry could not be committed after many conflicting writers.
    #[error("registry update gave up after {attempts} conflicting attempts; try again")]
    RegistryContention { attempts: usize },

    /// A registry object in storage could not be parsed.
    #[error("corrupt registry object {path}: {detail}")]
    CorruptRegistry { path: String, detail: String },

    /// A transaction block's commit collided with another writer's change
    /// to the same cells; the block was rolled back.
    #[error("could not serialize access to frame {frame} due to a concurrent update ({detail}); the transaction was rolled back, run it again")]
    Conflict { frame: String, detail: String },

    /// A write's commit could not be confirmed either way: storage failed
    /// both the commit and every later look at the log. Retrying with the
    /// same idempotency key commits it at most once.
    #[error("frame {frame}: could not learn whether the write committed ({detail}); retry it with idempotency key {key:?}, which commits it at most once, or check the frame before writing again")]
    CommitUnknown {
        frame: String,
        key: String,
        detail: String,
    },

    /// An idempotency key that cannot be used.
    #[error("invalid idempotency key: {0}")]
    InvalidKey(String),

    /// A transaction block may write one frame only.
    #[error("this transaction already writes frame {staged}; a transaction block writes one frame, so COMMIT before writing {frame}")]
    TransactionScope { staged: String, frame: String },

    /// A statement failed earlier in the open transaction block.
    #[error("current transaction is aborted, commands ignored until end of transaction block")]
    TransactionAborted,

    /// A statement that needs a transaction block ran outside one.
    #[error("there is no transaction in progress; send BEGIN first")]
    NoTransaction,

    /// `ROLLBACK TO` / `RELEASE` named a savepoint the block does not have.
    #[error("savepoint {0:?} does not exist")]
    NoSavepoint(String),

    /// Computing the rows of a write failed (e.g. a bad cast in `INSERT …
    /// SELECT`); kept whole so the edges can classify it.
    #[error("{}", .0.strip_backtrace())]
    Query(Box<datafusion::error::DataFusionError>),

    #[error("arrow error: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

impl Error {
    pub(crate) fn delta(frame: impl Into<String>, source: deltalake::DeltaTableError) -> Self {
        Error::Delta {
            frame: frame.into(),
            source: Box::new(source),
        }
    }

    /// Whether storage failed underneath (an object-store error anywhere in
    /// the chain): the edges report these as I/O errors (58030), which a
    /// client may retry, rather than as internal errors.
    pub fn is_storage(&self) -> bool {
        if matches!(
            self,
            Error::Storage { .. } | Error::StorageUnavailable { .. } | Error::CommitUnknown { .. }
        ) {
            return true;
        }
        let mut cause: Option<&(dyn std::error::Error + 'static)> = match self {
            Error::Delta { source, .. } => Some(source.as_ref()),
            other => Some(other),
        };
        while let Some(error) = cause {
            if error.downcast_ref::<object_store::Error>().is_some() {
                return true;
            }
            // The Delta kernel keeps an object-store error without exposing
            // it as a source; its message is all there is to go by.
            if let Some(deltalake::DeltaTableError::KernelError(kernel)) =
                error.downcast_ref::<deltalake::DeltaTableError>()
            {
                if kernel
                    .to_string()
                    .starts_with("Error interacting with object store")
                {
                    return true;
                }
            }
            cause = error.source();
        }
        false
    }

    pub(crate) fn mismatch(column: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::SchemaMismatch {
            column: column.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_failures_under_delta_errors_are_storage_errors() {
        let lost = object_store::Error::Generic {
            store: "S3",
            source: "connection reset".into(),
        };
        let delta = deltalake::DeltaTableError::ObjectStore { source: lost };
        assert!(Error::delta("h.b.f", delta).is_storage());
        let schema = deltalake::DeltaTableError::Generic("bad schema".into());
        assert!(!Error::delta("h.b.f", schema).is_storage());
        assert!(!Error::InvalidSchema("x".into()).is_storage());
    }
}
