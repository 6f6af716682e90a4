//! The newest state of each frame this node has read, kept between queries.
//!
//! Opening a Delta table lists its log and replays it from the last
//! checkpoint. On a frame built by many small commits that costs more than
//! the query itself (the log keeps every commit for 30 days, and every
//! checkpoint carries the tombstones of compacted cells for 7). A cached
//! state is still the newest while the log has no entry after its version:
//! one HEAD of that next entry tells. A second HEAD, of the state's own
//! entry, tells that the frame was not dropped and created again since.

use std::collections::HashMap;
use std::sync::Mutex;

use deltalake::kernel::Version;
use deltalake::logstore::commit_uri_from_version;
use deltalake::DeltaTable;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

/// Frames whose state is kept; past it the least recently read is dropped.
const MAX_TABLES: usize = 64;

/// A table state and what its newest log entry looked like when loaded.
#[derive(Debug)]
struct Entry {
    table: DeltaTable,
    entry: EntryId,
    last_read: u64,
}

/// Identifies one log entry object: a frame created again at the same path
/// writes a new object for the same version.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EntryId {
    e_tag: Option<String>,
    last_modified: chrono::DateTime<chrono::Utc>,
    size: u64,
}

impl From<ObjectMeta> for EntryId {
    fn from(meta: ObjectMeta) -> Self {
        EntryId {
            e_tag: meta.e_tag,
            last_modified: meta.last_modified,
            size: meta.size,
        }
    }
}

/// Newest table states by table URL.
#[derive(Debug, Default)]
pub(crate) struct OpenTables {
    entries: Mutex<HashMap<String, Entry>>,
    reads: std::sync::atomic::AtomicU64,
}

impl OpenTables {
    /// The newest state of the table at `url`: the kept one when the log
    /// has not moved, brought forward when it has, else what `load` opens.
    pub(crate) async fn newest<F, E>(&self, url: &str, load: F) -> Result<DeltaTable, E>
    where
        F: AsyncFnOnce() -> Result<DeltaTable, E>,
    {
        if let Some((mut table, id)) = self.kept(url) {
            if let Some(version) = table.version() {
                let store = table.object_store();
                let (same, next) = tokio::join!(head(&store, version), head(&store, version + 1));
                if matches!(same, Ok(Some(meta)) if EntryId::from(meta.clone()) == id) {
                    match next {
                        Ok(None) => return Ok(table),
                        Ok(Some(_)) if table.update_incremental(None).await.is_ok() => {
                            self.keep(url, &table).await;
                            return Ok(table);
                        }
                        _ => {}
                    }
                }
            }
        }
        let table = load().await?;
        self.keep(url, &table).await;
        Ok(table)
    }

    /// The map, also after a panic elsewhere while it was held: every
    /// entry in it is a complete state.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn kept(&self, url: &str) -> Option<(DeltaTable, EntryId)> {
        let entries = self.lock();
        let entry = entries.get(url)?;
        Some((entry.table.clone(), entry.entry.clone()))
    }

    /// Keeps `table` with the identity of its newest log entry; a table
    /// whose entry cannot be read is not kept.
    async fn keep(&self, url: &str, table: &DeltaTable) {
        let Some(version) = table.version() else {
            return;
        };
        let Ok(Some(meta)) = head(&table.object_store(), version).await else {
            return;
        };
        let last_read = self
            .reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut entries = self.lock();
        if entries.len() >= MAX_TABLES && !entries.contains_key(url) {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, e)| e.last_read)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(
            url.to_string(),
            Entry {
                table: table.clone(),
                entry: meta.into(),
                last_read,
            },
        );
    }
}

/// The metadata of the log entry for `version`, `None` when there is none.
async fn head(
    store: &std::sync::Arc<dyn ObjectStore>,
    version: Version,
) -> object_store::Result<Option<ObjectMeta>> {
    match store.head(&commit_uri_from_version(Some(version))).await {
        Ok(meta) => Ok(Some(meta)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}
