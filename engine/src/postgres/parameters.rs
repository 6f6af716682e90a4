//! A parameter's type from the cast around it, as in Postgres.
//!
//! Postgres types `$1` in `$1::int8` (or `CAST($1 AS int8)`) as `int8`, and
//! tells the client so at Describe; drivers then send the value in that
//! type (asyncpg refuses an integer for a parameter it was told is text).
//! DataFusion infers a parameter's type only from a column or value it is
//! compared with, and leaves one under a cast untyped.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::Placeholder;
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::optimizer::analyzer::AnalyzerRule;

/// Gives an untyped parameter directly under a cast the cast's type.
#[derive(Debug)]
pub struct CastParameters;

impl AnalyzerRule for CastParameters {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|expr| expr.transform_up(typed_by_cast))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_cast_parameters"
    }
}

fn typed_by_cast(expr: Expr) -> Result<Transformed<Expr>> {
    Ok(match expr {
        Expr::Cast(mut cast) if untyped(&cast.expr) => {
            cast.expr = typed(&cast.expr, cast.field.data_type());
            Transformed::yes(Expr::Cast(cast))
        }
        Expr::TryCast(mut cast) if untyped(&cast.expr) => {
            cast.expr = typed(&cast.expr, cast.field.data_type());
            Transformed::yes(Expr::TryCast(cast))
        }
        other => Transformed::no(other),
    })
}

fn untyped(expr: &Expr) -> bool {
    matches!(expr, Expr::Placeholder(Placeholder { field: None, .. }))
}

/// `placeholder` with `data_type`.
fn typed(placeholder: &Expr, data_type: &DataType) -> Box<Expr> {
    let Expr::Placeholder(Placeholder { id, .. }) = placeholder else {
        return Box::new(placeholder.clone());
    };
    Box::new(Expr::Placeholder(Placeholder::new_with_field(
        id.clone(),
        Some(Arc::new(Field::new("", data_type.clone(), true))),
    )))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn a_cast_parameter_takes_the_cast_type() {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let plan = state
            .create_logical_plan("SELECT $1::bigint, CAST($2 AS double), $3 + 1")
            .await
            .unwrap();
        let plan = super::CastParameters
            .analyze(plan, state.config_options())
            .unwrap();
        let types = plan.get_parameter_types().unwrap();
        assert_eq!(types["$1"], Some(DataType::Int64));
        assert_eq!(types["$2"], Some(DataType::Float64));
    }

    use datafusion::optimizer::analyzer::AnalyzerRule;
}
