//! Row comparisons, element by element, as in Postgres.
//!
//! `(a, b) = (c, d)` is `a = c AND b = d` in Postgres, so a NULL element
//! makes it NULL unless another pair already differs; `(a, b) < (c, d)`
//! compares the first pair that is not equal. DataFusion compares the two
//! rows as structs, where NULL equals NULL. [`RowComparisons`] writes a
//! comparison of two row constructors out element by element.

use datafusion::common::tree_node::Transformed;
use datafusion::common::Result;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{and, or, BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::rewrite_node_expressions;

/// Writes row comparisons out element by element; see the module's
/// documentation.
#[derive(Debug)]
pub struct RowComparisons;

impl AnalyzerRule for RowComparisons {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            rewrite_node_expressions(node, |expr, _| element_wise(expr))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_row_comparisons"
    }
}

/// The elements of a row constructor, `(a, b)` or `ROW(a, b)`.
fn row_elements(expr: &Expr) -> Option<&[Expr]> {
    match expr {
        Expr::ScalarFunction(f) if matches!(f.func.name(), "struct" | "row") => Some(&f.args),
        _ => None,
    }
}

fn element_wise(expr: Expr) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let (Some(l), Some(r)) = (row_elements(left), row_elements(right)) else {
        return Ok(Transformed::no(expr));
    };
    if l.len() != r.len() || l.is_empty() {
        return Ok(Transformed::no(expr));
    }
    let pair = |op: Operator, i: usize| {
        Expr::BinaryExpr(BinaryExpr::new(
            Box::new(l[i].clone()),
            op,
            Box::new(r[i].clone()),
        ))
    };
    let last = l.len() - 1;
    let rewritten = match op {
        Operator::Eq => (1..=last).fold(pair(Operator::Eq, 0), |all, i| {
            and(all, pair(Operator::Eq, i))
        }),
        Operator::NotEq => (1..=last).fold(pair(Operator::NotEq, 0), |any, i| {
            or(any, pair(Operator::NotEq, i))
        }),
        Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
            let strict = match op {
                Operator::Lt | Operator::LtEq => Operator::Lt,
                _ => Operator::Gt,
            };
            // From the last pair back: pair i decides unless it is equal.
            (0..last).rev().fold(pair(*op, last), |rest, i| {
                or(pair(strict, i), and(pair(Operator::Eq, i), rest))
            })
        }
        _ => return Ok(Transformed::no(expr)),
    };
    Ok(Transformed::yes(rewritten))
}
