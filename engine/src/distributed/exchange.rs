//! The exchange: where a distributed stage's partial results come back.
//!
//! [`ExchangeExec`] stands in for a scan stage. Its partition `i` is task
//! `i`: run here when the task is assigned to this node (or reassigned to
//! it), otherwise read from the Arrow IPC result the assignee wrote. On the
//! first `execute`, a dispatcher ([`StageRun`]) puts the remote tasks in
//! their assignees' inboxes and polls the stage's status objects —
//! quickly while tasks are in flight, backing off as they take longer —
//! reassigning a task whose node stops heartbeating, reports an error or
//! misses its lease, and giving up after the last attempt with the history
//! of every attempt. Dropping the run deletes the stage's objects.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::reader::StreamReader;
use bytes::Bytes;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};
use tokio::sync::watch;

use super::task::{parse_status_file, with_retries, TaskSpec, TaskStatus};
use super::Distributor;
use crate::swarm::wall_clock_ms;

/// A task as planned: its cells and the node it was given to.
#[derive(Debug, Clone)]
pub struct PlannedTask {
    pub index: usize,
    pub node_id: String,
    /// The stage over this task's cells alone, run here when the task is
    /// (re)assigned to this node. A task never runs a partition of the
    /// shared multi-group stage: DataFusion lets the partitions of one scan
    /// steal each other's files, which would read other tasks' cells.
    pub plan: Arc<dyn ExecutionPlan>,
    /// The same fragment, base64 datafusion-proto, for other nodes.
    pub fragment: String,
    pub cells: usize,
    pub bytes: u64,
    /// The cells' paths.
    pub files: Vec<String>,
}

/// One finished task, for `EXPLAIN ANALYZE`.
#[derive(Debug, Clone)]
pub struct TaskReport {
    pub stage: usize,
    pub task: usize,
    pub node_id: String,
    pub attempts: u32,
    pub cells: usize,
    pub bytes: u64,
    pub cached_cells: usize,
    pub rows: u64,
    pub elapsed_ms: f64,
}

/// Stands in for a scan stage whose tasks run across the swarm. Clones share
/// the stage's run and reports.
#[derive(Debug, Clone)]
pub struct ExchangeExec {
    /// The stage with one file group per task.
    stage: Arc<dyn ExecutionPlan>,
    tasks: Arc<Vec<PlannedTask>>,
    query_id: String,
    stage_index: usize,
    distributor: Arc<Distributor>,
    run: Arc<OnceLock<Arc<StageRun>>>,
    reports: Arc<Mutex<Vec<TaskReport>>>,
}

impl ExchangeExec {
    pub fn new(
        stage: Arc<dyn ExecutionPlan>,
        tasks: Vec<PlannedTask>,
        query_id: String,
        stage_index: usize,
        distributor: Arc<Distributor>,
    ) -> Self {
        ExchangeExec {
            stage,
            tasks: Arc::new(tasks),
            query_id,
            stage_index,
            distributor,
            run: Arc::new(OnceLock::new()),
            reports: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Tasks finished so far, in task order.
    pub fn reports(&self) -> Vec<TaskReport> {
        let mut reports = self
            .reports
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        reports.sort_by_key(|r| r.task);
        reports
    }

    /// Nodes that were assigned at least one task, with their task counts.
    fn assignment(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for task in self.tasks.iter() {
            *counts.entry(task.node_id.as_str()).or_insert(0) += 1;
        }
        counts
    }

    fn start(&self) -> Arc<StageRun> {
        self.run
            .get_or_init(|| {
                StageRun::start(
                    self.distributor.clone(),
                    self.query_id.clone(),
                    self.stage_index,
                    self.tasks.clone(),
                )
            })
            .clone()
    }

    /// Runs partition `partition` of the stage here, reporting it when done.
    fn run_here(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
        attempts: u32,
    ) -> DfResult<SendableRecordBatchStream> {
        let task = &self.tasks[partition];
        let mut report = self.report_template(partition, &self.distributor.node_id, attempts);
        report.cached_cells = super::worker::cached(self.distributor.cache.as_ref(), &task.files);
        let stream = task.plan.execute(0, context)?;
        Ok(reporting(stream, report, self.reports.clone()))
    }

    fn report_template(&self, partition: usize, node_id: &str, attempts: u32) -> TaskReport {
        let task = &self.tasks[partition];
        TaskReport {
            stage: self.stage_index,
            task: partition,
            node_id: node_id.to_string(),
            attempts,
            cells: task.cells,
            bytes: task.bytes,
            cached_cells: 0,
            rows: 0,
            elapsed_ms: 0.0,
        }
    }
}

impl DisplayAs for ExchangeExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let assignment = self
            .assignment()
            .into_iter()
            .map(|(node, n)| format!("{node}: {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "ExchangeExec: stage={}, tasks={}, assignment=[{assignment}]",
                self.stage_index,
                self.tasks.len()
            ),
            DisplayFormatType::TreeRender => {
                writeln!(f, "tasks={}", self.tasks.len())?;
                write!(f, "assignment=[{assignment}]")
            }
        }
    }
}

impl ExecutionPlan for ExchangeExec {
    fn name(&self) -> &str {
        "ExchangeExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.stage.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.stage]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
        _options: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return Err(DataFusionError::Internal(
                "ExchangeExec has exactly one child".into(),
            ));
        }
        Ok(Arc::new(ExchangeExec {
            stage: children.swap_remove(0),
            ..(*self).clone()
        }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let task = self.tasks.get(partition).ok_or_else(|| {
            DataFusionError::Internal(format!(
                "ExchangeExec has {} partitions, asked for {partition}",
                self.tasks.len()
            ))
        })?;
        if task.node_id == self.distributor.node_id {
            return self.run_here(partition, context, 1);
        }
        let run = self.start();
        let mut outcome = run.outcomes[partition].clone();
        let schema = self.schema();
        let this = self.clone();
        let batches = futures::stream::once(async move {
            let _run = run;
            let result = loop {
                if let Some(result) = outcome.borrow_and_update().clone() {
                    break result;
                }
                if outcome.changed().await.is_err() {
                    break Outcome::Failed("the stage dispatcher stopped".into());
                }
            };
            match result {
                Outcome::Remote { status, key } => {
                    let batches = this.fetch(&key, &this.schema()).await?;
                    let mut report =
                        this.report_template(partition, &status.node_id, status.attempt);
                    report.rows = status.rows;
                    report.cached_cells = status.cached_cells;
                    report.elapsed_ms = status.elapsed_ms as f64;
                    this.reports
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(report);
                    Ok(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
                }
                Outcome::Local { attempts } => this
                    .run_here(partition, context, attempts)
                    .map(|s| s.boxed()),
                Outcome::Failed(message) => Err(DataFusionError::Execution(message)),
            }
        })
        .try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

impl ExchangeExec {
    /// Reads a task's IPC result, relabelled with this exchange's schema.
    async fn fetch(&self, key: &str, schema: &SchemaRef) -> DfResult<Vec<RecordBatch>> {
        let root = &self.distributor.root;
        let path = root.key(key);
        let bytes = with_retries("task result", || root.get(&path))
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?
            .ok_or_else(|| {
                DataFusionError::Execution(format!("the result {key} vanished before it was read"))
            })?;
        decode_ipc(bytes)?
            .into_iter()
            .map(|batch| {
                RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                    .map_err(DataFusionError::from)
            })
            .collect()
    }
}

/// Decodes an Arrow IPC stream.
pub(crate) fn decode_ipc(bytes: Bytes) -> DfResult<Vec<RecordBatch>> {
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(DataFusionError::from)
}

/// Counts a local task's rows and records its report when the stream ends
/// (or is dropped early, e.g. under a LIMIT).
fn reporting(
    stream: SendableRecordBatchStream,
    template: TaskReport,
    reports: Arc<Mutex<Vec<TaskReport>>>,
) -> SendableRecordBatchStream {
    struct Recorder {
        report: TaskReport,
        started: Instant,
        reports: Arc<Mutex<Vec<TaskReport>>>,
    }
    impl Drop for Recorder {
        fn drop(&mut self) {
            self.report.elapsed_ms = self.started.elapsed().as_secs_f64() * 1000.0;
            self.reports
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(self.report.clone());
        }
    }
    let schema = stream.schema();
    let mut recorder = Recorder {
        report: template,
        started: Instant::now(),
        reports,
    };
    let counted = stream.inspect(move |batch| {
        // Borrow the whole recorder so the closure owns it (and drops it
        // when the stream ends), not just the counter.
        let recorder = &mut recorder;
        if let Ok(batch) = batch {
            recorder.report.rows += batch.num_rows() as u64;
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, counted))
}

/// How a task ended, as far as its partition is concerned.
#[derive(Debug, Clone)]
enum Outcome {
    /// The result is at `key`.
    Remote { key: String, status: TaskStatus },
    /// No other node could take it: run it here.
    Local { attempts: u32 },
    /// Every attempt failed; the message lists them.
    Failed(String),
}

/// The dispatcher of one distributed stage.
#[derive(Debug)]
pub(crate) struct StageRun {
    outcomes: Vec<watch::Receiver<Option<Outcome>>>,
    dispatcher: tokio::task::JoinHandle<()>,
    distributor: Arc<Distributor>,
    stage_dir: String,
    inbox_keys: Arc<Mutex<Vec<String>>>,
}

/// A remote task being followed.
struct Pending {
    spec: TaskSpec,
    node_id: String,
    handed_over: Instant,
    /// (node, error) of each failed attempt.
    history: Vec<(String, String)>,
    done: bool,
}

impl StageRun {
    fn start(
        distributor: Arc<Distributor>,
        query_id: String,
        stage: usize,
        tasks: Arc<Vec<PlannedTask>>,
    ) -> Arc<Self> {
        let mut senders = Vec::with_capacity(tasks.len());
        let mut outcomes = Vec::with_capacity(tasks.len());
        for _ in 0..tasks.len() {
            let (tx, rx) = watch::channel(None);
            senders.push(tx);
            outcomes.push(rx);
        }
        let inbox_keys = Arc::new(Mutex::new(Vec::new()));
        let deadline_ms = wall_clock_ms() + distributor.settings.lease.as_millis() as u64;
        let pending: Vec<Pending> = tasks
            .iter()
            .filter(|t| t.node_id != distributor.node_id)
            .map(|t| Pending {
                spec: TaskSpec {
                    query_id: query_id.clone(),
                    stage,
                    task: t.index,
                    attempt: 1,
                    coordinator: distributor.node_id.clone(),
                    fragment: t.fragment.clone(),
                    cells: t.cells,
                    bytes: t.bytes,
                    files: t.files.clone(),
                    deadline_ms,
                },
                node_id: t.node_id.clone(),
                handed_over: Instant::now(),
                history: Vec::new(),
                done: false,
            })
            .collect();
        let span = tracing::info_span!("stage", query_id = %query_id, stage);
        let dispatcher = tokio::spawn(tracing::Instrument::instrument(
            dispatch(distributor.clone(), pending, senders, inbox_keys.clone()),
            span,
        ));
        Arc::new(StageRun {
            outcomes,
            dispatcher,
            distributor,
            stage_dir: TaskSpec::stage_dir(&query_id, stage),
            inbox_keys,
        })
    }
}

impl Drop for StageRun {
    fn drop(&mut self) {
        self.dispatcher.abort();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let root = self.distributor.root.clone();
        let dir = root.key(&self.stage_dir);
        let inbox: Vec<String> =
            std::mem::take(&mut *self.inbox_keys.lock().unwrap_or_else(|p| p.into_inner()));
        handle.spawn(async move {
            for key in inbox {
                let _ = root.delete(&root.key(&key)).await;
            }
            if let Err(e) = root.delete_dir(&dir).await {
                tracing::debug!(error = %e, "cannot delete a finished stage; the sweeper will");
            }
        });
    }
}

/// Hands the tasks over and follows them until each has an outcome.
async fn dispatch(
    distributor: Arc<Distributor>,
    mut pending: Vec<Pending>,
    senders: Vec<watch::Sender<Option<Outcome>>>,
    inbox_keys: Arc<Mutex<Vec<String>>>,
) {
    let root = distributor.root.clone();
    let send = |task: usize, outcome: Outcome| {
        let _ = senders[task].send(Some(outcome));
    };
    for p in pending.iter_mut() {
        hand_over(&distributor, p, &inbox_keys, &send).await;
    }
    let Some(first) = pending.first() else {
        return;
    };
    let stage_dir = root.key(&TaskSpec::stage_dir(&first.spec.query_id, first.spec.stage));
    let mut delay = Duration::from_millis(5);
    let mut seen = std::collections::HashSet::new();
    while pending.iter().any(|p| !p.done) {
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_millis(200));
        let listing = match root.list_after(&stage_dir, None).await {
            Ok(listing) => listing,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list task statuses; retrying");
                continue;
            }
        };
        for meta in listing {
            let Some((task, attempt)) = meta.location.filename().and_then(parse_status_file) else {
                continue;
            };
            if !seen.insert((task, attempt)) {
                continue;
            }
            let Some(p) = pending.iter_mut().find(|p| p.spec.task == task && !p.done) else {
                continue;
            };
            let status = match root.get(&meta.location).await {
                Ok(Some(bytes)) => serde_json::from_slice::<TaskStatus>(&bytes).ok(),
                _ => None,
            };
            let Some(status) = status else {
                seen.remove(&(task, attempt));
                continue;
            };
            delay = Duration::from_millis(5);
            match &status.error {
                None => {
                    p.done = true;
                    tracing::debug!(task, node_id = %status.node_id, rows = status.rows, "task finished");
                    send(
                        task,
                        Outcome::Remote {
                            key: p.spec.result_key(),
                            status: status.clone(),
                        },
                    );
                }
                Some(error) if attempt == p.spec.attempt => {
                    let failure = (status.node_id.clone(), error.clone());
                    retry(&distributor, p, failure, &inbox_keys, &send).await;
                }
                Some(_) => {}
            }
        }
        // One look at the world view per round, not one per task.
        let alive = distributor.alive_nodes(Instant::now());
        for p in pending.iter_mut().filter(|p| !p.done) {
            if !alive.contains(&p.node_id) {
                let failure = (
                    p.node_id.clone(),
                    "the node stopped heartbeating".to_string(),
                );
                retry(&distributor, p, failure, &inbox_keys, &send).await;
            } else if p.handed_over.elapsed() > distributor.settings.lease {
                let failure = (
                    p.node_id.clone(),
                    format!("missed its lease of {:?}", distributor.settings.lease),
                );
                retry(&distributor, p, failure, &inbox_keys, &send).await;
            }
        }
    }
}

/// Puts a task in its assignee's inbox; a failed put is a failed attempt.
async fn hand_over(
    distributor: &Arc<Distributor>,
    p: &mut Pending,
    inbox_keys: &Arc<Mutex<Vec<String>>>,
    send: &(impl Fn(usize, Outcome) + Sync),
) {
    let root = &distributor.root;
    let key = p.spec.inbox_key(&p.node_id);
    let body = Bytes::from(serde_json::to_vec(&p.spec).unwrap_or_default());
    p.handed_over = Instant::now();
    let path = root.key(&key);
    match with_retries("task hand-over", || root.put(&path, body.clone())).await {
        Ok(()) => {
            tracing::debug!(task = p.spec.task, attempt = p.spec.attempt, node_id = %p.node_id, "task handed over");
            inbox_keys
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(key);
        }
        Err(e) => {
            let failure = (p.node_id.clone(), format!("cannot write its inbox: {e}"));
            Box::pin(retry(distributor, p, failure, inbox_keys, send)).await;
        }
    }
}

/// Records a failed attempt, then hands the task to another node, runs it
/// here when none is left, or abandons it after the last attempt.
async fn retry(
    distributor: &Arc<Distributor>,
    p: &mut Pending,
    failure: (String, String),
    inbox_keys: &Arc<Mutex<Vec<String>>>,
    send: &(impl Fn(usize, Outcome) + Sync),
) {
    tracing::warn!(task = p.spec.task, attempt = p.spec.attempt, node_id = %failure.0, error = %failure.1, "task attempt failed");
    p.history.push(failure);
    if p.history.len() as u32 >= distributor.settings.max_attempts {
        p.done = true;
        distributor.colony.abandon();
        let attempts = p
            .history
            .iter()
            .enumerate()
            .map(|(i, (node, error))| format!("attempt {} on {node}: {error}", i + 1))
            .collect::<Vec<_>>()
            .join("; ");
        send(
            p.spec.task,
            Outcome::Failed(format!(
                "task {} of stage {} was abandoned after {} attempts ({attempts})",
                p.spec.task,
                p.spec.stage,
                p.history.len()
            )),
        );
        return;
    }
    p.spec.attempt += 1;
    let tried: Vec<String> = p.history.iter().map(|(node, _)| node.clone()).collect();
    match distributor.reassign_target(&tried, Instant::now()) {
        Some(node) => {
            p.node_id = node;
            Box::pin(hand_over(distributor, p, inbox_keys, send)).await;
        }
        None => {
            p.done = true;
            send(
                p.spec.task,
                Outcome::Local {
                    attempts: p.spec.attempt,
                },
            );
        }
    }
}
