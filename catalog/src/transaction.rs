//! Transaction blocks (`BEGIN … COMMIT`): a session's writes to a frame are
//! staged and committed together at `COMMIT`, or dropped at `ROLLBACK`.
//!
//! Inside a block, a write to a frame writes its cells as usual but does not
//! commit them: it records the Delta `add` actions (new cells) and `remove`
//! actions (cells a `DELETE` or `UPDATE` rewrote) in the block. Reads of that
//! frame inside the block see the frame as of the block's first write to it,
//! minus the removed cells, plus the added ones (read-your-writes). `COMMIT`
//! puts all of it in one Delta commit, checked by delta-rs against what
//! other writers committed since (Delta protocol, "Optimistic concurrency
//! control"); a real conflict fails with [`Error::Conflict`].
//!
//! A block writes one frame: a write to a second frame is refused, so a
//! commit is never partial across frames. Catalog statements (`CREATE`,
//! `DROP`) take effect at once, as autocommit statements do.

use std::sync::{Arc, Mutex, MutexGuard};

use deltalake::kernel::{Action, Add, Remove};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::DeltaTable;

use crate::commit::{self, commit_once, Outcome, WriteKey};
use crate::error::{Error, Result};
use crate::frame::{discard_cells, FrameName, Frames};

/// A session's transaction block, if one is open. Clones share the block,
/// so the session, its table providers and its write paths see one state.
#[derive(Debug, Clone, Default)]
pub struct Transaction {
    block: Arc<Mutex<Option<Block>>>,
}

#[derive(Debug, Default)]
struct Block {
    staged: Option<Staged>,
    /// A statement in the block failed: nothing but `COMMIT`/`ROLLBACK`
    /// (or `ROLLBACK TO SAVEPOINT`) runs until it ends.
    failed: bool,
    /// `SAVEPOINT`s in order, each with what was staged when it was set.
    savepoints: Vec<(String, Option<Staged>)>,
}

/// A block that ends without committing (ROLLBACK, a failed statement, a
/// dropped connection) deletes the cells it wrote.
impl Drop for Block {
    fn drop(&mut self) {
        discard(self.staged.take());
    }
}

/// What kind of change a block made, for the commit's Delta operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    Append,
    Delete,
    Update,
}

/// The staged changes of one frame in a block.
#[derive(Debug, Clone)]
pub struct Staged {
    pub name: FrameName,
    /// The root's frames, for the rewrite lease a commit that removes cells holds.
    pub frames: Frames,
    /// The frame at the version the block first wrote it.
    pub table: DeltaTable,
    /// Cells written by the block.
    pub adds: Vec<Add>,
    /// Cells of `table` the block removed (rewritten by DELETE/UPDATE).
    pub removes: Vec<Remove>,
    pub change: Change,
}

impl Staged {
    /// The frame's cells as the block sees them: `live` (the files of
    /// `table`) less what the block removed, plus what it added.
    pub fn view(&self, live: Vec<Add>) -> Vec<Add> {
        let mut files: Vec<Add> = live
            .into_iter()
            .filter(|f| !self.removes.iter().any(|r| r.path == f.path))
            .collect();
        files.extend(self.adds.iter().cloned());
        files
    }

    /// Replaces `file` (one of [`Staged::view`]) with `replacement`: a cell
    /// the block itself added is simply dropped, a committed one removed.
    pub fn replace(&mut self, file: &Add, replacement: Vec<Add>, change: Change) {
        if let Some(i) = self.adds.iter().position(|a| a.path == file.path) {
            self.adds.remove(i);
        } else {
            self.removes.push(remove_action(file));
        }
        self.adds.extend(replacement);
        self.change = self.change.max(change);
    }
}

/// The `remove` action for a live cell (Delta protocol, "Add File and
/// Remove File").
pub(crate) fn remove_action(file: &Add) -> Remove {
    Remove {
        path: file.path.clone(),
        data_change: true,
        deletion_timestamp: Some(chrono::Utc::now().timestamp_millis()),
        extended_file_metadata: Some(true),
        partition_values: Some(file.partition_values.clone()),
        size: Some(file.size),
        tags: None,
        deletion_vector: None,
        base_row_id: None,
        default_row_commit_version: None,
    }
}

impl Transaction {
    /// The block's state. Every change replaces whole values, so a lock
    /// poisoned by a panic elsewhere still holds usable state.
    fn lock(&self) -> MutexGuard<'_, Option<Block>> {
        self.block
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Opens a block; `false` when one is already open.
    pub fn begin(&self) -> bool {
        let mut block = self.lock();
        if block.is_some() {
            return false;
        }
        *block = Some(Block::default());
        true
    }

    /// Whether a block is open (failed or not).
    pub fn is_open(&self) -> bool {
        self.lock().is_some()
    }

    /// Whether the open block had a failed statement.
    pub fn is_failed(&self) -> bool {
        self.lock().as_ref().is_some_and(|b| b.failed)
    }

    /// Marks the open block failed: it can no longer commit, only roll
    /// back (whole, or to a savepoint); a no-op outside a block.
    pub fn fail(&self) {
        if let Some(block) = self.lock().as_mut() {
            block.failed = true;
        }
    }

    /// `SAVEPOINT name`: remembers what is staged now.
    pub fn savepoint(&self, name: &str) -> Result<()> {
        let mut block = self.lock();
        let block = block.as_mut().ok_or(Error::NoTransaction)?;
        if block.failed {
            return Err(Error::TransactionAborted);
        }
        let staged = block.staged.clone();
        block.savepoints.push((name.to_string(), staged));
        Ok(())
    }

    /// `ROLLBACK TO SAVEPOINT name`: back to what was staged when it was
    /// set, and out of a failed state; the savepoint stays, later ones go.
    pub fn rollback_to(&self, name: &str) -> Result<()> {
        let mut block = self.lock();
        let block = block.as_mut().ok_or(Error::NoTransaction)?;
        let at = block
            .savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Error::NoSavepoint(name.to_string()))?;
        block.savepoints.truncate(at + 1);
        block.staged = block.savepoints[at].1.clone();
        block.failed = false;
        Ok(())
    }

    /// `RELEASE SAVEPOINT name`: forgets it and every later one.
    pub fn release(&self, name: &str) -> Result<()> {
        let mut block = self.lock();
        let block = block.as_mut().ok_or(Error::NoTransaction)?;
        if block.failed {
            return Err(Error::TransactionAborted);
        }
        let at = block
            .savepoints
            .iter()
            .rposition(|(n, _)| n == name)
            .ok_or_else(|| Error::NoSavepoint(name.to_string()))?;
        block.savepoints.truncate(at);
        Ok(())
    }

    /// What the block staged for `name`, if anything.
    pub fn staged(&self, name: &FrameName) -> Option<Staged> {
        self.lock()
            .as_ref()
            .and_then(|b| b.staged.as_ref())
            .filter(|s| &s.name == name)
            .cloned()
    }

    /// Whether a write to `name` may join the open block: `Ok(None)` outside
    /// a block, the staged state when `name` is already staged, and an error
    /// when the block writes another frame or has failed.
    pub fn check_write(&self, name: &FrameName) -> Result<Option<Option<Staged>>> {
        let block = self.lock();
        let Some(block) = block.as_ref() else {
            return Ok(None);
        };
        if block.failed {
            return Err(Error::TransactionAborted);
        }
        match &block.staged {
            Some(staged) if &staged.name != name => Err(Error::TransactionScope {
                staged: staged.name.to_string(),
                frame: name.to_string(),
            }),
            staged => Ok(Some(staged.clone())),
        }
    }

    /// Stores `staged` as the block's changes (after a write in the block).
    pub fn stage(&self, staged: Staged) -> Result<()> {
        match self.lock().as_mut() {
            Some(block) if !block.failed => {
                block.staged = Some(staged);
                Ok(())
            }
            Some(_) => Err(Error::TransactionAborted),
            None => Err(Error::NoTransaction),
        }
    }

    /// Ends the block with `ROLLBACK`: nothing it staged is committed.
    /// Returns whether a block was open.
    pub fn rollback(&self) -> bool {
        let block = self.lock().take();
        block.is_some()
    }

    /// Ends the block with `COMMIT`: its staged changes become one Delta
    /// commit. A failed block is rolled back instead (`Ok(false)`, as
    /// Postgres answers `ROLLBACK` to a `COMMIT` of an aborted block).
    pub async fn commit(&self) -> Result<bool> {
        let Some(mut block) = self.lock().take() else {
            return Ok(true);
        };
        if block.failed {
            return Ok(false);
        }
        let Some(staged) = block.staged.take() else {
            return Ok(true);
        };
        if staged.adds.is_empty() && staged.removes.is_empty() {
            return Ok(true);
        }
        match commit(&staged).await {
            Ok(_) => Ok(true),
            // Perhaps committed: its cells stay.
            Err(e @ Error::CommitUnknown { .. }) => Err(e),
            Err(e) => {
                discard(Some(staged));
                Err(e)
            }
        }
    }
}

/// Commits a block's changes in one Delta commit. A block that only
/// appended commits against the newest version (appends never conflict);
/// one that removed cells commits against the version it read, so a
/// concurrent change to those cells is a conflict.
async fn commit(staged: &Staged) -> Result<Outcome> {
    let name = staged.name.to_string();
    let delta = |e| Error::delta(name.clone(), e);
    let mut table = staged.table.clone();
    let partition_by = table
        .snapshot()
        .map_err(delta)?
        .metadata()
        .partition_columns()
        .to_vec();
    let operation = match staged.change {
        Change::Append => {
            table.update_state().await.map_err(delta)?;
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: (!partition_by.is_empty()).then_some(partition_by),
                predicate: None,
            }
        }
        Change::Delete => DeltaOperation::Delete { predicate: None },
        Change::Update => DeltaOperation::Update { predicate: None },
    };
    if staged.removes.is_empty() {
        return commit_staged(staged, &table, operation).await;
    }
    // A rewrite read its cells at the version the block first wrote; while
    // holding the lease no other rewrite commits, so one that did since
    // then and removed any of those cells is a conflict (delta-rs does not
    // see it when that was a compaction).
    let lease = staged.frames.lease(&staged.name).await?;
    let result = async {
        let removed =
            commit::removed_since(table.log_store().as_ref(), table.version().unwrap_or(0))
                .await
                .map_err(delta)?;
        if staged.removes.iter().any(|r| removed.contains(&r.path)) {
            return Err(Error::Conflict {
                frame: name.clone(),
                detail:
                    "another statement rewrote the cells this block changed; run the block again"
                        .into(),
            });
        }
        commit_staged(staged, &table, operation).await
    }
    .await;
    lease.release().await;
    result
}

async fn commit_staged(
    staged: &Staged,
    table: &DeltaTable,
    operation: DeltaOperation,
) -> Result<Outcome> {
    let actions: Vec<Action> = staged
        .removes
        .iter()
        .cloned()
        .map(Action::Remove)
        .chain(staged.adds.iter().cloned().map(Action::Add))
        .collect();
    commit_once(
        &staged.name.to_string(),
        table,
        actions,
        operation,
        &WriteKey::generated(),
    )
    .await
}

/// Deletes the cells a block wrote but will never commit. Best effort: a
/// cell left behind is invisible (no commit names it) and VACUUM-able.
fn discard(staged: Option<Staged>) {
    if let Some(staged) = staged {
        discard_cells(&staged.name, staged.table.object_store(), staged.adds);
    }
}
