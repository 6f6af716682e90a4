//! `OPTIMIZE`, `VACUUM`, `DESCRIBE HISTORY` and `RESTORE`: a frame's upkeep as SQL,
//! answered with one result set each, as Delta's SQL engines answer them.
//! They commit on their own, like PostgreSQL's VACUUM, so they are refused
//! inside a transaction block (25001).

use std::sync::Arc;
use std::time::Duration;

use apiary_catalog::maintenance::DEFAULT_RETENTION;
use apiary_catalog::time_travel::AsOf;
use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::error::{EngineError, Result};
use crate::postgres::sql_error;
use crate::session::{QueryResult, Session};

/// Turns the retention check off for `VACUUM … RETAIN n HOURS` shorter than
/// the frame's retention, as Delta's `retentionDurationCheck.enabled` does.
pub const RETENTION_CHECK_ENV: &str = "APIARY_VACUUM_RETENTION_CHECK";

/// Compacts the frame's small cells; one row: files and bytes removed and
/// added, and the version.
pub(crate) async fn optimize(
    session: &Session,
    frame: &[String],
    filters: &[(String, String, String)],
    zorder: &[String],
) -> Result<QueryResult> {
    outside_a_block(session, "OPTIMIZE")?;
    let (name, def) = session.frame_by_parts(frame).await?;
    // Without ZORDER BY, the frame's indexes (its clustering key) say.
    let zorder = match zorder.is_empty() {
        true => &def.clustering_key()[..],
        false => zorder,
    };
    if let Some(unknown) = zorder
        .iter()
        .find(|c| !def.columns.iter().any(|d| &d.name == *c))
    {
        return Err(EngineError::InvalidArgument(format!(
            "ZORDER BY names {unknown:?}, which is not a column of {name}"
        )));
    }
    if let Some((column, _, _)) = filters
        .iter()
        .find(|(column, _, _)| !def.partition_by.contains(column))
    {
        return Err(EngineError::InvalidArgument(format!(
            "OPTIMIZE … WHERE selects partitions, and {column:?} is not a partition column of \
             {name} (its partition columns: {})",
            match def.partition_by.is_empty() {
                true => "none".to_string(),
                false => def.partition_by.join(", "),
            }
        )));
    }
    let done = session
        .catalog()
        .frames()
        .optimize(&name, filters, zorder, None)
        .await?;
    counts(&[
        ("files_removed", done.files_removed as i64),
        ("files_added", done.files_added as i64),
        ("bytes_removed", done.bytes_removed),
        ("bytes_added", done.bytes_added),
        ("version", done.version),
    ])
}

/// Makes the frame's contents those of an earlier version, in a new
/// commit; one row: files removed and restored, and the new version.
pub(crate) async fn restore(session: &Session, frame: &[String], to: AsOf) -> Result<QueryResult> {
    outside_a_block(session, "RESTORE")?;
    let (name, _) = session.frame_by_parts(frame).await?;
    let done = session.catalog().frames().restore(&name, to).await?;
    counts(&[
        ("files_removed", done.files_removed as i64),
        ("files_restored", done.files_restored as i64),
        ("version", done.version),
    ])
}

/// One row of named `bigint` counts.
fn counts(values: &[(&str, i64)]) -> Result<QueryResult> {
    let schema = Arc::new(Schema::new(
        values
            .iter()
            .map(|(name, _)| Field::new(*name, DataType::Int64, false))
            .collect::<Vec<_>>(),
    ));
    let columns: Vec<ArrayRef> = values
        .iter()
        .map(|(_, value)| Arc::new(Int64Array::from(vec![*value])) as ArrayRef)
        .collect();
    Ok(QueryResult::single(RecordBatch::try_new(schema, columns)?))
}

/// Deletes (or, with `dry_run`, lists) the files no version within the
/// retention needs; one row per file.
pub(crate) async fn vacuum(
    session: &Session,
    frame: &[String],
    retain_seconds: Option<u64>,
    dry_run: bool,
) -> Result<QueryResult> {
    outside_a_block(session, "VACUUM")?;
    let retention = retain_seconds.map_or(DEFAULT_RETENTION, Duration::from_secs);
    let check = std::env::var(RETENTION_CHECK_ENV)
        .map(|v| !matches!(v.to_ascii_lowercase().as_str(), "off" | "false" | "0"))
        .unwrap_or(true);
    if check && retention < DEFAULT_RETENTION {
        return Err(EngineError::InvalidArgument(format!(
            "VACUUM with a retention of {} hours could delete files that readers started \
             within the last {} hours still need; set {RETENTION_CHECK_ENV}=off on the node \
             to allow a shorter retention",
            retention.as_secs_f64() / 3600.0,
            DEFAULT_RETENTION.as_secs() / 3600
        )));
    }
    let (name, _) = session.frame_by_parts(frame).await?;
    let files = session
        .catalog()
        .frames()
        .vacuum(&name, retention, check, dry_run)
        .await?;
    let schema = Arc::new(Schema::new(vec![Field::new(
        match dry_run {
            true => "file_to_delete",
            false => "deleted_file",
        },
        DataType::Utf8,
        false,
    )]));
    let column = Arc::new(StringArray::from_iter_values(files)) as ArrayRef;
    Ok(QueryResult::single(RecordBatch::try_new(
        schema,
        vec![column],
    )?))
}

/// The frame's commits, newest first: version, time, operation, its
/// parameters and metrics (JSON), and the Apiary writer.
pub(crate) async fn history(session: &Session, frame: &[String]) -> Result<QueryResult> {
    let (name, _) = session.frame_by_parts(frame).await?;
    let commits = session.catalog().frames().history(&name).await?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("operation", DataType::Utf8, false),
        Field::new("operation_parameters", DataType::Utf8, false),
        Field::new("operation_metrics", DataType::Utf8, false),
        Field::new("writer", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            commits.iter().map(|c| c.version),
        )),
        Arc::new(
            TimestampMillisecondArray::from_iter(commits.iter().map(|c| c.timestamp))
                .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from_iter_values(
            commits.iter().map(|c| &c.operation),
        )),
        Arc::new(StringArray::from_iter_values(
            commits.iter().map(|c| &c.parameters),
        )),
        Arc::new(StringArray::from_iter_values(
            commits.iter().map(|c| &c.metrics),
        )),
        Arc::new(StringArray::from_iter(
            commits.iter().map(|c| c.writer.as_deref()),
        )),
    ];
    Ok(QueryResult::single(RecordBatch::try_new(schema, columns)?))
}

pub(crate) fn outside_a_block(session: &Session, statement: &str) -> Result<()> {
    match session.in_transaction() {
        true => Err(EngineError::DataFusion(Box::new(sql_error(
            "25001",
            format!("{statement} cannot run inside a transaction block; run it on its own"),
        )))),
        false => Ok(()),
    }
}
