//! Session statements drivers and pools send that touch no data: `SET`,
//! `SHOW`, transaction control, `DISCARD ALL`, `RESET`, `DEALLOCATE`,
//! `CLOSE`, `LISTEN`/`UNLISTEN`.
//!
//! Apiary commits every statement on its own (each write is one Delta
//! commit), so `BEGIN`/`COMMIT`/`ROLLBACK` are accepted and tracked for the
//! protocol's transaction status but group nothing; docs/sql.md says so.
//! `SET search_path` chooses the connection's box.

use std::sync::Arc;

use apiary_engine::catalog::DEFAULT_BOX;
use apiary_engine::Session;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
use futures::stream;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::{ClientInfo, Type};
use pgwire::error::PgWireResult;
use pgwire::messages::response::TransactionStatus;

use crate::pg::SERVER_VERSION;
use crate::sqlstate::{error, from_engine};

/// Connection metadata key for `statement_timeout`, in milliseconds.
pub const STATEMENT_TIMEOUT: &str = "statement_timeout_ms";

/// Whether `statement` is answered here rather than by the engine.
pub fn is_builtin(statement: &Statement) -> bool {
    matches!(
        statement,
        Statement::Set(_)
            | Statement::ShowVariable { .. }
            | Statement::StartTransaction { .. }
            | Statement::Commit { .. }
            | Statement::Rollback { .. }
            | Statement::Savepoint { .. }
            | Statement::ReleaseSavepoint { .. }
            | Statement::Discard { .. }
            | Statement::Reset(_)
            | Statement::Deallocate { .. }
            | Statement::Close { .. }
            | Statement::LISTEN { .. }
            | Statement::UNLISTEN { .. }
    )
}

/// The columns a builtin returns (only `SHOW` returns rows).
pub fn result_fields(statement: &Statement) -> Vec<FieldInfo> {
    match statement {
        Statement::ShowVariable { variable } => vec![show_field(&show_column(variable))],
        _ => vec![],
    }
}

/// Runs a builtin statement for `client` on `session`.
pub fn run<C: ClientInfo + ?Sized>(
    client: &mut C,
    session: &Session,
    statement: &Statement,
) -> PgWireResult<Response> {
    let tag = |t: &str| Ok(Response::Execution(Tag::new(t)));
    match statement {
        Statement::Set(set) => run_set(client, session, set),
        Statement::ShowVariable { variable } => show(client, session, variable),
        Statement::StartTransaction { .. } => match client.transaction_status() {
            TransactionStatus::Idle => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            _ => tag("BEGIN"),
        },
        Statement::Commit { .. } => match client.transaction_status() {
            TransactionStatus::Error => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            _ => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
        },
        Statement::Rollback {
            savepoint: Some(_), ..
        } => tag("ROLLBACK"),
        Statement::Rollback { .. } => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
        Statement::Savepoint { .. } => tag("SAVEPOINT"),
        Statement::ReleaseSavepoint { .. } => tag("RELEASE"),
        Statement::Discard { .. } => {
            reset_all(client, session)?;
            tag("DISCARD ALL")
        }
        Statement::Reset(_) => {
            reset_all(client, session)?;
            tag("RESET")
        }
        Statement::Deallocate { name, .. } if name.value.eq_ignore_ascii_case("all") => {
            tag("DEALLOCATE ALL")
        }
        Statement::Deallocate { .. } => tag("DEALLOCATE"),
        Statement::Close { .. } => tag("CLOSE CURSOR"),
        Statement::LISTEN { .. } => tag("LISTEN"),
        Statement::UNLISTEN { .. } => tag("UNLISTEN"),
        other => Err(error("0A000", format!("{other} is not supported"))),
    }
}

fn run_set<C: ClientInfo + ?Sized>(
    client: &mut C,
    session: &Session,
    set: &Set,
) -> PgWireResult<Response> {
    if let Set::SingleAssignment {
        variable, values, ..
    } = set
    {
        let name = variable.to_string().to_ascii_lowercase();
        let value = values.iter().map(expr_text).collect::<Vec<_>>().join(", ");
        match name.as_str() {
            "search_path" => use_search_path(session, &value)?,
            "statement_timeout" => {
                let ms = parse_duration_ms(&value).ok_or_else(|| {
                    error(
                        "22023",
                        format!(
                            "invalid value for statement_timeout: {value:?}; use e.g. '5s' or 5000"
                        ),
                    )
                })?;
                client
                    .metadata_mut()
                    .insert(STATEMENT_TIMEOUT.into(), ms.to_string());
                return Ok(Response::Execution(Tag::new("SET")));
            }
            _ => {}
        }
        client.metadata_mut().insert(name, value);
    }
    if let Set::SetTimeZone { value, .. } = set {
        client
            .metadata_mut()
            .insert("timezone".into(), expr_text(value));
    }
    Ok(Response::Execution(Tag::new("SET")))
}

/// `search_path` names boxes; the first that exists in the connection's
/// hive becomes current. `public` means the hive's default box.
fn use_search_path(session: &Session, value: &str) -> PgWireResult<()> {
    let (hive, _) = session.current();
    let boxes = session.catalog().snapshot();
    let boxes = boxes.hive(&hive).map_err(|e| from_engine(e.into()))?;
    for entry in value.split(',') {
        let name = entry.trim().trim_matches('"').to_ascii_lowercase();
        let name = match name.as_str() {
            "" | "$user" | "pg_catalog" | "information_schema" => continue,
            "public" if !boxes.boxes.contains_key("public") => DEFAULT_BOX.to_string(),
            _ => name,
        };
        if boxes.boxes.contains_key(&name) {
            return session.use_box(&hive, &name).map_err(from_engine);
        }
    }
    Ok(())
}

fn reset_all<C: ClientInfo + ?Sized>(client: &mut C, session: &Session) -> PgWireResult<()> {
    client.metadata_mut().remove(STATEMENT_TIMEOUT);
    let (hive, _) = session.current();
    session.use_box(&hive, DEFAULT_BOX).map_err(from_engine)
}

fn show_column(variable: &[datafusion::sql::sqlparser::ast::Ident]) -> String {
    let words: Vec<String> = variable
        .iter()
        .map(|i| i.value.to_ascii_lowercase())
        .collect();
    match words.join(" ").as_str() {
        "transaction isolation level" => "transaction_isolation".into(),
        "time zone" => "timezone".into(),
        other => other.replace(' ', "_"),
    }
}

fn show<C: ClientInfo + ?Sized>(
    client: &C,
    session: &Session,
    variable: &[datafusion::sql::sqlparser::ast::Ident],
) -> PgWireResult<Response> {
    let column = show_column(variable);
    let meta = |key: &str| client.metadata().get(key).cloned();
    let value = match column.as_str() {
        "transaction_isolation" | "default_transaction_isolation" => "read committed".into(),
        "server_version" => SERVER_VERSION.into(),
        "server_version_num" => "160006".into(),
        "server_encoding" | "client_encoding" => "UTF8".into(),
        "datestyle" => meta("datestyle").unwrap_or_else(|| "ISO, MDY".into()),
        "timezone" => meta("timezone").unwrap_or_else(|| "UTC".into()),
        "search_path" => session.current().1,
        "standard_conforming_strings" | "integer_datetimes" | "is_superuser" => "on".into(),
        "max_identifier_length" => "63".into(),
        "statement_timeout" => meta(STATEMENT_TIMEOUT)
            .map(|ms| format!("{ms}ms"))
            .unwrap_or_else(|| "0".into()),
        "application_name" => meta("application_name").unwrap_or_default(),
        other => meta(other).ok_or_else(|| {
            error(
                "42704",
                format!("unrecognized configuration parameter \"{other}\""),
            )
        })?,
    };
    let fields = Arc::new(vec![show_field(&column)]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value))?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(vec![Ok(row)]),
    )))
}

fn show_field(name: &str) -> FieldInfo {
    FieldInfo::new(name.into(), None, None, Type::TEXT, FieldFormat::Text)
}

fn expr_text(expr: &Expr) -> String {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        Expr::Identifier(ident) => ident.value.clone(),
        other => other.to_string(),
    }
}

/// `5000`, `'5s'`, `'250ms'`, `'1min'` → milliseconds (0 disables).
pub fn parse_duration_ms(value: &str) -> Option<u64> {
    let v = value.trim().trim_matches('\'').to_ascii_lowercase();
    let (number, factor) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = v.strip_suffix("min") {
        (n, 60_000)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = v.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (v.as_str(), 1)
    };
    number.trim().parse::<u64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_timeouts_parse_with_units() {
        assert_eq!(parse_duration_ms("5000"), Some(5000));
        assert_eq!(parse_duration_ms("'2s'"), Some(2000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("1min"), Some(60_000));
        assert_eq!(parse_duration_ms("soon"), None);
    }
}
