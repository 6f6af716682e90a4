//! Keeping a frame's Delta table in shape: compacting small cells
//! (`OPTIMIZE`), deleting files no version within the retention needs
//! (`VACUUM`), and reading the table's commit history. All three are
//! delta-rs operations on the frame's table; a compaction is an ordinary
//! Delta commit (`dataChange: false`), so concurrent appends and readers
//! are unaffected and a conflicting compaction gives way.

use std::time::Duration;

use deltalake::operations::optimize::OptimizeType;
use deltalake::operations::vacuum::VacuumMode;
use futures::TryStreamExt;

use crate::error::{Error, Result};
use crate::frame::{FrameName, Frames};

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

impl Frames {
    /// Rewrites the frame's small cells into target-sized ones, in the
    /// order of `zorder` when it names columns (then every cell is
    /// rewritten, so file statistics prune on those columns).
    pub async fn optimize(&self, name: &FrameName, zorder: &[String]) -> Result<Compaction> {
        let table = self.open(name).await?;
        let mut op = table.optimize();
        if !zorder.is_empty() {
            op = op.with_type(OptimizeType::ZOrder(zorder.to_vec()));
        }
        let (table, metrics) = op.await.map_err(|e| Error::delta(name.to_string(), e))?;
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
        let dir = format!("{}/", name.segments().join("/"));
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
