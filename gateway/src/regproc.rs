//! `regproc` columns compared as the OIDs they are.
//!
//! `pg_type.typreceive` and the catalog's other `regproc` columns hold a
//! function's name (`boolrecv`, `-` for none), which is how Postgres writes
//! a `regproc` as text and what clients read. But a `regproc` is an OID:
//! Npgsql joins `pg_proc p ON p.oid = t.typreceive` and the ADBC driver
//! filters `typreceive != 0`. Type coercion casts the name to an integer
//! for such a comparison, which fails; this rule makes that cast look the
//! function up in `pg_proc` instead (`-` is 0).

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ExprSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    create_udf, ColumnarValue, Expr, LogicalPlan, ScalarUDF, Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::oid_field::{kind, OID_ALIAS_KEY};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::ArrowTable;

/// Function OIDs by name, from the static `pg_proc`.
pub type ProcOids = Arc<HashMap<String, i32>>;

/// Reads the name → OID map of `pg_proc` (the lowest OID of an
/// overloaded name).
pub fn proc_oids(pg_proc: &ArrowTable) -> ProcOids {
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
    Arc::new(oids)
}

/// `regproc_oid(name)`: the OID a `regproc` column's text stands for.
pub fn regproc_oid(oids: ProcOids) -> ScalarUDF {
    create_udf(
        "regproc_oid",
        vec![DataType::Utf8],
        DataType::Int32,
        Volatility::Immutable,
        Arc::new(move |args: &[ColumnarValue]| {
            let names = match &args[0] {
                ColumnarValue::Array(array) => array.clone(),
                ColumnarValue::Scalar(scalar) => scalar.to_array()?,
            };
            let names = datafusion::arrow::compute::cast(&names, &DataType::Utf8)?;
            let oids: Int32Array = names
                .as_string::<i32>()
                .iter()
                .map(|name| {
                    let name = name?;
                    match name {
                        "-" => Some(0),
                        _ => oids.get(name).copied().or_else(|| name.parse().ok()),
                    }
                })
                .collect();
            Ok(ColumnarValue::Array(Arc::new(oids)))
        }),
    )
}

/// Replaces casts of `regproc` name columns to integers by
/// [`regproc_oid`]; runs after type coercion, which adds those casts.
#[derive(Debug)]
pub struct RegprocComparisons {
    pub regproc_oid: Arc<ScalarUDF>,
}

impl AnalyzerRule for RegprocComparisons {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let mut schema = DFSchema::empty();
            for input in node.inputs() {
                schema.merge(input.schema());
            }
            node.map_expressions(|expr| expr.transform_up(|expr| self.as_oid(expr, &schema)))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_regproc_comparisons"
    }
}

impl RegprocComparisons {
    fn as_oid(&self, expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        let Expr::Cast(cast) = &expr else {
            return Ok(Transformed::no(expr));
        };
        let Expr::Column(column) = cast.expr.as_ref() else {
            return Ok(Transformed::no(expr));
        };
        let regproc = schema.field_from_column(column).is_ok_and(|field| {
            field.data_type() == &DataType::Utf8
                && field.metadata().get(OID_ALIAS_KEY).map(String::as_str) == Some(kind::REGPROC)
        });
        if !regproc || !cast.field.data_type().is_integer() {
            return Ok(Transformed::no(expr));
        }
        let oid = Expr::ScalarFunction(ScalarFunction::new_udf(
            self.regproc_oid.clone(),
            vec![cast.expr.as_ref().clone()],
        ));
        let target = cast.field.data_type().clone();
        Ok(Transformed::yes(datafusion::logical_expr::cast(
            oid, target,
        )))
    }
}
