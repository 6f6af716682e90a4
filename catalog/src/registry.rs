//! The registry: which hives, boxes and frames exist, with each frame's
//! declared schema and partitioning.
//!
//! Each version of the registry is one JSON object,
//! `_apiary/registry/{version:020}.json`, created with a conditional put. To
//! change the registry a writer reads the newest version, applies its change
//! and tries to create the next version; if another writer got there first it
//! re-reads and re-applies (so the loser of a race to create the same hive
//! sees "already exists"). Every version carries a unique `txn` id: if the
//! object store reports the key taken, the writer reads it back to tell its
//! own retried success from a real loss (DESIGN §8).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ObjectKind, Result};
use crate::frame::default_dir;
use crate::root::{Created, StorageRoot};

const REGISTRY_DIR: &str = "_apiary/registry";
const MAX_ATTEMPTS: usize = 64;
/// Reads of a version whose commit failed with a storage error.
const READ_BACK_ATTEMPTS: usize = 5;

/// The hive and box every root starts with.
pub const DEFAULT_HIVE: &str = "default";
pub const DEFAULT_BOX: &str = "default";

/// A column as declared when the frame was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    pub name: String,
    /// Declared type name, see [`crate::types::ColumnType`].
    #[serde(rename = "type")]
    pub type_name: String,
    pub nullable: bool,
}

/// A frame's entry in the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrameDef {
    pub columns: Vec<ColumnDef>,
    pub partition_by: Vec<String>,
    pub created_at: String,
    /// `CREATE INDEX`es on the frame. A frame has no B-tree: an index's
    /// columns are a clustering key, the Z-order `OPTIMIZE` rewrites cells
    /// in, so that cell statistics prune scans filtered on them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indexes: Vec<IndexDef>,
    /// The directory of the frame's Delta table relative to the root, when
    /// it is not `{hive}/{box}/{frame}`: a renamed frame keeps its
    /// directory, so a rename moves no file and loses no concurrent write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// One `CREATE INDEX name ON frame (columns)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    pub name: String,
    pub columns: Vec<String>,
}

impl FrameDef {
    /// The directory of the frame's Delta table, relative to the root, for
    /// the frame registered as `hive.boxname.frame`.
    pub fn dir(&self, hive: &str, boxname: &str, frame: &str) -> String {
        match &self.location {
            Some(location) => location.clone(),
            None => default_dir(hive, boxname, frame),
        }
    }

    /// The columns `OPTIMIZE` orders cells by: every index's columns, in
    /// the order the indexes were created, each once.
    pub fn clustering_key(&self) -> Vec<String> {
        let mut key: Vec<String> = Vec::new();
        for column in self.indexes.iter().flat_map(|i| &i.columns) {
            if !key.contains(column) {
                key.push(column.clone());
            }
        }
        key
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoxDef {
    pub frames: BTreeMap<String, FrameDef>,
}

impl BoxDef {
    /// The frame that has the index named `index` (index names are unique
    /// within a box, as PostgreSQL's are within a schema).
    pub fn index_owner(&self, index: &str) -> Option<String> {
        self.frames
            .iter()
            .find(|(_, def)| def.indexes.iter().any(|i| i.name == index))
            .map(|(frame, _)| frame.clone())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HiveDef {
    pub boxes: BTreeMap<String, BoxDef>,
}

/// One immutable version of the registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrySnapshot {
    pub version: u64,
    /// Unique id of the writer's attempt; see the module docs.
    pub txn: String,
    pub hives: BTreeMap<String, HiveDef>,
}

impl RegistrySnapshot {
    fn initial() -> Self {
        let mut hive = HiveDef::default();
        hive.boxes.insert(DEFAULT_BOX.into(), BoxDef::default());
        let mut hives = BTreeMap::new();
        hives.insert(DEFAULT_HIVE.into(), hive);
        RegistrySnapshot {
            version: 0,
            txn: uuid::Uuid::new_v4().to_string(),
            hives,
        }
    }

    pub fn hive(&self, hive: &str) -> Result<&HiveDef> {
        self.hives.get(hive).ok_or_else(|| Error::NotFound {
            kind: ObjectKind::Hive,
            name: hive.to_string(),
            hint: format!("; existing hives: {}", join_keys(&self.hives)),
        })
    }

    pub fn boxdef(&self, hive: &str, boxname: &str) -> Result<&BoxDef> {
        let h = self.hive(hive)?;
        h.boxes.get(boxname).ok_or_else(|| Error::NotFound {
            kind: ObjectKind::Box,
            name: format!("{hive}.{boxname}"),
            hint: format!("; boxes in {hive}: {}", join_keys(&h.boxes)),
        })
    }

    pub fn frame(&self, hive: &str, boxname: &str, frame: &str) -> Result<&FrameDef> {
        let b = self.boxdef(hive, boxname)?;
        b.frames.get(frame).ok_or_else(|| Error::NotFound {
            kind: ObjectKind::Frame,
            name: format!("{hive}.{boxname}.{frame}"),
            hint: format!("; frames in {hive}.{boxname}: {}", join_keys(&b.frames)),
        })
    }

    fn hive_mut(&mut self, hive: &str) -> Result<&mut HiveDef> {
        self.hive(hive)?;
        Ok(self.hives.get_mut(hive).expect("checked above"))
    }

    fn frame_mut(&mut self, hive: &str, boxname: &str, frame: &str) -> Result<&mut FrameDef> {
        self.frame(hive, boxname, frame)?;
        Ok(self
            .box_mut(hive, boxname)?
            .frames
            .get_mut(frame)
            .expect("checked above"))
    }

    fn box_mut(&mut self, hive: &str, boxname: &str) -> Result<&mut BoxDef> {
        self.boxdef(hive, boxname)?;
        Ok(self
            .hive_mut(hive)?
            .boxes
            .get_mut(boxname)
            .expect("checked above"))
    }
}

fn join_keys<V>(map: &BTreeMap<String, V>) -> String {
    if map.is_empty() {
        return "(none)".into();
    }
    map.keys().cloned().collect::<Vec<_>>().join(", ")
}

/// A change to the registry, applied to the newest snapshot.
#[derive(Debug, Clone)]
pub enum Change {
    CreateHive(String),
    CreateBox(String, String),
    CreateFrame(String, String, String, FrameDef),
    /// Hive, box, frame, and the directory the dropper will delete: the
    /// drop fails if the name has come to mean another frame since.
    DropFrame(String, String, String, String),
    /// Appends nullable columns to a frame (`ALTER TABLE … ADD COLUMN`).
    AddColumns(String, String, String, Vec<ColumnDef>),
    /// Records an index (a clustering key) on a frame.
    CreateIndex(String, String, String, IndexDef),
    /// Removes the index of that name from whichever frame of the box has it.
    DropIndex(String, String, String),
    /// `ALTER TABLE … ALTER COLUMN … TYPE`: hive, box, frame, column and
    /// the column's new declared type (a widening, checked by the caller).
    SetColumnType(String, String, String, String, String),
    /// `ALTER TABLE … RENAME TO`: hive, box, old name, new name. The frame
    /// keeps its directory.
    RenameFrame(String, String, String, String),
}

impl Change {
    fn apply(&self, snap: &mut RegistrySnapshot) -> Result<()> {
        let exists = |kind, name: String| Err(Error::AlreadyExists { kind, name });
        match self {
            Change::CreateHive(h) => {
                if snap.hives.contains_key(h) {
                    return exists(ObjectKind::Hive, h.clone());
                }
                let mut hive = HiveDef::default();
                hive.boxes.insert(DEFAULT_BOX.into(), BoxDef::default());
                snap.hives.insert(h.clone(), hive);
            }
            Change::CreateBox(h, b) => {
                let hive = snap.hive_mut(h)?;
                if hive.boxes.contains_key(b) {
                    return exists(ObjectKind::Box, format!("{h}.{b}"));
                }
                hive.boxes.insert(b.clone(), BoxDef::default());
            }
            Change::CreateFrame(h, b, f, def) => {
                let version = snap.version;
                let boxdef = snap.box_mut(h, b)?;
                if boxdef.frames.contains_key(f) {
                    return exists(ObjectKind::Frame, format!("{h}.{b}.{f}"));
                }
                let mut def = def.clone();
                // A frame renamed away from this name still lives in its
                // directory: the new frame gets one no name can map to
                // (`-` is not allowed in names), unique by registry version.
                let dir = default_dir(h, b, f);
                if boxdef
                    .frames
                    .values()
                    .any(|other| other.location.as_deref() == Some(dir.as_str()))
                {
                    def.location = Some(format!("{dir}-v{}", version + 1));
                }
                boxdef.frames.insert(f.clone(), def);
            }
            Change::RenameFrame(h, b, from, to) => {
                let mut def = snap.frame(h, b, from)?.clone();
                let boxdef = snap.box_mut(h, b)?;
                if boxdef.frames.contains_key(to) {
                    return exists(ObjectKind::Frame, format!("{h}.{b}.{to}"));
                }
                let dir = def.dir(h, b, from);
                def.location = (dir != default_dir(h, b, to)).then_some(dir);
                boxdef.frames.remove(from);
                boxdef.frames.insert(to.clone(), def);
            }
            Change::DropFrame(h, b, f, dir) => {
                if snap.frame(h, b, f)?.dir(h, b, f) != *dir {
                    return Err(Error::Conflict {
                        frame: format!("{h}.{b}.{f}"),
                        detail: "another statement renamed or replaced the frame while it was \
                                 being dropped; try again"
                            .into(),
                    });
                }
                snap.box_mut(h, b)?.frames.remove(f);
            }
            Change::AddColumns(h, b, f, columns) => {
                let def = snap.frame_mut(h, b, f)?;
                for column in columns {
                    if def.columns.iter().any(|c| c.name == column.name) {
                        return exists(ObjectKind::Column, format!("{h}.{b}.{f}.{}", column.name));
                    }
                }
                def.columns.extend(columns.iter().cloned());
            }
            Change::SetColumnType(h, b, f, column, type_name) => {
                let def = snap.frame_mut(h, b, f)?;
                let Some(declared) = def.columns.iter_mut().find(|c| &c.name == column) else {
                    return Err(Error::NotFound {
                        kind: ObjectKind::Column,
                        name: format!("{h}.{b}.{f}.{column}"),
                        hint: String::new(),
                    });
                };
                declared.type_name = type_name.clone();
            }
            Change::CreateIndex(h, b, f, index) => {
                if let Some(frame) = snap.box_mut(h, b)?.index_owner(&index.name) {
                    return Err(Error::AlreadyExists {
                        kind: ObjectKind::Index,
                        name: format!("{h}.{b}.{} (on {frame})", index.name),
                    });
                }
                snap.frame_mut(h, b, f)?.indexes.push(index.clone());
            }
            Change::DropIndex(h, b, index) => {
                let boxdef = snap.box_mut(h, b)?;
                let Some(frame) = boxdef.index_owner(index) else {
                    return Err(Error::NotFound {
                        kind: ObjectKind::Index,
                        name: format!("{h}.{b}.{index}"),
                        hint: String::new(),
                    });
                };
                let def = boxdef.frames.get_mut(&frame).expect("found above");
                def.indexes.retain(|i| &i.name != index);
            }
        }
        Ok(())
    }
}

/// The registry of one storage root, with an in-memory copy of the newest
/// version that readers may use without touching storage.
#[derive(Debug)]
pub struct Registry {
    root: StorageRoot,
    current: RwLock<Arc<RegistrySnapshot>>,
}

impl Registry {
    /// Loads the newest registry version, creating version 0 (with
    /// `default.default`) if the root is new.
    pub async fn open(root: StorageRoot) -> Result<Self> {
        let registry = Registry {
            root,
            current: RwLock::new(Arc::new(RegistrySnapshot::initial())),
        };
        if registry.load_newest(None).await?.is_none() {
            let initial = RegistrySnapshot::initial();
            registry.try_commit(initial).await?;
            registry.load_newest(None).await?;
        }
        Ok(registry)
    }

    /// The cached snapshot; cheap, may be a little behind other nodes.
    pub fn current(&self) -> Arc<RegistrySnapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Brings the cached snapshot up to date (one LIST request when nothing changed).
    pub async fn refresh(&self) -> Result<Arc<RegistrySnapshot>> {
        let after = self.current().version;
        self.load_newest(Some(after)).await?;
        Ok(self.current())
    }

    /// Applies `change` to the newest version and commits it, retrying on
    /// conflicts with other writers.
    pub async fn apply(&self, change: Change) -> Result<Arc<RegistrySnapshot>> {
        for attempt in 0..MAX_ATTEMPTS {
            let base = self.refresh().await?;
            let mut next = (*base).clone();
            change.apply(&mut next)?;
            next.version = base.version + 1;
            next.txn = uuid::Uuid::new_v4().to_string();
            if self.try_commit(next).await? {
                return self.refresh().await;
            }
            tracing::debug!(attempt, "registry commit conflict, retrying");
            tokio::time::sleep(backoff(attempt)).await;
        }
        Err(Error::RegistryContention {
            attempts: MAX_ATTEMPTS,
        })
    }

    /// Tries to create the object for `snap`; true if this writer's version
    /// is the one that now stands.
    async fn try_commit(&self, snap: RegistrySnapshot) -> Result<bool> {
        let key = self.version_key(snap.version);
        let body = serde_json::to_vec_pretty(&snap).map_err(|e| Error::CorruptRegistry {
            path: key.to_string(),
            detail: e.to_string(),
        })?;
        let put_error = match self.root.put_if_absent(&key, Bytes::from(body)).await {
            Ok(Created::Yes) => return Ok(true),
            Ok(Created::AlreadyExists) => {
                let standing = self.read_version(snap.version).await?;
                return Ok(standing.is_some_and(|s| s.txn == snap.txn));
            }
            Err(e) => e,
        };
        // The reply may have been lost after the object was created: what
        // stands at the key says whether this writer's version committed
        // (absent: it did not, and the caller tries again).
        for attempt in 0..READ_BACK_ATTEMPTS {
            tokio::time::sleep(backoff(attempt)).await;
            match self.read_version(snap.version).await {
                Ok(standing) => return Ok(standing.is_some_and(|s| s.txn == snap.txn)),
                Err(e) => tracing::debug!(attempt, error = %e, "registry read-back failed"),
            }
        }
        Err(put_error)
    }

    fn version_key(&self, version: u64) -> object_store::path::Path {
        self.root.key(&format!("{REGISTRY_DIR}/{version:020}.json"))
    }

    async fn read_version(&self, version: u64) -> Result<Option<RegistrySnapshot>> {
        let key = self.version_key(version);
        let Some(bytes) = self.root.get(&key).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::CorruptRegistry {
                path: key.to_string(),
                detail: e.to_string(),
            })
    }

    /// Finds the highest version after `after` and caches it. Returns the
    /// version loaded, or `None` if there was nothing newer.
    async fn load_newest(&self, after: Option<u64>) -> Result<Option<u64>> {
        let dir = self.root.key(REGISTRY_DIR);
        let offset = after.map(|v| self.version_key(v));
        let listed = self.root.list_after(&dir, offset.as_ref()).await?;
        let newest = listed
            .iter()
            .filter_map(|m| m.location.filename())
            .filter_map(|name| name.strip_suffix(".json"))
            .filter_map(|v| v.parse::<u64>().ok())
            .filter(|v| after.is_none_or(|a| *v > a))
            .max();
        let Some(version) = newest else {
            return Ok(None);
        };
        let Some(snap) = self.read_version(version).await? else {
            return Ok(None);
        };
        let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
        if after.is_none() || snap.version > current.version {
            *current = Arc::new(snap);
        }
        Ok(Some(version))
    }
}

fn backoff(attempt: usize) -> Duration {
    let base = 10u64 * (1 << attempt.min(6));
    let jitter = uuid::Uuid::new_v4().as_u128() as u64 % base;
    Duration::from_millis(base + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn local_registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        let root = StorageRoot::parse(dir.path().to_str().unwrap()).unwrap();
        let registry = Registry::open(root).await.unwrap();
        (dir, registry)
    }

    #[tokio::test]
    async fn indexes_are_unique_per_box_and_make_the_clustering_key() {
        let (_dir, registry) = local_registry().await;
        let column = |name: &str| ColumnDef {
            name: name.into(),
            type_name: "int64".into(),
            nullable: true,
        };
        let def = FrameDef {
            columns: vec![column("a"), column("b")],
            partition_by: vec![],
            created_at: String::new(),
            indexes: vec![],
            location: None,
        };
        for frame in ["f", "g"] {
            let create = Change::CreateFrame(
                "default".into(),
                "default".into(),
                frame.into(),
                def.clone(),
            );
            registry.apply(create).await.unwrap();
        }
        let index = |name: &str, columns: &[&str]| IndexDef {
            name: name.into(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
        };
        let on = |frame: &str, i: IndexDef| {
            Change::CreateIndex("default".into(), "default".into(), frame.into(), i)
        };
        registry.apply(on("f", index("i1", &["b"]))).await.unwrap();
        registry
            .apply(on("f", index("i2", &["a", "b"])))
            .await
            .unwrap();
        let taken = registry
            .apply(on("g", index("i1", &["a"])))
            .await
            .unwrap_err();
        assert!(
            matches!(
                taken,
                Error::AlreadyExists {
                    kind: ObjectKind::Index,
                    ..
                }
            ),
            "{taken}"
        );
        let snapshot = registry.current();
        assert_eq!(
            snapshot
                .frame("default", "default", "f")
                .unwrap()
                .clustering_key(),
            ["b", "a"]
        );
        let drop = |i: &str| Change::DropIndex("default".into(), "default".into(), i.into());
        registry.apply(drop("i1")).await.unwrap();
        assert!(registry.apply(drop("i1")).await.is_err());
        let added = Change::AddColumns(
            "default".into(),
            "default".into(),
            "f".into(),
            vec![column("c")],
        );
        registry.apply(added.clone()).await.unwrap();
        assert!(matches!(
            registry.apply(added).await.unwrap_err(),
            Error::AlreadyExists { .. }
        ));
        let f = registry
            .current()
            .frame("default", "default", "f")
            .unwrap()
            .clone();
        assert_eq!(f.clustering_key(), ["a", "b"]);
        assert_eq!(f.columns.len(), 3);
    }

    #[tokio::test]
    async fn a_new_root_has_default_default() {
        let (_dir, registry) = local_registry().await;
        assert!(registry.current().boxdef("default", "default").is_ok());
    }

    #[tokio::test]
    async fn creating_the_same_hive_twice_reports_already_exists() {
        let (_dir, registry) = local_registry().await;
        registry
            .apply(Change::CreateHive("a".into()))
            .await
            .unwrap();
        let err = registry
            .apply(Change::CreateHive("a".into()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::AlreadyExists { .. }), "{err}");
    }

    #[tokio::test]
    async fn racing_registries_on_one_root_keep_every_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_str().unwrap().to_string();
        let mut tasks = Vec::new();
        for i in 0..6 {
            let path = path.clone();
            tasks.push(tokio::spawn(async move {
                let root = StorageRoot::parse(&path).unwrap();
                let registry = Registry::open(root).await.unwrap();
                registry
                    .apply(Change::CreateHive(format!("h{i}")))
                    .await
                    .map(|_| ())
            }));
        }
        let mut same = Vec::new();
        for i in 0..4 {
            let path = path.clone();
            same.push(tokio::spawn(async move {
                let _ = i;
                let root = StorageRoot::parse(&path).unwrap();
                let registry = Registry::open(root).await.unwrap();
                registry.apply(Change::CreateHive("shared".into())).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let wins = futures::future::join_all(same)
            .await
            .into_iter()
            .filter(|r| r.as_ref().unwrap().is_ok())
            .count();
        assert_eq!(wins, 1, "exactly one creator of the same hive wins");
        let root = StorageRoot::parse(&path).unwrap();
        let registry = Registry::open(root).await.unwrap();
        let snap = registry.current();
        for i in 0..6 {
            assert!(snap.hive(&format!("h{i}")).is_ok());
        }
        assert!(snap.hive("shared").is_ok());
        assert_eq!(snap.version, 7);
    }
}
