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

    /// DataFusion's own error, kept whole so edges can classify it
    /// (syntax, unknown table, unknown column, …).
    #[error("{}", .0.strip_backtrace())]
    DataFusion(Box<datafusion::error::DataFusionError>),

    /// A statement Apiary does not run (yet), with what to use instead.
    #[error("{statement} is not supported: {hint}")]
    Unsupported { statement: String, hint: String },

    /// Bad input to the Session API that is not about names or schemas.
    #[error("{0}")]
    InvalidArgument(String),

    #[error("the node is not running; call start() first")]
    NotStarted,

    /// The node is too loaded to take the statement now.
    #[error("{0}")]
    Overloaded(String),

    /// A wait ran past its deadline; the message names what was awaited.
    #[error("timed out: {0}")]
    Timeout(String),
}

impl From<datafusion::error::DataFusionError> for EngineError {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        use datafusion::error::DataFusionError as D;
        // Surface catalog errors raised inside DataFusion as themselves, so
        // callers can tell "no such frame" from a syntax error.
        match e {
            D::External(inner) => match inner.downcast::<apiary_catalog::Error>() {
                Ok(cat) => EngineError::Catalog(*cat),
                Err(other) => EngineError::DataFusion(Box::new(D::External(other))),
            },
            D::Context(ctx, inner) => match EngineError::from(*inner) {
                EngineError::DataFusion(e) => EngineError::DataFusion(Box::new(D::Context(ctx, e))),
                other => other,
            },
            other => EngineError::DataFusion(Box::new(other)),
        }
    }
}

impl From<arrow::error::ArrowError> for EngineError {
    fn from(e: arrow::error::ArrowError) -> Self {
        EngineError::Sql(e.to_string())
    }
}
