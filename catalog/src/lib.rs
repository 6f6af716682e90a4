//! apiary-catalog: what is stored where.
//!
//! A [`Catalog`] is opened on a storage root ([`root::StorageRoot`]: a local
//! directory or an object-store bucket). It keeps the [`registry`] of hives
//! (databases), boxes (schemas) and frames (tables) under `_apiary/registry/`,
//! and each frame's data as a Delta Lake table under `{hive}/{box}/{frame}/`
//! (a renamed frame keeps the directory it had; [`frame`]). Names are
//! checked by [`names`] before they reach storage. [`provider::HiveList`]
//! exposes it all to DataFusion, which the engine crate uses to run SQL.
//!
//! Flow of a write: `Catalog::write` → registry lookup → [`frame::conform`]
//! (validation and safe casts) → delta-rs write and conditional-put commit.
//! Flow of a read: DataFusion asks [`provider::HiveList`] for a table →
//! the frame's Delta table provider at its newest version.

pub mod commit;
pub mod error;
pub mod frame;
pub mod maintenance;
pub mod merge;
pub mod names;
mod open_tables;
pub mod provider;
pub mod registry;
mod rewrite_lease;
pub mod root;
pub mod scan;
pub mod schema_change;
pub mod table;
pub mod time_travel;
pub mod transaction;
pub mod types;

use std::sync::Arc;

use arrow::array::RecordBatch;

pub use error::{Error, ObjectKind, Result};
pub use frame::{FrameName, FrameStats, Frames, WriteMode, WriteOptions, WriteResult};
pub use registry::{Change, ColumnDef, FrameDef, RegistrySnapshot, DEFAULT_BOX, DEFAULT_HIVE};
pub use root::StorageRoot;
pub use transaction::Transaction;

use registry::Registry;

/// A storage root opened for use: its registry and its frames.
#[derive(Debug)]
pub struct Catalog {
    root: StorageRoot,
    registry: Registry,
    frames: Frames,
}

impl Catalog {
    /// Opens the root at `uri`, checking that storage is reachable and
    /// creating the registry if the root is new.
    pub async fn open(uri: &str) -> Result<Arc<Self>> {
        let root = StorageRoot::parse(uri)?;
        root.check().await?;
        let registry = Registry::open(root.clone()).await?;
        Ok(Arc::new(Catalog {
            frames: Frames::new(root.clone()),
            root,
            registry,
        }))
    }

    pub fn root(&self) -> &StorageRoot {
        &self.root
    }

    pub fn frames(&self) -> &Frames {
        &self.frames
    }

    /// The cached registry snapshot (no storage access).
    pub fn snapshot(&self) -> Arc<RegistrySnapshot> {
        self.registry.current()
    }

    /// Re-reads the registry if another node changed it.
    pub async fn refresh(&self) -> Result<Arc<RegistrySnapshot>> {
        self.registry.refresh().await
    }

    pub async fn create_hive(&self, hive: &str) -> Result<()> {
        let hive = names::validate(ObjectKind::Hive, hive)?;
        self.registry.apply(Change::CreateHive(hive)).await?;
        Ok(())
    }

    pub async fn create_box(&self, hive: &str, boxname: &str) -> Result<()> {
        let hive = names::validate(ObjectKind::Hive, hive)?;
        let boxname = names::validate(ObjectKind::Box, boxname)?;
        self.registry
            .apply(Change::CreateBox(hive, boxname))
            .await?;
        Ok(())
    }

    /// Registers a frame and creates its (empty) Delta table.
    /// `columns` are `(name, type name)` pairs in order.
    pub async fn create_frame(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        columns: &[(String, String)],
        partition_by: &[String],
    ) -> Result<FrameDef> {
        let name = FrameName::new(hive, boxname, frame)?;
        let def = frame::define(columns, partition_by)?;
        let snapshot = self
            .registry
            .apply(Change::CreateFrame(
                name.hive.clone(),
                name.boxname.clone(),
                name.frame.clone(),
                def,
            ))
            .await?;
        let def = snapshot
            .frame(&name.hive, &name.boxname, &name.frame)?
            .clone();
        self.frames.create(&name.located(&def), &def).await?;
        Ok(def)
    }

    /// Removes a frame from the registry, then deletes its files.
    pub async fn drop_frame(&self, hive: &str, boxname: &str, frame: &str) -> Result<()> {
        let (name, _) = self.frame(hive, boxname, frame).await?;
        self.registry
            .apply(Change::DropFrame(
                name.hive.clone(),
                name.boxname.clone(),
                name.frame.clone(),
                name.dir().to_string(),
            ))
            .await?;
        self.frames.delete(&name).await
    }

    pub async fn list_hives(&self) -> Result<Vec<String>> {
        Ok(self.refresh().await?.hives.keys().cloned().collect())
    }

    pub async fn list_boxes(&self, hive: &str) -> Result<Vec<String>> {
        let hive = names::validate(ObjectKind::Hive, hive)?;
        let snap = self.refresh().await?;
        Ok(snap.hive(&hive)?.boxes.keys().cloned().collect())
    }

    pub async fn list_frames(&self, hive: &str, boxname: &str) -> Result<Vec<String>> {
        let hive = names::validate(ObjectKind::Hive, hive)?;
        let boxname = names::validate(ObjectKind::Box, boxname)?;
        let snap = self.refresh().await?;
        Ok(snap
            .boxdef(&hive, &boxname)?
            .frames
            .keys()
            .cloned()
            .collect())
    }

    /// Looks a frame up in the newest registry version.
    pub async fn frame(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
    ) -> Result<(FrameName, FrameDef)> {
        let name = FrameName::new(hive, boxname, frame)?;
        let snap = self.refresh().await?;
        let def = snap.frame(&name.hive, &name.boxname, &name.frame)?.clone();
        Ok((name.located(&def), def))
    }

    /// `ALTER TABLE … RENAME TO`: the frame takes the new name in the same
    /// box and keeps its directory, history and indexes. Statements that
    /// resolved the old name before still write to the same Delta table.
    pub async fn rename_frame(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        new_name: &str,
    ) -> Result<()> {
        let name = FrameName::new(hive, boxname, frame)?;
        let new_name = names::validate(ObjectKind::Frame, new_name)?;
        self.registry
            .apply(Change::RenameFrame(
                name.hive,
                name.boxname,
                name.frame,
                new_name,
            ))
            .await?;
        Ok(())
    }

    /// Validates `batches` against the frame and commits them in one transaction.
    pub async fn write(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        batches: &[RecordBatch],
        mode: WriteMode,
        opts: WriteOptions,
    ) -> Result<WriteResult> {
        let (name, def) = self.frame(hive, boxname, frame).await?;
        self.frames.write(&name, &def, batches, mode, opts).await
    }

    /// Cells, rows and bytes of a frame.
    pub async fn stats(&self, hive: &str, boxname: &str, frame: &str) -> Result<FrameStats> {
        let (name, def) = self.frame(hive, boxname, frame).await?;
        self.frames.stats(&name, &def).await
    }
}
