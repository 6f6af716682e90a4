//! `generate_series` over `int4` bounds yields `int4`, as in Postgres.
//!
//! DataFusion's `generate_series` always yields `int8`. With every
//! argument an integer literal that fits `int4` (what Postgres types
//! `int4`), the rows are cast to `int4` through a view over DataFusion's
//! own table.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::{provider_as_source, ViewTable};
use datafusion::logical_expr::{cast, col, Expr, LogicalPlanBuilder};

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
