//! Exactly-once frame commits.
//!
//! A Delta commit is one conditional `PUT` of the next log entry. When the
//! reply to that `PUT` is lost, the writer cannot tell from the error
//! whether its commit stands; and when the object store retries the `PUT`
//! by itself, the retry finds the version taken (by the writer's own first
//! attempt) and delta-rs, seeing a blind append, commits the same cells
//! again one version later. Both turn a retried write into duplicates.
//!
//! So every commit carries a Delta `txn` action (Delta protocol,
//! "Transaction Identifiers") whose application id is the write's
//! idempotency key: a caller's own key, or a fresh one per write. delta-rs
//! refuses to commit over a version that holds the same application id
//! (`ConcurrentTransaction`), which stops the self-duplicate; after any
//! error short of a real conflict the writer reads the versions committed
//! since it started and looks for its key, reporting success exactly when
//! the commit is there and retrying the commit (same cells, same key)
//! when it is not. A write whose caller supplies a key that a standing
//! version already holds commits nothing ([`Outcome::AlreadyCommitted`]).

use std::time::Duration;

use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TransactionError};
use deltalake::kernel::{Action, Add, Transaction as AppTransaction};
use deltalake::logstore::LogStore;
use deltalake::protocol::DeltaOperation;
use deltalake::{DeltaTable, DeltaTableError};

use crate::error::{Error, Result};

/// Commit attempts after errors that leave the outcome open; with the
/// object store's own retries inside each, this outlasts a flaky minute.
const MAX_ATTEMPTS: u32 = 6;

/// Commit attempts delta-rs makes against versions other writers took;
/// appends never logically conflict, so this only bounds pathological
/// contention.
const MAX_CONFLICT_RETRIES: usize = 200;

/// How long a frame remembers the keys of its writes (its
/// `delta.setTransactionRetentionDuration`): a retry with the same key
/// within this time commits nothing.
pub const KEY_RETENTION: &str = "interval 7 days";

/// Longest accepted idempotency key, in bytes.
pub const MAX_KEY_BYTES: usize = 256;

/// Prefix of the `txn` application ids Apiary writes, so they never collide
/// with other tools' ids in the same table.
const APP_ID_PREFIX: &str = "apiary:";

/// The key that makes one logical write commit at most once, however often
/// it is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteKey {
    key: String,
    /// Chosen by the caller (who may retry with it), not generated here.
    supplied: bool,
}

impl WriteKey {
    /// A caller's key; an error says what a valid one looks like.
    pub fn supplied(key: &str) -> Result<Self> {
        if key.is_empty() || key.len() > MAX_KEY_BYTES || key.chars().any(char::is_control) {
            return Err(Error::InvalidKey(format!(
                "an idempotency key must be 1 to {MAX_KEY_BYTES} bytes of printable text"
            )));
        }
        Ok(WriteKey {
            key: key.to_string(),
            supplied: true,
        })
    }

    /// A fresh key for a write whose caller gave none.
    pub fn generated() -> Self {
        WriteKey {
            key: uuid::Uuid::new_v4().to_string(),
            supplied: false,
        }
    }

    /// The caller's key, or `key` generated, as a caller would pass it.
    pub fn from_option(key: Option<&str>) -> Result<Self> {
        key.map_or_else(|| Ok(Self::generated()), Self::supplied)
    }

    pub fn as_str(&self) -> &str {
        &self.key
    }

    fn app_id(&self) -> String {
        format!("{APP_ID_PREFIX}{}", self.key)
    }
}

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// This write's commit is the frame's version `n`.
    Committed(u64),
    /// An earlier write with the same key committed; this one added nothing.
    AlreadyCommitted,
}

/// Whether a write with a caller's `key` already stands in `table`; such a
/// write should not even write its cells.
pub async fn already_committed(
    table: &DeltaTable,
    key: &WriteKey,
) -> Result<bool, DeltaTableError> {
    if !key.supplied {
        return Ok(false);
    }
    let snapshot = table.snapshot()?;
    let version = snapshot
        .transaction_version(table.log_store().as_ref(), key.app_id())
        .await?;
    Ok(version.is_some())
}

/// Commits `actions` to `table` (read at its current version) exactly once
/// under `key`; see the module docs. `Err` means the commit is certainly
/// not in the log, except for [`Error::CommitUnknown`].
pub async fn commit_once(
    frame: &str,
    table: &DeltaTable,
    actions: Vec<Action>,
    operation: DeltaOperation,
    key: &WriteKey,
) -> Result<Outcome> {
    let log_store = table.log_store();
    let snapshot = table.snapshot().map_err(|e| Error::delta(frame, e))?;
    let read_version = snapshot.version();
    let writer = uuid::Uuid::new_v4().to_string();
    let mut last_error = None;
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(backoff(attempt)).await;
        }
        if last_error.is_some() {
            match landed(log_store.as_ref(), read_version, key).await {
                Ok(Some(found)) => return Ok(outcome(&found, &writer)),
                Ok(None) => {}
                Err(e) => {
                    last_error = Some(e);
                    continue;
                }
            }
        }
        let props = tagged(key, &writer);
        let committed = CommitBuilder::from(props)
            .with_actions(actions.clone())
            .build(Some(snapshot), log_store.clone(), operation.clone())
            .await;
        match committed {
            Ok(done) => return Ok(Outcome::Committed(done.version())),
            Err(e) if is_final(&e) => {
                return Err(match e {
                    DeltaTableError::Transaction {
                        source: TransactionError::CommitConflict(conflict),
                    } => Error::Conflict {
                        frame: frame.to_string(),
                        detail: conflict.to_string(),
                    },
                    other => Error::delta(frame, other),
                })
            }
            Err(e) => {
                tracing::debug!(frame, attempt, error = %e, "commit outcome unknown; checking the log");
                last_error = Some(e);
            }
        }
    }
    // The last word is the log's: a final look, then give up.
    match landed(log_store.as_ref(), read_version, key).await {
        Ok(Some(found)) => Ok(outcome(&found, &writer)),
        Ok(None) => Err(Error::delta(
            frame,
            last_error.unwrap_or_else(|| DeltaTableError::Generic("commit failed".into())),
        )),
        Err(e) => Err(Error::CommitUnknown {
            frame: frame.to_string(),
            key: key.key.clone(),
            detail: e.to_string(),
        }),
    }
}

/// Whether the commit found under this write's key is this attempt's.
fn outcome(found: &Landed, writer: &str) -> Outcome {
    match found.info.get("apiary.writer").and_then(|w| w.as_str()) == Some(writer) {
        true => Outcome::Committed(found.version),
        false => Outcome::AlreadyCommitted,
    }
}

/// Errors after which the commit is certainly not in the log and trying
/// again would not help: a real conflict with another writer (not one with
/// this write's own earlier attempt), or too many of them.
pub(crate) fn is_final(e: &DeltaTableError) -> bool {
    match e {
        DeltaTableError::Transaction { source } => match source {
            TransactionError::CommitConflict(conflict) => !matches!(
                conflict,
                deltalake::kernel::transaction::CommitConflictError::ConcurrentTransaction
            ),
            TransactionError::MaxCommitAttempts(_) => true,
            _ => false,
        },
        _ => false,
    }
}

/// The paths of the cells the commits after `read_version` removed.
pub(crate) async fn removed_since(
    log_store: &dyn LogStore,
    read_version: u64,
) -> Result<std::collections::HashSet<String>, DeltaTableError> {
    let latest = log_store.get_latest_version(read_version).await?;
    let mut removed = std::collections::HashSet::new();
    for version in read_version + 1..=latest {
        let Some(entry) = log_store.read_commit_entry(version).await? else {
            continue;
        };
        for line in entry.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(path) = action["remove"]["path"].as_str() {
                removed.insert(path.to_string());
            }
        }
    }
    Ok(removed)
}

/// A commit found in the log by its key.
pub(crate) struct Landed {
    pub version: u64,
    /// The commit's `commitInfo` action (operation metrics, writer id).
    pub info: serde_json::Value,
}

/// Looks through the versions after `read_version` for the commit that
/// carries `key`: this write's, or an earlier attempt's of the same write.
pub(crate) async fn landed(
    log_store: &dyn LogStore,
    read_version: u64,
    key: &WriteKey,
) -> Result<Option<Landed>, DeltaTableError> {
    let latest = log_store.get_latest_version(read_version).await?;
    let app_id = key.app_id();
    for version in (read_version + 1..=latest).rev() {
        let Some(entry) = log_store.read_commit_entry(version).await? else {
            continue;
        };
        let mut holds_key = false;
        let mut info = serde_json::Value::Null;
        for line in entry.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(mut action) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(txn) = action.get("txn") {
                holds_key |= txn.get("appId").and_then(|a| a.as_str()) == Some(app_id.as_str());
            }
            if let Some(found) = action.get_mut("commitInfo") {
                info = found.take();
            }
        }
        if holds_key {
            return Ok(Some(Landed { version, info }));
        }
    }
    Ok(None)
}

/// [`landed`], asked again after storage errors, for a write whose commit
/// failed in a way that leaves its outcome open. `Err` when storage never
/// answered.
pub(crate) async fn confirm(
    log_store: &dyn LogStore,
    read_version: u64,
    key: &WriteKey,
) -> Result<Option<Landed>, DeltaTableError> {
    let mut attempt = 0;
    loop {
        match landed(log_store, read_version, key).await {
            Ok(found) => return Ok(found),
            Err(e) if attempt + 1 >= MAX_ATTEMPTS => return Err(e),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
    }
}

/// Commit properties that tag a commit with `key` (as a Delta `txn`) and
/// with this attempt's `writer` id.
pub(crate) fn tagged(key: &WriteKey, writer: &str) -> CommitProperties {
    CommitProperties::default()
        .with_max_retries(MAX_CONFLICT_RETRIES)
        .with_application_transaction(AppTransaction::new_with_last_update(
            key.app_id(),
            0,
            Some(chrono::Utc::now().timestamp_millis()),
        ))
        .with_metadata([
            ("apiary.writer".to_string(), serde_json::Value::from(writer)),
            (
                "apiary.key".to_string(),
                serde_json::Value::from(key.key.clone()),
            ),
        ])
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * 2u64.pow(attempt.min(5)))
}

/// Bytes of the cells in `adds`.
pub fn added_bytes(adds: &[Add]) -> u64 {
    adds.iter().map(|a| a.size.max(0) as u64).sum()
}
