//! The engine's error type: catalog errors, SQL errors, and statements the
//! engine declines, each with a message that says what to do instead.

use thiserror::Error;

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error(transparent)]
    Catalog(#[from] apiary_catalog::Error),

    /// The SQL could not be parsed, planned or executed.
    #[error("{0}")]
    Sql(String),

    /// A statement Apiary does not run (yet), with what to use instead.
    #[error("{statement} is not supported: {hint}")]
    Unsupported { statement: String, hint: String },

    /// Bad input to the Session API that is not about names or schemas.
    #[error("{0}")]
    InvalidArgument(String),

    #[error("the node is not running; call start() first")]
    NotStarted,
}

impl From<datafusion::error::DataFusionError> for EngineError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        // Surface catalog errors raised inside DataFusion as themselves, so
        // callers can tell "no such frame" from a syntax error.
        match e {
            D::External(inner) => match inner.downcast::<apiary_catalog::Error>() {
                Ok(cat) => EngineError::Catalog(*cat),
                Err(other) => EngineError::Sql(other.to_string()),
            },
            D::Context(ctx, inner) => {
                let inner = EngineError::from(*inner);
                match inner {
                    EngineError::Sql(msg) => EngineError::Sql(format!("{ctx}: {msg}")),
                    other => other,
                }
            }
            other => EngineError::Sql(other.strip_backtrace()),
        }
    }
}

impl From<arrow::error::ArrowError> for EngineError {
    fn from(e: arrow::error::ArrowError) -> Self {
        EngineError::Sql(e.to_string())
    }
}
