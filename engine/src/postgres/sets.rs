//! `INTERSECT ALL` and `EXCEPT ALL` that count duplicates.
//!
//! Postgres keeps a row `min(m, n)` times in `INTERSECT ALL` and
//! `max(m - n, 0)` times in `EXCEPT ALL`, for `m` copies on the left and
//! `n` on the right. DataFusion plans both as a semi (anti) join on every
//! column, which keeps all `m` copies of a row with any match (none of a
//! row with any match). [`CountedSetOperations`] numbers the copies of
//! each row on both sides (`row_number()` over the row's columns) and
//! joins on the number too: copy `k` of a row matches copy `k` on the
//! other side only.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, NullEquality, Result};
use datafusion::config::ConfigOptions;
use datafusion::functions_window::expr_fn::row_number;
use datafusion::logical_expr::{Expr, ExprFunctionExt, JoinType, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::analyzer::AnalyzerRule;

/// Names of the copy numbers on the left and right side.
const LEFT_COPY: &str = "__apiary_left_copy";
const RIGHT_COPY: &str = "__apiary_right_copy";

/// Counts duplicates in `INTERSECT ALL` and `EXCEPT ALL`; see the
/// module's documentation.
#[derive(Debug)]
pub struct CountedSetOperations;

impl AnalyzerRule for CountedSetOperations {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        // The join under a DISTINCT is plain INTERSECT / EXCEPT, where
        // copies do not count; so each node judges its children.
        let plan = plan
            .transform_up_with_subqueries(|node| {
                let distinct = matches!(node, LogicalPlan::Distinct(_));
                node.map_children(|child| match !distinct && is_set_join(&child) {
                    true => counted(child).map(Transformed::yes),
                    false => Ok(Transformed::no(child)),
                })
            })?
            .data;
        match is_set_join(&plan) {
            true => counted(plan),
            false => Ok(plan),
        }
    }

    fn name(&self) -> &str {
        "postgres_counted_set_operations"
    }
}

/// Whether `plan` is the join DataFusion plans for `INTERSECT [ALL]` or
/// `EXCEPT [ALL]` (before this rule numbered its copies): a semi or anti
/// join on every column, where NULL matches NULL. A subquery is not yet a
/// join when the analyzer runs, so nothing else looks like this.
fn is_set_join(plan: &LogicalPlan) -> bool {
    let LogicalPlan::Join(join) = plan else {
        return false;
    };
    let left = join.left.schema();
    matches!(join.join_type, JoinType::LeftSemi | JoinType::LeftAnti)
        && join.null_equality == NullEquality::NullEqualsNull
        && join.filter.is_none()
        && !join.on.is_empty()
        && join.on.len() == left.fields().len()
        && left.field_with_unqualified_name(LEFT_COPY).is_err()
        && join
            .on
            .iter()
            .all(|pair| matches!(pair, (Expr::Column(_), Expr::Column(_))))
}

fn counted(plan: LogicalPlan) -> Result<LogicalPlan> {
    let LogicalPlan::Join(join) = plan else {
        return Ok(plan);
    };
    let columns = |side: fn(&(Expr, Expr)) -> &Expr| -> Vec<Column> {
        join.on
            .iter()
            .filter_map(|pair| match side(pair) {
                Expr::Column(column) => Some(column.clone()),
                _ => None,
            })
            .collect()
    };
    let (mut left_keys, mut right_keys) = (columns(|p| &p.0), columns(|p| &p.1));
    let numbered = |input: Arc<LogicalPlan>, keys: &[Column], name: &str| {
        let copy = row_number()
            .partition_by(keys.iter().cloned().map(Expr::Column).collect())
            .build()?
            .alias(name);
        LogicalPlanBuilder::from(Arc::unwrap_or_clone(input))
            .window(vec![copy])?
            .build()
    };
    let output: Vec<Expr> = join
        .left
        .schema()
        .columns()
        .into_iter()
        .map(Expr::Column)
        .collect();
    let left = numbered(join.left, &left_keys, LEFT_COPY)?;
    let right = numbered(join.right, &right_keys, RIGHT_COPY)?;
    left_keys.push(Column::from_name(LEFT_COPY));
    right_keys.push(Column::from_name(RIGHT_COPY));
    LogicalPlanBuilder::from(left)
        .join_detailed(
            right,
            join.join_type,
            (left_keys, right_keys),
            None,
            NullEquality::NullEqualsNull,
        )?
        .project(output)?
        .build()
}
