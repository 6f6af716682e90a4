//! PostgreSQL's meaning for SQL that DataFusion reads differently.
//!
//! Every edge tells its clients it speaks PostgreSQL, so a query must
//! answer with PostgreSQL's types: `SELECT 1` is an `int4`, not an `int8`,
//! and `avg()` of a `numeric` column is exact. These are planner-level
//! fixes (analyzer rules, function registrations) installed on every
//! session, never rewrites of SQL text. docs/decisions.md lists them.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::planner::ExprPlanner;
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, Expr, LogicalPlan, Operator, ScalarUDF,
};
use datafusion::optimizer::analyzer::{Analyzer, AnalyzerRule};

mod arithmetic;
mod casts;
mod chars;
mod datetime;
mod declared;
mod division;
mod domain;
mod error;
mod exact;
mod exact_sum;
mod extract;
mod formats;
mod identifiers;
mod intervals;
pub mod keywords;
mod literals;
mod nesting;
mod numeric;
mod ordering;
mod parameters;
mod rows;
mod series;
mod sets;
mod subqueries;
mod text;

pub use declared::DeclaredTypes;
pub use error::{sql_error, SqlError};
pub use identifiers::quote_ident;
pub use nesting::{check_nesting, MAX_NESTING};
pub use text::{float_text, wall_clock};

pub use literals::IntegerLiterals;

/// Planners that give Postgres syntax Postgres's functions, to go in front
/// of DataFusion's own.
pub fn expr_planners() -> Vec<Arc<dyn ExprPlanner>> {
    vec![
        Arc::new(extract::ExtractPlanner),
        Arc::new(intervals::IntervalPlanner),
    ]
}

/// DataFusion's analyzer rules with Apiary's Postgres rules around type
/// coercion: those that choose types in front of it (it then types every
/// expression around them), checked arithmetic after it.
pub fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    let mut rules = Analyzer::new().rules;
    let at = rules
        .iter()
        .position(|rule| rule.name() == "type_coercion")
        .unwrap_or(rules.len());
    rules.insert(at + 1, Arc::new(chars::PaddedChars));
    rules.insert(at + 1, Arc::new(casts::PostgresCasts));
    rules.insert(at + 1, Arc::new(arithmetic::CheckedArithmetic));
    rules.insert(at + 1, Arc::new(ordering::ZeroSignedOrdering));
    rules.insert(at, Arc::new(numeric::NumericResults));
    rules.insert(at, Arc::new(datetime::DateArithmetic));
    rules.insert(at, Arc::new(series::Int4SeriesRows));
    rules.insert(at, Arc::new(IntegerLiterals));
    rules.insert(at, Arc::new(sets::CountedSetOperations));
    rules.insert(at, Arc::new(formats::PostgresFormats));
    rules.insert(at, Arc::new(rows::RowComparisons));
    rules.insert(at, Arc::new(parameters::CastParameters));
    rules.insert(at, Arc::new(subqueries::SingleRowSubqueries));
    rules
}

/// Whether `op` compares its operands (`=`, `<`, `IS DISTINCT FROM`, …).
fn is_comparison(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// The result scale a planner rule wrote as a constant argument (see
/// `NumericDivide` and `ExactMath`), clamped to what a `numeric` holds.
fn constant_scale(scalar: Option<&ScalarValue>) -> Option<i8> {
    match scalar?.cast_to(&DataType::Int64).ok()? {
        ScalarValue::Int64(Some(scale)) => Some(scale.clamp(0, 38) as i8),
        _ => None,
    }
}

/// A function's result over `args`: one value when every argument was one
/// (a constant folds to a constant), else the array.
fn columnar(args: &[ColumnarValue], result: ArrayRef) -> Result<ColumnarValue> {
    if args
        .iter()
        .all(|arg| matches!(arg, ColumnarValue::Scalar(_)))
    {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &result, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(result))
    }
}

/// `node` with each of its expressions rewritten by `rewrite`, which sees
/// the columns the node reads (its inputs' together). Expression names are
/// kept, since a parent reads its child's columns by name, and the node's
/// schema is computed again before (its inputs may have changed) and after
/// (a rewrite may change a type).
fn rewrite_node_expressions(
    node: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    rewrite_node_whole_expressions(node, |expr, schema| {
        expr.transform_up(|expr| rewrite(expr, schema))
    })
}

/// [`rewrite_node_expressions`] with `rewrite` given each of the node's
/// whole expressions (a select-list item, a filter), once.
fn rewrite_node_whole_expressions(
    node: LogicalPlan,
    rewrite: impl Fn(Expr, &DFSchema) -> Result<Transformed<Expr>>,
) -> Result<Transformed<LogicalPlan>> {
    let node = node.recompute_schema()?;
    let mut schema = DFSchema::empty();
    for input in node.inputs() {
        schema.merge(input.schema());
    }
    let names = NamePreserver::new(&node);
    node.map_expressions(|expr| {
        let name = names.save(&expr);
        rewrite(expr, &schema).map(|expr| expr.update_data(|expr| name.restore(expr)))
    })?
    .map_data(|node| node.recompute_schema())
}

/// Table functions typed as Postgres types them: `generate_series(1, 3)`
/// yields `int4`. Replaces DataFusion's own in `state`.
pub fn register_table_functions(state: &mut SessionState) {
    if let Some(series) = state.table_functions().get("generate_series").cloned() {
        let inner = series.function().clone();
        state.register_udtf("generate_series", Arc::new(series::Int4Series { inner }));
    }
}

/// Postgres's functions that DataFusion lacks (`mod`, `div`, `sign`,
/// `ceiling`, `width_bucket`, `format`, `quote_ident`, `age`, …) and its names for
/// aggregates DataFusion has under another name (`variance`, `every`).
pub fn register_functions(registry: &mut dyn FunctionRegistry) -> Result<()> {
    datafusion_pg_functions::register_all(registry);
    for function in [extract::Extract::numeric(), extract::Extract::float()] {
        registry.register_udf(Arc::new(ScalarUDF::from(function)))?;
    }
    // Every function a rule or planner here puts in a plan, so that a task
    // fragment decoded on another node finds it by name.
    let planned = [
        // Over columns too (the crate's answer only constants). The alias
        // is taken over as well: a registry rebuilt from its entries would
        // otherwise bring the crate's `format` back under its own name.
        ScalarUDF::from(identifiers::TextFunction::format()).with_aliases(["sprintf"]),
        ScalarUDF::from(identifiers::TextFunction::quote_ident()),
        ScalarUDF::from(exact::ExactMath::div()),
        ScalarUDF::from(exact::ExactMath::sqrt()),
        ScalarUDF::from(exact::ExactMath::power()),
        ScalarUDF::from(division::NumericDivide::default()),
        ScalarUDF::from(intervals::ScaleInterval::default()),
        ScalarUDF::from(datetime::MakeTimestamp::default()),
        ScalarUDF::from(datetime::Timezone::default()),
        ScalarUDF::from(declared::BoundText::default()),
    ];
    for function in arithmetic::Checked::all()
        .into_iter()
        .chain(casts::Convert::all())
        .chain(planned)
    {
        registry.register_udf(Arc::new(function))?;
    }
    for name in [
        "ln", "log", "log10", "log2", "sqrt", "repeat", "lpad", "rpad",
    ] {
        if let Some(checked) = registry
            .udf(name)
            .ok()
            .and_then(domain::DomainChecked::wrap)
        {
            registry.register_udf(Arc::new(checked))?;
        }
    }
    registry.register_udaf(Arc::new(AggregateUDF::from(exact_sum::ExactSum::default())))?;
    for spread in exact::Spread::ALL {
        registry.register_udaf(Arc::new(AggregateUDF::from(exact::NumericSpread::new(
            spread,
        ))))?;
    }
    for (postgres, datafusion) in [("variance", "var_samp"), ("every", "bool_and")] {
        let aggregate = registry.udaf(datafusion)?;
        registry.register_udaf(Arc::new(
            aggregate.as_ref().clone().with_aliases([postgres]),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use datafusion::execution::SessionStateBuilder;

    use super::*;

    #[test]
    fn every_function_the_rules_plan_is_registered() {
        let mut state = SessionStateBuilder::new().with_default_features().build();
        register_functions(&mut state).unwrap();
        for name in [
            "numeric_divide",
            "numeric_sqrt",
            "numeric_power",
            "div",
            "scale_interval",
            "make_timestamp",
            "timezone",
            "bound_text",
            "extract",
            "date_part",
            "checked_add",
            "checked_negate",
            "checked_divide",
            "round_half_even",
            "bytea_in",
            "float8_text",
            "timestamp_text",
            "interval_order",
            "bytea_length",
            "upper",
        ] {
            assert!(state.udf(name).is_ok(), "{name} is not registered");
        }
        for name in [
            "numeric_var_samp",
            "numeric_var_pop",
            "numeric_stddev_samp",
            "numeric_stddev_pop",
        ] {
            assert!(state.udaf(name).is_ok(), "{name} is not registered");
        }
    }
}
