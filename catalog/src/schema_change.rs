//! Changes to a frame's declaration after it was created: new nullable
//! columns (`ALTER TABLE … ADD COLUMN`, the SDK's schema evolution), wider
//! column types (`ALTER COLUMN … TYPE`) and indexes, which Apiary keeps as
//! clustering keys.
//!
//! A new column is added to the Delta table first and to the registry
//! second. Cells written before it have no such column and read it as NULL.
//! Each step skips what is already done, so an interrupted change is
//! finished by running it again.

use std::sync::Arc;

use datafusion::logical_expr::{cast, ident};
use datafusion::prelude::SessionContext;
use deltalake::kernel::StructField;
use deltalake::operations::write::SchemaMode;
use deltalake::protocol::SaveMode;

use crate::error::{Error, ObjectKind, Result};
use crate::frame::{arrow_schema, FrameName, Frames};
use crate::registry::{Change, ColumnDef, FrameDef, IndexDef};
use crate::scan::live_files;
use crate::table::Tag;
use crate::types::{is_widening, ColumnType};
use crate::{names, Catalog};

impl Catalog {
    /// Appends nullable columns, given as `(name, type name)` pairs, to the
    /// frame. A column that must not be NULL is refused: the rows already
    /// written have no value for it.
    pub async fn add_columns(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        columns: &[(String, String)],
    ) -> Result<FrameDef> {
        let (name, def) = self.frame(hive, boxname, frame).await?;
        let mut added: Vec<ColumnDef> = Vec::with_capacity(columns.len());
        for (column, declared) in columns {
            let column = names::validate(ObjectKind::Column, column)?;
            if declared.trim().to_ascii_lowercase().ends_with("not null") {
                return Err(Error::InvalidSchema(format!(
                    "column {column:?} cannot be NOT NULL: the rows {name} already holds have \
                     no value for it; add it without NOT NULL"
                )));
            }
            if def.columns.iter().chain(&added).any(|c| c.name == column) {
                return Err(Error::AlreadyExists {
                    kind: ObjectKind::Column,
                    name: format!("{name}.{column}"),
                });
            }
            added.push(ColumnDef {
                name: column,
                type_name: ColumnType::parse(declared)?.name,
                nullable: true,
            });
        }
        self.frames.add_columns(&name, &added).await?;
        let snapshot = self
            .registry
            .apply(Change::AddColumns(
                name.hive.clone(),
                name.boxname.clone(),
                name.frame.clone(),
                added,
            ))
            .await?;
        Ok(snapshot
            .frame(&name.hive, &name.boxname, &name.frame)?
            .clone())
    }

    /// Schema evolution for a write: adds the columns of `schema` the frame
    /// lacks, as nullable columns of the matching types, and returns the
    /// frame's definition after.
    pub async fn add_missing_columns(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        schema: &arrow::datatypes::Schema,
    ) -> Result<FrameDef> {
        let (_, def) = self.frame(hive, boxname, frame).await?;
        let mut missing = Vec::new();
        for field in schema.fields() {
            let column = names::validate(ObjectKind::Column, field.name())?;
            if !def.columns.iter().any(|c| c.name == column) {
                missing.push((column, ColumnType::from_arrow(field.data_type())?.name));
            }
        }
        match missing.is_empty() {
            true => Ok(def),
            false => self.add_columns(hive, boxname, frame, &missing).await,
        }
    }

    /// `ALTER TABLE … ALTER COLUMN column TYPE declared` for a widening
    /// ([`is_widening`]). A change of the stored type rewrites every cell in
    /// one commit (delta-rs cannot write Delta's type-widening feature),
    /// taking turns with other rewrites; a change of the declared type only
    /// (`varchar(10)` to `text`) touches the registry alone.
    pub async fn change_column_type(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        column: &str,
        declared: &str,
    ) -> Result<FrameDef> {
        let (name, def) = self.frame(hive, boxname, frame).await?;
        let column = names::validate(ObjectKind::Column, column)?;
        let Some(current) = def.columns.iter().find(|c| c.name == column) else {
            return Err(Error::NotFound {
                kind: ObjectKind::Column,
                name: format!("{name}.{column}"),
                hint: String::new(),
            });
        };
        let from = ColumnType::parse(&current.type_name)?;
        let to = ColumnType::parse(declared)?;
        if from.name == to.name {
            return Ok(def);
        }
        if !is_widening(&from, &to) {
            return Err(Error::InvalidSchema(format!(
                "{name}.{column} cannot change from {} to {}: only widening changes keep \
                 every value (a wider integer or decimal, float32 to float64, a longer \
                 varchar); create a new frame with CREATE TABLE … AS SELECT CAST({column} AS …)",
                from.name, to.name
            )));
        }
        if from.arrow != to.arrow {
            if def.partition_by.contains(&column) {
                return Err(Error::InvalidSchema(format!(
                    "{column} partitions {name}, and a partition column keeps its stored type; \
                     create a new frame with CREATE TABLE … AS SELECT CAST({column} AS …)"
                )));
            }
            let mut widened = def.clone();
            for c in widened.columns.iter_mut().filter(|c| c.name == column) {
                c.type_name = to.name.clone();
            }
            self.frames
                .rewrite_with_schema(&name, &def, &widened)
                .await?;
        }
        let snapshot = self
            .registry
            .apply(Change::SetColumnType(
                name.hive.clone(),
                name.boxname.clone(),
                name.frame.clone(),
                column,
                to.name,
            ))
            .await?;
        Ok(snapshot
            .frame(&name.hive, &name.boxname, &name.frame)?
            .clone())
    }

    /// Records `CREATE INDEX index ON frame (columns)`: the columns become
    /// part of the frame's clustering key.
    pub async fn create_index(
        &self,
        hive: &str,
        boxname: &str,
        frame: &str,
        index: &str,
        columns: &[String],
    ) -> Result<()> {
        let (name, def) = self.frame(hive, boxname, frame).await?;
        let index = names::validate(ObjectKind::Index, index)?;
        let mut key = Vec::with_capacity(columns.len());
        for column in columns {
            let column = names::validate(ObjectKind::Column, column)?;
            if !def.columns.iter().any(|c| c.name == column) {
                return Err(Error::NotFound {
                    kind: ObjectKind::Column,
                    name: format!("{name}.{column}"),
                    hint: String::new(),
                });
            }
            if def.partition_by.contains(&column) {
                return Err(Error::InvalidSchema(format!(
                    "{column} partitions {name}, so its cells are already grouped by it; \
                     index other columns"
                )));
            }
            key.push(column);
        }
        if key.is_empty() {
            return Err(Error::InvalidSchema(
                "an index needs at least one column".into(),
            ));
        }
        self.registry
            .apply(Change::CreateIndex(
                name.hive,
                name.boxname,
                name.frame,
                IndexDef {
                    name: index,
                    columns: key,
                },
            ))
            .await?;
        Ok(())
    }

    /// Forgets the index; the frame's cells stay as they are.
    pub async fn drop_index(&self, hive: &str, boxname: &str, index: &str) -> Result<()> {
        let hive = names::validate(ObjectKind::Hive, hive)?;
        let boxname = names::validate(ObjectKind::Box, boxname)?;
        let index = names::validate(ObjectKind::Index, index)?;
        self.registry
            .apply(Change::DropIndex(hive, boxname, index))
            .await?;
        Ok(())
    }
}

impl Frames {
    /// Rewrites every cell of the frame with the column types of `widened`
    /// (a widening of `def`), and the Delta schema with them, in one commit
    /// that removes exactly the cells it read: rows appended meanwhile stay,
    /// and read in the wider type. Does nothing when the Delta schema has
    /// the new types already (an earlier attempt's).
    pub(crate) async fn rewrite_with_schema(
        &self,
        name: &FrameName,
        def: &FrameDef,
        widened: &FrameDef,
    ) -> Result<()> {
        self.rewriting(name, self.rewrite_with_schema_now(name, def, widened))
            .await?
    }

    async fn rewrite_with_schema_now(
        &self,
        name: &FrameName,
        def: &FrameDef,
        widened: &FrameDef,
    ) -> Result<()> {
        let delta = |e| Error::delta(name.to_string(), e);
        let table = self.open(name).await?;
        let schema = table.snapshot().map_err(delta)?.schema();
        let mut done = true;
        for column in &widened.columns {
            let stored = ColumnType::parse(&column.type_name)?.delta()?;
            done &= schema
                .field(&column.name)
                .is_some_and(|field| field.data_type() == &stored);
        }
        if done {
            return Ok(());
        }
        let files = live_files(&table).map_err(delta)?.ok_or_else(|| {
            Error::InvalidSchema(format!(
                "frame {name} uses deletion vectors or column mapping (written by another \
                 tool), so Apiary cannot rewrite it"
            ))
        })?;
        let target = arrow_schema(widened)?;
        let query = |e| Error::Query(Box::new(e));
        let cells = SessionContext::new()
            .read_table(Arc::new(self.cell_scan(name, def, &files)?))
            .map_err(query)?;
        let plan = cells
            .select(
                target
                    .fields()
                    .iter()
                    .map(|f| cast(ident(f.name()), f.data_type().clone()).alias(f.name()))
                    .collect::<Vec<_>>(),
            )
            .map_err(query)?
            .into_unoptimized_plan();
        let tag = Tag::new(&table);
        let written = table
            .write(Vec::new())
            .with_input_plan(plan)
            .with_save_mode(SaveMode::Overwrite)
            .with_schema_mode(SchemaMode::Overwrite)
            .with_partition_columns(widened.partition_by.clone())
            .with_commit_properties(tag.properties())
            .await;
        match written {
            Ok(_) => Ok(()),
            Err(e) => tag.confirm_counts(name, e, &[]).await.map(|_| ()),
        }
    }

    /// Adds `columns` to the frame's Delta schema, skipping any it already
    /// has (an earlier attempt's).
    pub(crate) async fn add_columns(&self, name: &FrameName, columns: &[ColumnDef]) -> Result<()> {
        let table = self.open(name).await?;
        let schema = table
            .snapshot()
            .map_err(|e| Error::delta(name.to_string(), e))?
            .schema();
        let mut fields = Vec::with_capacity(columns.len());
        for column in columns {
            if schema.field(&column.name).is_none() {
                let ty = ColumnType::parse(&column.type_name)?;
                fields.push(StructField::new(column.name.clone(), ty.delta()?, true));
            }
        }
        if fields.is_empty() {
            return Ok(());
        }
        table
            .add_columns()
            .with_fields(fields)
            .await
            .map_err(|e| Error::delta(name.to_string(), e))?;
        Ok(())
    }
}
