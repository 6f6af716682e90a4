//! Correlated scalar subqueries that are not aggregates.
//!
//! Postgres evaluates `(SELECT c.relkind FROM pg_class c WHERE c.oid =
//! t.typrelid)` once per outer row: NULL when no row matches, the value
//! when one does, and error 21000 when more than one does. DataFusion
//! plans a correlated scalar subquery only as an aggregate without
//! `GROUP BY` (which it then turns into a join grouped by the correlated
//! columns); anything else is refused as "must be aggregated". Client
//! catalog queries (pgJDBC's `getTypeInfo`, Npgsql's type loading,
//! pgAdmin's trigger counts) are full of the other kind.
//!
//! [`SingleRowSubqueries`] makes them aggregates:
//! - `(SELECT e FROM … WHERE …)` collects at most the first two values
//!   with `subquery_rows(e)`, and the outer expression becomes
//!   `subquery_value(…)`: NULL for none, the value for one, 21000 for two,
//!   raised per outer row as Postgres raises it;
//! - `(SELECT e FROM … ORDER BY o LIMIT 1)` is `first_value(e ORDER BY o)`;
//! - `(SELECT count(*) FROM … LIMIT 1)` is already one row; the `LIMIT` goes;
//! - `EXISTS (…)` in a select list is `(SELECT count(*) FROM (…)) > 0`,
//!   and `x IN (SELECT …)` there an array lookup (see [`in_as_array`]).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{plan_err, Column, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::functions_aggregate::array_agg::array_agg;
use datafusion::functions_aggregate::count::count;
use datafusion::functions_aggregate::first_last::first_value;
use datafusion::functions_nested::array_has::array_has;
use datafusion::logical_expr::expr::{Exists, InSubquery, ScalarFunction};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::logical_plan::{FetchType, SkipType};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{
    col, lit, when, Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Expr, LogicalPlan,
    LogicalPlanBuilder, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, SortExpr,
    Subquery, Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::sql_error;

/// The aggregate's output column inside the rewritten subquery.
const ROW: &str = "__apiary_subquery_row";

/// Rewrites correlated scalar subqueries into aggregates; see the
/// module's documentation.
#[derive(Debug)]
pub struct SingleRowSubqueries;

impl AnalyzerRule for SingleRowSubqueries {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        let plan = plan
            .transform_up_with_subqueries(subqueries_sorted_below)?
            .data;
        plan.transform_up_with_subqueries(|node| {
            let names = NamePreserver::new(&node);
            let select_list = matches!(node, LogicalPlan::Projection(_));
            node.map_expressions(|expr| {
                let name = names.save(&expr);
                let rewritten = expr.transform_up(|expr| match expr {
                    Expr::ScalarSubquery(subquery) if !subquery.outer_ref_columns.is_empty() => {
                        single_row(subquery)
                    }
                    Expr::Exists(exists) if select_list => exists_as_count(exists),
                    Expr::InSubquery(in_subquery)
                        if select_list && in_subquery.subquery.outer_ref_columns.is_empty() =>
                    {
                        in_as_array(in_subquery)
                    }
                    other => Ok(Transformed::no(other)),
                })?;
                Ok(rewritten.update_data(|expr| name.restore(expr)))
            })
        })
        .map(|plan| plan.data)
    }

    fn name(&self) -> &str {
        "postgres_single_row_subqueries"
    }
}

/// What a correlated scalar subquery becomes, if DataFusion cannot plan
/// it as it is.
fn single_row(subquery: Subquery) -> Result<Transformed<Expr>> {
    let unchanged = |subquery| Ok(Transformed::no(Expr::ScalarSubquery(subquery)));
    let Some((mut limited, body)) = first_row_only(&subquery.subquery) else {
        return unchanged(subquery);
    };
    // `ORDER BY` over the select list sorts above the projection.
    let (order, body) = match body {
        LogicalPlan::Sort(sort) if sort.fetch.is_none() => (Some(&sort.expr), sort.input.as_ref()),
        _ => (None, body),
    };
    let LogicalPlan::Projection(projection) = body else {
        return unchanged(subquery);
    };
    let [item] = projection.expr.as_slice() else {
        return unchanged(subquery);
    };
    let mut input = projection.input.as_ref();
    if let Some((true, below)) = first_row_only(input) {
        (input, limited) = (below, true);
    }
    // Already at most one row: DataFusion plans it once the LIMIT is gone.
    if input.max_rows().is_some_and(|rows| rows <= 1) {
        if !limited {
            return unchanged(subquery);
        }
        return Ok(Transformed::yes(Expr::ScalarSubquery(Subquery {
            subquery: Arc::new(body.clone()),
            ..subquery
        })));
    }
    if item.contains_outer() {
        return unchanged(subquery);
    }
    // A condition on the outer row alone decides whether there is a row
    // at all: DataFusion cannot join on it, so it goes around the subquery.
    let (hoisted, outer_condition) = hoist_outer_conditions(input)?;
    let input = hoisted.as_ref().unwrap_or(input);
    let (value, order, input) = match (order, input) {
        (Some(order), _) => (
            Expr::Column(Column::from(projection.schema.qualified_field(0))),
            order.clone(),
            body,
        ),
        (None, LogicalPlan::Sort(sort)) if sort.fetch.is_none() => (
            item.clone().unalias(),
            sort.expr.clone(),
            sort.input.as_ref(),
        ),
        (None, input) => (item.clone().unalias(), vec![], input),
    };
    // The order of rows cannot matter to a single one.
    let aggregate = match limited {
        true => first_value(value, order),
        false => rows_udaf().call(vec![value]),
    };
    let subquery = aggregated(input, aggregate, &subquery)?;
    let value = match limited {
        true => subquery,
        false => Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(ScalarUDF::from(SubqueryValue::default())),
            vec![subquery],
        )),
    };
    Ok(Transformed::yes(match outer_condition {
        Some(condition) => when(condition, value).end()?,
        None => value,
    }))
}

/// `input` without the conditions of its filter that read only the outer
/// row, and those conditions over the outer row's columns; `(None, None)`
/// when there are none. Only for a subquery that is NULL without rows.
fn hoist_outer_conditions(input: &LogicalPlan) -> Result<(Option<LogicalPlan>, Option<Expr>)> {
    let LogicalPlan::Filter(filter) = input else {
        return Ok((None, None));
    };
    let (outer, inner): (Vec<&Expr>, Vec<&Expr>) = split_conjunction(&filter.predicate)
        .into_iter()
        .partition(|condition| condition.contains_outer() && condition.column_refs().is_empty());
    if outer.is_empty() {
        return Ok((None, None));
    }
    let outer_columns = outer.into_iter().cloned().map(|condition| {
        condition
            .transform(|expr| match expr {
                Expr::OuterReferenceColumn(_, column) => Ok(Transformed::yes(Expr::Column(column))),
                other => Ok(Transformed::no(other)),
            })
            .map(|condition| condition.data)
    });
    let condition = conjunction(outer_columns.collect::<Result<Vec<_>>>()?);
    let input = match conjunction(inner.into_iter().cloned()) {
        Some(predicate) => LogicalPlanBuilder::from(filter.input.as_ref().clone())
            .filter(predicate)?
            .build()?,
        None => filter.input.as_ref().clone(),
    };
    Ok((Some(input), condition))
}

/// A Sort whose keys hold subqueries (Grafana's `ORDER BY CASE WHEN x IN
/// (SELECT …) …`) as a Sort on columns a projection below computes, and
/// a projection above that drops them again: a subquery in a select list
/// is one DataFusion (with this rule) plans.
fn subqueries_sorted_below(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let has_subquery = |expr: &Expr| {
        expr.exists(|e| {
            Ok(matches!(
                e,
                Expr::InSubquery(_) | Expr::Exists(_) | Expr::ScalarSubquery(_)
            ))
        })
    };
    let LogicalPlan::Sort(sort) = &plan else {
        return Ok(Transformed::no(plan));
    };
    if !sort
        .expr
        .iter()
        .map(|key| has_subquery(&key.expr))
        .collect::<Result<Vec<_>>>()?
        .contains(&true)
    {
        return Ok(Transformed::no(plan));
    }
    let columns: Vec<Expr> = sort
        .input
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let mut computed = columns.clone();
    let mut keys = Vec::with_capacity(sort.expr.len());
    for (i, key) in sort.expr.iter().enumerate() {
        match has_subquery(&key.expr)? {
            true => {
                let name = format!("__apiary_sort_key_{i}");
                computed.push(key.expr.clone().alias(&name));
                keys.push(SortExpr {
                    expr: col(name),
                    ..key.clone()
                });
            }
            false => keys.push(key.clone()),
        }
    }
    let plan = LogicalPlanBuilder::from(sort.input.as_ref().clone())
        .project(computed)?
        .sort_with_limit(keys, sort.fetch)?
        .project(columns)?
        .build()?;
    Ok(Transformed::yes(plan))
}

/// `EXISTS (…)` in a select list, which DataFusion plans only in a
/// WHERE: `(SELECT count(*) FROM (…)) > 0`, an aggregate it can
/// decorrelate, never NULL, as EXISTS is not.
fn exists_as_count(exists: Exists) -> Result<Transformed<Expr>> {
    let Exists { subquery, negated } = exists;
    let rows = aggregated(&subquery.subquery, count(lit(1)), &subquery)?;
    Ok(Transformed::yes(match negated {
        true => rows.eq(lit(0i64)),
        false => rows.gt(lit(0i64)),
    }))
}

/// `x [NOT] IN (SELECT y …)` in a select list (or an ORDER BY, planned
/// there), which DataFusion plans only in a WHERE, for an uncorrelated
/// subquery: its values as one array and its count of NULLs, each a
/// scalar subquery DataFusion joins once, and Postgres's three-valued
/// answer from them: false for no rows, true for a match, NULL when `x`
/// or a value is NULL, else false.
fn in_as_array(in_subquery: InSubquery) -> Result<Transformed<Expr>> {
    let InSubquery {
        expr: needle,
        subquery,
        negated,
    } = in_subquery;
    let values = subquery.subquery.as_ref();
    let value = Expr::Column(Column::from(values.schema().qualified_field(0)));
    let array = aggregated(values, array_agg(value.clone()), &subquery)?;
    let nulls = aggregated(values, count(lit(1)) - count(value), &subquery)?;
    let found = when(array.clone().is_null(), lit(false))
        .when(
            needle
                .as_ref()
                .clone()
                .is_not_null()
                .and(array_has(array, *needle.clone())),
            lit(true),
        )
        .when(
            needle.is_null().or(nulls.gt(lit(0i64))),
            lit(ScalarValue::Boolean(None)),
        )
        .otherwise(lit(false))?;
    Ok(Transformed::yes(match negated {
        true => Expr::Not(Box::new(found)),
        false => found,
    }))
}

/// A scalar subquery like `like` (its outer references) whose one row is
/// `aggregate` over all of `input`'s rows.
fn aggregated(input: &LogicalPlan, aggregate: Expr, like: &Subquery) -> Result<Expr> {
    let plan = LogicalPlanBuilder::from(input.clone())
        .aggregate(Vec::<Expr>::new(), vec![aggregate.alias(ROW)])?
        .project(vec![col(ROW)])?
        .build()?;
    Ok(Expr::ScalarSubquery(Subquery {
        subquery: Arc::new(plan),
        ..like.clone()
    }))
}

/// `plan` without a `LIMIT 1` (no OFFSET) on top, and whether it had one;
/// None for any other LIMIT, which this rule leaves alone.
fn first_row_only(plan: &LogicalPlan) -> Option<(bool, &LogicalPlan)> {
    let LogicalPlan::Limit(limit) = plan else {
        return Some((false, plan));
    };
    let first = matches!(limit.get_skip_type().ok()?, SkipType::Literal(0))
        && matches!(limit.get_fetch_type().ok()?, FetchType::Literal(Some(1)));
    first.then_some((true, limit.input.as_ref()))
}

fn rows_udaf() -> Arc<AggregateUDF> {
    Arc::new(AggregateUDF::from(SubqueryRows::default()))
}

/// `subquery_rows(e)`: a list of the group's first two values of `e`
/// (NULLs count), enough to tell none, one and too many apart.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SubqueryRows {
    signature: Signature,
}

impl Default for SubqueryRows {
    fn default() -> Self {
        SubqueryRows {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl AggregateUDFImpl for SubqueryRows {
    fn name(&self) -> &str {
        "subquery_rows"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(DataType::new_list(args[0].clone(), true))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[rows]", args.name),
            DataType::new_list(args.input_fields[0].data_type().clone(), true),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(FirstRows {
            data_type: args.exprs[0].data_type(args.schema)?,
            values: Vec::with_capacity(2),
        }))
    }
}

#[derive(Debug)]
struct FirstRows {
    data_type: DataType,
    values: Vec<ScalarValue>,
}

impl FirstRows {
    fn take_from(&mut self, array: &dyn Array) -> Result<()> {
        for row in 0..array.len().min(2 - self.values.len()) {
            self.values.push(ScalarValue::try_from_array(array, row)?);
        }
        Ok(())
    }
}

impl Accumulator for FirstRows {
    fn update_batch(&mut self, arrays: &[ArrayRef]) -> Result<()> {
        self.take_from(arrays[0].as_ref())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for list in lists.iter().flatten() {
            self.take_from(list.as_ref())?;
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![self.evaluate()?])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::List(ScalarValue::new_list_nullable(
            &self.values,
            &self.data_type,
        )))
    }

    fn size(&self) -> usize {
        size_of_val(self) + self.values.iter().map(ScalarValue::size).sum::<usize>()
    }
}

/// `subquery_value(rows)`: the one value of `subquery_rows`, NULL for
/// none, error 21000 for more, as Postgres answers a scalar subquery.
#[derive(Debug, PartialEq, Eq, Hash)]
struct SubqueryValue {
    signature: Signature,
}

impl Default for SubqueryValue {
    fn default() -> Self {
        SubqueryValue {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SubqueryValue {
    fn name(&self) -> &str {
        "subquery_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        match &args[0] {
            DataType::List(element) => Ok(element.data_type().clone()),
            other => plan_err!("subquery_value takes a list, not {other}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = matches!(args.args[0], ColumnarValue::Scalar(_));
        let rows = args.args[0].to_array(args.number_rows)?;
        let lists = rows.as_list::<i32>();
        let offsets = lists.value_offsets();
        let mut picks = Vec::with_capacity(lists.len());
        for row in 0..lists.len() {
            let (start, end) = (offsets[row], offsets[row + 1]);
            picks.push(match lists.is_null(row) || start == end {
                true => None,
                false if end - start == 1 => Some(start as u32),
                false => {
                    return Err(sql_error(
                        "21000",
                        "more than one row returned by a subquery used as an expression",
                    ))
                }
            });
        }
        let values = take(lists.values().as_ref(), &UInt32Array::from(picks), None)?;
        match scalar {
            true => Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &values, 0,
            )?)),
            false => Ok(ColumnarValue::Array(values)),
        }
    }
}
