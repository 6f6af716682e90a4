//! `EXPLAIN ANALYZE` for Apiary: who scanned what.
//!
//! After a query ran, its plan holds an [`ExchangeExec`] per distributed
//! stage (with a report per task) and plain scans for stages that ran here.
//! [`analyze_table`] turns them into one row per task, a total row, and the
//! coordination overhead — the wall time beyond the slowest task, i.e. what
//! handing work over through the bucket cost.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;

use super::exchange::{ExchangeExec, TaskReport};
use crate::error::Result;

/// One row of the table before it becomes Arrow.
struct Row {
    task: String,
    node: Option<String>,
    attempts: Option<u32>,
    cells: Option<u64>,
    bytes: Option<u64>,
    cached: Option<u64>,
    rows: Option<u64>,
    time_ms: f64,
}

/// Collects the task reports of `plan` (already run) into a table.
pub fn analyze_table(
    plan: &Arc<dyn ExecutionPlan>,
    node_id: &str,
    result_rows: u64,
    wall_ms: f64,
) -> Result<RecordBatch> {
    let mut reports = Vec::new();
    let mut local = Vec::new();
    collect(plan, node_id, wall_ms, &mut reports, &mut local);
    let mut rows: Vec<Row> = reports.iter().map(task_row).collect();
    rows.extend(local);
    let nodes: BTreeSet<&str> = rows.iter().filter_map(|r| r.node.as_deref()).collect();
    let sum = |f: fn(&Row) -> Option<u64>| Some(rows.iter().filter_map(f).sum::<u64>());
    let slowest = rows.iter().map(|r| r.time_ms).fold(0.0, f64::max);
    let total = Row {
        task: "total".into(),
        node: Some(format!("{} node(s)", nodes.len())),
        attempts: Some(rows.iter().filter_map(|r| r.attempts).sum()),
        cells: sum(|r| r.cells),
        bytes: sum(|r| r.bytes),
        cached: sum(|r| r.cached),
        rows: Some(result_rows),
        time_ms: wall_ms,
    };
    let overhead = Row {
        task: "coordination overhead".into(),
        node: Some(node_id.to_string()),
        attempts: None,
        cells: None,
        bytes: None,
        cached: None,
        rows: None,
        time_ms: (wall_ms - slowest).max(0.0),
    };
    rows.push(total);
    rows.push(overhead);
    to_batch(&rows)
}

fn collect(
    plan: &Arc<dyn ExecutionPlan>,
    node_id: &str,
    wall_ms: f64,
    reports: &mut Vec<TaskReport>,
    local: &mut Vec<Row>,
) {
    if let Some(exchange) = plan.downcast_ref::<ExchangeExec>() {
        reports.extend(exchange.reports());
        return;
    }
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        if let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>() {
            let files: BTreeSet<(&str, u64)> = config
                .file_groups
                .iter()
                .flat_map(|g| g.iter())
                .map(|f| (f.object_meta.location.as_ref(), f.object_meta.size))
                .collect();
            local.push(Row {
                task: "local scan".into(),
                node: Some(node_id.to_string()),
                attempts: Some(1),
                cells: Some(files.len() as u64),
                bytes: Some(files.iter().map(|(_, size)| size).sum()),
                cached: Some(0),
                rows: plan
                    .metrics()
                    .and_then(|m| m.output_rows())
                    .map(|r| r as u64),
                time_ms: wall_ms,
            });
        }
        return;
    }
    for child in plan.children() {
        collect(child, node_id, wall_ms, reports, local);
    }
}

fn task_row(report: &TaskReport) -> Row {
    Row {
        task: format!("s{}.t{}", report.stage, report.task),
        node: Some(report.node_id.clone()),
        attempts: Some(report.attempts),
        cells: Some(report.cells as u64),
        bytes: Some(report.bytes),
        cached: Some(report.cached_cells as u64),
        rows: Some(report.rows),
        time_ms: report.elapsed_ms,
    }
}

fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("task", DataType::Utf8, false),
        Field::new("node", DataType::Utf8, true),
        Field::new("attempts", DataType::UInt32, true),
        Field::new("cells", DataType::UInt64, true),
        Field::new("bytes", DataType::UInt64, true),
        Field::new("cached_cells", DataType::UInt64, true),
        Field::new("fetched_cells", DataType::UInt64, true),
        Field::new("rows", DataType::UInt64, true),
        Field::new("time_ms", DataType::Float64, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.task))),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.node.as_deref()),
        )),
        Arc::new(UInt32Array::from_iter(rows.iter().map(|r| r.attempts))),
        Arc::new(UInt64Array::from_iter(rows.iter().map(|r| r.cells))),
        Arc::new(UInt64Array::from_iter(rows.iter().map(|r| r.bytes))),
        Arc::new(UInt64Array::from_iter(rows.iter().map(|r| r.cached))),
        Arc::new(UInt64Array::from_iter(rows.iter().map(|r| {
            r.cells.zip(r.cached).map(|(c, h)| c.saturating_sub(h))
        }))),
        Arc::new(UInt64Array::from_iter(rows.iter().map(|r| r.rows))),
        Arc::new(Float64Array::from_iter_values(
            rows.iter().map(|r| r.time_ms),
        )),
    ];
    Ok(RecordBatch::try_new(schema, columns)?)
}
