//! Keeping a frame's Delta table in shape: compacting small cells
//! (`OPTIMIZE`), deleting files no version within the retention needs
//! (`VACUUM`), reading the table's commit history and restoring an
//! earlier version (`RESTORE`). All are delta-rs operations on the frame's
//! table; a compaction is an ordinary
//! Delta commit (`dataChange: false`), so concurrent appends and readers
//! are unaffected and a conflicting compaction gives way.

use std::time::Duration;

use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use deltalake::{FilterOp, FilterValue};
use futures::TryStreamExt;

use crate::error::{Error, ObjectKind, Result};
use crate::frame::{FrameName, Frames};
use crate::table::Tag;
use crate::time_travel::AsOf;

/// How long VACUUM keeps files a removed version referenced, unless told
/// otherwise: Delta's default, 7 days, so every reader that started within
/// it finds its files.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// What `OPTIMIZE` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Compaction {
    pub files_removed: u64,
    pub files_added: u64,
    pub bytes_removed: i64,
    pub bytes_added: i64,
    /// The version the compaction committed, or the current one when there
    /// was nothing to compact.
    pub version: i64,
}

/// One commit of a frame's history, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit {
    pub version: i64,
    /// Milliseconds since the Unix epoch.
    pub timestamp: Option<i64>,
    pub operation: String,
    /// The operation's parameters and metrics, as Delta records them (JSON).
    pub parameters: String,
    pub metrics: String,
    /// The Apiary writer that made the commit, when one did.
    pub writer: Option<String>,
}

/// What `RESTORE` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Restoration {
    /// Cells of the current version the restored one does not have.
    pub files_removed: u64,
    /// Cells of the restored version the current one does not have.
    pub files_restored: u64,
    /// The version the restore committed.
    pub version: i64,
}

impl Frames {
    /// Makes the frame's current contents those of an earlier version, in a
    /// new commit (the versions in between stay in the history). A version
    /// with another schema is refused: the registry declares one schema per
    /// frame. A version whose cells VACUUM deleted is refused by delta-rs.
    pub async fn restore(&self, name: &FrameName, to: AsOf) -> Result<Restoration> {
        self.rewriting(name, self.restore_now(name, to)).await?
    }

    async fn restore_now(&self, name: &FrameName, to: AsOf) -> Result<Restoration> {
        let table = self.open(name).await?;
        let builder = self.builder(name)?;
        let then = match to {
            AsOf::Version(version) => builder.with_version(version),
            AsOf::Timestamp(instant) => builder.with_timestamp(instant),
        }
        .load()
        .await
        .map_err(|e| Error::NotFound {
            kind: ObjectKind::Frame,
            name: format!("{name} as of {to:?}"),
            hint: format!("; {e}"),
        })?;
        let schema_of = |t: &deltalake::DeltaTable| {
            t.snapshot()
                .map(|s| s.schema())
                .map_err(|e| Error::delta(name.to_string(), e))
        };
        if schema_of(&then)? != schema_of(&table)? {
            return Err(Error::InvalidSchema(format!(
                "version {} of {name} has other columns than the current one; RESTORE keeps \
                 the frame's columns, so read that version (\"{}@v{}\") and write what you \
                 need instead",
                then.version().unwrap_or(0),
                name.frame,
                then.version().unwrap_or(0),
            )));
        }
        let target = then.version().unwrap_or(0);
        let tag = Tag::new(&table);
        let (table, metrics) = match table
            .restore()
            .with_version_to_restore(target)
            .with_commit_properties(tag.properties())
            .await
        {
            Ok(done) => done,
            Err(e) => {
                tag.confirm_counts(name, e, &[]).await?;
                let table = self.open(name).await?;
                return Ok(Restoration {
                    version: table.version().unwrap_or(0) as i64,
                    ..Default::default()
                });
            }
        };
        Ok(Restoration {
            files_removed: metrics.num_removed_file as u64,
            files_restored: metrics.num_restored_file as u64,
            version: table.version().unwrap_or(0) as i64,
        })
    }

    /// Rewrites the frame's small cells into target-sized ones, in the
    /// order of `zorder` when it names columns (then every cell is
    /// rewritten, so file statistics prune on those columns); only in the
    /// partitions `filters` (`column op value`, ANDed) select, if any.
    /// `writer` names who compacted in the commit (`DESCRIBE HISTORY`'s
    /// `writer`), as automatic maintenance does.
    pub async fn optimize(
        &self,
        name: &FrameName,
        filters: &[(String, String, String)],
        zorder: &[String],
        writer: Option<&str>,
    ) -> Result<Compaction> {
        self.rewriting(name, self.optimize_now(name, filters, zorder, writer))
            .await?
    }

    async fn optimize_now(
        &self,
        name: &FrameName,
        filters: &[(String, String, String)],
        zorder: &[String],
        writer: Option<&str>,
    ) -> Result<Compaction> {
        let table = self.open(name).await?;
        let filters = filters
            .iter()
            .map(|(column, op, value)| {
                let op = op
                    .parse::<FilterOp>()
                    .map_err(|e| Error::delta(name.to_string(), e))?;
                Ok((column.as_str(), op, FilterValue::Scalar(value.as_str())))
            })
            .collect::<Result<Vec<_>>>()?;
        let tag = match writer {
            Some(writer) => Tag::new(&table).written_by(writer),
            None => Tag::new(&table),
        };
        let mut op = table
            .optimize()
            .with_filters(&filters)
            .with_commit_properties(tag.properties());
        if !zorder.is_empty() {
            op = op.with_type(OptimizeType::ZOrder(zorder.to_vec()));
        }
        let (table, metrics) = match op.await {
            Ok(done) => done,
            Err(e) => {
                // Whatever the outcome, the caller reads the frame again.
                tag.confirm_counts(name, e, &[]).await?;
                return self.optimize_outcome(name).await;
            }
        };
        Ok(Compaction {
            files_removed: metrics.num_files_removed,
            files_added: metrics.num_files_added,
            bytes_removed: metrics.files_removed.total_size,
            bytes_added: metrics.files_added.total_size,
            version: table.version().unwrap_or(0) as i64,
        })
    }

    /// Deletes the files of the frame's directory that no version within
    /// `retention` references: cells earlier versions removed, and cells of
    /// writes that never committed. With `dry_run`, only lists them. A
    /// retention shorter than the table's (7 days unless configured) is
    /// refused unless `enforce` is off.
    pub async fn vacuum(
        &self,
        name: &FrameName,
        retention: Duration,
        enforce: bool,
        dry_run: bool,
    ) -> Result<Vec<String>> {
        let table = self.open(name).await?;
        let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
        let (_, metrics) = table
            .vacuum()
            .with_mode(VacuumMode::Full)
            .with_retention_period(retention)
            .with_enforce_retention_duration(enforce)
            .with_dry_run(dry_run)
            .await
            .map_err(|e| Error::delta(name.to_string(), e))?;
        // delta-rs names a file relative to the table in a dry run and by
        // its full path otherwise: name both relative to the frame.
        let dir = format!("{}/", name.dir());
        let mut files: Vec<String> = metrics
            .files_deleted
            .into_iter()
            .map(|path| match path.rfind(&dir) {
                Some(at) => path[at + dir.len()..].to_string(),
                None => path,
            })
            .collect();
        files.sort();
        files.dedup();
        Ok(files)
    }

    /// A compaction whose commit stood although delta-rs reported an error:
    /// its counts are lost with the reply, its version is the newest.
    async fn optimize_outcome(&self, name: &FrameName) -> Result<Compaction> {
        let table = self.open(name).await?;
        Ok(Compaction {
            version: table.version().unwrap_or(0) as i64,
            ..Default::default()
        })
    }

    /// How many of the frame's current cells are smaller than `bytes`. Read
    /// from the state this node keeps (open_tables.rs): the maintainer asks
    /// every interval, and reopening a long log each time costs more than
    /// the queries it shares the node with.
    pub async fn small_cells(&self, name: &FrameName, bytes: u64) -> Result<usize> {
        let table = self.kept_or_open(name).await?;
        let snapshot = table
            .snapshot()
            .map_err(|e| Error::delta(name.to_string(), e))?;
        Ok(snapshot
            .log_data()
            .iter()
            .filter(|file| (file.size().max(0) as u64) < bytes)
            .count())
    }

    /// The frame's commits, newest first.
    pub async fn history(&self, name: &FrameName) -> Result<Vec<Commit>> {
        let table = self.open(name).await?;
        let newest = table.version().unwrap_or(0) as i64;
        let infos: Vec<_> = table
            .history(None)
            .try_collect()
            .await
            .map_err(|e| Error::delta(name.to_string(), e))?;
        let json = |value: Option<&serde_json::Value>| {
            value
                .map(ToString::to_string)
                .unwrap_or_else(|| "{}".into())
        };
        Ok(infos
            .into_iter()
            .enumerate()
            .map(|(age, info)| Commit {
                version: newest - age as i64,
                timestamp: info.timestamp,
                operation: info.operation.clone().unwrap_or_default(),
                parameters: info
                    .operation_parameters
                    .as_ref()
                    .map(|p| serde_json::Value::from(serde_json::Map::from_iter(p.clone())))
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "{}".into()),
                metrics: json(info.info.get("operationMetrics")),
                writer: info
                    .info
                    .get("apiary.writer")
                    .and_then(|w| w.as_str())
                    .map(str::to_string),
            })
            .collect())
    }
}
