//! `generate_series` over `int4` bounds yields `int4`, as in Postgres.
//!
//! DataFusion's `generate_series` always yields `int8`. With every
//! argument an integer literal that fits `int4` (what Postgres types
//! `int4`), the rows are cast to `int4` through a view over DataFusion's
//! own table.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::logical_expr::{cast, col, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::rewrite_node_expressions;

/// DataFusion's `generate_series`, typed `int4` for `int4` arguments.
#[derive(Debug)]
pub struct Int4Series {
    pub inner: Arc<dyn TableFunctionImpl>,
}

impl TableFunctionImpl for Int4Series {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let exprs = args.exprs();
        let int4 = !exprs.is_empty()
            && exprs.iter().all(|expr| {
                matches!(expr, Expr::Literal(ScalarValue::Int64(Some(v)), _) if i32::try_from(*v).is_ok())
            });
        let series = self.inner.call_with_args(args)?;
        if !int4 {
            return Ok(series);
        }
        let column = series.schema().field(0).name().clone();
        let plan = LogicalPlanBuilder::scan("generate_series", provider_as_source(series), None)?
            .project(vec![cast(col(&column), DataType::Int32).alias(&column)])?
            .build()?;
        Ok(Arc::new(ViewTable::new(plan, None)))
    }
}

/// The scalar `generate_series` (a select-list set-returning function,
/// unnested) over `int4` arguments yields `int4`s: before type coercion
/// widens its arguments, the call is cast to a list of `int4`.
#[derive(Debug)]
pub struct Int4SeriesRows;

impl AnalyzerRule for Int4SeriesRows {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| rewrite_node_expressions(node, int4_rows))
            .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_int4_series_rows"
    }
}

fn int4_rows(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(function) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let int4 = function.func.name() == "generate_series"
        && !function.args.is_empty()
        && function
            .args
            .iter()
            .all(|arg| arg.get_type(schema).is_ok_and(|t| t == DataType::Int32));
    if !int4 {
        return Ok(Transformed::no(expr));
    }
    Ok(Transformed::yes(cast(
        expr,
        DataType::new_list(DataType::Int32, true),
    )))
}
