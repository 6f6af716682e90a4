//! The local cell cache: Parquet cells kept on this node's disk.
//!
//! Cells are immutable by path (a Delta commit adds new files and never
//! rewrites one), so a cached copy can never be stale: a snapshot that no
//! longer lists a cell (deleted, vacuumed) never asks for it again, and it
//! ages out of the LRU. [`CachingStore`] wraps the root's object store for
//! DataFusion: the first read of a cell fetches it whole into the cache,
//! every read after that (including byte ranges) is served from local disk.
//! What is cached travels in the heartbeat as path hashes, so coordinators
//! can send a cell's task back to the node that has it.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::error::{EngineError, Result};

/// At most this many cached cells are announced in a heartbeat.
pub const ANNOUNCED_CELLS: usize = 1024;

/// A stable 64-bit hash of a cell's path (FNV-1a), the same in every
/// process and version, so nodes can compare what they cache.
pub fn cell_hash(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[derive(Debug, Default)]
struct Lru {
    /// Path → (size, last use).
    entries: HashMap<Path, (u64, u64)>,
    bytes: u64,
    clock: u64,
}

/// An on-disk LRU of cells with a byte limit.
pub struct CellCache {
    dir: PathBuf,
    limit: u64,
    files: LocalFileSystem,
    lru: Mutex<Lru>,
    /// One lock per cell being fetched, so concurrent readers of a cell
    /// download it once.
    fetching: Mutex<HashMap<Path, Arc<tokio::sync::Mutex<()>>>>,
}

impl fmt::Debug for CellCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CellCache")
            .field("dir", &self.dir)
            .field("limit", &self.limit)
            .finish()
    }
}

impl CellCache {
    /// A cache of at most `limit` bytes in `dir` (created, and emptied: a
    /// node's cache starts cold).
    pub fn open(dir: PathBuf, limit: u64) -> Result<Self> {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| {
            EngineError::InvalidArgument(format!(
                "cannot create the cell cache {} (set APIARY_CACHE_DIR): {e}",
                dir.display()
            ))
        })?;
        let files = LocalFileSystem::new_with_prefix(&dir).map_err(|e| {
            EngineError::InvalidArgument(format!("cannot use {}: {e}", dir.display()))
        })?;
        Ok(CellCache {
            dir,
            limit,
            files,
            lru: Mutex::new(Lru::default()),
            fetching: Mutex::new(HashMap::new()),
        })
    }

    /// The default size: a quarter of the free space where the cache lives.
    pub fn default_limit(dir: &std::path::Path) -> u64 {
        let probe = dir
            .ancestors()
            .find(|p| p.exists())
            .unwrap_or(std::path::Path::new("/"));
        rustix::fs::statvfs(probe)
            .map(|s| s.f_bavail.saturating_mul(s.f_frsize) / 4)
            .unwrap_or(1 << 30)
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn contains(&self, path: &Path) -> bool {
        self.lru().entries.contains_key(path)
    }

    /// Number of cells and bytes held.
    pub fn usage(&self) -> (u64, u64) {
        let lru = self.lru();
        (lru.entries.len() as u64, lru.bytes)
    }

    /// Hashes of the most recently used cells, for the heartbeat.
    pub fn announced(&self) -> Vec<u64> {
        let lru = self.lru();
        let mut recent: Vec<(&Path, u64)> = lru.entries.iter().map(|(p, (_, t))| (p, *t)).collect();
        recent.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
        recent
            .into_iter()
            .take(ANNOUNCED_CELLS)
            .map(|(p, _)| cell_hash(p.as_ref()))
            .collect()
    }

    fn lru(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn touch(&self, path: &Path) -> bool {
        let mut lru = self.lru();
        lru.clock += 1;
        let now = lru.clock;
        match lru.entries.get_mut(path) {
            Some(entry) => {
                entry.1 = now;
                true
            }
            None => false,
        }
    }

    /// Records a newly cached cell and evicts least recently used ones
    /// beyond the limit; returns the evicted paths.
    fn admit(&self, path: &Path, size: u64) -> Vec<Path> {
        let mut lru = self.lru();
        lru.clock += 1;
        let now = lru.clock;
        if let Some((old, _)) = lru.entries.insert(path.clone(), (size, now)) {
            lru.bytes -= old;
        }
        lru.bytes += size;
        let mut evicted = Vec::new();
        while lru.bytes > self.limit {
            let Some(victim) = lru
                .entries
                .iter()
                .filter(|(p, _)| *p != path)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(p, _)| p.clone())
            else {
                break;
            };
            if let Some((size, _)) = lru.entries.remove(&victim) {
                lru.bytes -= size;
            }
            evicted.push(victim);
        }
        evicted
    }

    /// Makes sure `path` is on local disk, fetching it whole from `remote`.
    /// `false` when the cell does not fit in the cache at all.
    async fn ensure(&self, remote: &dyn ObjectStore, path: &Path) -> object_store::Result<bool> {
        if self.touch(path) {
            return Ok(true);
        }
        let lock = {
            let mut fetching = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            fetching.entry(path.clone()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if self.touch(path) {
            return Ok(true);
        }
        let bytes = remote.get(path).await?.bytes().await?;
        let size = bytes.len() as u64;
        let cached = size <= self.limit;
        if cached {
            self.files.put(path, PutPayload::from(bytes)).await?;
            for victim in self.admit(path, size) {
                let _ = self.files.delete(&victim).await;
            }
        }
        self.fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
        Ok(cached)
    }
}

impl Drop for CellCache {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The root's object store with cells read through the [`CellCache`].
/// Everything that is not a plain read of a `.parquet` object goes straight
/// to the wrapped store.
#[derive(Debug)]
pub struct CachingStore {
    inner: Arc<dyn ObjectStore>,
    cache: Arc<CellCache>,
}

impl CachingStore {
    pub fn new(inner: Arc<dyn ObjectStore>, cache: Arc<CellCache>) -> Self {
        CachingStore { inner, cache }
    }
}

impl fmt::Display for CachingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CachingStore({})", self.inner)
    }
}

fn is_cell(path: &Path, options: &GetOptions) -> bool {
    path.extension() == Some("parquet")
        && options.if_match.is_none()
        && options.if_none_match.is_none()
        && options.if_modified_since.is_none()
        && options.if_unmodified_since.is_none()
        && options.version.is_none()
}

#[async_trait]
impl ObjectStore for CachingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        if is_cell(location, &options) && self.cache.ensure(self.inner.as_ref(), location).await? {
            match self.cache.files.get_opts(location, options.clone()).await {
                Ok(result) => return Ok(result),
                // Evicted between `ensure` and the read: read remotely.
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        if is_cell(location, &GetOptions::default())
            && self.cache.ensure(self.inner.as_ref(), location).await?
        {
            match self.cache.files.get_ranges(location, ranges).await {
                Ok(result) => return Ok(result),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    async fn store_with(cells: &[(&str, usize)]) -> Arc<dyn ObjectStore> {
        let store = InMemory::new();
        for (name, size) in cells {
            store
                .put(&Path::from(*name), PutPayload::from(vec![7u8; *size]))
                .await
                .unwrap();
        }
        Arc::new(store)
    }

    #[tokio::test]
    async fn cells_are_fetched_once_then_served_locally_and_evicted_lru() {
        let dir = tempfile::tempdir().unwrap();
        let remote = store_with(&[("a.parquet", 60), ("b.parquet", 60), ("x.json", 10)]).await;
        let cache = Arc::new(CellCache::open(dir.path().join("cache"), 100).unwrap());
        let store = CachingStore::new(remote.clone(), cache.clone());

        let a = Path::from("a.parquet");
        assert_eq!(store.get_range(&a, 10..20).await.unwrap().len(), 10);
        assert!(cache.contains(&a));
        // The remote copy can go: reads are local now.
        remote.delete(&a).await.unwrap();
        assert_eq!(
            store.get(&a).await.unwrap().bytes().await.unwrap().len(),
            60
        );

        // b does not fit next to a: a, least recently used, is evicted.
        let b = Path::from("b.parquet");
        store.get(&b).await.unwrap();
        assert!(cache.contains(&b) && !cache.contains(&a));
        assert_eq!(cache.usage(), (1, 60));
        assert_eq!(cache.announced(), vec![cell_hash("b.parquet")]);

        // Metadata objects are never cached.
        store.get(&Path::from("x.json")).await.unwrap();
        assert_eq!(cache.usage().0, 1);
    }

    #[test]
    fn cell_hashes_are_stable() {
        assert_eq!(cell_hash(""), 0xcbf2_9ce4_8422_2325);
        assert_ne!(cell_hash("a.parquet"), cell_hash("b.parquet"));
    }
}
