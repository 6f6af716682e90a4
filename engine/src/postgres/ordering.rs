//! `-0` and `0` sort as equals, as in Postgres.
//!
//! Postgres compares floats by value, so `-0` and `0` tie and a later sort
//! key decides; Arrow sorts floats in IEEE total order, `-0` first.
//! [`ZeroSignedOrdering`] sorts a float key by `key + 0.0`, which is the
//! key itself except that `-0` becomes `0`; the rows keep their values.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{lit, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::analyzer::AnalyzerRule;

/// Sorts float keys with `-0` equal to `0`; see the module's documentation.
#[derive(Debug)]
pub struct ZeroSignedOrdering;

impl AnalyzerRule for ZeroSignedOrdering {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Sort(_) => {
                let schema = node.inputs()[0].schema().clone();
                node.map_expressions(|key| unsigned_zero(key, &schema))
            }
            node => Ok(Transformed::no(node)),
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_zero_signed_ordering"
    }
}

/// The zero this rule adds to a key of `data_type`, if it is a float.
fn zero(data_type: &DataType) -> Option<ScalarValue> {
    match data_type {
        DataType::Float64 => Some(ScalarValue::Float64(Some(0.0))),
        DataType::Float32 => Some(ScalarValue::Float32(Some(0.0))),
        _ => None,
    }
}

fn unsigned_zero(key: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    // Analyzed again when a prepared statement runs: a key already
    // `x + 0.0` stays.
    if let Expr::BinaryExpr(BinaryExpr {
        op: Operator::Plus,
        right,
        ..
    }) = &key
    {
        if matches!(right.as_ref(), Expr::Literal(value, _) if zero(&value.data_type()).as_ref() == Some(value))
        {
            return Ok(Transformed::no(key));
        }
    }
    let Some(zero) = key.get_type(schema).ok().as_ref().and_then(zero) else {
        return Ok(Transformed::no(key));
    };
    Ok(Transformed::yes(key + lit(zero)))
}
