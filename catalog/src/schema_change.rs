//! Changes to a frame's declaration after it was created: new nullable
//! columns (`ALTER TABLE … ADD COLUMN`, the SDK's schema evolution) and
//! indexes, which Apiary keeps as clustering keys.
//!
//! A new column is added to the Delta table first and to the registry
//! second. Cells written before it have no such column and read it as NULL.
//! Each step skips what is already done, so an interrupted change is
//! finished by running it again.

use deltalake::kernel::StructField;

use crate::error::{Error, ObjectKind, Result};
use crate::frame::{FrameName, Frames};
use crate::registry::{Change, ColumnDef, FrameDef, IndexDef};
use crate::types::ColumnType;
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
