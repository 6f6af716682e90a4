//! Engine errors as Postgres errors: a SQLSTATE that drivers understand and
//! the engine's message, which says what to do. This is the only place that
//! knows SQLSTATEs (Postgres manual, Appendix A).

use apiary_engine::catalog::{Error as CatalogError, ObjectKind};
use apiary_engine::postgres::SqlError;
use apiary_engine::EngineError;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};

/// A Postgres `ERROR` with `code` and `message`.
pub fn error(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// A Postgres `FATAL` (the connection ends) with `code` and `message`.
pub fn fatal(code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_owned(),
        code.to_owned(),
        message.into(),
    )))
}

/// Maps an engine error to its SQLSTATE.
pub fn from_engine(e: EngineError) -> PgWireError {
    if let Some(sql) = raised_by_postgres_function(&e) {
        return error(sql.code, sql.message.clone());
    }
    let code = match &e {
        EngineError::Catalog(c) => catalog_code(c),
        EngineError::Sql(_) => "XX000",
        EngineError::DataFusion(df) => datafusion_code(df),
        EngineError::Unsupported { .. } => "0A000",
        EngineError::InvalidArgument(_) => "22023",
        EngineError::NotStarted => "55000",
        EngineError::Timeout(_) => "57014",
        EngineError::Overloaded(_) => "53000",
    };
    match code {
        // Arrow's own text (`Arrow error: Divide by zero error`) is not
        // what a Postgres client shows or matches.
        "22012" => error(code, "division by zero"),
        _ => error(code, e.to_string()),
    }
}

/// The error a Postgres function raised with its own SQLSTATE, if that is
/// what `e` is.
fn raised_by_postgres_function(e: &EngineError) -> Option<&SqlError> {
    let EngineError::DataFusion(df) = e else {
        return None;
    };
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(df.as_ref());
    while let Some(error) = cause {
        if let Some(sql) = error.downcast_ref::<SqlError>() {
            return Some(sql);
        }
        cause = error.source();
    }
    None
}

/// Maps a DataFusion error (e.g. from planning a prepared statement).
pub fn from_datafusion(e: DataFusionError) -> PgWireError {
    from_engine(EngineError::from(e))
}

fn catalog_code(e: &CatalogError) -> &'static str {
    match e {
        CatalogError::InvalidName { .. } => "42602",
        CatalogError::AlreadyExists { kind, .. } => match kind {
            ObjectKind::Hive => "42P04",
            ObjectKind::Box => "42P06",
            ObjectKind::Frame => "42P07",
            ObjectKind::Column => "42701",
            ObjectKind::Index => "42P07",
        },
        CatalogError::NotFound { kind, .. } => match kind {
            ObjectKind::Hive => "3D000",
            ObjectKind::Box => "3F000",
            ObjectKind::Frame => "42P01",
            ObjectKind::Column => "42703",
            ObjectKind::Index => "42704",
        },
        CatalogError::InvalidSchema(_) => "42P16",
        CatalogError::SchemaMismatch { detail, .. } if detail.starts_with("value too long") => {
            "22001"
        }
        CatalogError::SchemaMismatch { detail, .. } if detail.contains("null") => "23502",
        CatalogError::SchemaMismatch { .. } => "42804",
        CatalogError::RegistryContention { .. } | CatalogError::Conflict { .. } => "40001",
        // statement_completion_unknown
        CatalogError::CommitUnknown { .. } => "40003",
        CatalogError::InvalidKey(_) => "22023",
        CatalogError::TransactionScope { .. } => "0A000",
        CatalogError::TransactionAborted => "25P02",
        CatalogError::NoTransaction => "25P01",
        CatalogError::NoSavepoint(_) => "3B001",
        CatalogError::Query(df) => datafusion_code(df),
        e if e.is_storage() => "58030",
        _ => "XX000",
    }
}

fn datafusion_code(e: &DataFusionError) -> &'static str {
    match e.find_root() {
        DataFusionError::SQL(_, _) => "42601",
        DataFusionError::SchemaError(se, _) => {
            let text = se.to_string();
            if text.contains("No field named") || text.contains("not found") {
                "42703"
            } else if text.contains("Ambiguous") {
                "42702"
            } else {
                "42P10"
            }
        }
        DataFusionError::NotImplemented(_) => "0A000",
        DataFusionError::ArrowError(e, _) if matches!(**e, ArrowError::DivideByZero) => "22012",
        DataFusionError::ArrowError(e, _) if matches!(**e, ArrowError::ArithmeticOverflow(_)) => {
            "22003"
        }
        DataFusionError::ResourcesExhausted(_) => "53200",
        DataFusionError::ObjectStore(_) => "58030",
        DataFusionError::External(inner) => match inner.downcast_ref::<CatalogError>() {
            Some(c) => catalog_code(c),
            None => "XX000",
        },
        DataFusionError::Plan(msg) => {
            if msg.contains("table") && msg.contains("not found") {
                "42P01"
            } else if msg.contains("Invalid function") || msg.contains("No function matches") {
                "42883"
            } else if msg.contains("No field named") {
                "42703"
            } else {
                "42000"
            }
        }
        other @ (DataFusionError::ArrowError(_, _) | DataFusionError::Execution(_)) => {
            let text = other.to_string();
            if text.contains("non-nullable") {
                "23502"
            } else if text.contains("Scalar subquery returned more than one row")
                || text.contains("cannot affect row a second time")
            {
                "21000"
            } else if text.contains("Cast error") {
                "22P02"
            } else {
                "22000"
            }
        }
        _ => "XX000",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(e: PgWireError) -> String {
        ErrorInfo::from(e).code
    }

    #[test]
    fn missing_frames_and_hives_have_their_own_codes() {
        let missing = |kind| CatalogError::NotFound {
            kind,
            name: "x".into(),
            hint: String::new(),
        };
        assert_eq!(
            code(from_engine(missing(ObjectKind::Frame).into())),
            "42P01"
        );
        assert_eq!(code(from_engine(missing(ObjectKind::Hive).into())), "3D000");
    }

    #[test]
    fn syntax_errors_are_42601() {
        let e = datafusion::sql::sqlparser::parser::ParserError::ParserError("x".into());
        assert_eq!(
            code(from_datafusion(DataFusionError::SQL(Box::new(e), None))),
            "42601"
        );
    }
}
