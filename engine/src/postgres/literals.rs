//! Postgres's types for literals: `1` is an `int4`, `1e15` a `numeric`.

use std::collections::BTreeMap;
use std::sync::Arc;

use apiary_catalog::types::SQL_TYPE_KEY;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::catalog::cte_worktable::CteWorkTable;
use datafusion::common::metadata::FieldMetadata;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::datasource::{provider_as_source, source_as_provider};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::{
    cast, Expr, LogicalPlan, Projection, RecursiveQuery, TableScan, TableScanBuilder, Union, Values,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

/// Types an integer literal `int4` when its value fits, as Postgres does
/// (and writes a decimal literal in exponent form with scale 0);
/// DataFusion's SQL planner makes every integer literal `int8`. The result
/// types of `SELECT 1`, `int4_column + 1`, `VALUES (1)` and `ARRAY[1, 2]`
/// are then Postgres's. Left alone: `LIMIT`/`OFFSET` (DataFusion reads
/// them as `int8`), writes (their values are cast to the frame's types
/// anyway). A recursive CTE's work table, typed at planning, takes the
/// narrowed types of the CTE's first term.
#[derive(Debug)]
pub struct IntegerLiterals;

impl AnalyzerRule for IntegerLiterals {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        if matches!(plan, LogicalPlan::Dml(_)) {
            return Ok(plan);
        }
        plan.transform_up_with_subqueries(|node| match node {
            LogicalPlan::Limit(_) => Ok(Transformed::no(node)),
            LogicalPlan::RecursiveQuery(query) => work_table_as_first_term(query),
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
                    expr.transform_up(narrow_literal)?
                        .transform_data(|expr| expr.transform_up(unknown_literal))
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

/// `pg_typeof('a')` is `unknown` in Postgres: a string constant has no
/// type until something needs one. The bare constant given to `pg_typeof`
/// is marked so (its field's declared SQL type); `'a'::text` is a cast,
/// and stays `text`.
fn unknown_literal(expr: Expr) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(mut function) = expr else {
        return Ok(Transformed::no(expr));
    };
    let bare_string = |arg: &Expr| {
        matches!(
            arg,
            Expr::Literal(
                ScalarValue::Utf8(_) | ScalarValue::Utf8View(_) | ScalarValue::LargeUtf8(_),
                None
            )
        )
    };
    if function.func.name() != "pg_typeof" || !function.args.first().is_some_and(bare_string) {
        return Ok(Transformed::no(Expr::ScalarFunction(function)));
    }
    if let Some(Expr::Literal(_, metadata)) = function.args.first_mut() {
        let unknown = BTreeMap::from([(SQL_TYPE_KEY.to_string(), "unknown".to_string())]);
        *metadata = Some(FieldMetadata::from(unknown));
    }
    Ok(Transformed::yes(Expr::ScalarFunction(function)))
}

/// A recursive CTE whose recursive term reads its work table with the
/// types of the (narrowed) first term, and yields them: a column the
/// recursive term computes wider (`int4` first, `int8` after) is cast
/// back, and a value that does not fit is an error, as in Postgres.
fn work_table_as_first_term(query: RecursiveQuery) -> Result<Transformed<LogicalPlan>> {
    let first = query.static_term.schema();
    let retype = |scan: TableScan| -> Result<Transformed<LogicalPlan>> {
        let Some(table) = source_as_provider(&scan.source)
            .ok()
            .filter(|provider| provider.is::<CteWorkTable>())
        else {
            return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
        };
        let schema = table.schema();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .zip(first.fields())
            .map(|(field, typed)| {
                field
                    .as_ref()
                    .clone()
                    .with_data_type(typed.data_type().clone())
            })
            .collect();
        let work_table = CteWorkTable::new(&query.name, Arc::new(Schema::new(fields)));
        let scan = TableScanBuilder::new(scan.table_name, provider_as_source(Arc::new(work_table)))
            .with_projection(scan.projection)
            .with_filters(scan.filters)
            .with_fetch(scan.fetch)
            .build()?;
        Ok(Transformed::yes(LogicalPlan::TableScan(scan)))
    };
    let recursive = Arc::unwrap_or_clone(query.recursive_term)
        .transform_up(|node| match node {
            LogicalPlan::TableScan(scan) if scan.table_name.table() == query.name => retype(scan),
            node => node.recompute_schema().map(Transformed::yes),
        })?
        .data;
    let differs = recursive
        .schema()
        .fields()
        .iter()
        .zip(first.fields())
        .any(|(field, typed)| field.data_type() != typed.data_type());
    let recursive = if differs {
        let columns = recursive
            .schema()
            .iter()
            .zip(first.fields())
            .map(|((qualifier, field), typed)| {
                let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
                cast(column, typed.data_type().clone()).alias(field.name())
            })
            .collect();
        LogicalPlan::Projection(Projection::try_new(columns, Arc::new(recursive))?)
    } else {
        recursive
    };
    let query = RecursiveQuery::try_new(
        query.name,
        query.static_term,
        Arc::new(recursive),
        query.is_distinct,
    )?;
    Ok(Transformed::yes(LogicalPlan::RecursiveQuery(query)))
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
