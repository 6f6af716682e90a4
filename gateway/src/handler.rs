//! The query path of a connection: simple and extended query protocol and
//! `COPY FROM STDIN`, all translated onto the connection's engine
//! [`Session`].
//!
//! Each connection gets its own session (current hive = its database,
//! current box = `search_path`), kept in pgwire's per-connection extensions.
//! A statement is first checked against Apiary's own commands (`SHOW HIVES`,
//! `USE …`, `DESCRIBE …`), then parsed and rewritten for DataFusion
//! ([`crate::compat`]), then either answered as a session builtin
//! ([`crate::builtin`]), turned into a `COPY`, or prepared and executed by
//! the engine. Rows stream to the client as the engine produces them.

use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiary_engine::catalog::{DEFAULT_BOX, DEFAULT_HIVE};
use apiary_engine::{transaction_control, Control, Node, Outcome, Prepared, QueryResult, Session};
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::common::{ParamValues, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::arrow_pg::datatypes::df::deserialize_parameters;
use datafusion_postgres::arrow_pg::datatypes::encode_recordbatch;
use futures::stream::BoxStream;
use futures::{stream, Sink, SinkExt, StreamExt, TryStreamExt};
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal, PortalExecutionState};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{CopyResponse, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::{Entry, PortalStore};
use pgwire::api::{ClientInfo, ClientPortalStore, Type, DEFAULT_NAME};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::{DataRow, NoData, ParameterDescription};
use pgwire::messages::extendedquery::{Describe, TARGET_TYPE_BYTE_STATEMENT};
use pgwire::messages::response::TransactionStatus;
use pgwire::messages::PgWireBackendMessage;
use tokio::time::Instant;

use crate::activity::{Activity, Busy};
use crate::auth::METADATA_HIVE;
use crate::builtin::{self, Settings};
use crate::cancel::{CancelSignal, Cancels};
use crate::compat::SqlParser;
use crate::copy::{CopyIn, CopyLoad};
use crate::copy_out::CopyOut;
use crate::cursor::{self, Count, Cursor, CursorStatement, Cursors, Declare};
use crate::pg::PgCatalog;
use crate::sqlstate::{error, from_datafusion, from_engine};
use crate::types::{pg_fields, postgres_schema, with_origins};
use crate::wire_values::WireValues;
use apiary_engine::postgres::quote_ident;

/// A statement as kept between Parse and Execute.
#[derive(Debug, Clone)]
pub enum Stmt {
    /// An Apiary command, with the columns it returns.
    Command { text: String, schema: SchemaRef },
    /// A session builtin (`SET`, `SHOW`, `BEGIN`, …).
    Builtin(Box<Statement>),
    /// `COPY … FROM STDIN`.
    Copy(Box<CopyIn>),
    /// `COPY … TO STDOUT`.
    CopyOut(Box<CopyOut>),
    /// `DECLARE … CURSOR FOR query`, with the query prepared.
    Declare { declare: Declare, query: Box<Stmt> },
    /// `FETCH` or `MOVE`; `schema` holds the columns a `FETCH` returns.
    Fetch {
        name: String,
        count: Count,
        moves: bool,
        schema: Option<SchemaRef>,
    },
    /// `CLOSE name` or `CLOSE ALL` (`None`).
    Close(Option<String>),
    /// Prepared by the engine; `schema` is `None` for statements without rows.
    Engine {
        /// The statement as `pg_stat_activity` shows it.
        text: Arc<str>,
        prepared: Prepared,
        schema: Option<SchemaRef>,
        /// Set at Parse, cleared by the first Execute: a plan executed right
        /// after it was planned reads current frames already, later
        /// executions re-resolve them ([`Session::rebind`]).
        fresh: Arc<AtomicBool>,
    },
}

impl Stmt {
    /// The statement as `pg_stat_activity` shows it.
    fn text(&self) -> String {
        match self {
            Stmt::Command { text, .. } => text.clone(),
            Stmt::Engine { text, .. } => text.to_string(),
            Stmt::Builtin(statement) => statement.to_string(),
            Stmt::Copy(_) => "COPY … FROM STDIN".to_string(),
            Stmt::CopyOut(_) => "COPY … TO STDOUT".to_string(),
            Stmt::Declare { declare, .. } => {
                format!("DECLARE {} CURSOR FOR {}", declare.name, declare.query)
            }
            Stmt::Fetch { name, moves, .. } => {
                format!("{} {name}", if *moves { "MOVE" } else { "FETCH" })
            }
            Stmt::Close(name) => format!("CLOSE {}", name.as_deref().unwrap_or("ALL")),
        }
    }
}

/// One connection's state.
struct Connection {
    session: Session,
    settings: Settings,
    cancel: CancelSignal,
    activity: Arc<Activity>,
    /// Bytes of a `COPY FROM STDIN` in progress.
    copy: Mutex<Option<CopyLoad>>,
    cursors: Cursors,
}

impl Connection {
    /// Marks `query` as this connection's running statement, unless
    /// `pg_terminate_backend` ended the connection (57P01, fatal: pgwire
    /// closes it).
    fn start(&self, query: &str) -> PgWireResult<Busy> {
        if self.activity.is_terminated() {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".to_string(),
                "57P01".to_string(),
                "terminating connection due to administrator command".to_string(),
            ))));
        }
        Ok(self.activity.start(query))
    }

    /// Runs an Apiary command (`USE BOX`, `SHOW FRAMES`, …) if `sql` is
    /// one. A command that changes the current box changes `search_path`
    /// with it, as `SET search_path` changes the box.
    async fn command(&self, sql: &str) -> PgWireResult<Option<QueryResult>> {
        let (_, before) = self.session.current();
        let result = self.session.command(sql).await.map_err(from_engine)?;
        let (_, after) = self.session.current();
        if after != before {
            self.settings.set("search_path", &quote_ident(&after))?;
        }
        Ok(result)
    }

    /// The statement ended: the connection is idle, in a block or not.
    fn finish(&self, busy: Busy) {
        self.activity.set_in_block(self.session.in_transaction());
        drop(busy);
    }

    /// The `COPY` in progress. It is only ever replaced or appended to, so a
    /// lock poisoned by a panic elsewhere still holds usable state.
    fn pending_copy(&self) -> std::sync::MutexGuard<'_, Option<CopyLoad>> {
        self.copy
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Query handling shared by all connections of a node.
pub struct QueryService {
    parser: Arc<StatementParser>,
}

impl QueryService {
    pub fn new(node: Arc<Node>, pg: Arc<PgCatalog>, cancels: Arc<Cancels>) -> Self {
        let parser = Arc::new(StatementParser {
            node,
            pg,
            cancels,
            sql: SqlParser::new(),
        });
        QueryService { parser }
    }

    /// The cancel signals of this node's connections, for the CancelRequest
    /// handler.
    pub fn cancels(&self) -> Arc<Cancels> {
        self.parser.cancels.clone()
    }

    fn connection<C: ClientInfo + ?Sized>(&self, client: &C) -> PgWireResult<Arc<Connection>> {
        self.parser.connection(client)
    }
}

/// The connection's session, created on first use.
fn connection<C: ClientInfo + ?Sized>(
    node: &Node,
    pg: &PgCatalog,
    cancels: &Arc<Cancels>,
    client: &C,
) -> PgWireResult<Arc<Connection>> {
    if let Some(conn) = client.session_extensions().get::<Connection>() {
        return Ok(conn);
    }
    let hive = client
        .metadata()
        .get(METADATA_HIVE)
        .cloned()
        .unwrap_or_else(|| DEFAULT_HIVE.to_string());
    let session = node.session_with(pg.system_schemas());
    let settings = Settings::from_startup(client.metadata());
    let (pid, secret) = client.pid_and_secret_key();
    pg.install_functions(session.context(), &hive, pid, &settings);
    session.use_box(&hive, DEFAULT_BOX).map_err(from_engine)?;
    let metadata = client.metadata();
    let activity = Arc::new(Activity::new(
        pid,
        metadata.get("user").map_or("", String::as_str),
        &hive,
        metadata.get("application_name").map_or("", String::as_str),
        client.socket_addr(),
    ));
    let cancel = cancels.register(pid, secret.to_bytes(), activity.clone());
    Ok(client
        .session_extensions()
        .get_or_insert_with(|| Connection {
            session,
            settings,
            cancel,
            activity,
            copy: Mutex::new(None),
            cursors: Cursors::default(),
        }))
}

/// Runs `work` under the client's `statement_timeout`.
async fn with_timeout<T>(
    timeout: Option<Duration>,
    work: impl std::future::Future<Output = PgWireResult<T>>,
) -> PgWireResult<T> {
    match timeout {
        Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
            Err(error(
                "57014",
                "canceling statement due to statement timeout",
            ))
        }),
        None => work.await,
    }
}

/// Streams `stream` as a query response. The first batch is computed before
/// this returns, under pgwire's cancel handling and the caller's timeout; the
/// rest streams under the connection's own cancel signal and `deadline`.
async fn rows_response(
    stream: SendableRecordBatchStream,
    described: Option<&SchemaRef>,
    format: &Format,
    conn: &Connection,
    deadline: Option<Instant>,
) -> PgWireResult<Response> {
    let (fields, rows) = encoded_rows(stream, described, format, conn, deadline).await?;
    Ok(Response::Query(QueryResponse::new(fields, rows)))
}

/// The column descriptions and encoded rows of `stream`, as
/// [`rows_response`] sends them.
async fn encoded_rows(
    stream: SendableRecordBatchStream,
    described: Option<&SchemaRef>,
    format: &Format,
    conn: &Connection,
    deadline: Option<Instant>,
) -> PgWireResult<(
    Arc<Vec<FieldInfo>>,
    BoxStream<'static, PgWireResult<DataRow>>,
)> {
    let mut stream = as_described(stream, described)?;
    let schema = stream.schema();
    let fields = pg_fields(&schema, format, Some(conn.settings.format_options()))?;
    let fields = Arc::new(match described {
        Some(described) => with_origins(fields, described),
        None => fields,
    });
    let text = WireValues::new(&schema, &fields, &conn.settings);
    let first = stream.next().await;
    let batches = stream::iter(first).chain(stream);
    let encoded = fields.clone();
    // The connection stays `active` while its rows stream.
    let busy = conn.activity.busy();
    let rows = batches
        .map(move |batch| match batch {
            Ok(batch) => {
                let _streaming = &busy;
                stream::iter(encode_recordbatch(encoded.clone(), text.apply(batch))).left_stream()
            }
            Err(e) => stream::iter(vec![Err(from_datafusion(e))]).right_stream(),
        })
        .flatten();
    let rows = conn.cancel.stop_on_cancel(rows, deadline);
    Ok((fields, rows.boxed()))
}

fn result_response(
    result: QueryResult,
    format: &Format,
    settings: &Settings,
) -> PgWireResult<Response> {
    let schema = postgres_schema(&result.schema);
    let fields = Arc::new(pg_fields(&schema, format, Some(settings.format_options()))?);
    let text = WireValues::new(&schema, &fields, settings);
    let encoded = fields.clone();
    let rows: Vec<_> = result
        .batches
        .into_iter()
        .flat_map(move |batch| match cast_batch(batch, &schema) {
            Ok(batch) => encode_recordbatch(encoded.clone(), text.apply(batch)).collect(),
            Err(e) => vec![Err(from_datafusion(e.into()))],
        })
        .collect();
    Ok(Response::Query(QueryResponse::new(
        fields,
        stream::iter(rows),
    )))
}

/// Sends every row of an Execute that asked for all of them, as they come,
/// and answers the command tag. pgwire would first gather the whole result
/// in memory; sent from here, a large result streams in bounded memory and
/// pgwire's cancel handling (which ends this future) stops it at any row.
async fn send_rows<C>(client: &mut C, mut rows: QueryResponse) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let mut count = 0;
    let command = rows.command_tag().to_string();
    let data_rows = rows.data_rows();
    while let Some(row) = data_rows.next().await {
        client.feed(PgWireBackendMessage::DataRow(row?)).await?;
        count += 1;
    }
    Ok(Response::Execution(Tag::new(&command).with_rows(count)))
}

/// `stream` with the column types the client was told at Describe (or,
/// without a Describe, [`postgres_schema`] of its own), so the
/// RowDescription and the bytes of every row agree. The prepared plan is
/// analyzed, so the types match already; a plan whose execution still
/// changes a type is cast back, and one that cannot be is an error rather
/// than a row the client would misread.
fn as_described(
    stream: SendableRecordBatchStream,
    described: Option<&SchemaRef>,
) -> PgWireResult<SendableRecordBatchStream> {
    let actual = stream.schema();
    let described = match described {
        Some(described) => described.clone(),
        None => postgres_schema(&actual),
    };
    let same = actual.fields().len() == described.fields().len()
        && actual
            .fields()
            .iter()
            .zip(described.fields())
            .all(|(a, d)| a.data_type() == d.data_type() && a.name() == d.name());
    if same {
        return Ok(stream);
    }
    if actual.fields().len() != described.fields().len() {
        return Err(error(
            "XX000",
            "the statement's result columns changed after it was described; prepare it again",
        ));
    }
    let target = Arc::new(Schema::new(
        actual
            .fields()
            .iter()
            .zip(described.fields())
            .map(|(a, d)| {
                a.as_ref()
                    .clone()
                    .with_name(d.name())
                    .with_data_type(d.data_type().clone())
            })
            .collect::<Vec<_>>(),
    ));
    let schema = target.clone();
    let cast = stream.map(move |batch| Ok(cast_batch(batch?, &target)?));
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, cast)))
}

fn cast_batch(batch: RecordBatch, target: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target.clone(), columns)
}

async fn outcome_response(
    outcome: Outcome,
    described: Option<&SchemaRef>,
    format: &Format,
    conn: &Connection,
    deadline: Option<Instant>,
) -> PgWireResult<Response> {
    match outcome {
        Outcome::Rows(stream) => rows_response(stream, described, format, conn, deadline).await,
        Outcome::Done { command, rows } => {
            let mut tag = Tag::new(&command);
            if command == "INSERT" {
                tag = tag.with_oid(0);
            }
            if let Some(rows) = rows {
                tag = tag.with_rows(rows as usize);
            }
            Ok(Response::Execution(tag))
        }
    }
}

/// Starts a `COPY FROM STDIN`: checks the frame and the columns, and starts
/// the write the client's data will stream into.
async fn start_copy(conn: &Connection, copy: CopyIn) -> PgWireResult<Response> {
    let (load, columns) = CopyLoad::start(&conn.session, copy).await?;
    *conn.pending_copy() = Some(load);
    let text_format = 0;
    Ok(Response::CopyIn(CopyResponse::new(
        text_format,
        columns,
        stream::empty(),
    )))
}

/// A failed transaction block runs nothing but `COMMIT`/`ROLLBACK` (and
/// `ROLLBACK TO SAVEPOINT`); Postgres answers 25P02 to anything else.
fn check_block(session: &Session, statement: Option<&Statement>) -> PgWireResult<()> {
    let ends_failure = statement.is_some_and(|s| {
        transaction_control(s).is_some()
            || matches!(
                s,
                Statement::Rollback {
                    savepoint: Some(_),
                    ..
                }
            )
    });
    if session.transaction_failed() && !ends_failure {
        return Err(error(
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block; send ROLLBACK",
        ));
    }
    Ok(())
}

/// `BEGIN`, `COMMIT` and `ROLLBACK` on the connection's session, with the
/// tags Postgres answers: `COMMIT` of a failed block answers `ROLLBACK`, and
/// a `COMMIT` that fails (40001 on a conflict) still ends the block.
async fn run_control<C: ClientInfo + ?Sized>(
    client: &mut C,
    conn: &Connection,
    control: Control,
) -> PgWireResult<Response> {
    let session = &conn.session;
    if !matches!(control, Control::Begin) {
        conn.cursors.end_transaction();
    }
    match control {
        Control::Begin => {
            session.begin();
            Ok(Response::TransactionStart(Tag::new("BEGIN")))
        }
        Control::Commit => match session.commit().await {
            Ok(true) => Ok(Response::TransactionEnd(Tag::new("COMMIT"))),
            Ok(false) => Ok(Response::TransactionEnd(Tag::new("ROLLBACK"))),
            Err(e) => {
                client.set_transaction_status(TransactionStatus::Idle);
                Err(from_engine(e))
            }
        },
        Control::Rollback => {
            session.rollback();
            Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
        }
    }
}

impl QueryService {
    /// Runs one parsed statement for the simple query protocol.
    async fn run_statement<C>(
        &self,
        client: &mut C,
        conn: &Connection,
        statement: Statement,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        check_block(&conn.session, Some(&statement))?;
        let control = transaction_control(&statement);
        if let Some(control) = control {
            return run_control(client, conn, control).await;
        }
        let deadline = conn
            .settings
            .statement_timeout()
            .map(|limit| Instant::now() + limit);
        if let Some(cursor) = cursor::from_statement(&statement)? {
            return self.run_cursor(client, conn, cursor, deadline).await;
        }
        if builtin::is_builtin(&statement) {
            if matches!(statement, Statement::Discard { .. }) {
                conn.cursors.close(None)?;
            }
            return builtin::run(&conn.session, &conn.settings, &statement);
        }
        if let Some(copy) = CopyIn::from_statement(&statement)? {
            return start_copy(conn, copy).await;
        }
        if let Some(copy) = CopyOut::from_statement(&statement)? {
            let rows = self.query_rows(conn, &copy.query, Reader::Copy).await?;
            return copy_out(client, conn, &copy, rows, deadline).await;
        }
        let prepared = conn
            .session
            .prepare(DfStatement::Statement(Box::new(statement)))
            .await
            .map_err(from_engine)?;
        let described = match &prepared {
            Prepared::Plan(plan) if !matches!(plan, LogicalPlan::Dml(_)) => {
                let (hive, boxname) = conn.session.current();
                self.parser.pg.described(plan, &hive, &boxname).await
            }
            _ => None,
        };
        let outcome = conn.session.execute(prepared).await.map_err(from_engine)?;
        outcome_response(
            outcome,
            described.as_ref(),
            &Format::UnifiedText,
            conn,
            deadline,
        )
        .await
    }
}

impl QueryService {
    /// Plans and starts `query`, the query of a cursor or of a `COPY … TO`.
    async fn query_rows(
        &self,
        conn: &Connection,
        query: &str,
        reader: Reader,
    ) -> PgWireResult<SendableRecordBatchStream> {
        let statement = self.parser.one_query(query, reader)?;
        let prepared = conn
            .session
            .prepare(DfStatement::Statement(Box::new(statement)))
            .await
            .map_err(from_engine)?;
        rows_of(conn.session.execute(prepared).await.map_err(from_engine)?)
    }

    /// Runs a cursor statement of the simple query protocol, whose rows are
    /// text unless the cursor was declared `BINARY`.
    async fn run_cursor<C>(
        &self,
        client: &C,
        conn: &Connection,
        statement: CursorStatement,
        deadline: Option<Instant>,
    ) -> PgWireResult<Response>
    where
        C: ClientPortalStore,
        C::PortalStore: PortalStore,
    {
        match statement {
            CursorStatement::Declare(declare) => {
                check_declare(conn, &declare)?;
                let rows = self
                    .query_rows(conn, &declare.query, Reader::Cursor)
                    .await?;
                declare_cursor(conn, &declare, as_described(rows, None)?)
            }
            CursorStatement::Fetch { name, count, moves } => {
                if let Some(response) = fetch_portal(client, conn, &name, count, moves).await? {
                    return Ok(response);
                }
                let format = match conn.cursors.binary(&name).await? {
                    true => Format::UnifiedBinary,
                    false => Format::UnifiedText,
                };
                fetch(conn, &name, count, moves, &format, deadline).await
            }
            CursorStatement::Close(name) => close_cursor(conn, name.as_deref()),
        }
    }
}

/// What reads a query's rows, for the errors Postgres gives when the
/// statement is not a query.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Cursor,
    Copy,
}

/// The rows of an outcome that must have them.
fn rows_of(outcome: Outcome) -> PgWireResult<SendableRecordBatchStream> {
    match outcome {
        Outcome::Rows(rows) => Ok(rows),
        Outcome::Done { .. } => Err(error("0A000", "the statement returns no rows to read")),
    }
}

/// Postgres keeps a cursor without `WITH HOLD` only inside a block.
fn check_declare(conn: &Connection, declare: &Declare) -> PgWireResult<()> {
    if !declare.hold && !conn.session.in_transaction() {
        return Err(error(
            "25P01",
            "DECLARE CURSOR can only be used in transaction blocks; BEGIN first or declare it WITH HOLD",
        ));
    }
    Ok(())
}

fn declare_cursor(
    conn: &Connection,
    declare: &Declare,
    rows: SendableRecordBatchStream,
) -> PgWireResult<Response> {
    let cursor = Cursor::new(rows, declare.hold, declare.binary);
    conn.cursors.declare(&declare.name, cursor)?;
    Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
}

/// `FETCH` streams the cursor's next rows; `MOVE` reads and counts them.
async fn fetch(
    conn: &Connection,
    name: &str,
    count: Count,
    moves: bool,
    format: &Format,
    deadline: Option<Instant>,
) -> PgWireResult<Response> {
    let rows = conn.cursors.fetch(name, count)?;
    if moves {
        let moved = rows
            .try_fold(0, |n, batch| async move { Ok(n + batch.num_rows()) })
            .await
            .map_err(from_datafusion)?;
        return Ok(Response::Execution(Tag::new("MOVE").with_rows(moved)));
    }
    let schema = rows.schema();
    match rows_response(rows, Some(&schema), format, conn, deadline).await? {
        Response::Query(mut rows) => {
            rows.set_command_tag("FETCH");
            Ok(Response::Query(rows))
        }
        other => Ok(other),
    }
}

/// `FETCH`/`MOVE` on a portal the client bound in the extended protocol
/// and left suspended, which Postgres treats as a cursor of the same name
/// (asyncpg skips rows with `MOVE` on its portal). `None` where `name` is
/// a declared cursor or no suspended portal. Its rows keep the portal's
/// encoding.
async fn fetch_portal<C>(
    client: &C,
    conn: &Connection,
    name: &str,
    count: Count,
    moves: bool,
) -> PgWireResult<Option<Response>>
where
    C: ClientPortalStore,
    C::PortalStore: PortalStore,
{
    if conn.cursors.contains(name) {
        return Ok(None);
    }
    let state = match client.portal_store().get_portal(name) {
        Some(Entry::Value(portal)) => portal.state.clone(),
        _ => return Ok(None),
    };
    let mut state = state.lock().await;
    let PortalExecutionState::Suspended(response) = &mut *state else {
        return Ok(None);
    };
    let fields = response.row_schema();
    let mut rows = Vec::new();
    let mut ended = false;
    while rows.len() < count.limit() {
        match response.data_rows().next().await {
            Some(row) => rows.push(row?),
            None => {
                ended = true;
                break;
            }
        }
    }
    if ended {
        *state = PortalExecutionState::Finished;
    }
    if moves {
        return Ok(Some(Response::Execution(
            Tag::new("MOVE").with_rows(rows.len()),
        )));
    }
    let mut fetched = QueryResponse::new(fields, stream::iter(rows.into_iter().map(Ok)));
    fetched.set_command_tag("FETCH");
    Ok(Some(Response::Query(fetched)))
}

fn close_cursor(conn: &Connection, name: Option<&str>) -> PgWireResult<Response> {
    conn.cursors.close(name)?;
    Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
}

/// Streams `rows` to the client as `COPY … TO STDOUT` data and answers the
/// `COPY n` tag. Sent from here rather than through pgwire, which would
/// answer an error mid-copy with a frontend `CopyFail` message.
async fn copy_out<C>(
    client: &mut C,
    conn: &Connection,
    copy: &CopyOut,
    rows: SendableRecordBatchStream,
    deadline: Option<Instant>,
) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let format = match copy.binary {
        true => Format::UnifiedBinary,
        false => Format::UnifiedText,
    };
    let (fields, mut rows) = encoded_rows(rows, None, &format, conn, deadline).await?;
    client
        .send(PgWireBackendMessage::CopyOutResponse(
            copy.start(fields.len()),
        ))
        .await?;
    // A binary copy's header goes out with its first tuple (or its
    // trailer), as Postgres sends it: psycopg reads it from there.
    let mut header = copy.header(&fields);
    if !copy.binary {
        if let Some(names) = header.take() {
            client
                .feed(PgWireBackendMessage::CopyData(CopyData::new(names)))
                .await?;
        }
    }
    let mut with_header = |data: Bytes| match header.take() {
        Some(header) => [header, data].concat().into(),
        None => data,
    };
    let mut count = 0;
    while let Some(row) = rows.next().await {
        let line = with_header(copy.line(&row?));
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(line)))
            .await?;
        count += 1;
    }
    if let Some(trailer) = copy.trailer() {
        client
            .feed(PgWireBackendMessage::CopyData(CopyData::new(with_header(
                trailer,
            ))))
            .await?;
    }
    client
        .send(PgWireBackendMessage::CopyDone(CopyDone::new()))
        .await?;
    Ok(Response::Execution(Tag::new("COPY").with_rows(count)))
}

#[async_trait]
impl SimpleQueryHandler for QueryService {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.connection(client)?;
        let busy = conn.start(query)?;
        let responses = self.run_query(client, &conn, query).await;
        conn.finish(busy);
        let failed = match &responses {
            Ok(responses) => responses.iter().any(|r| matches!(r, Response::Error(_))),
            Err(_) => true,
        };
        if failed {
            // As in Postgres, an error inside a block aborts it.
            conn.session.fail_transaction();
        }
        responses
    }
}

impl QueryService {
    /// Runs a simple-protocol query string, statement by statement.
    async fn run_query<C>(
        &self,
        client: &mut C,
        conn: &Connection,
        query: &str,
    ) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let timeout = conn.settings.statement_timeout();
        if let Some(result) = conn.command(query).await? {
            return Ok(vec![result_response(
                result,
                &Format::UnifiedText,
                &conn.settings,
            )?]);
        }
        // A cursor statement on its own is parsed whole: the SQL parser
        // knows only some of `FETCH`'s forms, and `DECLARE`'s query keeps
        // its text.
        if let Some(cursor) = cursor::parse(query)? {
            check_block(&conn.session, None)?;
            let deadline = timeout.map(|limit| Instant::now() + limit);
            let response =
                with_timeout(timeout, self.run_cursor(client, conn, cursor, deadline)).await?;
            return Ok(vec![response]);
        }
        let statements = self.parser.parse(query)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        for statement in statements {
            match with_timeout(timeout, self.run_statement(client, conn, statement)).await {
                Ok(response) => responses.push(response),
                // Earlier statements' results go out, then the error.
                Err(e) if !responses.is_empty() => {
                    responses.push(Response::Error(Box::new(e.into())));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(responses)
    }
}

/// Parses SQL into [`Stmt`]s for the extended protocol, and holds what
/// every connection of the node shares: pgwire hands the parser, not the
/// handler, to `parse_sql`, so connections are opened from here.
pub struct StatementParser {
    node: Arc<Node>,
    pg: Arc<PgCatalog>,
    cancels: Arc<Cancels>,
    sql: SqlParser,
}

impl StatementParser {
    fn connection<C: ClientInfo + ?Sized>(&self, client: &C) -> PgWireResult<Arc<Connection>> {
        connection(&self.node, &self.pg, &self.cancels, client)
    }

    /// Parses the query a cursor or a `COPY … TO` reads: one `SELECT` or
    /// `VALUES`, refused with Postgres's codes otherwise.
    fn one_query(&self, sql: &str, reader: Reader) -> PgWireResult<Statement> {
        let mut statements = self.parse(sql)?;
        if statements.len() != 1 {
            return Err(error(
                "42601",
                "syntax error: a cursor or COPY reads one query; send the statements after it separately",
            ));
        }
        let statement = statements.remove(0);
        match (&statement, reader) {
            (Statement::Query(_), _) => Ok(statement),
            (_, Reader::Cursor) => Err(error(
                "42601",
                "syntax error: DECLARE … CURSOR FOR takes a SELECT or VALUES query",
            )),
            (_, Reader::Copy) => Err(error(
                "0A000",
                "COPY (query) TO STDOUT reads a SELECT or VALUES query",
            )),
        }
    }

    /// Prepares a statement for the engine.
    async fn engine_stmt(&self, conn: &Connection, statement: Statement) -> PgWireResult<Stmt> {
        let text = statement.to_string().into();
        let prepared = conn
            .session
            .prepare(DfStatement::Statement(Box::new(statement)))
            .await
            .map_err(from_engine)?;
        let schema = match &prepared {
            Prepared::Plan(plan) if !matches!(plan, LogicalPlan::Dml(_)) => {
                let (hive, boxname) = conn.session.current();
                let described = self.pg.described(plan, &hive, &boxname).await;
                Some(described.unwrap_or_else(|| postgres_schema(plan.schema().as_arrow())))
            }
            _ => None,
        };
        Ok(Stmt::Engine {
            text,
            prepared,
            schema,
            fresh: Arc::new(AtomicBool::new(true)),
        })
    }

    /// A cursor statement of the extended protocol: a `DECLARE`'s query is
    /// prepared (it may take parameters); a `FETCH` is described by its
    /// cursor's columns.
    async fn cursor_stmt(&self, conn: &Connection, cursor: CursorStatement) -> PgWireResult<Stmt> {
        match cursor {
            CursorStatement::Declare(declare) => {
                let statement = self.one_query(&declare.query, Reader::Cursor)?;
                let query = self.engine_stmt(conn, statement).await?;
                Ok(Stmt::Declare {
                    declare,
                    query: Box::new(query),
                })
            }
            CursorStatement::Fetch { name, count, moves } => {
                let schema = match moves {
                    true => None,
                    false => Some(conn.cursors.schema(&name).await?),
                };
                Ok(Stmt::Fetch {
                    name,
                    count,
                    moves,
                    schema,
                })
            }
            CursorStatement::Close(name) => Ok(Stmt::Close(name)),
        }
    }

    fn parse(&self, sql: &str) -> PgWireResult<Vec<Statement>> {
        // Before any tree is built: a deep one can overflow the stack.
        apiary_engine::postgres::check_nesting(sql).map_err(from_datafusion)?;
        self.sql
            .parse(sql)
            .map_err(|e| error("42601", format!("syntax error: {e}")))
    }
}

/// A plan's parameters in `$1, $2, …` order with the types DataFusion
/// inferred; a number the plan no longer uses keeps its place as `None`.
fn parameter_types(plan: &LogicalPlan) -> PgWireResult<Vec<Option<DataType>>> {
    let types = plan.get_parameter_types().map_err(from_datafusion)?;
    let numbered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(id, ty)| {
            id.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|n| (n, ty))
        })
        .collect();
    let count = numbered.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let mut ordered = vec![None; count];
    for (n, ty) in numbered {
        if let Some(slot) = n.checked_sub(1).and_then(|i| ordered.get_mut(i)) {
            *slot = ty;
        }
    }
    Ok(ordered)
}

/// Decodes a portal's parameters. arrow-pg drops a NULL whose type neither
/// the client nor the plan gives (node-postgres and postgres.js send NULLs
/// untyped), which would shift every later parameter into the wrong place;
/// such a NULL is a text NULL here, as Postgres resolves an unknown-typed
/// NULL to `text`.
fn parameter_values<S: Clone>(
    portal: &Portal<S>,
    types: &[Option<&DataType>],
) -> PgWireResult<ParamValues> {
    let untyped_null = |i: usize| {
        let hint = portal.statement.parameter_types.get(i).cloned().flatten();
        portal.parameters.get(i).is_some_and(Option::is_none)
            && hint.is_none_or(|t| t == Type::UNKNOWN)
            && types.get(i).copied().flatten().is_none()
    };
    let mut values = match deserialize_parameters(portal, types)? {
        ParamValues::List(values) => values,
        named => return Ok(named),
    };
    let expected = portal.parameter_len();
    if values.len() < expected {
        for i in (0..expected).filter(|&i| untyped_null(i)) {
            values.insert(i.min(values.len()), ScalarValue::Utf8(None).into());
        }
    }
    if values.len() != expected {
        return Err(error(
            "42P18",
            format!("could not determine the data type of a parameter: {expected} sent, {} understood; give each parameter a type (e.g. $1::text)", values.len()),
        ));
    }
    Ok(ParamValues::List(values))
}

#[async_trait]
impl QueryParser for StatementParser {
    type Statement = Stmt;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Stmt>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let conn = self.connection(client)?;
        if let Some(result) = conn.command(sql).await? {
            return Ok(Some(Stmt::Command {
                text: sql.to_string(),
                schema: result.schema,
            }));
        }
        if let Some(cursor) = cursor::parse(sql)? {
            return self.cursor_stmt(&conn, cursor).await.map(Some);
        }
        let mut statements = self.parse(sql)?;
        if statements.is_empty() {
            return Ok(None);
        }
        if statements.len() > 1 {
            return Err(error(
                "42601",
                "cannot insert multiple commands into a prepared statement",
            ));
        }
        let statement = statements.remove(0);
        if builtin::is_builtin(&statement) {
            return Ok(Some(Stmt::Builtin(Box::new(statement))));
        }
        if let Some(copy) = CopyIn::from_statement(&statement)? {
            return Ok(Some(Stmt::Copy(Box::new(copy))));
        }
        if let Some(copy) = CopyOut::from_statement(&statement)? {
            return Ok(Some(Stmt::CopyOut(Box::new(copy))));
        }
        if let Some(cursor) = cursor::from_statement(&statement)? {
            return self.cursor_stmt(&conn, cursor).await.map(Some);
        }
        self.engine_stmt(&conn, statement).await.map(Some)
    }

    fn get_parameter_types(&self, stmt: &Stmt) -> PgWireResult<Vec<Type>> {
        if let Stmt::Declare { query, .. } = stmt {
            return self.get_parameter_types(query);
        }
        let Stmt::Engine {
            prepared: Prepared::Plan(plan),
            ..
        } = stmt
        else {
            return Ok(vec![]);
        };
        parameter_types(plan)?
            .iter()
            .map(|ty| match ty {
                Some(ty) => crate::types::parameter_type(ty),
                None => Ok(Type::UNKNOWN),
            })
            .collect()
    }

    fn get_result_schema(
        &self,
        stmt: &Stmt,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.unwrap_or(&Format::UnifiedText);
        match stmt {
            Stmt::Command { schema, .. }
            | Stmt::Engine {
                schema: Some(schema),
                ..
            }
            | Stmt::Fetch {
                schema: Some(schema),
                ..
            } => pg_fields(schema, format, None),
            Stmt::Builtin(statement) => Ok(builtin::result_fields(statement)),
            _ => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryService {
    type Statement = Stmt;
    type QueryParser = StatementParser;

    fn query_parser(&self) -> Arc<StatementParser> {
        self.parser.clone()
    }

    /// Describing a prepared statement that returns no rows (`INSERT … VALUES
    /// ($1, …)`) must answer ParameterDescription then NoData, as Postgres
    /// does. pgwire's default sends an empty RowDescription when the
    /// statement has parameters, which pgJDBC reads as "a result was
    /// returned" and fails `executeUpdate`.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_STATEMENT {
            let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
            if let Some(Entry::Value(stmt)) = client.portal_store().get_statement(name) {
                let described = self.do_describe_statement(client, &stmt).await?;
                if described.fields.is_empty() {
                    let oids = described.parameters.iter().map(|t| t.oid()).collect();
                    client
                        .send(PgWireBackendMessage::ParameterDescription(
                            ParameterDescription::new(oids),
                        ))
                        .await?;
                    client
                        .send(PgWireBackendMessage::NoData(NoData::new()))
                        .await?;
                    return Ok(());
                }
            }
        }
        self._on_describe(client, message).await
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Stmt>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Stmt>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.connection(client)?;
        let busy = conn.start(&portal.statement.statement.text())?;
        let response = self.execute_portal(client, &conn, portal, max_rows).await;
        conn.finish(busy);
        if response.is_err() {
            // As in Postgres, an error inside a block aborts it.
            conn.session.fail_transaction();
        }
        response
    }
}

impl QueryService {
    /// Runs a bound portal for the extended protocol.
    async fn execute_portal<C>(
        &self,
        client: &mut C,
        conn: &Connection,
        portal: &Portal<Stmt>,
        max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Stmt>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let format = &portal.result_column_format;
        let timeout = conn.settings.statement_timeout();
        let deadline = timeout.map(|limit| Instant::now() + limit);
        let builtin = match &portal.statement.statement {
            Stmt::Builtin(statement) => Some(statement.as_ref()),
            _ => None,
        };
        check_block(&conn.session, builtin)?;
        let control = builtin.and_then(transaction_control);
        if let Some(control) = control {
            return run_control(client, conn, control).await;
        }
        match &portal.statement.statement {
            Stmt::Command { text, .. } => {
                let result = conn.command(text).await?;
                let result = result.ok_or_else(|| error("XX000", "command vanished"))?;
                result_response(result, format, &conn.settings)
            }
            Stmt::Builtin(statement) => {
                if matches!(statement.as_ref(), Statement::Discard { .. }) {
                    conn.cursors.close(None)?;
                }
                builtin::run(&conn.session, &conn.settings, statement)
            }
            Stmt::Copy(copy) => start_copy(conn, copy.as_ref().clone()).await,
            Stmt::CopyOut(copy) => {
                with_timeout(timeout, async {
                    let rows = self.query_rows(conn, &copy.query, Reader::Copy).await?;
                    copy_out(client, conn, copy, rows, deadline).await
                })
                .await
            }
            Stmt::Declare { declare, query } => {
                check_declare(conn, declare)?;
                let Stmt::Engine {
                    prepared,
                    schema,
                    fresh,
                    ..
                } = query.as_ref()
                else {
                    return Err(error("XX000", "a cursor's query was not prepared"));
                };
                let outcome = engine_outcome(conn, portal, prepared, fresh).await?;
                let rows = as_described(rows_of(outcome)?, schema.as_ref())?;
                let schema = rows.schema();
                let response = declare_cursor(conn, declare, rows)?;
                // Postgres opens a cursor as a portal of the same name,
                // which psycopg describes for the cursor's columns.
                let fetch_all = Stmt::Fetch {
                    name: declare.name.clone(),
                    count: Count::All,
                    moves: false,
                    schema: Some(schema),
                };
                let statement = StoredStatement::new(declare.name.clone(), fetch_all, vec![]);
                let mut cursor_portal =
                    Portal::new_cursor(declare.name.clone(), Arc::new(statement));
                if declare.binary {
                    cursor_portal.result_column_format = Format::UnifiedBinary;
                }
                client.portal_store().put_portal(Arc::new(cursor_portal));
                Ok(response)
            }
            Stmt::Fetch {
                name, count, moves, ..
            } => {
                if let Some(response) = fetch_portal(client, conn, name, *count, *moves).await? {
                    return Ok(response);
                }
                let response = fetch(conn, name, *count, *moves, format, deadline).await?;
                match response {
                    Response::Query(rows) if max_rows == 0 => send_rows(client, rows).await,
                    other => Ok(other),
                }
            }
            Stmt::Close(name) => {
                if let Some(name) = name {
                    client.portal_store().rm_portal(name);
                }
                close_cursor(conn, name.as_deref())
            }
            Stmt::Engine {
                prepared,
                schema,
                fresh,
                ..
            } => {
                with_timeout(timeout, async {
                    let outcome = engine_outcome(conn, portal, prepared, fresh).await?;
                    match outcome_response(outcome, schema.as_ref(), format, conn, deadline).await?
                    {
                        Response::Query(rows) if max_rows == 0 => send_rows(client, rows).await,
                        other => Ok(other),
                    }
                })
                .await
            }
        }
    }
}

/// Binds `portal`'s parameters into `prepared` and runs it. A plan
/// executed right after Parse reads the frames it was planned on; later
/// executions re-resolve them.
async fn engine_outcome(
    conn: &Connection,
    portal: &Portal<Stmt>,
    prepared: &Prepared,
    fresh: &AtomicBool,
) -> PgWireResult<Outcome> {
    let prepared = match prepared {
        Prepared::Plan(plan) => {
            let types = parameter_types(plan)?;
            let refs: Vec<Option<&DataType>> = types.iter().map(|t| t.as_ref()).collect();
            let params = parameter_values(portal, &refs)?;
            let plan = plan
                .clone()
                .replace_params_with_values(&params)
                .map_err(from_datafusion)?;
            if fresh.swap(false, Ordering::SeqCst) {
                Prepared::Plan(plan)
            } else {
                Prepared::Plan(conn.session.rebind(plan).await.map_err(from_engine)?)
            }
        }
        other => other.clone(),
    };
    conn.session.execute(prepared).await.map_err(from_engine)
}

#[async_trait]
impl CopyHandler for QueryService {
    async fn on_copy_data<C>(&self, client: &mut C, copy_data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.connection(client)?;
        let load = conn.pending_copy().take();
        let load = load.ok_or_else(|| error("08P01", "COPY data without a COPY FROM STDIN"))?;
        let load = load.push(&copy_data.data).await;
        *conn.pending_copy() = Some(load);
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let conn = self.connection(client)?;
        let load = conn.pending_copy().take();
        let load = load.ok_or_else(|| error("08P01", "COPY done without COPY"))?;
        let written = load.finish().await?;
        let tag = Tag::new("COPY").with_rows(written.rows_written as usize);
        client
            .send(PgWireBackendMessage::CommandComplete(tag.into()))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Ok(conn) = self.connection(client) {
            if let Some(load) = conn.pending_copy().take() {
                load.abandon();
            }
        }
        error(
            "57014",
            format!(
                "COPY from stdin failed: {}; nothing was written",
                fail.message
            ),
        )
    }
}
