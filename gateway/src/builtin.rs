//! Session statements drivers and pools send that touch no data: `SET`,
//! `SHOW`, transaction control, `DISCARD ALL`, `RESET`, `DEALLOCATE`,
//! `CLOSE`, `LISTEN`/`UNLISTEN`.
//!
//! `BEGIN`/`COMMIT`/`ROLLBACK` run in the handler (they end the session's
//! transaction block); savepoints run here on the same block.
//! `SET search_path` chooses the connection's box; every other parameter
//! lives in the connection's [`Settings`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use apiary_engine::catalog::DEFAULT_BOX;
use apiary_engine::postgres::quote_ident;
use apiary_engine::Session;
use datafusion::sql::sqlparser::ast::{Expr, Set, Statement, Value};
use futures::stream;
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::Type;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;

use crate::auth::METADATA_HIVE;
use crate::pg::{SERVER_VERSION, SERVER_VERSION_NUM};
use crate::pg_settings;
use crate::sqlstate::{error, from_engine};

/// What a parameter reads before the client sets it.
const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
    ("datestyle", "ISO, MDY"),
    ("default_table_access_method", "heap"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "off"),
    ("extra_float_digits", "1"),
    ("integer_datetimes", "on"),
    ("intervalstyle", "postgres"),
    ("is_superuser", "on"),
    ("lc_collate", "C"),
    ("lc_ctype", "C"),
    ("max_identifier_length", "63"),
    // The box a connection starts in (Postgres's default names `public`,
    // which a hive has only if someone made it).
    ("search_path", "\"$user\", \"default\""),
    ("server_encoding", "UTF8"),
    ("server_version", SERVER_VERSION),
    ("server_version_num", SERVER_VERSION_NUM),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("timezone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "off"),
];

/// A connection's run-time parameters: those its client sent at startup,
/// then whatever `SET` or `set_config()` changed. `SHOW`,
/// `current_setting()`, the statement timeout and the text formats all
/// read them here. Clones share one store.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    startup: Arc<HashMap<String, String>>,
    changed: Arc<Mutex<HashMap<String, String>>>,
}

impl Settings {
    /// Settings starting from the client's startup parameters.
    pub fn from_startup(parameters: &HashMap<String, String>) -> Self {
        let startup = parameters
            .iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
            .collect();
        Settings {
            startup: Arc::new(startup),
            changed: Arc::default(),
        }
    }

    /// A set value is only ever replaced, so a lock poisoned by a panic
    /// elsewhere still holds usable state.
    fn changed(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.changed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A parameter's current value; `None` for one neither Apiary nor
    /// PostgreSQL knows.
    pub fn get(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        if let Some(value) = self.changed().get(&name) {
            return Some(value.clone());
        }
        self.reset_value(&name)
    }

    /// What `RESET` returns a parameter to: the client's startup value,
    /// Apiary's default, or PostgreSQL's.
    pub fn reset_value(&self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        self.startup.get(&name).cloned().or_else(|| {
            DEFAULTS
                .iter()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| value.to_string())
                .or_else(|| pg_settings::default_value(&name))
        })
    }

    /// Where a parameter's value comes from, as `pg_settings.source` says.
    pub fn source(&self, name: &str) -> &'static str {
        let name = name.to_ascii_lowercase();
        if self.changed().contains_key(&name) {
            "session"
        } else if self.startup.contains_key(&name) {
            "client"
        } else if DEFAULTS.iter().any(|(known, _)| *known == name) {
            "override"
        } else {
            "default"
        }
    }

    /// Every parameter with a value, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = DEFAULTS.iter().map(|(name, _)| name.to_string()).collect();
        names.extend(self.startup.keys().cloned());
        names.extend(self.changed().keys().cloned());
        // Startup parameters that name the connection rather than set it.
        names.retain(|name| !matches!(name.as_str(), "user" | "database" | METADATA_HIVE));
        names.sort();
        names.dedup();
        names
    }

    /// Sets a parameter, checking those Apiary acts on.
    pub fn set(&self, name: &str, value: &str) -> PgWireResult<()> {
        let name = name.to_ascii_lowercase();
        if name == "statement_timeout" && parse_duration_ms(value).is_none() {
            return Err(error(
                "22023",
                format!("invalid value for statement_timeout: {value:?}; use e.g. '5s' or 5000"),
            ));
        }
        self.changed().insert(name, value.to_string());
        Ok(())
    }

    /// Whether `other` is a clone of these settings (the same connection's).
    pub fn is_shared_with(&self, other: &Settings) -> bool {
        Arc::ptr_eq(&self.changed, &other.changed)
    }

    /// `RESET ALL`: back to the startup values.
    pub fn reset(&self) {
        self.changed().clear();
    }

    /// `statement_timeout`, when one is set.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.get("statement_timeout")
            .and_then(|value| parse_duration_ms(&value))
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
    }

    /// How values are written as text (`DateStyle`, `bytea_output`, …).
    pub fn format_options(&self) -> Arc<FormatOptions> {
        let mut current: HashMap<String, String> = self.startup.as_ref().clone();
        current.extend(self.changed().clone());
        Arc::new(FormatOptions::from_client_metadata(&current))
    }
}

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
            | Statement::Lock(_)
    )
}

/// The columns a builtin returns (only `SHOW` returns rows).
pub fn result_fields(statement: &Statement) -> Vec<FieldInfo> {
    match statement {
        Statement::ShowVariable { variable } if show_column(variable) == "all" => SHOW_ALL_COLUMNS
            .iter()
            .map(|name| show_field(name))
            .collect(),
        Statement::ShowVariable { variable } => vec![show_field(&show_column(variable))],
        _ => vec![],
    }
}

/// `SHOW ALL`'s columns, as Postgres names them.
const SHOW_ALL_COLUMNS: [&str; 3] = ["name", "setting", "description"];

/// Runs a builtin statement on `session`.
pub fn run(
    session: &Session,
    settings: &Settings,
    statement: &Statement,
) -> PgWireResult<Response> {
    let tag = |t: &str| Ok(Response::Execution(Tag::new(t)));
    match statement {
        Statement::Set(set) => run_set(session, settings, set),
        Statement::ShowVariable { variable } => show(settings, variable),
        Statement::Rollback {
            savepoint: Some(name),
            ..
        } => {
            session
                .rollback_to(&name.value.to_ascii_lowercase())
                .map_err(from_engine)?;
            tag("ROLLBACK")
        }
        Statement::Savepoint { name } => {
            session
                .savepoint(&name.value.to_ascii_lowercase())
                .map_err(from_engine)?;
            tag("SAVEPOINT")
        }
        Statement::ReleaseSavepoint { name } => {
            session
                .release(&name.value.to_ascii_lowercase())
                .map_err(from_engine)?;
            tag("RELEASE")
        }
        Statement::Discard { .. } => {
            reset_all(session, settings)?;
            tag("DISCARD ALL")
        }
        Statement::Reset(_) => {
            reset_all(session, settings)?;
            tag("RESET")
        }
        Statement::Deallocate { name, .. } if name.value.eq_ignore_ascii_case("all") => {
            tag("DEALLOCATE ALL")
        }
        Statement::Deallocate { .. } => tag("DEALLOCATE"),
        Statement::Close { .. } => tag("CLOSE CURSOR"),
        Statement::LISTEN { .. } => tag("LISTEN"),
        Statement::UNLISTEN { .. } => tag("UNLISTEN"),
        // A statement reads each frame at one committed version, so there
        // is nothing to lock against (pg_dump locks what it dumps).
        Statement::Lock(_) => tag("LOCK TABLE"),
        other => Err(error("0A000", format!("{other} is not supported"))),
    }
}

fn run_set(session: &Session, settings: &Settings, set: &Set) -> PgWireResult<Response> {
    if let Set::SingleAssignment {
        variable, values, ..
    } = set
    {
        let name = variable.to_string().to_ascii_lowercase();
        let text = if name == "search_path" {
            search_path_entry
        } else {
            expr_text
        };
        let value = values.iter().map(text).collect::<Vec<_>>().join(", ");
        if name == "search_path" {
            use_search_path(session, &value)?;
        }
        settings.set(&name, &value)?;
    }
    if let Set::SetTimeZone { value, .. } = set {
        settings.set("timezone", &expr_text(value))?;
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

fn reset_all(session: &Session, settings: &Settings) -> PgWireResult<()> {
    settings.reset();
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

fn show(
    settings: &Settings,
    variable: &[datafusion::sql::sqlparser::ast::Ident],
) -> PgWireResult<Response> {
    let column = show_column(variable);
    let current = |name: &str| settings.get(name);
    if column == "all" {
        let rows = pg_settings::names(settings)
            .into_iter()
            .map(|name| {
                let setting = current(&name.to_ascii_lowercase());
                let description = pg_settings::description(&name);
                vec![Some(name), setting, description]
            })
            .collect();
        return text_rows(&SHOW_ALL_COLUMNS, rows);
    }
    let value = current(&column).ok_or_else(|| unknown_parameter(&column))?;
    text_rows(&[column.as_str()], vec![vec![Some(value)]])
}

/// A result of text columns.
fn text_rows(columns: &[&str], rows: Vec<Vec<Option<String>>>) -> PgWireResult<Response> {
    let fields = Arc::new(
        columns
            .iter()
            .map(|name| show_field(name))
            .collect::<Vec<_>>(),
    );
    let mut encoded = Vec::with_capacity(rows.len());
    for row in rows {
        let mut encoder = DataRowEncoder::new(fields.clone());
        for value in row {
            encoder.encode_field(&value)?;
        }
        encoded.push(Ok(encoder.take_row()));
    }
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(encoded),
    )))
}

/// Postgres's error for a parameter it does not have.
pub fn unknown_parameter(name: &str) -> PgWireError {
    error(
        "42704",
        format!("unrecognized configuration parameter \"{name}\""),
    )
}

fn show_field(name: &str) -> FieldInfo {
    FieldInfo::new(name.into(), None, None, Type::TEXT, FieldFormat::Text)
}

/// A schema of `SET search_path` as Postgres keeps it: an unquoted name
/// in lower case, and quoted where it must be (`"$user"`, `"default"`).
fn search_path_entry(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(ident) if ident.quote_style.is_none() => {
            quote_ident(&ident.value.to_lowercase()).into_owned()
        }
        Expr::Identifier(ident) => quote_ident(&ident.value).into_owned(),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => quote_ident(s).into_owned(),
            _ => expr_text(expr),
        },
        _ => expr_text(expr),
    }
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

    #[test]
    fn settings_read_set_then_startup_then_defaults() {
        let startup = HashMap::from([("DateStyle".to_string(), "ISO, DMY".to_string())]);
        let settings = Settings::from_startup(&startup);
        assert_eq!(settings.get("datestyle").as_deref(), Some("ISO, DMY"));
        assert_eq!(settings.get("TimeZone").as_deref(), Some("UTC"));
        assert_eq!(settings.get("no_such_thing"), None);
        settings.set("TimeZone", "Europe/Berlin").unwrap();
        settings.clone().set("statement_timeout", "2s").unwrap();
        assert_eq!(settings.get("timezone").as_deref(), Some("Europe/Berlin"));
        assert_eq!(settings.statement_timeout(), Some(Duration::from_secs(2)));
        assert!(settings.set("statement_timeout", "soon").is_err());
        settings.reset();
        assert_eq!(settings.get("timezone").as_deref(), Some("UTC"));
        assert_eq!(settings.statement_timeout(), None);
    }
}
