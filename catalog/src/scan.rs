//! Cell scans: a frame read as plain Parquet files through DataFusion's own
//! Parquet source.
//!
//! The Delta snapshot gives the live cells of a frame with their sizes,
//! partition values and min/max statistics. [`CellScan`] prunes cells with a
//! `PruningPredicate` over exactly those (partition values count as
//! min = max), then hands the survivors to a `DataSourceExec` with partition
//! values as per-file dictionary constants — no per-row materialisation. It
//! is only used for frames without deletion vectors or column mapping
//! (Apiary never writes those); other tables go through delta-rs's provider.
//! The same file list is what distributed scans will ship between nodes.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, DFSchema, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use deltalake::kernel::Add;
use deltalake::DeltaTable;
use object_store::path::Path;
use object_store::ObjectStore;
use url::Url;

/// One live Parquet file of a frame.
#[derive(Debug, Clone)]
struct Cell {
    path: Path,
    size: u64,
    rows: Option<usize>,
    /// One per partition column, dictionary-wrapped.
    partition_values: Vec<ScalarValue>,
    /// Per column name, where the log has them.
    stats: HashMap<String, ColumnStats>,
}

/// A cell's statistics for one column, from its Delta `add` action.
#[derive(Debug, Clone, Default)]
struct ColumnStats {
    min: Option<ScalarValue>,
    max: Option<ScalarValue>,
    nulls: Option<u64>,
}

/// A frame at one Delta version, scanned as plain Parquet cells.
#[derive(Debug)]
pub struct CellScan {
    /// Table order; partition columns are `Dictionary(UInt16, T)`.
    schema: SchemaRef,
    /// The non-partition columns, in table order.
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    /// For each table column, its index in the scan's output (file columns then partitions).
    scan_index: Vec<usize>,
    store_url: ObjectStoreUrl,
    /// The store to register for `store_url`; `None` for local files.
    store: Option<Arc<dyn ObjectStore>>,
    cells: Vec<Cell>,
}

impl CellScan {
    /// Builds a scan over `table`'s live files, or `None` when the table uses
    /// Delta features a plain Parquet read would get wrong.
    pub fn try_new(
        table: &DeltaTable,
        table_url: &Url,
        store: Option<Arc<dyn ObjectStore>>,
        arrow_schema: SchemaRef,
        partition_by: &[String],
    ) -> Result<Option<Self>, deltalake::DeltaTableError> {
        let Some(files) = live_files(table)? else {
            return Ok(None);
        };
        Self::from_files(&files, table_url, store, arrow_schema, partition_by).map(Some)
    }

    /// Builds a scan over exactly `files` (the `add` actions of cells under
    /// `table_url`): a version's live files, or those a transaction block
    /// sees.
    pub fn from_files(
        files: &[Add],
        table_url: &Url,
        store: Option<Arc<dyn ObjectStore>>,
        arrow_schema: SchemaRef,
        partition_by: &[String],
    ) -> Result<Self, deltalake::DeltaTableError> {
        let mut file_fields = Vec::new();
        let mut partition_fields = Vec::new();
        for field in arrow_schema.fields() {
            if partition_by.contains(field.name()) {
                partition_fields.push(field.clone());
            } else {
                file_fields.push(field.clone());
            }
        }
        let wrapped: Vec<FieldRef> = partition_fields
            .iter()
            .map(|f| {
                Arc::new(Field::new(
                    f.name(),
                    DataType::Dictionary(
                        Box::new(DataType::UInt16),
                        Box::new(f.data_type().clone()),
                    ),
                    f.is_nullable(),
                ))
            })
            .collect();
        let mut table_fields = Vec::new();
        let mut scan_index = Vec::new();
        let (mut next_file, mut next_part) = (0, file_fields.len());
        for field in arrow_schema.fields() {
            if let Some(p) = partition_fields
                .iter()
                .position(|f| f.name() == field.name())
            {
                table_fields.push(wrapped[p].clone());
                scan_index.push(next_part);
                next_part += 1;
            } else {
                table_fields.push(field.clone());
                scan_index.push(next_file);
                next_file += 1;
            }
        }

        let root = Path::from_url_path(table_url.path())
            .map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))?;
        let mut cells = Vec::with_capacity(files.len());
        for file in files {
            let relative =
                Path::parse(&file.path).unwrap_or_else(|_| Path::from(file.path.as_str()));
            let path = Path::from_iter(root.parts().chain(relative.parts()));
            let mut partition_values = Vec::with_capacity(partition_fields.len());
            for field in &partition_fields {
                let value = match file.partition_values.get(field.name()).cloned().flatten() {
                    Some(text) => ScalarValue::try_from_string(text, field.data_type())?,
                    None => ScalarValue::try_from(field.data_type())?,
                };
                partition_values.push(ScalarValue::Dictionary(
                    Box::new(DataType::UInt16),
                    Box::new(value),
                ));
            }
            let (rows, stats) = parse_stats(file.stats.as_deref(), &file_fields);
            cells.push(Cell {
                path,
                size: file.size.max(0) as u64,
                rows,
                partition_values,
                stats,
            });
        }
        Ok(CellScan {
            schema: Arc::new(Schema::new(table_fields)),
            file_schema: Arc::new(Schema::new(file_fields)),
            partition_fields: wrapped,
            scan_index,
            store_url: store_url(table_url)?,
            store,
            cells,
        })
    }

    /// Which cells may hold rows matching `predicate` (all if there is none).
    fn prune(&self, predicate: Option<&Arc<dyn PhysicalExpr>>) -> DfResult<Vec<&Cell>> {
        let pruning = predicate.and_then(|p| {
            PruningPredicateBuilder::new()
                .with_file_schema(self.schema.clone())
                .build(p.clone())
        });
        let Some(pruning) = pruning else {
            return Ok(self.cells.iter().collect());
        };
        let keep = pruning.prune(self)?;
        Ok(self
            .cells
            .iter()
            .zip(keep)
            .filter_map(|(cell, keep)| keep.then_some(cell))
            .collect())
    }

    /// Per-cell lower (`min`) or upper bound of a column: the partition
    /// value for partition columns, the log's statistics otherwise.
    fn bounds(&self, column: &Column, min: bool) -> Option<ArrayRef> {
        let index = self.schema.index_of(&column.name).ok()?;
        let field = self.schema.field(index);
        let data_type = match field.data_type() {
            DataType::Dictionary(_, value) => value.as_ref().clone(),
            other => other.clone(),
        };
        let null = ScalarValue::try_from(&data_type).ok()?;
        let values = self.cells.iter().map(|cell| {
            self.partition_value(cell, index)
                .or_else(|| {
                    let stats = cell.stats.get(field.name())?;
                    if min {
                        stats.min.clone()
                    } else {
                        stats.max.clone()
                    }
                })
                .filter(|v| v.data_type() == data_type)
                .unwrap_or_else(|| null.clone())
        });
        ScalarValue::iter_to_array(values).ok()
    }

    fn partition_value(&self, cell: &Cell, index: usize) -> Option<ScalarValue> {
        let name = self.schema.field(index).name();
        let p = self
            .partition_fields
            .iter()
            .position(|f| f.name() == name)?;
        match &cell.partition_values[p] {
            ScalarValue::Dictionary(_, inner) => Some(inner.as_ref().clone()),
            other => Some(other.clone()),
        }
    }
}

impl PruningStatistics for CellScan {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, true)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.bounds(column, false)
    }

    fn num_containers(&self) -> usize {
        self.cells.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let name = &column.name;
        let counts: UInt64Array = self
            .cells
            .iter()
            .map(|cell| cell.stats.get(name).and_then(|s| s.nulls))
            .collect();
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: UInt64Array = self
            .cells
            .iter()
            .map(|c| c.rows.map(|r| r as u64))
            .collect();
        Some(Arc::new(counts))
    }

    fn contained(
        &self,
        _column: &Column,
        _values: &std::collections::HashSet<ScalarValue>,
    ) -> Option<BooleanArray> {
        None
    }
}

#[async_trait]
impl TableProvider for CellScan {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let predicate = match conjunction(filters.iter().cloned()) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(self.schema.clone())?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            None => None,
        };
        let cells = self.prune(predicate.as_ref())?;
        let table_projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        if cells.is_empty() {
            let projected = Arc::new(self.schema.project(&table_projection)?);
            return Ok(Arc::new(EmptyExec::new(projected)));
        }
        if let Some(store) = &self.store {
            let runtime = state.runtime_env();
            if runtime.object_store(&self.store_url).is_err() {
                runtime.register_object_store(self.store_url.as_ref(), store.clone());
            }
        }

        let groups = balance(files(&cells), state.config().target_partitions());
        let table_schema = TableSchema::builder(self.file_schema.clone())
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let mut source = ParquetSource::new(table_schema)
            .with_table_parquet_options(state.table_options().parquet.clone());
        if let Some(predicate) = predicate {
            source = source.with_predicate(predicate);
        }
        let scan_projection: Vec<usize> = table_projection
            .iter()
            .map(|i| self.scan_index[*i])
            .collect();
        let config = FileScanConfigBuilder::new(self.store_url.clone(), Arc::new(source))
            .with_file_groups(groups)
            .with_projection_indices(Some(scan_projection))?
            .with_limit(if filters.is_empty() { limit } else { None })
            .build();
        Ok(DataSourceExec::from_data_source(config))
    }
}

/// The live cells of `table` as `add` actions, or `None` when the table
/// uses deletion vectors or column mapping, which a plain Parquet read of
/// its cells would get wrong.
pub fn live_files(table: &DeltaTable) -> Result<Option<Vec<Add>>, deltalake::DeltaTableError> {
    let snapshot = table.snapshot()?;
    let config = snapshot.metadata().configuration();
    if config
        .get("delta.columnMapping.mode")
        .is_some_and(|m| m != "none")
    {
        return Ok(None);
    }
    let mut files = Vec::new();
    for file in snapshot.log_data().iter() {
        if file.deletion_vector_descriptor().is_some() {
            return Ok(None);
        }
        #[allow(deprecated)]
        files.push(file.add_action());
    }
    Ok(Some(files))
}

/// The cells as DataFusion files, with their partition values.
fn files(cells: &[&Cell]) -> Vec<PartitionedFile> {
    cells
        .iter()
        .map(|cell| {
            PartitionedFile::new(cell.path.to_string(), cell.size)
                .with_partition_values(cell.partition_values.clone())
        })
        .collect()
}

/// Spreads files over at most `n` groups (never an empty one), largest
/// first into the lightest group, so each group gets a similar number of
/// bytes. Local scans use it for their threads, distributed scans for their
/// tasks.
pub fn balance(mut files: Vec<PartitionedFile>, n: usize) -> Vec<FileGroup> {
    files.sort_by_key(|f| std::cmp::Reverse(f.object_meta.size));
    let n = n.max(1).min(files.len());
    let mut groups: Vec<(u64, Vec<PartitionedFile>)> = (0..n).map(|_| (0, Vec::new())).collect();
    for file in files {
        if let Some(lightest) = groups.iter_mut().min_by_key(|(bytes, _)| *bytes) {
            lightest.0 += file.object_meta.size;
            lightest.1.push(file);
        }
    }
    groups
        .into_iter()
        .map(|(_, files)| FileGroup::new(files))
        .collect()
}

/// `s3://bucket/...` → `s3://bucket`, `file:///...` → `file://`.
fn store_url(table_url: &Url) -> Result<ObjectStoreUrl, deltalake::DeltaTableError> {
    let base = format!(
        "{}://{}",
        table_url.scheme(),
        table_url.host_str().unwrap_or("")
    );
    ObjectStoreUrl::parse(base).map_err(|e| deltalake::DeltaTableError::Generic(e.to_string()))
}

/// Reads min/max/null counts from a Delta `add` action's stats JSON for the
/// column types whose stats are exact (strings are truncated in the log, so
/// they are left out), and the cell's row count.
fn parse_stats(
    stats: Option<&str>,
    fields: &[FieldRef],
) -> (Option<usize>, HashMap<String, ColumnStats>) {
    let mut out = HashMap::new();
    let Some(json) = stats.and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()) else {
        return (None, out);
    };
    let rows = json
        .get("numRecords")
        .and_then(|n| n.as_u64())
        .map(|n| n as usize);
    for field in fields {
        let exact = matches!(
            field.data_type(),
            DataType::Int8
                | DataType::Int16
                | DataType::Int32
                | DataType::Int64
                | DataType::Float32
                | DataType::Float64
                | DataType::Date32
                | DataType::Timestamp(_, _)
                | DataType::Decimal128(_, _)
        );
        let scalar = |key: &str| -> Option<ScalarValue> {
            if !exact {
                return None;
            }
            let value = json.get(key)?.get(field.name())?;
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            ScalarValue::try_from_string(text, field.data_type()).ok()
        };
        let nulls = json
            .get("nullCount")
            .and_then(|n| n.get(field.name()))
            .and_then(|n| n.as_u64());
        out.insert(
            field.name().clone(),
            ColumnStats {
                min: scalar("minValues"),
                max: scalar("maxValues"),
                nulls,
            },
        );
    }
    (rows, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_spreads_bytes_and_never_makes_empty_groups() {
        let files: Vec<PartitionedFile> = [50u64, 10, 30, 20, 40]
            .iter()
            .enumerate()
            .map(|(i, size)| PartitionedFile::new(format!("f{i}.parquet"), *size))
            .collect();
        let groups = balance(files.clone(), 2);
        let sums: Vec<u64> = groups
            .iter()
            .map(|g| g.iter().map(|f| f.object_meta.size).sum())
            .collect();
        assert_eq!(sums, [80, 70]);
        assert_eq!(balance(files, 9).len(), 5);
    }
}
