//! What each connection of this node is doing, as `pg_stat_activity` shows
//! it: monitoring tools (pgAdmin's dashboard, Grafana, `psql`) list the
//! running queries there, then call `pg_cancel_backend(pid)` or
//! `pg_terminate_backend(pid)` on one (see [`crate::cancel::Cancels`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{
    ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::{DateTime, Utc};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;

use crate::cancel::Cancels;

/// One connection: who it is, and its current or last statement.
#[derive(Debug)]
pub struct Activity {
    pub pid: i32,
    user: String,
    database: String,
    application_name: String,
    client: SocketAddr,
    backend_start: DateTime<Utc>,
    state: Mutex<State>,
    /// Statements (and their streaming results) still running.
    running: AtomicUsize,
    in_block: AtomicBool,
    terminated: AtomicBool,
}

#[derive(Debug, Default, Clone)]
struct State {
    query: String,
    query_start: Option<DateTime<Utc>>,
    state_change: Option<DateTime<Utc>>,
    xact_start: Option<DateTime<Utc>>,
}

impl Activity {
    pub fn new(
        pid: i32,
        user: &str,
        database: &str,
        application_name: &str,
        client: SocketAddr,
    ) -> Self {
        Activity {
            pid,
            user: user.to_string(),
            database: database.to_string(),
            application_name: application_name.to_string(),
            client,
            backend_start: Utc::now(),
            state: Mutex::default(),
            running: AtomicUsize::new(0),
            in_block: AtomicBool::new(false),
            terminated: AtomicBool::new(false),
        }
    }

    /// The state is only ever overwritten whole, so a lock poisoned by a
    /// panic elsewhere still holds usable values.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Marks `query` as running until the returned guard (and every clone
    /// of it) is dropped.
    pub fn start(self: &Arc<Self>, query: &str) -> Busy {
        let now = Utc::now();
        let mut state = self.state();
        state.query = query.to_string();
        state.query_start = Some(now);
        state.state_change = Some(now);
        Busy::new(self.clone())
    }

    /// Keeps the connection `active` while the returned guard lives (a
    /// result still streaming after its statement returned).
    pub fn busy(self: &Arc<Self>) -> Busy {
        Busy::new(self.clone())
    }

    /// Whether the connection is inside a transaction block, for the next
    /// `idle in transaction` state.
    pub fn set_in_block(&self, in_block: bool) {
        let mut state = self.state();
        match (in_block, state.xact_start) {
            (true, None) => state.xact_start = state.query_start,
            (false, _) => state.xact_start = None,
            _ => {}
        }
        self.in_block.store(in_block, Ordering::Relaxed);
    }

    /// `pg_terminate_backend` asked this connection to end.
    pub fn terminate(&self) {
        self.terminated.store(true, Ordering::Relaxed);
    }

    pub fn is_terminated(&self) -> bool {
        self.terminated.load(Ordering::Relaxed)
    }

    fn state_name(&self) -> &'static str {
        if self.running.load(Ordering::Relaxed) > 0 {
            "active"
        } else if self.in_block.load(Ordering::Relaxed) {
            "idle in transaction"
        } else {
            "idle"
        }
    }
}

/// A running statement; the connection is `active` while one lives.
#[derive(Debug)]
pub struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.running.fetch_add(1, Ordering::Relaxed);
        Busy(activity)
    }
}

impl Clone for Busy {
    fn clone(&self) -> Self {
        Busy::new(self.0.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.state().state_change = Some(Utc::now());
        }
    }
}

/// `pg_stat_activity`: one row per connection of this node, read when a
/// query scans it.
#[derive(Debug)]
pub struct StatActivity {
    schema: SchemaRef,
    cancels: Arc<Cancels>,
}

impl StatActivity {
    pub fn new(cancels: Arc<Cancels>) -> Self {
        let time = || DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let text = |name: &str| Field::new(name, DataType::Utf8, true);
        let schema = Schema::new(vec![
            Field::new("datid", DataType::Int32, true),
            text("datname"),
            Field::new("pid", DataType::Int32, true),
            Field::new("leader_pid", DataType::Int32, true),
            Field::new("usesysid", DataType::Int32, true),
            text("usename"),
            text("application_name"),
            text("client_addr"),
            text("client_hostname"),
            Field::new("client_port", DataType::Int32, true),
            Field::new("backend_start", time(), true),
            Field::new("xact_start", time(), true),
            Field::new("query_start", time(), true),
            Field::new("state_change", time(), true),
            text("wait_event_type"),
            text("wait_event"),
            text("state"),
            text("backend_xid"),
            text("backend_xmin"),
            Field::new("query_id", DataType::Int64, true),
            text("query"),
            text("backend_type"),
        ]);
        StatActivity {
            schema: Arc::new(schema),
            cancels,
        }
    }

    fn batch(&self) -> datafusion::error::Result<RecordBatch> {
        // A terminated connection ends at its next message; it is gone
        // for every purpose already, as a terminated Postgres backend is.
        let mut rows = self.cancels.activities();
        rows.retain(|a| !a.is_terminated());
        rows.sort_by_key(|a| a.pid);
        let n = rows.len();
        let states: Vec<_> = rows
            .iter()
            .map(|a| (a.state_name(), a.state().clone()))
            .collect();
        let text = |f: &dyn Fn(&Activity) -> Option<String>| -> ArrayRef {
            Arc::new(rows.iter().map(|a| f(a)).collect::<StringArray>())
        };
        let time = |values: Vec<Option<DateTime<Utc>>>| -> ArrayRef {
            Arc::new(
                TimestampMicrosecondArray::from(
                    values
                        .into_iter()
                        .map(|t| t.map(|t| t.timestamp_micros()))
                        .collect::<Vec<_>>(),
                )
                .with_timezone("UTC"),
            )
        };
        let nulls_i32 = || -> ArrayRef { Arc::new(Int32Array::from(vec![None; n])) };
        let columns: Vec<ArrayRef> = vec![
            nulls_i32(),
            text(&|a| Some(a.database.clone())),
            Arc::new(rows.iter().map(|a| Some(a.pid)).collect::<Int32Array>()),
            nulls_i32(),
            Arc::new(Int32Array::from(vec![Some(10); n])),
            text(&|a| Some(a.user.clone())),
            text(&|a| Some(a.application_name.clone())),
            text(&|a| Some(a.client.ip().to_string())),
            text(&|_| None),
            Arc::new(
                rows.iter()
                    .map(|a| Some(i32::from(a.client.port())))
                    .collect::<Int32Array>(),
            ),
            time(rows.iter().map(|a| Some(a.backend_start)).collect()),
            time(states.iter().map(|(_, s)| s.xact_start).collect()),
            time(states.iter().map(|(_, s)| s.query_start).collect()),
            time(states.iter().map(|(_, s)| s.state_change).collect()),
            text(&|_| None),
            text(&|_| None),
            Arc::new(
                states
                    .iter()
                    .map(|(state, _)| Some(*state))
                    .collect::<StringArray>(),
            ),
            text(&|_| None),
            text(&|_| None),
            Arc::new(arrow::array::Int64Array::from(vec![None; n])),
            Arc::new(
                states
                    .iter()
                    .map(|(_, s)| Some(s.query.clone()))
                    .collect::<StringArray>(),
            ),
            text(&|_| Some("client backend".to_string())),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl PartitionStream for StatActivity {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        one_batch(&self.schema, self.batch())
    }
}

/// `pg_stat_gssapi`: one row per connection; none uses GSSAPI (pgAdmin
/// reads its own row on connect).
#[derive(Debug)]
pub struct StatGssapi {
    schema: SchemaRef,
    cancels: Arc<Cancels>,
}

impl StatGssapi {
    pub fn new(cancels: Arc<Cancels>) -> Self {
        let flag = |name: &str| Field::new(name, DataType::Boolean, false);
        let schema = Schema::new(vec![
            Field::new("pid", DataType::Int32, true),
            flag("gss_authenticated"),
            Field::new("principal", DataType::Utf8, true),
            flag("encrypted"),
            flag("credentials_delegated"),
        ]);
        StatGssapi {
            schema: Arc::new(schema),
            cancels,
        }
    }

    fn batch(&self) -> datafusion::error::Result<RecordBatch> {
        let mut pids: Vec<i32> = self
            .cancels
            .activities()
            .iter()
            .filter(|a| !a.is_terminated())
            .map(|a| a.pid)
            .collect();
        pids.sort_unstable();
        let no = || -> ArrayRef { Arc::new(BooleanArray::from(vec![false; pids.len()])) };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int32Array::from(pids.clone())),
            no(),
            Arc::new(StringArray::from(vec![None::<&str>; pids.len()])),
            no(),
            no(),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl PartitionStream for StatGssapi {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        one_batch(&self.schema, self.batch())
    }
}

/// A catalog view's rows, computed when it is scanned, as one batch.
pub fn one_batch(
    schema: &SchemaRef,
    batch: datafusion::error::Result<RecordBatch>,
) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema.clone(),
        futures::stream::once(async move { batch }),
    ))
}
