//! The frames' indexes in `pg_catalog`: `pg_indexes`, rows of `pg_index`
//! and `pg_class` (relkind `i`), `pg_class.relhasindex` and
//! `pg_get_indexdef`, so that psql's `\d frame` and tools that reflect
//! indexes see them. Apiary keeps an index as a clustering key (`CREATE
//! INDEX` records the columns `OPTIMIZE` Z-orders cells by); the rows come
//! from the registry, scoped to the connection's hive by joining with the
//! frames `pg_class` lists.

use std::sync::Arc;

use apiary_engine::catalog::Catalog;
use arrow::array::{ArrayRef, Int16Array, Int32Array, RecordBatch, StringArray};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::TableProvider;
use datafusion::common::exec_err;
use datafusion::datasource::{provider_as_source, MemTable, ViewTable};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{
    cast, col, lit, ColumnarValue, Expr, JoinType, LogicalPlan, LogicalPlanBuilder,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::pg::with_rows;

/// One index of the registry.
struct Index {
    boxname: String,
    frame: String,
    name: String,
    columns: Vec<String>,
    /// The columns' attribute numbers in the frame (1-based).
    attnums: Vec<i16>,
}

impl Index {
    /// An OID from the index's name, above the OIDs relations are given
    /// (PostgreSQL's own and the frames') and below the row types' (2^29).
    fn oid(&self) -> i32 {
        let mut hash: u32 = 0x811c_9dc5; // FNV-1a
        for byte in format!("{}.{}.{}", self.boxname, self.frame, self.name).bytes() {
            hash = (hash ^ byte as u32).wrapping_mul(0x0100_0193);
        }
        (1 << 28) | (hash & 0x0fff_ffff) as i32
    }

    /// What `pg_get_indexdef` and `pg_indexes.indexdef` say.
    fn definition(&self) -> String {
        format!(
            "CREATE INDEX {} ON {}.{} USING zorder ({})",
            self.name,
            self.boxname,
            self.frame,
            self.columns.join(", ")
        )
    }
}

fn registry_indexes(catalog: &Catalog) -> Vec<Index> {
    let snapshot = catalog.snapshot();
    let mut indexes = Vec::new();
    for hive in snapshot.hives.values() {
        for (boxname, boxdef) in &hive.boxes {
            for (frame, def) in &boxdef.frames {
                for index in &def.indexes {
                    let attnums = index
                        .columns
                        .iter()
                        .map(|c| {
                            def.columns
                                .iter()
                                .position(|d| &d.name == c)
                                .map_or(0, |p| p as i16 + 1)
                        })
                        .collect();
                    indexes.push(Index {
                        boxname: boxname.clone(),
                        frame: frame.clone(),
                        name: index.name.clone(),
                        columns: index.columns.clone(),
                        attnums,
                    });
                }
            }
        }
    }
    indexes
}

/// Frames that have an index, by name (`pg_class.relhasindex`).
pub fn indexed_frames(catalog: &Catalog) -> Vec<String> {
    let mut frames: Vec<String> = registry_indexes(catalog)
        .into_iter()
        .map(|i| i.frame)
        .collect();
    frames.dedup();
    frames
}

/// The registry's indexes joined with their frames in `pg_class`: one row
/// per index with `idx_*` columns and the frame's `frame_oid` and
/// `frame_namespace`.
fn indexes_plan(
    catalog: &Catalog,
    pg_class: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
) -> DfResult<LogicalPlan> {
    let indexes = registry_indexes(catalog);
    let text = |name: &str| Field::new(name, DataType::Utf8, false);
    let schema = Arc::new(Schema::new(vec![
        text("idx_box"),
        text("idx_frame"),
        text("idx_name"),
        Field::new("idx_oid", DataType::Int32, false),
        Field::new("idx_natts", DataType::Int16, false),
        text("idx_key"),
        text("idx_zeros"),
        text("idx_def"),
    ]));
    let texts = |value: &dyn Fn(&Index) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(indexes.iter().map(value)))
    };
    let columns: Vec<ArrayRef> = vec![
        texts(&|i| i.boxname.clone()),
        texts(&|i| i.frame.clone()),
        texts(&|i| i.name.clone()),
        Arc::new(Int32Array::from_iter_values(indexes.iter().map(Index::oid))),
        Arc::new(Int16Array::from_iter_values(
            indexes.iter().map(|i| i.columns.len() as i16),
        )),
        texts(&|i| {
            let keys: Vec<String> = i.attnums.iter().map(ToString::to_string).collect();
            keys.join(" ")
        }),
        texts(&|i| vec!["0"; i.columns.len()].join(" ")),
        texts(&|i| i.definition()),
    ];
    let table = MemTable::try_new(
        schema.clone(),
        vec![vec![RecordBatch::try_new(schema, columns)?]],
    )?;
    let frames = LogicalPlanBuilder::scan("c", provider_as_source(pg_class), None)?
        .join(
            LogicalPlanBuilder::scan("n", provider_as_source(pg_namespace), None)?.build()?,
            JoinType::Inner,
            (vec!["c.relnamespace"], vec!["n.oid"]),
            None,
        )?
        .project(vec![
            col("n.nspname").alias("frame_box"),
            col("c.relname").alias("frame_name"),
            col("c.oid").alias("frame_oid"),
            col("c.relnamespace").alias("frame_namespace"),
        ])?
        .build()?;
    LogicalPlanBuilder::scan("i", provider_as_source(Arc::new(table)), None)?
        .join(
            frames,
            JoinType::Inner,
            (
                vec!["i.idx_box", "i.idx_frame"],
                vec!["frame_box", "frame_name"],
            ),
            None,
        )?
        .build()
}

/// PostgreSQL's `pg_indexes` view.
pub fn pg_indexes(
    catalog: &Catalog,
    pg_class: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
) -> DfResult<Arc<dyn TableProvider>> {
    let plan = LogicalPlanBuilder::from(indexes_plan(catalog, pg_class, pg_namespace)?)
        .project(vec![
            col("idx_box").alias("schemaname"),
            col("idx_frame").alias("tablename"),
            col("idx_name").alias("indexname"),
            lit(ScalarValue::Utf8(None)).alias("tablespace"),
            col("idx_def").alias("indexdef"),
        ])?
        .build()?;
    Ok(Arc::new(ViewTable::new(plan, None)))
}

/// `table` (the crate's `pg_index` or `pg_class`) with a row per index
/// after its own: `value` gives a column's expression over
/// [`indexes_plan`]'s columns, or `None` for its zero value. The rows are
/// computed here (and only when some frame has an index: catalog queries
/// are frequent), so queries over the catalog see plain rows (a unioned
/// projection tripped DataFusion's common-subexpression rules on pgJDBC's
/// `getPrimaryKeys`).
async fn with_index_rows(
    name: &str,
    table: Arc<dyn TableProvider>,
    indexes: LogicalPlan,
    value: impl Fn(&str) -> Option<Expr>,
) -> DfResult<Arc<dyn TableProvider>> {
    let columns = table
        .schema()
        .fields()
        .iter()
        .map(|field| {
            let expr = match value(field.name()) {
                Some(expr) => expr,
                None if field.is_nullable() => lit(ScalarValue::try_from(field.data_type())?),
                None if field.data_type() == &DataType::Utf8 => lit(""),
                None => lit(ScalarValue::new_zero(field.data_type())?),
            };
            Ok(cast(expr, field.data_type().clone()).alias(field.name()))
        })
        .collect::<DfResult<Vec<_>>>()?;
    let rows = LogicalPlanBuilder::from(indexes)
        .project(columns)?
        .build()?;
    let batches = SessionContext::new()
        .execute_logical_plan(rows)
        .await?
        .collect()
        .await?;
    let schema = table.schema();
    let rows = concat_batches(&schema, &batches)?;
    let rows = RecordBatch::try_new(schema, rows.columns().to_vec())?;
    with_rows(name, table, rows)
}

/// `pg_index` with a row per frame index: not unique, not a primary key,
/// valid and ready, its columns in `indkey`.
pub async fn pg_index(
    catalog: &Catalog,
    pg_index: Arc<dyn TableProvider>,
    pg_class: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
) -> DfResult<Arc<dyn TableProvider>> {
    if registry_indexes(catalog).is_empty() {
        return Ok(pg_index);
    }
    let indexes = indexes_plan(catalog, pg_class, pg_namespace)?;
    with_index_rows("pg_index", pg_index, indexes, |column| match column {
        "indexrelid" => Some(col("idx_oid")),
        "indrelid" => Some(col("frame_oid")),
        "indnatts" | "indnkeyatts" => Some(col("idx_natts")),
        "indimmediate" | "indisvalid" | "indisready" | "indislive" => Some(lit(true)),
        "indkey" => Some(col("idx_key")),
        "indcollation" | "indclass" | "indoption" => Some(col("idx_zeros")),
        _ => None,
    })
    .await
}

/// `pg_class` rows (relkind `i`) for the frames' indexes, after `pg_class`'s own.
pub async fn with_index_relations(
    catalog: &Catalog,
    pg_class: Arc<dyn TableProvider>,
    frames: Arc<dyn TableProvider>,
    pg_namespace: Arc<dyn TableProvider>,
) -> DfResult<Arc<dyn TableProvider>> {
    if registry_indexes(catalog).is_empty() {
        return Ok(pg_class);
    }
    let indexes = indexes_plan(catalog, frames, pg_namespace)?;
    with_index_rows("pg_class", pg_class, indexes, |column| match column {
        "oid" => Some(col("idx_oid")),
        "relname" => Some(col("idx_name")),
        "relnamespace" => Some(col("frame_namespace")),
        "relkind" => Some(lit("i")),
        "relowner" => Some(lit(10)),
        "relnatts" => Some(col("idx_natts")),
        "relpersistence" => Some(lit("p")),
        "relreplident" => Some(lit("n")),
        "relispopulated" => Some(lit(true)),
        _ => None,
    })
    .await
}

/// `pg_get_indexdef(oid [, column, pretty])`: the `CREATE INDEX` of a
/// frame's index, NULL for any other OID.
#[derive(Debug)]
pub struct IndexDefinition {
    catalog: Arc<Catalog>,
    signature: Signature,
}

impl IndexDefinition {
    pub fn udf(catalog: Arc<Catalog>) -> ScalarUDF {
        ScalarUDF::from(IndexDefinition {
            catalog,
            signature: Signature::variadic_any(Volatility::Stable),
        })
    }
}

impl PartialEq for IndexDefinition {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.catalog, &other.catalog)
    }
}

impl Eq for IndexDefinition {}

impl std::hash::Hash for IndexDefinition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "pg_get_indexdef".hash(state);
    }
}

impl ScalarUDFImpl for IndexDefinition {
    fn name(&self) -> &str {
        "pg_get_indexdef"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let definitions: std::collections::HashMap<i64, String> = registry_indexes(&self.catalog)
            .iter()
            .map(|i| (i.oid() as i64, i.definition()))
            .collect();
        let oids = args.args[0].to_array(args.number_rows)?;
        let oids = arrow::compute::cast(&oids, &DataType::Int64)?;
        let Some(oids) = oids.as_any().downcast_ref::<arrow::array::Int64Array>() else {
            return exec_err!("pg_get_indexdef takes an index oid");
        };
        let definitions: StringArray = oids
            .iter()
            .map(|oid| oid.and_then(|oid| definitions.get(&oid).cloned()))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(definitions)))
    }
}
