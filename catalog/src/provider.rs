//! The DataFusion view of a root: hive = catalog, box = schema, frame = table.
//!
//! Names are answered from the registry's cached snapshot (the engine
//! refreshes it before each statement); a frame's table provider is opened at
//! the frame's newest Delta version each time DataFusion asks for it, so every
//! statement sees every commit made before it started.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{CatalogProvider, CatalogProviderList, SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};

use crate::time_travel::split_as_of;
use crate::{Catalog, FrameDef, Transaction};

/// Schemas every hive shows besides its boxes, e.g. the gateway's
/// `pg_catalog` and `information_schema`: (name, what makes it).
pub type SystemSchemas = Arc<Vec<(String, Arc<dyn SystemSchema>)>>;

/// Makes a system schema as seen from one hive (a Postgres database), so a
/// schema like `information_schema` can list just that hive's frames.
pub trait SystemSchema: std::fmt::Debug + Send + Sync {
    fn for_hive(&self, hive: &str) -> Arc<dyn SchemaProvider>;
}

/// A schema that is the same from every hive.
impl SystemSchema for Arc<dyn SchemaProvider> {
    fn for_hive(&self, _hive: &str) -> Arc<dyn SchemaProvider> {
        self.clone()
    }
}

/// All hives of a root, as DataFusion catalogs.
#[derive(Debug)]
pub struct HiveList {
    catalog: Arc<Catalog>,
    system: SystemSchemas,
    /// The session's transaction block, so frames read and write through it.
    txn: Transaction,
}

impl HiveList {
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self::with_system_schemas(catalog, Arc::default())
    }

    /// A hive list whose every hive also answers `system` schemas by name.
    pub fn with_system_schemas(catalog: Arc<Catalog>, system: SystemSchemas) -> Self {
        HiveList {
            catalog,
            system,
            txn: Transaction::default(),
        }
    }

    /// A hive list whose frames read and write through `txn`'s block.
    pub fn with_transaction(mut self, txn: Transaction) -> Self {
        self.txn = txn;
        self
    }
}

impl CatalogProviderList for HiveList {
    /// Hives are created through the catalog (SDK or SQL), never registered ad hoc.
    fn register_catalog(
        &self,
        _name: String,
        _catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        None
    }

    fn catalog_names(&self) -> Vec<String> {
        self.catalog.snapshot().hives.keys().cloned().collect()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        self.catalog.snapshot().hives.contains_key(name).then(|| {
            Arc::new(Hive {
                catalog: self.catalog.clone(),
                hive: name.to_string(),
                system: self.system.clone(),
                txn: self.txn.clone(),
            }) as _
        })
    }
}

#[derive(Debug)]
struct Hive {
    catalog: Arc<Catalog>,
    hive: String,
    system: SystemSchemas,
    txn: Transaction,
}

impl CatalogProvider for Hive {
    fn schema_names(&self) -> Vec<String> {
        let snap = self.catalog.snapshot();
        let mut names: Vec<String> = snap
            .hive(&self.hive)
            .map(|h| h.boxes.keys().cloned().collect())
            .unwrap_or_default();
        names.extend(self.system.iter().map(|(name, _)| name.clone()));
        names
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if let Some((_, schema)) = self.system.iter().find(|(n, _)| n == name) {
            return Some(schema.for_hive(&self.hive));
        }
        let snap = self.catalog.snapshot();
        snap.boxdef(&self.hive, name).ok().map(|_| {
            Arc::new(BoxSchema {
                catalog: self.catalog.clone(),
                hive: self.hive.clone(),
                boxname: name.to_string(),
                txn: self.txn.clone(),
            }) as _
        })
    }
}

#[derive(Debug)]
struct BoxSchema {
    catalog: Arc<Catalog>,
    hive: String,
    boxname: String,
    txn: Transaction,
}

#[async_trait]
impl SchemaProvider for BoxSchema {
    fn table_names(&self) -> Vec<String> {
        let snap = self.catalog.snapshot();
        snap.boxdef(&self.hive, &self.boxname)
            .map(|b| b.frames.keys().cloned().collect())
            .unwrap_or_default()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let snap = self.catalog.snapshot();
        let Ok(def) = snap.frame(&self.hive, &self.boxname, name) else {
            return self.table_as_of(name).await;
        };
        let provider = self
            .catalog
            .frames()
            .provider(&self.frame_name(name, def)?, def, &self.txn)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(provider))
    }

    fn table_exist(&self, name: &str) -> bool {
        let snap = self.catalog.snapshot();
        let frame = split_as_of(name).map_or(name, |(frame, _)| frame);
        snap.frame(&self.hive, &self.boxname, frame).is_ok()
    }
}

impl BoxSchema {
    fn frame_name(&self, frame: &str, def: &FrameDef) -> DfResult<crate::FrameName> {
        crate::FrameName::new(&self.hive, &self.boxname, frame)
            .map(|name| name.located(def))
            .map_err(|e| DataFusionError::External(Box::new(e)))
    }

    /// `frame@v3` or `frame@yyyyMMddHHmmssSSS`: the frame as of then
    /// (time_travel.rs); `None` when `name` names no frame that way.
    async fn table_as_of(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some((frame, as_of)) = split_as_of(name) else {
            return Ok(None);
        };
        let snap = self.catalog.snapshot();
        let Ok(def) = snap.frame(&self.hive, &self.boxname, frame) else {
            return Ok(None);
        };
        let provider = self
            .catalog
            .frames()
            .provider_as_of(&self.frame_name(frame, def)?, def, as_of)
            .await
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Some(provider))
    }
}
