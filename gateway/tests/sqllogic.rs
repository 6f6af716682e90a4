//! Runs every `sql/*.slt` script over the Postgres protocol against a real
//! `apiary serve`, with the sqllogictest runner. Each query's column types
//! (`I`, `R`, `T`) are checked against the RowDescription.

mod common;

use std::path::PathBuf;

use async_trait::async_trait;
use common::Server;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

/// A tokio-postgres connection as a sqllogictest database.
struct Pg {
    client: tokio_postgres::Client,
}

/// The server's error with its SQLSTATE, so scripts can match on codes.
#[derive(Debug)]
struct PgError(String);

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PgError {}

#[async_trait]
impl AsyncDB for Pg {
    type Error = PgError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, PgError> {
        // The column types come from Describe (nothing runs); a string of
        // several statements cannot be described, and its rows are typed
        // `Any`, which no script's types match.
        let described = self.client.prepare(sql).await.ok();
        let messages = self.client.simple_query(sql).await.map_err(|e| {
            let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
            let message = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_else(|| e.to_string());
            PgError(format!("{code}: {message}"))
        })?;
        let mut rows = Vec::new();
        let mut columns = None;
        let mut count = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::RowDescription(desc) => columns = Some(desc.len()),
                SimpleQueryMessage::Row(row) => {
                    columns = Some(row.len());
                    rows.push(
                        (0..row.len())
                            .map(|i| match row.get(i) {
                                None => "NULL".to_string(),
                                Some("") => "(empty)".to_string(),
                                Some(value) => value.to_string(),
                            })
                            .collect(),
                    );
                }
                SimpleQueryMessage::CommandComplete(n) => count = n,
                _ => {}
            }
        }
        match columns {
            Some(n) => Ok(DBOutput::Rows {
                types: match described {
                    Some(statement) if statement.columns().len() == n => statement
                        .columns()
                        .iter()
                        .map(|column| column_type(column.type_()))
                        .collect(),
                    _ => vec![DefaultColumnType::Any; n],
                },
                rows,
            }),
            None => Ok(DBOutput::StatementComplete(count)),
        }
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "apiary"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await
    }
}

/// sqllogictest's letter for a Postgres type: `I` integers, `R` floats and
/// `numeric`, `T` the rest.
fn column_type(ty: &Type) -> DefaultColumnType {
    match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => DefaultColumnType::Integer,
        Type::FLOAT4 | Type::FLOAT8 | Type::NUMERIC => DefaultColumnType::FloatingPoint,
        _ => DefaultColumnType::Text,
    }
}

#[tokio::test]
async fn sql_scripts_pass_over_pgwire() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sql");
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("sql/ exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty(), "no .slt scripts in {}", dir.display());
    for script in scripts {
        // Each script gets a fresh root so scripts cannot affect each other.
        let server = Server::start();
        let port = server.port;
        let mut runner = sqllogictest::Runner::new(move || async move {
            let (client, connection) = tokio_postgres::connect(
                &format!("host=127.0.0.1 port={port} user=slt"),
                tokio_postgres::NoTls,
            )
            .await
            .map_err(|e| PgError(e.to_string()))?;
            tokio::spawn(connection);
            Ok::<_, PgError>(Pg { client })
        });
        runner.with_column_validator(sqllogictest::strict_column_validator);
        runner
            .run_file_async(&script)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    }
}
