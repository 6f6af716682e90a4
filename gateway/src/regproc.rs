//! `regproc` columns as Postgres has them: written as a function's name,
//! compared and sent in binary as its OID.
//!
//! `pg_type.typreceive` and the catalog's other `regproc` columns hold a
//! function's name (`boolrecv`, `-` for none), which is how Postgres writes
//! a `regproc` as text and what clients read. But a `regproc` is an OID:
//! Npgsql joins `pg_proc p ON p.oid = t.typreceive`, the ADBC driver
//! filters `typreceive != 0`, and a binary result carries the 4-byte OID.
//! [`RegprocCasts`] plans the casts: one to an integer (which type coercion
//! adds for those comparisons, and which would fail on a name) looks the
//! name up in `pg_proc`; one to text (`typreceive::text`) is a plain `text`
//! value. [`oid_bytes`] writes a binary result column.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BinaryArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, ExprSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    create_udf, ColumnarValue, Expr, LogicalPlan, ScalarUDF, Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::oid_field::{kind, OID_ALIAS_KEY};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::{ArrowTable, PgCatalogStaticTables};

/// Function OIDs by name, from the static `pg_proc`; read once per process.
static PROC_OIDS: OnceLock<HashMap<String, i32>> = OnceLock::new();

/// Reads the name → OID map from `pg_proc` (the lowest OID of an
/// overloaded name), unless it was read already.
pub fn load_proc_oids(pg_proc: &ArrowTable) {
    PROC_OIDS.get_or_init(|| read_proc_oids(pg_proc));
}

fn read_proc_oids(pg_proc: &ArrowTable) -> HashMap<String, i32> {
    let mut oids = HashMap::new();
    for batch in pg_proc.data() {
        let (Some(oid), Some(name)) =
            (batch.column_by_name("oid"), batch.column_by_name("proname"))
        else {
            continue;
        };
        let (Some(oid), Some(name)) = (
            oid.as_primitive_opt::<Int32Type>(),
            name.as_string_opt::<i32>(),
        ) else {
            continue;
        };
        for i in 0..batch.num_rows() {
            if oid.is_valid(i) && name.is_valid(i) {
                let entry = oids
                    .entry(name.value(i).to_string())
                    .or_insert(oid.value(i));
                *entry = (*entry).min(oid.value(i));
            }
        }
    }
    oids
}

/// The OID a `regproc` name stands for: `-` is 0, a number is itself.
pub fn proc_oid(name: &str) -> Option<i32> {
    let oids = PROC_OIDS.get_or_init(|| {
        PgCatalogStaticTables::try_new()
            .map(|tables| read_proc_oids(&tables.pg_proc))
            .unwrap_or_default()
    });
    match name {
        "-" => Some(0),
        _ => oids.get(name).copied().or_else(|| name.parse().ok()),
    }
}

/// Whether `field` is a `regproc` column holding names.
pub fn is_regproc_name(field: &Field) -> bool {
    field.data_type() == &DataType::Utf8
        && field.metadata().get(OID_ALIAS_KEY).map(String::as_str) == Some(kind::REGPROC)
}

/// A `regproc` name column as binary `regproc` values: 4-byte OIDs.
pub fn oid_bytes(column: &ArrayRef) -> Option<ArrayRef> {
    let names = column.as_string_opt::<i32>()?;
    let bytes: BinaryArray = names
        .iter()
        .map(|name| proc_oid(name?).map(i32::to_be_bytes))
        .collect();
    Some(Arc::new(bytes))
}

/// `regproc_oid(name)`: the OID a `regproc` name stands for.
fn regproc_oid() -> ScalarUDF {
    create_udf(
        "regproc_oid",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let names = args[0].to_array(1)?;
            let oids: Int32Array = names
                .as_string::<i32>()
                .iter()
                .map(|n| proc_oid(n?))
                .collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    )
}

/// `regprocout(name)`: a `regproc` name as plain `text`.
fn regprocout() -> ScalarUDF {
    create_udf(
        "regprocout",
        vec![DataType::Utf8],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| Ok(args[0].clone())),
    )
}

/// Plans casts of `regproc` name columns: to an integer by
/// `regproc_oid`, to text by `regprocout`. Runs after type coercion,
/// which adds the integer casts.
#[derive(Debug)]
pub struct RegprocCasts {
    oid: Arc<ScalarUDF>,
    text: Arc<ScalarUDF>,
}

impl Default for RegprocCasts {
    fn default() -> Self {
        RegprocCasts {
            oid: Arc::new(regproc_oid()),
            text: Arc::new(regprocout()),
        }
    }
}

impl AnalyzerRule for RegprocCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let inputs: Vec<_> = node
                .inputs()
                .into_iter()
                .map(|i| i.schema().clone())
                .collect();
            // Most plans have no such cast: look before rewriting.
            let mut found = false;
            node.apply_expressions(|expr| {
                found = expr.exists(|expr| Ok(self.function_for(expr, &inputs).is_some()))?;
                Ok(if found {
                    TreeNodeRecursion::Stop
                } else {
                    TreeNodeRecursion::Continue
                })
            })?;
            if !found {
                return Ok(Transformed::no(node));
            }
            // Expressions keep their names (a parent reads its child's
            // columns by name); the node's schema follows their types (a
            // text cast no longer carries the column's `regproc` type).
            let names = NamePreserver::new(&node);
            node.map_expressions(|expr| {
                let name = names.save(&expr);
                expr.transform_up(|expr| self.cast(expr, &inputs))
                    .map(|rewritten| rewritten.update_data(|expr| name.restore(expr)))
            })?
            .map_data(|node| node.recompute_schema())
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_regproc_casts"
    }
}

impl RegprocCasts {
    /// The function that plans `expr`, a cast of a `regproc` column (of one
    /// of `inputs`) to an integer or to text; `None` for anything else.
    fn function_for(&self, expr: &Expr, inputs: &[DFSchemaRef]) -> Option<&Arc<ScalarUDF>> {
        let Expr::Cast(cast) = expr else {
            return None;
        };
        let Expr::Column(column) = cast.expr.as_ref() else {
            return None;
        };
        let target = cast.field.data_type();
        let function = match target {
            _ if target.is_integer() => &self.oid,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => &self.text,
            _ => return None,
        };
        inputs
            .iter()
            .any(|schema| {
                schema
                    .field_from_column(column)
                    .is_ok_and(|field| is_regproc_name(field))
            })
            .then_some(function)
    }

    /// `expr` with a cast of a `regproc` column planned as Postgres does it.
    fn cast(&self, expr: Expr, inputs: &[DFSchemaRef]) -> Result<Transformed<Expr>> {
        let Some(function) = self.function_for(&expr, inputs) else {
            return Ok(Transformed::no(expr));
        };
        let Expr::Cast(cast) = expr else {
            return Ok(Transformed::no(expr));
        };
        let call =
            Expr::ScalarFunction(ScalarFunction::new_udf(function.clone(), vec![*cast.expr]));
        Ok(Transformed::yes(datafusion::logical_expr::cast(
            call,
            cast.field.data_type().clone(),
        )))
    }
}
