//! `char(n)` values as Postgres reads them: padded when shown, without
//! their trailing spaces everywhere else.
//!
//! A `char(3)` column holds `'x  '`. Postgres shows it so, but compares
//! `char` values ignoring trailing spaces (`code = 'x'` is true) and drops
//! them when the value becomes text (`code || '|'` is `x|`, `length(code)`
//! is 1). [`PaddedChars`] leaves a bare `char(n)` column (a select-list
//! item, a sort or group key) as it is, reads it as `rtrim(column)` inside
//! any other expression, and compares such a value with the other side's
//! trailing spaces dropped too.

use apiary_catalog::types::SQL_TYPE_KEY;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::functions::string::expr_fn::rtrim;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::{is_comparison, rewrite_node_whole_expressions};

/// Reads `char(n)` values without their padding; see the module's
/// documentation.
#[derive(Debug)]
pub struct PaddedChars;

impl AnalyzerRule for PaddedChars {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            rewrite_node_whole_expressions(node, |expr, schema| {
                if is_bare_column(&expr) {
                    return Ok(Transformed::no(expr));
                }
                unpadded_columns(expr, schema)?
                    .transform_data(|expr| expr.transform_up(|e| unpadded_comparison(e, schema)))
            })
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_padded_chars"
    }
}

fn is_bare_column(expr: &Expr) -> bool {
    match expr {
        Expr::Column(_) => true,
        Expr::Alias(alias) => is_bare_column(&alias.expr),
        _ => false,
    }
}

/// Whether `expr` is a `char(n)` value: a column so declared, or a cast to
/// `char(n)`.
fn is_char(expr: &Expr, schema: &DFSchema) -> bool {
    if !matches!(
        expr,
        Expr::Column(_) | Expr::ScalarFunction(_) | Expr::Cast(_)
    ) {
        return false;
    }
    expr.to_field(schema).is_ok_and(|(_, field)| {
        field
            .metadata()
            .get(SQL_TYPE_KEY)
            .is_some_and(|declared| declared.starts_with("char("))
    })
}

/// Whether `expr` is this rule's `rtrim` of a `char(n)` value.
fn is_unpadded(expr: &Expr, schema: &DFSchema) -> bool {
    matches!(expr, Expr::ScalarFunction(f) if f.func.name() == "rtrim" && f.args.len() == 1 && is_char(&f.args[0], schema))
}

fn unpadded_columns(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    expr.transform_down(|e| {
        // `c IN (SELECT c …)`: the subquery's bare column stays padded, so
        // the outer value does too.
        if matches!(&e, Expr::InSubquery(_)) {
            return Ok(Transformed::new(e, false, TreeNodeRecursion::Jump));
        }
        if matches!(&e, Expr::ScalarFunction(f) if f.func.name() == "rtrim") {
            return Ok(Transformed::new(e, false, TreeNodeRecursion::Jump));
        }
        if is_char(&e, schema) {
            return Ok(Transformed::new(
                rtrim(vec![e]),
                true,
                TreeNodeRecursion::Jump,
            ));
        }
        Ok(Transformed::no(e))
    })
}

fn unpadded_comparison(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !is_comparison(op) {
        return Ok(Transformed::no(expr));
    }
    let trimmed = |e: &Expr| matches!(e, Expr::ScalarFunction(f) if f.func.name() == "rtrim");
    let (left_char, right_char) = (is_unpadded(left, schema), is_unpadded(right, schema));
    let rewritten = if left_char && !trimmed(right) {
        BinaryExpr::new(left.clone(), *op, Box::new(rtrim(vec![*right.clone()])))
    } else if right_char && !trimmed(left) {
        BinaryExpr::new(Box::new(rtrim(vec![*left.clone()])), *op, right.clone())
    } else {
        return Ok(Transformed::no(expr));
    };
    Ok(Transformed::yes(Expr::BinaryExpr(rewritten)))
}
