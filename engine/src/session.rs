//! The Session API: one client's view of a root, with a current hive and box.
//!
//! `Session::sql` is the single entry point for SQL from every edge (Python
//! SDK, CLI, and later the Postgres gateway). Apiary's own commands
//! ([`crate::command`]) are answered here from the catalog; everything else is
//! planned and run by DataFusion over [`apiary_catalog::provider::HiveList`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use apiary_catalog::provider::{HiveList, SystemSchemas};
use apiary_catalog::table::FrameTable;
use apiary_catalog::{
    names, Catalog, FrameDef, FrameName, ObjectKind, Transaction, WriteMode, WriteOptions,
    WriteResult, DEFAULT_BOX, DEFAULT_HIVE,
};
use arrow::array::{ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNodeRecursion};
use datafusion::common::TableReference;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder};
use datafusion::logical_expr::{LogicalPlan, Statement as PlanStatement, WriteOp};
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{ObjectName, Statement};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tracing::Instrument;

use crate::colony::{ColonyStatus, Work};
use crate::command::{self, Command};
use crate::constant_keys::ConstantKeyAggregates;
use crate::ddl;
use crate::distributed::{Distribute, Distributor};
use crate::error::{EngineError, Result};
use crate::maintenance;
use crate::node::{SwarmStatus, Vitals};
use crate::postgres;
use crate::yield_points::CooperativeJoins;

/// A planned statement, ready for [`Session::execute`].
#[derive(Debug, Clone)]
pub enum Prepared {
    /// Changes the catalog (`CREATE DATABASE|SCHEMA|TABLE`, `DROP TABLE`).
    Catalog(Box<Statement>),
    /// Planned by DataFusion: a query or an `INSERT`/`DELETE`/`UPDATE`.
    Plan(LogicalPlan),
}

/// What running a statement produced.
pub enum Outcome {
    /// A query's rows, streamed as they are computed.
    Rows(SendableRecordBatchStream),
    /// A statement that finished: its command (`INSERT`, `CREATE TABLE`, …)
    /// and, for writes, the number of rows it affected.
    Done { command: String, rows: Option<u64> },
}

impl Outcome {
    /// Reads all rows; a finished write becomes a one-row `count`, any other
    /// finished statement a one-row `status`.
    pub async fn collect(self) -> Result<QueryResult> {
        match self {
            Outcome::Rows(stream) => {
                let schema = stream.schema();
                let batches = stream.try_collect().await?;
                Ok(QueryResult { schema, batches })
            }
            Outcome::Done {
                rows: Some(rows), ..
            } => {
                let schema = Arc::new(Schema::new(vec![Field::new(
                    "count",
                    DataType::UInt64,
                    false,
                )]));
                let column: ArrayRef = Arc::new(UInt64Array::from(vec![rows]));
                Ok(QueryResult::single(RecordBatch::try_new(
                    schema,
                    vec![column],
                )?))
            }
            Outcome::Done {
                command,
                rows: None,
            } => message(&command),
        }
    }
}

/// A statement's result: its schema and all of its rows.
#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    pub(crate) fn single(batch: RecordBatch) -> Self {
        QueryResult {
            schema: batch.schema(),
            batches: vec![batch],
        }
    }
}

/// One client's SQL session over a node's catalog.
#[derive(Clone)]
pub struct Session {
    catalog: Arc<Catalog>,
    ctx: SessionContext,
    /// Statements running on this node, shared with the node for colony load.
    running: Arc<AtomicUsize>,
    /// The node this session runs on, for `SHOW SWARM`, `SHOW COLONY` and
    /// `EXPLAIN ANALYZE`.
    vitals: Option<Arc<Vitals>>,
    /// The open `BEGIN … COMMIT` block, if any; its frames' writes are
    /// staged until `COMMIT`.
    txn: Transaction,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("root", &self.catalog.root().url().as_str())
            .finish()
    }
}

/// Counts a statement as running for as long as it lives.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Running(counter.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Session {
    /// A session on `catalog` whose queries use `target_partitions` threads
    /// of parallelism and share `runtime` (memory pool, disk manager).
    pub fn new(
        catalog: Arc<Catalog>,
        runtime: Arc<RuntimeEnv>,
        target_partitions: usize,
        running: Arc<AtomicUsize>,
        system: SystemSchemas,
        distributor: Option<Arc<Distributor>>,
        vitals: Option<Arc<Vitals>>,
    ) -> Self {
        let txn = Transaction::default();
        let config = SessionConfig::new()
            .with_default_catalog_and_schema(DEFAULT_HIVE, DEFAULT_BOX)
            .with_create_default_catalog_and_schema(false)
            // A Postgres-shaped `information_schema` from the gateway
            // replaces DataFusion's own.
            .with_information_schema(!system.iter().any(|(name, _)| name == "information_schema"))
            .with_target_partitions(target_partitions.max(1))
            // `0.1` is an exact `numeric`, as in Postgres, not a `float8`.
            .set_bool("datafusion.sql_parser.parse_float_as_decimal", true)
            // `now()` and `TIMESTAMPTZ '…'` are instants (`timestamptz`), in
            // UTC, the zone every session starts in.
            .set_str("datafusion.execution.time_zone", "UTC");
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .with_analyzer_rules(postgres::analyzer_rules())
            .with_type_planner(Arc::new(postgres::DeclaredTypes::default()))
            .with_catalog_list(Arc::new(
                HiveList::with_system_schemas(catalog.clone(), system)
                    .with_transaction(txn.clone()),
            ));
        if let Some(planners) = state.expr_planners() {
            planners.splice(0..0, postgres::expr_planners());
        }
        if let Some(distributor) = distributor {
            state = state.with_physical_optimizer_rule(Arc::new(Distribute::new(distributor)));
        }
        state = state.with_physical_optimizer_rule(Arc::new(ConstantKeyAggregates));
        state = state.with_physical_optimizer_rule(Arc::new(CooperativeJoins));
        let mut state = state.build();
        postgres::register_functions(&mut state)
            .expect("DataFusion's built-in aggregates are registered");
        postgres::register_table_functions(&mut state);
        Session {
            catalog,
            ctx: SessionContext::new_with_state(state),
            running,
            vitals,
            txn,
        }
    }

    /// `BEGIN`: later writes are staged until [`Session::commit`]. `false`
    /// when a block is already open (it stays open, as in Postgres).
    pub fn begin(&self) -> bool {
        self.txn.begin()
    }

    /// Whether a transaction block is open.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_open()
    }

    /// Whether a statement failed in the open block, which then only ends.
    pub fn transaction_failed(&self) -> bool {
        self.txn.is_failed()
    }

    /// Marks the open block failed after an error: it can no longer
    /// commit, only roll back (whole, or to a savepoint).
    pub fn fail_transaction(&self) {
        self.txn.fail()
    }

    /// `COMMIT`: the block's writes (to one frame) become one Delta commit. `Ok(false)`
    /// when the block had failed and was rolled back instead.
    pub async fn commit(&self) -> Result<bool> {
        Ok(self.txn.commit().await?)
    }

    /// `SAVEPOINT name` in the open block.
    pub fn savepoint(&self, name: &str) -> Result<()> {
        Ok(self.txn.savepoint(name)?)
    }

    /// `ROLLBACK TO SAVEPOINT name`: the block's writes since are dropped
    /// and a failed block can go on.
    pub fn rollback_to(&self, name: &str) -> Result<()> {
        Ok(self.txn.rollback_to(name)?)
    }

    /// `RELEASE SAVEPOINT name`.
    pub fn release(&self, name: &str) -> Result<()> {
        Ok(self.txn.release(name)?)
    }

    /// `ROLLBACK`: the block's writes are dropped. `false` when no block was
    /// open.
    pub fn rollback(&self) -> bool {
        self.txn.rollback()
    }

    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The id of the node this session runs on.
    pub fn node_id(&self) -> &str {
        self.vitals.as_ref().map_or("local", |v| v.node_id())
    }

    /// The current hive and box, which unqualified names resolve against.
    pub fn current(&self) -> (String, String) {
        let state = self.ctx.state_ref();
        let state = state.read();
        let opts = &state.config().options().catalog;
        (opts.default_catalog.clone(), opts.default_schema.clone())
    }

    fn set_current(&self, hive: &str, boxname: &str) {
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let opts = &mut state.config_mut().options_mut().catalog;
        opts.default_catalog = hive.to_string();
        opts.default_schema = boxname.to_string();
    }

    /// The DataFusion context queries run in; edges use it to register
    /// functions (e.g. the gateway's Postgres functions) and plan statements.
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Makes `hive.boxname` current, checking that it exists.
    pub fn use_box(&self, hive: &str, boxname: &str) -> Result<()> {
        let hive = names::validate(ObjectKind::Hive, hive)?;
        let boxname = names::validate(ObjectKind::Box, boxname)?;
        self.catalog.snapshot().boxdef(&hive, &boxname)?;
        self.set_current(&hive, &boxname);
        Ok(())
    }

    /// Runs SQL text (one or more statements) and returns all rows of the
    /// last one. Statements that write return a one-row `count`; catalog
    /// statements a one-row `status`.
    pub async fn sql(&self, query: &str) -> Result<QueryResult> {
        let query_id = uuid::Uuid::new_v4().simple().to_string();
        let span = tracing::info_span!("query", query_id = %query_id);
        let started = std::time::Instant::now();
        let result = self.run(query).instrument(span.clone()).await;
        span.in_scope(|| match &result {
            Ok(r) => tracing::debug!(
                rows = r.num_rows(),
                elapsed_ms = started.elapsed().as_millis() as u64,
                "query finished"
            ),
            Err(e) => tracing::debug!(error = %e, "query failed"),
        });
        result
    }

    async fn run(&self, query: &str) -> Result<QueryResult> {
        if let Some(result) = self.command(query).await? {
            return Ok(result);
        }
        let statements = self.parse(query)?;
        if statements.is_empty() {
            return Err(EngineError::InvalidArgument(
                "the query is empty; pass one SQL statement".into(),
            ));
        }
        let mut last = None;
        for statement in statements {
            let control = match &statement {
                DfStatement::Statement(inner) => transaction_control(inner),
                _ => None,
            };
            let result = match control {
                Some(control) => self.control(control).await,
                None => self.run_one(statement).await,
            };
            match result {
                Ok(result) => last = Some(result),
                Err(e) => {
                    // As in Postgres: an error ends the block's chance to
                    // commit; the SDK has no later ROLLBACK, so end it now.
                    self.rollback();
                    return Err(e);
                }
            }
        }
        last.ok_or_else(|| EngineError::InvalidArgument("the query has no statements".into()))
    }

    async fn run_one(&self, statement: DfStatement) -> Result<QueryResult> {
        let prepared = self.prepare(statement).await?;
        self.execute(prepared).await?.collect().await
    }

    /// Runs `BEGIN`, `COMMIT` or `ROLLBACK` for [`Session::sql`].
    async fn control(&self, control: Control) -> Result<QueryResult> {
        match control {
            Control::Begin => {
                self.begin();
                message("BEGIN")
            }
            Control::Commit => {
                let committed = self.commit().await?;
                message(if committed { "COMMIT" } else { "ROLLBACK" })
            }
            Control::Rollback => {
                self.rollback();
                message("ROLLBACK")
            }
        }
    }

    /// Waits until this node's colony lets `work` in (see
    /// [`crate::colony::Colony::admit`]).
    async fn admit(&self, work: Work) -> Result<()> {
        match &self.vitals {
            Some(vitals) => vitals.colony().admit(work).await,
            None => Ok(()),
        }
    }

    /// Appends (or overwrites) `batches` into a frame through the catalog's
    /// validated commit path, once the colony lets a write in. The SDK's
    /// `write_to_frame` and the gateway's `COPY` write here.
    pub async fn write(
        &self,
        name: &FrameName,
        def: &FrameDef,
        batches: &[RecordBatch],
        mode: WriteMode,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        self.admit(Work::Write).await?;
        let _running = Running::start(&self.running);
        let frames = self.catalog.frames();
        if self.txn.is_open() {
            let owned: Vec<_> = batches.iter().cloned().map(Ok).collect();
            let input = futures::stream::iter(owned).boxed();
            if let Some(staged) = frames
                .stage_write(&self.txn, name, def, input, mode, opts.clone())
                .await?
            {
                return Ok(staged);
            }
        }
        Ok(frames.write(name, def, batches, mode, opts).await?)
    }

    /// Like [`Session::write`] for batches that arrive over time (`COPY FROM
    /// STDIN`): one commit when `input` ends, nothing if it yields an error.
    /// Admission happens now; the returned future owns what it needs, so it
    /// can run as its own task while the batches are produced.
    pub async fn write_stream(
        &self,
        name: FrameName,
        def: FrameDef,
        input: BoxStream<'static, apiary_catalog::Result<RecordBatch>>,
        mode: WriteMode,
        opts: WriteOptions,
    ) -> Result<impl std::future::Future<Output = Result<WriteResult>> + Send + 'static> {
        self.admit(Work::Write).await?;
        let running = Running::start(&self.running);
        let catalog = self.catalog.clone();
        let txn = self.txn.clone();
        Ok(async move {
            let _running = running;
            let frames = catalog.frames();
            if txn.is_open() {
                return match frames
                    .stage_write(&txn, &name, &def, input, mode, opts.clone())
                    .await?
                {
                    Some(staged) => Ok(staged),
                    None => Err(apiary_catalog::Error::NoTransaction.into()),
                };
            }
            Ok(frames.write_stream(&name, &def, input, mode, opts).await?)
        })
    }

    /// Answers Apiary's own commands (`USE`, `SHOW HIVES|BOXES|FRAMES`,
    /// `DESCRIBE`); `None` when `text` is not one of them.
    pub async fn command(&self, text: &str) -> Result<Option<QueryResult>> {
        let Some(command) = command::parse(text)? else {
            return Ok(None);
        };
        let _running = Running::start(&self.running);
        self.catalog.refresh().await?;
        self.run_command(command).await.map(Some)
    }

    /// The frame `name` (`frame`, `box.frame` or `hive.box.frame`) names,
    /// resolved against the current hive and box.
    pub async fn frame(&self, name: &ObjectName) -> Result<(FrameName, FrameDef)> {
        let (hive, boxname) = self.current();
        let (hive, boxname, frame) = ddl::resolve(name, &hive, &boxname)?;
        Ok(self.catalog.frame(&hive, &boxname, &frame).await?)
    }

    /// The frame named by one to three parts (`frame`, `box.frame`,
    /// `hive.box.frame`), resolved against the current hive and box.
    pub(crate) async fn frame_by_parts(&self, parts: &[String]) -> Result<(FrameName, FrameDef)> {
        let (hive, boxname) = self.current();
        let (hive, boxname, frame) = match parts {
            [f] => (hive, boxname, f.clone()),
            [b, f] => (hive, b.clone(), f.clone()),
            [h, b, f] => (h.clone(), b.clone(), f.clone()),
            _ => {
                return Err(EngineError::InvalidArgument(
                    "a frame name is frame, box.frame or hive.box.frame".into(),
                ))
            }
        };
        Ok(self.catalog.frame(&hive, &boxname, &frame).await?)
    }

    /// Splits SQL text into statements (Postgres dialect).
    pub fn parse(&self, sql: &str) -> Result<Vec<DfStatement>> {
        postgres::check_nesting(sql)?;
        Ok(
            DFParser::parse_sql_with_dialect(sql, &PostgreSqlDialect {})?
                .into_iter()
                .collect(),
        )
    }

    /// Plans one statement against the newest catalog. Catalog statements
    /// are kept as they are and applied by [`Session::execute`].
    pub async fn prepare(&self, statement: DfStatement) -> Result<Prepared> {
        self.catalog.refresh().await?;
        if let DfStatement::Statement(inner) = &statement {
            if ddl::is_catalog_statement(inner) {
                return Ok(Prepared::Catalog(inner.clone()));
            }
            if transaction_control(inner).is_some() {
                return Err(EngineError::Unsupported {
                    statement: "BEGIN/COMMIT/ROLLBACK as a prepared statement".into(),
                    hint:
                        "send transaction control as plain SQL (Session::begin, commit, rollback)"
                            .into(),
                });
            }
        }
        let state = self.ctx.state();
        let plan = state.statement_to_plan(statement).await?;
        check_supported(&plan)?;
        // Type coercion (a UNION's or CASE's common type, literals cast to
        // their column's type) is part of analysis: the prepared plan's
        // schema is then the schema its rows will have, which is what a
        // client is told at Describe.
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})?;
        Ok(Prepared::Plan(plan))
    }

    /// `plan` with every frame scan's provider resolved again. A provider
    /// is pinned to the frame version it was opened at; a statement prepared
    /// earlier and executed now (the extended protocol's Execute, a cached
    /// prepared statement) must read each frame as of now, and through the
    /// transaction block open now.
    pub async fn rebind(&self, plan: LogicalPlan) -> Result<LogicalPlan> {
        let mut tables: Vec<TableReference> = Vec::new();
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                let is_frame = source_as_provider(&scan.source).is_ok_and(|p| p.is::<FrameTable>());
                if is_frame && !tables.contains(&scan.table_name) {
                    tables.push(scan.table_name.clone());
                }
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if tables.is_empty() {
            return Ok(plan);
        }
        self.catalog.refresh().await?;
        let mut fresh = HashMap::new();
        for table in tables {
            let provider = self.ctx.table_provider(table.clone()).await?;
            fresh.insert(table, provider_as_source(provider));
        }
        let plan = plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(mut scan) => match fresh.get(&scan.table_name) {
                Some(source) => {
                    scan.source = source.clone();
                    Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
                }
                None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
            },
            other => Ok(Transformed::no(other)),
        })?;
        Ok(plan.data)
    }

    /// Runs a prepared statement. Queries stream their rows; writes and
    /// catalog statements finish before this returns.
    pub async fn execute(&self, prepared: Prepared) -> Result<Outcome> {
        let work = match &prepared {
            Prepared::Plan(LogicalPlan::Dml(_)) | Prepared::Catalog(_) => Work::Write,
            Prepared::Plan(_) => Work::Query,
        };
        self.admit(work).await?;
        let running = Running::start(&self.running);
        let plan = match prepared {
            Prepared::Catalog(statement) => return ddl::run(self, &statement).await,
            Prepared::Plan(plan) => plan,
        };
        let command = match &plan {
            LogicalPlan::Dml(dml) => Some(match dml.op {
                WriteOp::Insert(_) => "INSERT",
                WriteOp::Delete => "DELETE",
                WriteOp::Update => "UPDATE",
                _ => "WRITE",
            }),
            _ => None,
        };
        if let LogicalPlan::Analyze(analyze) = &plan {
            let input = analyze.input.as_ref().clone();
            return Ok(Outcome::Rows(self.explain_analyze(input).await?));
        }
        // SQL `PREPARE` and `DEALLOCATE` answer with their tag, not rows
        // (pg_dump checks that a PREPARE returned no result set).
        let statement_tag = match &plan {
            LogicalPlan::Statement(PlanStatement::Prepare(_)) => Some("PREPARE"),
            LogicalPlan::Statement(PlanStatement::Deallocate(_)) => Some("DEALLOCATE"),
            _ => None,
        };
        let frame = self.ctx.execute_logical_plan(plan).await?;
        if let Some(command) = statement_tag {
            frame.collect().await?;
            return Ok(Outcome::Done {
                command: command.into(),
                rows: None,
            });
        }
        if let Some(command) = command {
            let batches = frame.collect().await?;
            let rows = batches
                .first()
                .and_then(|b| b.column_by_name("count"))
                .and_then(|c| c.as_any().downcast_ref::<UInt64Array>())
                .map(|c| c.value(0))
                .unwrap_or(0);
            return Ok(Outcome::Done {
                command: command.into(),
                rows: Some(rows),
            });
        }
        let stream = frame.execute_stream().await?;
        let schema = stream.schema();
        // The statement counts as running until its last row is read.
        let rows = stream.inspect(move |_| {
            let _ = &running;
        });
        Ok(Outcome::Rows(Box::pin(RecordBatchStreamAdapter::new(
            schema, rows,
        ))))
    }

    /// Runs `input` to the end and returns one row per task (the node that
    /// ran it, its cells, bytes, rows and time), then a total row and the
    /// coordination overhead: wall time beyond the slowest task.
    async fn explain_analyze(&self, input: LogicalPlan) -> Result<SendableRecordBatchStream> {
        let state = self.ctx.state();
        let plan = state.create_physical_plan(&input).await?;
        let started = std::time::Instant::now();
        let mut stream = execute_stream(plan.clone(), self.ctx.task_ctx())?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            rows += batch?.num_rows() as u64;
        }
        let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
        drop(stream);
        let table =
            crate::distributed::explain::analyze_table(&plan, self.node_id(), rows, wall_ms)?;
        let schema = table.schema();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(vec![Ok(table)]),
        )))
    }

    async fn run_command(&self, command: Command) -> Result<QueryResult> {
        let (cur_hive, cur_box) = self.current();
        match command {
            Command::UseHive(hive) => {
                let hive = names::validate(ObjectKind::Hive, &hive)?;
                let snap = self.catalog.snapshot();
                let h = snap.hive(&hive)?;
                let boxname = if h.boxes.contains_key(DEFAULT_BOX) {
                    DEFAULT_BOX.to_string()
                } else {
                    h.boxes.keys().next().cloned().unwrap_or_default()
                };
                self.set_current(&hive, &boxname);
                message(&format!("using hive {hive}, box {boxname}"))
            }
            Command::UseBox { hive, boxname } => {
                let hive = names::validate(ObjectKind::Hive, &hive.unwrap_or(cur_hive))?;
                let boxname = names::validate(ObjectKind::Box, &boxname)?;
                self.catalog.snapshot().boxdef(&hive, &boxname)?;
                self.set_current(&hive, &boxname);
                message(&format!("using hive {hive}, box {boxname}"))
            }
            Command::ShowHives => names_table("hive", self.catalog.list_hives().await?),
            Command::ShowBoxes { hive } => {
                let hive = hive.unwrap_or(cur_hive);
                names_table("box", self.catalog.list_boxes(&hive).await?)
            }
            Command::ShowFrames { hive, boxname } => {
                let hive = hive.unwrap_or(cur_hive);
                let boxname = boxname.unwrap_or(cur_box);
                names_table("frame", self.catalog.list_frames(&hive, &boxname).await?)
            }
            Command::ShowSwarm => swarm_table(&self.vitals()?.swarm_status()),
            Command::ShowColony => colony_table(&self.vitals()?.colony_status()),
            Command::Optimize {
                frame,
                filters,
                zorder,
            } => maintenance::optimize(self, &frame, &filters, &zorder).await,
            Command::Vacuum {
                frame,
                retain_seconds,
                dry_run,
            } => maintenance::vacuum(self, &frame, retain_seconds, dry_run).await,
            Command::History(frame) => maintenance::history(self, &frame).await,
            Command::Restore { frame, to } => maintenance::restore(self, &frame, to).await,
            Command::Describe(parts) => {
                let (hive, boxname, frame) = match parts.as_slice() {
                    [f] => (cur_hive, cur_box, f.clone()),
                    [b, f] => (cur_hive, b.clone(), f.clone()),
                    [h, b, f] => (h.clone(), b.clone(), f.clone()),
                    _ => unreachable!("the parser allows one to three parts"),
                };
                self.describe(&hive, &boxname, &frame).await
            }
        }
    }

    fn vitals(&self) -> Result<&Arc<Vitals>> {
        self.vitals
            .as_ref()
            .ok_or_else(|| EngineError::Unsupported {
                statement: "SHOW SWARM / SHOW COLONY".into(),
                hint: "this session does not run on a node".into(),
            })
    }

    /// One row per column: name, declared type, nullability, whether it is a
    /// partition column, and the frame's cells/rows/bytes.
    async fn describe(&self, hive: &str, boxname: &str, frame: &str) -> Result<QueryResult> {
        let (name, def) = self.catalog.frame(hive, boxname, frame).await?;
        let stats = self.catalog.frames().stats(&name, &def).await?;
        let n = def.columns.len();
        let schema = Arc::new(Schema::new(vec![
            Field::new("column_name", DataType::Utf8, false),
            Field::new("data_type", DataType::Utf8, false),
            Field::new("nullable", DataType::Boolean, false),
            Field::new("partition_key", DataType::Boolean, false),
            Field::new("cells", DataType::UInt64, false),
            Field::new("rows", DataType::UInt64, false),
            Field::new("bytes", DataType::UInt64, false),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                def.columns.iter().map(|c| &c.name),
            )),
            Arc::new(StringArray::from_iter_values(
                def.columns.iter().map(|c| &c.type_name),
            )),
            Arc::new(BooleanArray::from_iter(
                def.columns.iter().map(|c| Some(c.nullable)),
            )),
            Arc::new(BooleanArray::from_iter(
                def.columns
                    .iter()
                    .map(|c| Some(def.partition_by.contains(&c.name))),
            )),
            Arc::new(UInt64Array::from(vec![stats.cells; n])),
            Arc::new(UInt64Array::from(vec![stats.rows; n])),
            Arc::new(UInt64Array::from(vec![stats.bytes; n])),
        ];
        Ok(QueryResult::single(RecordBatch::try_new(schema, columns)?))
    }
}

/// Transaction control statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Begin,
    Commit,
    Rollback,
}

/// Which transaction control `statement` is, if it is one (`BEGIN`, `START
/// TRANSACTION`, `COMMIT`, `END`, `ROLLBACK`, `ABORT`).
pub fn transaction_control(statement: &Statement) -> Option<Control> {
    match statement {
        Statement::StartTransaction { .. } => Some(Control::Begin),
        Statement::Commit { .. } => Some(Control::Commit),
        Statement::Rollback {
            savepoint: None, ..
        } => Some(Control::Rollback),
        _ => None,
    }
}

/// Rejects plans DataFusion would only apply to in-memory state, with the
/// statement to use instead.
fn check_supported(plan: &LogicalPlan) -> Result<()> {
    let unsupported = |statement: &str, hint: &str| {
        Err(EngineError::Unsupported {
            statement: statement.to_string(),
            hint: hint.to_string(),
        })
    };
    match plan {
        LogicalPlan::Ddl(ddl) => unsupported(
            ddl.name(),
            "Apiary supports CREATE DATABASE (hive), CREATE SCHEMA (box), CREATE TABLE [AS SELECT] (frame) and DROP TABLE",
        ),
        LogicalPlan::Dml(dml) if !matches!(dml.op, WriteOp::Insert(_) | WriteOp::Delete | WriteOp::Update) => unsupported(
            &format!("{} {}", dml.op, dml.table_name),
            "use INSERT, DELETE or UPDATE",
        ),
        LogicalPlan::Copy(_) => unsupported(
            "COPY … TO",
            "read query results with a SELECT (COPY … FROM STDIN loads data over the Postgres protocol)",
        ),
        _ => Ok(()),
    }
}

fn names_table(column: &str, names: Vec<String>) -> Result<QueryResult> {
    let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]));
    let array: ArrayRef = Arc::new(StringArray::from(names));
    Ok(QueryResult::single(RecordBatch::try_new(
        schema,
        vec![array],
    )?))
}

fn message(text: &str) -> Result<QueryResult> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "status",
        DataType::Utf8,
        false,
    )]));
    let array: ArrayRef = Arc::new(StringArray::from(vec![text.to_string()]));
    Ok(QueryResult::single(RecordBatch::try_new(
        schema,
        vec![array],
    )?))
}

/// `SHOW SWARM`: one row per node with a heartbeat on the root.
fn swarm_table(swarm: &SwarmStatus) -> Result<QueryResult> {
    let nodes = &swarm.nodes;
    let schema = Arc::new(Schema::new(vec![
        Field::new("node_id", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("cores", DataType::UInt64, false),
        Field::new("memory_gb", DataType::Float64, false),
        Field::new("bees", DataType::UInt64, false),
        Field::new("bees_busy", DataType::UInt64, false),
        Field::new("temperature", DataType::Float64, false),
        Field::new("last_seen_s", DataType::Float64, false),
        Field::new("listen", DataType::Utf8, true),
        Field::new("this_node", DataType::Boolean, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            nodes.iter().map(|n| &n.node_id),
        )),
        Arc::new(StringArray::from_iter_values(
            nodes.iter().map(|n| &n.state),
        )),
        Arc::new(UInt64Array::from_iter_values(
            nodes.iter().map(|n| n.cores as u64),
        )),
        Arc::new(Float64Array::from_iter_values(
            nodes.iter().map(|n| n.memory_gb),
        )),
        Arc::new(UInt64Array::from_iter_values(
            nodes.iter().map(|n| n.bees as u64),
        )),
        Arc::new(UInt64Array::from_iter_values(
            nodes.iter().map(|n| n.bees_busy as u64),
        )),
        Arc::new(Float64Array::from_iter_values(
            nodes.iter().map(|n| n.temperature),
        )),
        Arc::new(Float64Array::from_iter_values(
            nodes.iter().map(|n| n.last_seen_s),
        )),
        Arc::new(StringArray::from_iter(
            nodes.iter().map(|n| n.listen.as_deref()),
        )),
        Arc::new(BooleanArray::from_iter(
            nodes.iter().map(|n| Some(n.this_node)),
        )),
    ];
    Ok(QueryResult::single(RecordBatch::try_new(schema, columns)?))
}

/// `SHOW COLONY`: this node's load as one row.
fn colony_table(colony: &ColonyStatus) -> Result<QueryResult> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("temperature", DataType::Float64, false),
        Field::new("regulation", DataType::Utf8, false),
        Field::new("abandoned_tasks", DataType::UInt64, false),
        Field::new("bees", DataType::UInt64, false),
        Field::new("bees_busy", DataType::UInt64, false),
        Field::new("queue", DataType::UInt64, false),
        Field::new("memory_pressure", DataType::Float64, false),
        Field::new("running_queries", DataType::UInt64, false),
        Field::new("swarm_temperature", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Float64Array::from(vec![colony.temperature])),
        Arc::new(StringArray::from(vec![colony.regulation.clone()])),
        Arc::new(UInt64Array::from(vec![colony.abandoned_tasks])),
        Arc::new(UInt64Array::from(vec![colony.bees as u64])),
        Arc::new(UInt64Array::from(vec![colony.bees_busy as u64])),
        Arc::new(UInt64Array::from(vec![colony.queue as u64])),
        Arc::new(Float64Array::from(vec![colony.memory_pressure])),
        Arc::new(UInt64Array::from(vec![colony.running_queries as u64])),
        Arc::new(Float64Array::from(vec![colony.swarm_temperature])),
    ];
    Ok(QueryResult::single(RecordBatch::try_new(schema, columns)?))
}
