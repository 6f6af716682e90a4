//! The worker side: bees, and the inbox they take tasks from.
//!
//! Each bee is a DataFusion runtime with its own fair spill memory pool of
//! the bee's budget and its own scratch directory, so one task can neither
//! starve another of memory nor fail where it could spill. The [`Worker`]
//! lists only this node's inbox — quickly after work arrived, backing off to
//! half a second when idle — claims each task by deleting it, and runs it in
//! the next free bee.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apiary_catalog::root::StorageRoot;
use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::StreamWriter;
use base64::Engine as _;
use bytes::Bytes;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::TryStreamExt;
use object_store::ObjectStore;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tracing::Instrument;

use super::task::{with_retries, TaskSpec, TaskStatus, INBOX_DIR};
use crate::cache::{CachingStore, CellCache};
use crate::colony::Colony;
use crate::error::{EngineError, Result};
use crate::postgres;
use crate::swarm::wall_clock_ms;

/// The bees of one node.
pub struct Bees {
    runtimes: Vec<Arc<RuntimeEnv>>,
    free: Mutex<Vec<usize>>,
    permits: Arc<Semaphore>,
}

/// A bee taken for one task; returned to the hive when dropped.
pub struct Bee<'a> {
    bees: &'a Bees,
    index: usize,
    _permit: OwnedSemaphorePermit,
}

impl Bee<'_> {
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.bees.runtimes[self.index].clone()
    }
}

impl Drop for Bee<'_> {
    fn drop(&mut self) {
        self.bees
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(self.index);
    }
}

impl Bees {
    /// `count` bees of `memory_bytes` each, spilling under `scratch/bee-N`,
    /// reading cells of `root` through the node's cell cache.
    pub fn new(
        count: usize,
        memory_bytes: u64,
        scratch: &Path,
        root: &StorageRoot,
        cache: Option<&Arc<CellCache>>,
    ) -> Result<Self> {
        let mut runtimes = Vec::with_capacity(count);
        for index in 0..count.max(1) {
            let runtime = RuntimeEnvBuilder::new()
                .with_memory_pool(Arc::new(FairSpillPool::new(memory_bytes as usize)))
                .with_temp_file_path(scratch.join(format!("bee-{index}")))
                .build_arc()?;
            register_root_store(&runtime, root, cache)?;
            runtimes.push(runtime);
        }
        let count = runtimes.len();
        Ok(Bees {
            runtimes,
            free: Mutex::new((0..count).rev().collect()),
            permits: Arc::new(Semaphore::new(count)),
        })
    }

    /// Waits for a free bee.
    pub async fn acquire(&self) -> Result<Bee<'_>> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| EngineError::InvalidArgument("the node is shutting down".into()))?;
        let index = self
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop()
            .unwrap_or(0);
        Ok(Bee {
            bees: self,
            index,
            _permit: permit,
        })
    }
}

/// Lets `runtime` read cells of `root` (local files need nothing), through
/// the node's cell cache when it has one.
pub fn register_root_store(
    runtime: &RuntimeEnv,
    root: &StorageRoot,
    cache: Option<&Arc<CellCache>>,
) -> Result<()> {
    if let Some(store) = root.remote_store() {
        let store: Arc<dyn ObjectStore> = match cache {
            Some(cache) => Arc::new(CachingStore::new(store, cache.clone())),
            None => store,
        };
        let url = root.url();
        let base = ObjectStoreUrl::parse(format!(
            "{}://{}",
            url.scheme(),
            url.host_str().unwrap_or("")
        ))?;
        runtime.register_object_store(base.as_ref(), store);
    }
    Ok(())
}

/// What a worker needs to run tasks.
pub struct WorkerContext {
    pub node_id: String,
    pub root: StorageRoot,
    pub bees: Bees,
    pub colony: Arc<Colony>,
    pub cache: Option<Arc<CellCache>>,
}

/// Polls this node's inbox and runs the tasks it finds.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    pub fn start(context: Arc<WorkerContext>) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(poll_inbox(context, stopped));
        Worker { stop, task }
    }

    /// Stops taking tasks and waits (up to `drain`) for running ones.
    pub async fn stop(self, drain: Duration) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(drain, &mut task).await.is_err() {
            tracing::warn!(
                "tasks still running after {drain:?}; abandoning them to their coordinators"
            );
            task.abort();
        }
    }
}

async fn poll_inbox(context: Arc<WorkerContext>, mut stopped: watch::Receiver<bool>) {
    let inbox = context
        .root
        .key(&format!("{INBOX_DIR}/{}", context.node_id));
    let mut running = JoinSet::new();
    let mut unclaimed = std::collections::HashSet::new();
    let mut delay = Duration::from_millis(10);
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            _ = tokio::time::sleep(delay) => {}
        }
        while running.try_join_next().is_some() {}
        let listing = match context.root.list_after(&inbox, None).await {
            Ok(listing) => listing,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the inbox");
                delay = Duration::from_millis(500);
                continue;
            }
        };
        if listing.is_empty() {
            delay = (delay * 3 / 2).min(Duration::from_millis(500));
            continue;
        }
        delay = Duration::from_millis(10);
        unclaimed.retain(|key| listing.iter().any(|meta| &meta.location == key));
        for meta in listing {
            // A task this worker already runs, whose claim failed: only the
            // delete is left to do.
            if unclaimed.contains(&meta.location) {
                if context.root.delete(&meta.location).await.is_ok() {
                    unclaimed.remove(&meta.location);
                }
                continue;
            }
            let Ok(Some(bytes)) = context.root.get(&meta.location).await else {
                continue;
            };
            // Claim it: nobody else lists this inbox, so deleting is enough.
            // A failed delete may have taken effect (a lost reply) and may
            // not: run the task either way, and delete it again later.
            if let Err(e) = context.root.delete(&meta.location).await {
                tracing::debug!(error = %e, "claiming a task failed; running it and claiming again later");
                unclaimed.insert(meta.location.clone());
            }
            let Ok(spec) = serde_json::from_slice::<TaskSpec>(&bytes) else {
                tracing::warn!(key = %meta.location, "skipping an unreadable task");
                continue;
            };
            if spec.deadline_ms < wall_clock_ms() {
                tracing::debug!(query_id = %spec.query_id, task = spec.task, "skipping an expired task");
                continue;
            }
            let span = tracing::info_span!(
                "task",
                query_id = %spec.query_id,
                stage = spec.stage,
                task = spec.task,
                attempt = spec.attempt
            );
            running.spawn(run_task(context.clone(), spec).instrument(span));
        }
    }
    while running.join_next().await.is_some() {}
}

/// Counts a task as running on the colony for as long as it lives.
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn run_task(context: Arc<WorkerContext>, spec: TaskSpec) {
    let running = context.colony.running().clone();
    running.fetch_add(1, Ordering::SeqCst);
    let _busy = Busy(running);
    let started = Instant::now();
    let cached_cells = cached(context.cache.as_ref(), &spec.files);
    let budget = Duration::from_millis(spec.deadline_ms.saturating_sub(wall_clock_ms()));
    let outcome = tokio::time::timeout(budget, execute(&context, &spec)).await;
    let outcome = match outcome {
        Ok(result) => result,
        Err(_) => Err(EngineError::Timeout(format!(
            "task {} of query {} ran past its deadline",
            spec.task, spec.query_id
        ))),
    };
    let (rows, result_bytes, error) = match outcome {
        Ok((rows, bytes)) => (rows, bytes, None),
        Err(e) => (0, 0, Some(e.to_string())),
    };
    match &error {
        None => tracing::debug!(
            rows,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "task done"
        ),
        Some(e) => tracing::warn!(error = %e, "task failed"),
    }
    let status = TaskStatus {
        node_id: context.node_id.clone(),
        attempt: spec.attempt,
        error,
        rows,
        result_bytes,
        cached_cells,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    let key = context.root.key(&spec.status_key());
    let body = Bytes::from(serde_json::to_vec(&status).unwrap_or_default());
    let reported = with_retries("task status", || context.root.put(&key, body.clone())).await;
    if let Err(e) = reported {
        tracing::warn!(error = %e, "cannot report a task; its coordinator will reassign it");
    }
}

/// How many of `files` the cache holds.
pub(crate) fn cached(cache: Option<&Arc<CellCache>>, files: &[String]) -> usize {
    cache.map_or(0, |cache| {
        files
            .iter()
            .filter(|f| cache.contains(&object_store::path::Path::from(f.as_str())))
            .count()
    })
}

/// Runs the fragment in a bee and stores its result; returns rows and bytes.
async fn execute(context: &WorkerContext, spec: &TaskSpec) -> Result<(u64, u64)> {
    let fragment = base64::engine::general_purpose::STANDARD
        .decode(&spec.fragment)
        .map_err(|e| {
            EngineError::InvalidArgument(format!("the task's fragment is not base64: {e}"))
        })?;
    let bee = context.bees.acquire().await?;
    let mut state = SessionStateBuilder::new()
        .with_config(SessionConfig::new().with_target_partitions(1))
        .with_runtime_env(bee.runtime())
        .with_default_features()
        .build();
    // A fragment's expressions may call the Postgres functions a session has.
    postgres::register_functions(&mut state)?;
    let task_ctx = SessionContext::new_with_state(state).task_ctx();
    let plan = datafusion_proto::bytes::physical_plan_from_bytes(&fragment, &task_ctx)?;
    let plan = crate::constant_keys::rewrite(plan)?;
    let schema = plan.schema();
    let batches: Vec<RecordBatch> = plan.execute(0, task_ctx)?.try_collect().await?;
    drop(bee);
    let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
    let ipc = encode_ipc(&schema, &batches)?;
    let size = ipc.len() as u64;
    // A second attempt finding a result already there is fine: both are the
    // same fragment over the same immutable cells.
    let key = context.root.key(&spec.result_key());
    with_retries("task result", || {
        context.root.put_if_absent(&key, ipc.clone())
    })
    .await?;
    Ok((rows, size))
}

fn encode_ipc(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<Bytes> {
    let mut buffer = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut buffer, schema)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
    }
    Ok(Bytes::from(buffer))
}
