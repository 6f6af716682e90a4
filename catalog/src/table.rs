//! A frame as a DataFusion table that can also be written: SQL `INSERT`,
//! `DELETE` and `UPDATE` arrive through DataFusion's DML hooks
//! (`insert_into`, `delete_from`, `update`) and go through the same validated
//! commit path as the SDK's writes.
//!
//! Reads are delegated to the frame's read provider ([`crate::scan::CellScan`]
//! or delta-rs's). An `INSERT` gathers its rows and commits them once
//! ([`Frames::write`]); `DELETE` and `UPDATE` run delta-rs's operations, which
//! rewrite the affected cells in one Delta commit. A failed statement commits
//! nothing.

use std::sync::Arc;

use arrow::array::{RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::Column;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::SessionState;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{cast, lit, when};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan};
use datafusion::prelude::SessionContext;
use deltalake::kernel::transaction::CommitProperties;
use deltalake::logstore::LogStoreRef;
use deltalake::{DeltaTable, DeltaTableError};
use futures::TryStreamExt;

use crate::commit::{self, WriteKey};
use crate::error::Error;
use crate::frame::{arrow_schema, conforming, FrameName, Frames, WriteMode, WriteOptions};
use crate::registry::FrameDef;
use crate::scan::live_files;
use crate::transaction::{Change, Staged, Transaction};

/// A frame at its newest version, readable and writable from SQL.
#[derive(Debug)]
pub struct FrameTable {
    frames: Frames,
    name: FrameName,
    def: FrameDef,
    read: Arc<dyn TableProvider>,
    /// The session's transaction block: writes inside one are staged.
    txn: Transaction,
}

impl FrameTable {
    pub fn new(
        frames: Frames,
        name: FrameName,
        def: FrameDef,
        read: Arc<dyn TableProvider>,
        txn: Transaction,
    ) -> Self {
        FrameTable {
            frames,
            name,
            def,
            read,
            txn,
        }
    }

    /// `DELETE` (no `assignments`) or `UPDATE` inside a transaction block:
    /// every cell the block sees that holds a row matching `filters` is
    /// rewritten without those rows, or with them changed, as staged cells
    /// that replace it. Returns the number of matching rows.
    async fn stage_rewrite(
        &self,
        state: &dyn Session,
        mut staged: Staged,
        filters: Vec<Expr>,
        assignments: Option<Vec<(String, Expr)>>,
    ) -> DfResult<u64> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                DataFusionError::Internal("a DELETE/UPDATE needs a SessionState".into())
            })?;
        let ctx = SessionContext::new_with_state(state.clone());
        let predicate = conjunction(filters.into_iter().map(unqualified)).unwrap_or(lit(true));
        let matches = predicate.clone().is_true();
        let change = match assignments {
            Some(_) => Change::Update,
            None => Change::Delete,
        };
        let target = arrow_schema(&self.def).map_err(external)?;
        let columns = target
            .fields()
            .iter()
            .map(|field| {
                let current = Expr::Column(Column::new_unqualified(field.name()));
                let assigned = assignments
                    .iter()
                    .flatten()
                    .find(|(column, _)| column == field.name());
                let value = match assigned {
                    Some((_, value)) => {
                        when(matches.clone(), unqualified(value.clone())).otherwise(current)?
                    }
                    None => current,
                };
                Ok(cast(value, field.data_type().clone()).alias(field.name()))
            })
            .collect::<DfResult<Vec<_>>>()?;
        let live = live_files(&staged.table)
            .map_err(|e| external(Error::delta(self.name.to_string(), e)))?
            .unwrap_or_default();
        let mut count = 0;
        for file in staged.view(live) {
            let scan = self
                .frames
                .cell_scan(&self.name, &self.def, std::slice::from_ref(&file))
                .map_err(external)?;
            let cell = ctx.read_table(Arc::new(scan))?;
            let matched = cell.clone().filter(matches.clone())?.count().await? as u64;
            if matched == 0 {
                continue;
            }
            count += matched;
            let kept = match change {
                Change::Delete => cell.filter(predicate.clone().is_not_true())?,
                _ => cell,
            };
            let rows = kept
                .select(columns.clone())?
                .execute_stream()
                .await?
                .map_err(|e| Error::Query(Box::new(e)));
            let (adds, _) = self
                .frames
                .write_cells(
                    &self.name,
                    &staged.table,
                    conforming(Box::pin(rows), &self.def, &WriteOptions::default())
                        .map_err(external)?,
                )
                .await
                .map_err(external)?;
            staged.replace(&file, adds, change);
        }
        self.txn.stage(staged).map_err(external)?;
        Ok(count)
    }

    /// The open block's staged state for this frame (`None` outside a block).
    async fn staging(&self) -> DfResult<Option<Staged>> {
        self.frames
            .staging(&self.txn, &self.name, &self.def)
            .await
            .map_err(external)
    }

    /// The filters as one SQL predicate for delta-rs, which plans it against
    /// the table's own schema.
    /// The statement's filters for delta-rs, as an expression (not SQL
    /// text: Apiary's own functions, such as the overflow-checked `+` of
    /// PostgreSQL semantics, have no SQL name delta-rs knows).
    fn predicate(&self, filters: Vec<Expr>) -> DfResult<Option<Expr>> {
        Ok(conjunction(filters).map(|expr| unqualified(strip_casts(expr))))
    }
}

#[async_trait]
impl TableProvider for FrameTable {
    fn schema(&self) -> SchemaRef {
        self.read.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        self.read.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.read.scan(state, projection, filters, limit).await
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mode = match insert_op {
            InsertOp::Append => WriteMode::Append,
            InsertOp::Overwrite => WriteMode::Overwrite,
            InsertOp::Replace => {
                return Err(DataFusionError::NotImplemented(
                    "REPLACE INTO is not supported; use INSERT, or DELETE then INSERT".into(),
                ))
            }
        };
        let sink = FrameSink {
            txn: self.txn.clone(),
            frames: self.frames.clone(),
            name: self.name.clone(),
            def: self.def.clone(),
            schema: self.schema(),
            mode,
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }

    async fn delete_from(
        &self,
        state: &dyn Session,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        if let Some(staged) = self.staging().await? {
            let count = self.stage_rewrite(state, staged, filters, None).await?;
            return count_plan(count);
        }
        let predicate = self.predicate(filters)?;
        let deleted = self.frames.rewriting(&self.name, async {
            let table = self.frames.open(&self.name).await.map_err(external)?;
            let tag = Tag::new(&table);
            let mut op = table.delete().with_commit_properties(tag.properties());
            if let Some(predicate) = predicate {
                op = op.with_predicate(predicate);
            }
            match op.await {
                Ok((_, metrics)) => Ok(metrics.num_deleted_rows.unwrap_or(0) as u64),
                Err(e) => tag.confirm(&self.name, e, "num_deleted_rows").await,
            }
        });
        count_plan(deleted.await.map_err(external)??)
    }

    async fn update(
        &self,
        state: &dyn Session,
        assignments: Vec<(String, Expr)>,
        filters: Vec<Expr>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        for (column, _) in &assignments {
            if self.def.partition_by.contains(column) {
                return Err(external(Error::mismatch(
                    column,
                    "is a partition column and cannot be updated; DELETE the rows and INSERT them with the new value",
                )));
            }
        }
        if let Some(staged) = self.staging().await? {
            let count = self
                .stage_rewrite(state, staged, filters, Some(assignments))
                .await?;
            return count_plan(count);
        }
        let predicate = self.predicate(filters)?;
        let updates: Vec<(String, Expr)> = assignments
            .into_iter()
            .map(|(column, value)| (column, unqualified(strip_casts(value))))
            .collect();
        let updated = self.frames.rewriting(&self.name, async {
            let table = self.frames.open(&self.name).await.map_err(external)?;
            let tag = Tag::new(&table);
            let mut op = table.update().with_commit_properties(tag.properties());
            for (column, value) in updates {
                op = op.with_update(column, value);
            }
            if let Some(predicate) = predicate {
                op = op.with_predicate(predicate);
            }
            match op.await {
                Ok((_, metrics)) => Ok(metrics.num_updated_rows as u64),
                Err(e) => tag.confirm(&self.name, e, "num_updated_rows").await,
            }
        });
        count_plan(updated.await.map_err(external)??)
    }
}

/// `expr` with its columns unqualified, to be planned against a single
/// cell's scan rather than the statement's table reference.
fn unqualified(expr: Expr) -> Expr {
    rewrite(expr, |e| match e {
        Expr::Column(c) if c.relation.is_some() => {
            Transformed::yes(Expr::Column(Column::new_unqualified(c.name)))
        }
        other => Transformed::no(other),
    })
}

/// Rewrites every node of `expr` with `f`, which cannot fail (so neither
/// can the walk; its error arm only satisfies the signature).
fn rewrite(expr: Expr, mut f: impl FnMut(Expr) -> Transformed<Expr>) -> Expr {
    use datafusion::common::tree_node::TreeNode;
    expr.transform(|e| Ok(f(e)))
        .map(|t| t.data)
        .unwrap_or_else(|e| {
            Expr::Literal(
                datafusion::scalar::ScalarValue::Utf8(Some(e.to_string())),
                None,
            )
        })
}

/// Removes the casts DataFusion adds to match Apiary's read types
/// (dictionary-encoded partition values, view strings); delta-rs applies its
/// own coercion against the stored types.
fn strip_casts(expr: Expr) -> Expr {
    rewrite(expr, |e| match e {
        Expr::Cast(cast)
            if matches!(
                cast.field.data_type(),
                DataType::Dictionary(_, _) | DataType::Utf8View | DataType::BinaryView
            ) =>
        {
            Transformed::yes(*cast.expr)
        }
        other => Transformed::no(other),
    })
}

/// The key and writer id of a `DELETE` or `UPDATE` commit that delta-rs
/// makes, so that an error from it can be checked against the log: a lost
/// reply must not report a change that stands as failed.
pub(crate) struct Tag {
    key: WriteKey,
    writer: String,
    log_store: LogStoreRef,
    read_version: u64,
}

impl Tag {
    pub(crate) fn new(table: &DeltaTable) -> Self {
        Tag {
            key: WriteKey::generated(),
            writer: uuid::Uuid::new_v4().to_string(),
            log_store: table.log_store(),
            read_version: table.version().unwrap_or(0),
        }
    }

    /// The same tag naming `writer` (`DESCRIBE HISTORY`'s writer) instead
    /// of a fresh id.
    pub(crate) fn written_by(mut self, writer: &str) -> Self {
        self.writer = writer.to_string();
        self
    }

    pub(crate) fn properties(&self) -> CommitProperties {
        commit::tagged(&self.key, &self.writer)
    }

    /// After the operation failed with `e`: the rows it changed (its
    /// `metric` in the commit) if its commit stands after all, else `e`.
    async fn confirm(&self, frame: &FrameName, e: DeltaTableError, metric: &str) -> DfResult<u64> {
        let counts = self.confirm_counts(frame, e, &[metric]).await;
        counts.map(|c| c[0]).map_err(external)
    }

    /// [`Tag::confirm`] for several metrics at once.
    pub(crate) async fn confirm_counts(
        &self,
        frame: &FrameName,
        e: DeltaTableError,
        metrics: &[&str],
    ) -> Result<Vec<u64>, Error> {
        if commit::is_final(&e) {
            return Err(Error::delta(frame.to_string(), e));
        }
        match commit::confirm(self.log_store.as_ref(), self.read_version, &self.key).await {
            Ok(Some(landed)) => Ok(metrics
                .iter()
                .map(|metric| {
                    let count = &landed.info["operationMetrics"][metric];
                    count
                        .as_u64()
                        .or_else(|| count.as_str().and_then(|c| c.parse().ok()))
                        .unwrap_or(0)
                })
                .collect()),
            Ok(None) => Err(Error::delta(frame.to_string(), e)),
            Err(check) => Err(Error::CommitUnknown {
                frame: frame.to_string(),
                key: self.key.as_str().to_string(),
                detail: format!("{e}; then {check}"),
            }),
        }
    }
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// A one-row `count` result, the shape DataFusion's DML statements return.
fn count_plan(count: u64) -> DfResult<Arc<dyn ExecutionPlan>> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "count",
        DataType::UInt64,
        false,
    )]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(UInt64Array::from(vec![count]))],
    )?;
    Ok(MemorySourceConfig::try_new_exec(
        &[vec![batch]],
        schema,
        None,
    )?)
}

/// Gathers an `INSERT`'s rows and commits them as one write.
#[derive(Debug)]
struct FrameSink {
    txn: Transaction,
    frames: Frames,
    name: FrameName,
    def: FrameDef,
    schema: SchemaRef,
    mode: WriteMode,
}

impl DisplayAs for FrameSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "FrameSink: frame={} mode={:?}", self.name, self.mode)
    }
}

#[async_trait]
impl DataSink for FrameSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: datafusion::execution::SendableRecordBatchStream,
        _context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        if self.txn.is_open() {
            let rows = data.map_err(|e| Error::Query(Box::new(e)));
            let staged = self
                .frames
                .stage_write(
                    &self.txn,
                    &self.name,
                    &self.def,
                    Box::pin(rows),
                    self.mode,
                    WriteOptions::default(),
                )
                .await
                .map_err(external)?;
            if let Some(written) = staged {
                return Ok(written.rows_written);
            }
            return Err(external(Error::NoTransaction));
        }
        let batches: Vec<RecordBatch> = data.try_collect().await?;
        let written = self
            .frames
            .write(
                &self.name,
                &self.def,
                &batches,
                self.mode,
                WriteOptions::default(),
            )
            .await
            .map_err(external)?;
        Ok(written.rows_written)
    }
}
