//! PostgreSQL's meaning for SQL that DataFusion reads differently.
//!
//! Every edge tells its clients it speaks PostgreSQL, so a query must
//! answer with PostgreSQL's types: `SELECT 1` is an `int4`, not an `int8`,
//! and `avg()` of a `numeric` column is exact. These are planner-level
//! fixes (analyzer rules, function registrations) installed on every
//! session, never rewrites of SQL text. docs/decisions.md lists them.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{Expr, LogicalPlan, Union, Values};
use datafusion::optimizer::analyzer::{Analyzer, AnalyzerRule};

/// DataFusion's analyzer rules with Apiary's Postgres rules in front of
/// type coercion, which then types every expression around them.
pub fn analyzer_rules() -> Vec<Arc<dyn AnalyzerRule + Send + Sync>> {
    let mut rules = Analyzer::new().rules;
    let at = rules
        .iter()
        .position(|rule| rule.name() == "type_coercion")
        .unwrap_or(rules.len());
    rules.insert(at, Arc::new(IntegerLiterals));
    rules
}

/// Postgres's functions that DataFusion lacks (`mod`, `div`, `sign`,
/// `ceiling`, `width_bucket`, `format`, `age`, …) and its names for
/// aggregates DataFusion has under another name (`variance`, `every`).
pub fn register_functions(registry: &mut dyn FunctionRegistry) -> Result<()> {
    datafusion_pg_functions::register_all(registry);
    for (postgres, datafusion) in [("variance", "var_samp"), ("every", "bool_and")] {
        let aggregate = registry.udaf(datafusion)?;
        registry.register_udaf(Arc::new(
            aggregate.as_ref().clone().with_aliases([postgres]),
        ))?;
    }
    Ok(())
}

/// Types an integer literal `int4` when its value fits, as Postgres does
/// (and writes a decimal literal in exponent form with scale 0);
/// DataFusion's SQL planner makes every integer literal `int8`. The result
/// types of `SELECT 1`, `int4_column + 1`, `VALUES (1)` and `ARRAY[1, 2]`
/// are then Postgres's. Left alone: `LIMIT`/`OFFSET` (DataFusion reads
/// them as `int8`), writes (their values are cast to the frame's types
/// anyway) and recursive CTEs (whose work table is typed at planning).
#[derive(Debug)]
pub struct IntegerLiterals;

impl AnalyzerRule for IntegerLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        if matches!(plan, LogicalPlan::Dml(_)) || has_recursive_query(&plan)? {
            return Ok(plan);
        }
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Limit(_) => Ok(Transformed::no(node)),
            LogicalPlan::Values(values) => narrow_values(values),
            // Type coercion keeps a union's schema as planned; planned
            // again from its inputs, it takes their narrowed types.
            LogicalPlan::Union(union) => Union::try_new_with_loose_types(union.inputs)
                .map(|union| Transformed::yes(LogicalPlan::Union(union))),
            // Names stay as planned: a parent reads its child's columns
            // by name (`count(Int64(1))`).
            node => {
                let names = NamePreserver::new(&node);
                node.map_expressions(|expr| {
                    let name = names.save(&expr);
                    expr.transform_up(narrow_literal)
                        .map(|expr| expr.update_data(|expr| name.restore(expr)))
                })
            }
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_integer_literals"
    }
}

fn has_recursive_query(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        found = matches!(node, LogicalPlan::RecursiveQuery(_));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(found)
}

fn narrow_literal(expr: Expr) -> Result<Transformed<Expr>> {
    match expr {
        Expr::Literal(ScalarValue::Int64(Some(value)), metadata) => match i32::try_from(value) {
            Ok(value) => Ok(Transformed::yes(Expr::Literal(
                ScalarValue::Int32(Some(value)),
                metadata,
            ))),
            Err(_) => Ok(Transformed::no(Expr::Literal(
                ScalarValue::Int64(Some(value)),
                metadata,
            ))),
        },
        // `1e15` parses as 1 with scale -15; Postgres's numeric is
        // 1000000000000000 with scale 0 (and casts to float8 exactly).
        Expr::Literal(ScalarValue::Decimal128(Some(value), precision, scale), metadata)
            if scale < 0 =>
        {
            let widened = 10i128
                .checked_pow(scale.unsigned_abs() as u32)
                .and_then(|factor| value.checked_mul(factor));
            match widened {
                Some(value) if value.unsigned_abs() < 10u128.pow(38) => {
                    let digits = value.unsigned_abs().checked_ilog10().unwrap_or(0) as u8 + 1;
                    Ok(Transformed::yes(Expr::Literal(
                        ScalarValue::Decimal128(Some(value), digits, 0),
                        metadata,
                    )))
                }
                _ => Ok(Transformed::no(Expr::Literal(
                    ScalarValue::Decimal128(Some(value), precision, scale),
                    metadata,
                ))),
            }
        }
        expr => Ok(Transformed::no(expr)),
    }
}

/// A `VALUES` column whose cells are all integer literals that fit `int4`
/// becomes an `int4` column.
fn narrow_values(values: Values) -> Result<Transformed<LogicalPlan>> {
    let Values { schema, mut values } = values;
    let fits = |expr: &Expr| match expr {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).is_ok(),
        Expr::Literal(ScalarValue::Int64(None), _) => true,
        _ => false,
    };
    let narrowed: Vec<usize> = (0..schema.fields().len())
        .filter(|&c| {
            schema.field(c).data_type() == &DataType::Int64
                && values.iter().all(|row| row.get(c).is_some_and(fits))
        })
        .collect();
    if narrowed.is_empty() {
        return Ok(Transformed::no(LogicalPlan::Values(Values {
            schema,
            values,
        })));
    }
    for row in values.iter_mut() {
        for &c in &narrowed {
            row[c] = match &row[c] {
                Expr::Literal(ScalarValue::Int64(v), metadata) => {
                    Expr::Literal(ScalarValue::Int32(v.map(|v| v as i32)), metadata.clone())
                }
                other => other.clone(),
            };
        }
    }
    let fields: Vec<(Option<_>, Arc<Field>)> = schema
        .iter()
        .enumerate()
        .map(|(c, (qualifier, field))| {
            let field = if narrowed.contains(&c) {
                Arc::new(field.as_ref().clone().with_data_type(DataType::Int32))
            } else {
                field.clone()
            };
            (qualifier.cloned(), field)
        })
        .collect();
    let schema = DFSchema::new_with_metadata(fields, schema.metadata().clone())?;
    Ok(Transformed::yes(LogicalPlan::Values(Values {
        schema: Arc::new(schema),
        values,
    })))
}
