//! Postgres's `numeric` results of division and aggregates.
//!
//! Postgres gives `sum(bigint)` and `avg()` of an integer as `numeric`,
//! and a `numeric` quotient at least 16 significant digits, rounded
//! (`7.0 / 2` is `3.5000000000000000`). DataFusion gives `int8`, `float8`,
//! and four places more than the dividend, truncated. [`NumericResults`]
//! plans `numeric` division as [`NumericDivide`] (Postgres's digits), and
//! `avg()` one place past 16 decimals, cast to 16, which rounds as
//! Postgres does for an average from 1 to 10,000 (docs/postgres.md).
//!
//! A statement is analyzed when it is prepared and again when it runs, so
//! the rule leaves alone what it (or type coercion) already rewrote: an
//! `avg()` of a `numeric` cast to [`DIVIDEND_SCALE`] places, a `sum()` of
//! a narrower integer cast to `int8`.

use std::sync::Arc;

use apiary_catalog::types::SQL_TYPE_KEY;
use bigdecimal::num_bigint::BigInt;
use bigdecimal::{BigDecimal, ToPrimitive};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, Result, ScalarValue, TableReference};
use datafusion::config::ConfigOptions;
use datafusion::functions_aggregate::count::count_udaf;
use datafusion::logical_expr::expr::{AggregateFunction, ScalarFunction, WindowFunction};
use datafusion::logical_expr::{
    cast, Aggregate, AggregateUDF, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator,
    Projection, ScalarUDF, Window, WindowFunctionDefinition,
};
use datafusion::optimizer::analyzer::AnalyzerRule;
use std::str::FromStr;

use super::declared;
use super::division::{self, NumericDivide};
use super::exact::{self, ExactMath, NumericSpread, Spread};
use super::exact_sum::ExactSum;
use super::rewrite_node_expressions;

/// The decimal places of an `avg()` in Postgres, for an average from 1 to
/// 10,000.
const QUOTIENT_SCALE: i8 = 16;

/// The scale that makes DataFusion's `avg()` (four places more than its
/// argument's) one place longer than [`QUOTIENT_SCALE`].
const DIVIDEND_SCALE: i8 = QUOTIENT_SCALE + 1 - 4;

/// Gives `numeric` division, `avg()` and `sum()` Postgres's result types
/// and scales; see the module's documentation.
#[derive(Debug)]
pub struct NumericResults;

impl AnalyzerRule for NumericResults {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            rewrite_node_expressions(node, |expr, schema| {
                unconstrained_numeric(expr, schema)?
                    .transform_data(|expr| numeric_division(expr, schema))?
                    .transform_data(|expr| numeric_functions(expr, schema))?
                    .transform_data(|expr| rounded_scale(expr, schema))?
                    .transform_data(|expr| real_widened(expr, schema))
            })?
            .transform_data(aggregate_types)
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_numeric_results"
    }
}

fn decimal_scale(data_type: &DataType) -> Option<i8> {
    match data_type {
        DataType::Decimal128(_, scale) => Some(*scale),
        _ => None,
    }
}

/// A cast to an unconstrained `numeric` keeps the operand's scale, as a
/// Postgres `numeric` value does: an integer's is 0, a `numeric`'s its
/// own, a string constant's the digits it has after the point. (A `float8`
/// has a scale per value in Postgres; it keeps DataFusion's 10 places.)
fn unconstrained_numeric(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::Cast(c) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let unconstrained = c.field.metadata().get(SQL_TYPE_KEY).map(String::as_str)
        == Some(declared::UNCONSTRAINED_NUMERIC);
    if !unconstrained {
        return Ok(Transformed::no(expr));
    }
    let scale = match (c.expr.as_ref(), c.expr.get_type(schema)) {
        (_, Ok(t)) if t.is_integer() => Some(0),
        (_, Ok(DataType::Decimal128(_, scale))) => Some(scale),
        (Expr::Literal(ScalarValue::Utf8(Some(text)), _), _) => BigDecimal::from_str(text.trim())
            .ok()
            .map(|value| value.fractional_digit_count().clamp(0, 38) as i8),
        _ => None,
    };
    Ok(match scale {
        Some(scale) => Transformed::yes(cast(
            c.expr.as_ref().clone(),
            DataType::Decimal128(38, scale),
        )),
        None => Transformed::no(expr),
    })
}

/// A `numeric` quotient (a `numeric` divided by a `numeric` or an
/// integer, either way round) with Postgres's digits.
fn numeric_division(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr {
        left,
        op: Operator::Divide,
        right,
    }) = &expr
    else {
        return Ok(Transformed::no(expr));
    };
    let (Ok(left_type), Ok(right_type)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    let scales = [decimal_scale(&left_type), decimal_scale(&right_type)];
    let numeric_or_integer = |t: &DataType| t.is_integer() || decimal_scale(t).is_some();
    if scales.iter().all(Option::is_none)
        || !numeric_or_integer(&left_type)
        || !numeric_or_integer(&right_type)
    {
        return Ok(Transformed::no(expr));
    }
    let mut args = vec![left.as_ref().clone(), right.as_ref().clone()];
    if let (Some((dividend, _)), Some((divisor, _))) = (constant(left), constant(right)) {
        // Constant operands: the quotient's own scale.
        let unscaled = |v: &BigDecimal| v.as_bigint_and_exponent();
        let (dividend, divisor) = (unscaled(&dividend), unscaled(&divisor));
        if let (Some(a), Some(b)) = (dividend.0.to_i128(), divisor.0.to_i128()) {
            if b != 0 {
                let scale = division::division_scale((a, dividend.1 as i8), (b, divisor.1 as i8));
                args.push(Expr::Literal(
                    ScalarValue::Int64(Some(i64::from(scale))),
                    None,
                ));
            }
        }
    }
    let quotient =
        ScalarFunction::new_udf(Arc::new(ScalarUDF::from(NumericDivide::default())), args);
    Ok(Transformed::yes(Expr::ScalarFunction(quotient)))
}

/// Whether `expr` is this rule's cast of an `avg()` argument.
fn is_dividend_cast(expr: &Expr) -> bool {
    matches!(expr, Expr::Cast(c) if matches!(c.field.data_type(), DataType::Decimal128(38, s) if *s >= DIVIDEND_SCALE))
}

/// Whether `expr` is type coercion's cast of a narrower integer to `int8`.
fn is_widened_integer(expr: &Expr, schema: &DFSchema) -> bool {
    match expr {
        Expr::Cast(c) if c.field.data_type() == &DataType::Int64 => c
            .expr
            .get_type(schema)
            .is_ok_and(|t| t.is_integer() && t != DataType::Int64 && t != DataType::UInt64),
        _ => false,
    }
}

/// `real` with an integer or a `numeric` is a `float8` in Postgres
/// (DataFusion's coercion makes it a `real`).
fn real_widened(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide
    ) {
        return Ok(Transformed::no(expr));
    }
    let (Ok(l), Ok(r)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    let exact = |t: &DataType| t.is_integer() || decimal_scale(t).is_some();
    let mixed = (l == DataType::Float32 && exact(&r)) || (r == DataType::Float32 && exact(&l));
    if !mixed {
        return Ok(Transformed::no(expr));
    }
    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
        Box::new(cast(left.as_ref().clone(), DataType::Float64)),
        *op,
        Box::new(cast(right.as_ref().clone(), DataType::Float64)),
    ))))
}

/// The value of a `numeric` constant.
fn constant(expr: &Expr) -> Option<(BigDecimal, i64)> {
    match expr {
        Expr::Literal(ScalarValue::Decimal128(Some(v), _, scale), _) => Some((
            BigDecimal::new(BigInt::from(*v), i64::from(*scale)),
            i64::from(*scale),
        )),
        Expr::Literal(value, _) if value.data_type().is_integer() && !value.is_null() => {
            let v = value.cast_to(&DataType::Int64).ok()?;
            match v {
                ScalarValue::Int64(Some(v)) => Some((BigDecimal::from(v), 0)),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `mod` and `sign` of a `numeric` are `numeric`s in Postgres; the
/// functions DataFusion has for them take integers or `float8`s.
/// `mod(a, b)` is `a % b`, and `sign(x)` a `numeric` -1, 0 or 1. `sqrt`
/// and `power` of a `numeric` compute in decimal ([`ExactMath`]), at the
/// scale Postgres gives a constant's result.
fn numeric_functions(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(function) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let types: Vec<DataType> = function
        .args
        .iter()
        .map(|arg| arg.get_type(schema))
        .collect::<Result<_>>()
        .unwrap_or_default();
    let numeric = types.iter().any(|t| decimal_scale(t).is_some());
    let exact = types
        .iter()
        .all(|t| t.is_integer() || decimal_scale(t).is_some());
    if !numeric {
        return Ok(Transformed::no(expr));
    }
    let args = function.args.clone();
    let exact_call = |math: ExactMath, scale: i64| {
        let mut args = args.clone();
        args.push(Expr::Literal(ScalarValue::Int64(Some(scale.min(38))), None));
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(ScalarUDF::from(math)),
            args,
        ))
    };
    let column_scale = |types: &[DataType]| {
        types
            .iter()
            .filter_map(decimal_scale)
            .map(i64::from)
            .fold(i64::from(exact::COLUMN_SCALE), i64::max)
    };
    let rewritten = match (function.func.name(), args.as_slice()) {
        ("mod", [a, b]) => Expr::BinaryExpr(BinaryExpr::new(
            Box::new(a.clone()),
            Operator::Modulo,
            Box::new(b.clone()),
        )),
        ("sign" | "signum", [_]) => cast(expr.clone(), DataType::Decimal128(38, 0)),
        ("sqrt", [x]) if exact => {
            let scale = match constant(x) {
                Some((value, scale)) => exact::sqrt_scale(&value, scale),
                None => column_scale(&types),
            };
            exact_call(ExactMath::sqrt(), scale)
        }
        ("power" | "pow", [a, b]) if exact => {
            let scale = match (constant(a), constant(b)) {
                (Some((a, a_scale)), Some((b, b_scale))) => {
                    exact::power(&a, a_scale, &b, b_scale).map_or(column_scale(&types), |(_, s)| s)
                }
                _ => column_scale(&types),
            };
            exact_call(ExactMath::power(), scale)
        }
        _ => return Ok(Transformed::no(expr)),
    };
    Ok(Transformed::yes(rewritten))
}

/// `ceil`, `floor`, `round` and `trunc` of a `numeric` at the scale
/// Postgres gives them: none, or the places asked for (`trunc(x, 1)` is
/// `12.3`, not `12.30`). DataFusion keeps the argument's scale.
fn rounded_scale(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::ScalarFunction(function) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let name = function.func.name();
    if !matches!(name, "ceil" | "ceiling" | "floor" | "round" | "trunc") {
        return Ok(Transformed::no(expr));
    }
    let Some(Ok(DataType::Decimal128(_, scale))) =
        function.args.first().map(|a| a.get_type(schema))
    else {
        return Ok(Transformed::no(expr));
    };
    let places = match function.args.get(1) {
        None => 0,
        Some(Expr::Literal(value, _)) => match value.cast_to(&DataType::Int64) {
            Ok(ScalarValue::Int64(Some(places))) if (0..i64::from(scale)).contains(&places) => {
                places as i8
            }
            _ => return Ok(Transformed::no(expr)),
        },
        Some(_) => return Ok(Transformed::no(expr)),
    };
    if places == scale {
        return Ok(Transformed::no(expr));
    }
    Ok(Transformed::yes(cast(
        expr,
        DataType::Decimal128(38, places),
    )))
}

/// What an aggregate's call and result become.
struct Retyped {
    /// The call with its argument cast, under the call's old name.
    call: Expr,
    /// The type its result is cast to above the node, if any.
    result: Option<DataType>,
}

/// `sum(bigint)` sums `numeric`s; `avg()` of an integer or `numeric`
/// averages `numeric`s one place past Postgres's scale, cast to it;
/// `sum(real)` is a `real`. (`ntile()`, a window function, is an `int4`.)
fn retype(
    name: &str,
    args: &[Expr],
    schema: &DFSchema,
) -> Result<Option<(Vec<Expr>, Option<DataType>)>> {
    let [arg] = args else {
        return Ok(None);
    };
    let Ok(arg_type) = arg.get_type(schema) else {
        return Ok(None);
    };
    if is_dividend_cast(arg) || is_widened_integer(arg, schema) {
        return Ok(None);
    }
    let cast_arg = |t: DataType| vec![cast(arg.clone(), t)];
    Ok(match (name, &arg_type) {
        ("sum", DataType::Int64) => Some((cast_arg(DataType::Decimal128(38, 0)), None)),
        ("sum", DataType::Float32) => Some((args.to_vec(), Some(DataType::Float32))),
        ("avg", t) if t.is_integer() => Some((
            cast_arg(DataType::Decimal128(38, DIVIDEND_SCALE)),
            Some(DataType::Decimal128(38, QUOTIENT_SCALE)),
        )),
        ("avg", DataType::Decimal128(_, scale)) => {
            let args = match *scale < DIVIDEND_SCALE {
                true => cast_arg(DataType::Decimal128(38, DIVIDEND_SCALE)),
                false => args.to_vec(),
            };
            Some((
                args,
                Some(DataType::Decimal128(38, QUOTIENT_SCALE.max(*scale))),
            ))
        }
        _ => None,
    })
}

/// The exact member of the variance family for `name(args)` when its
/// operand is an integer or a `numeric` (Postgres's result is then a
/// `numeric`).
fn exact_spread(name: &str, args: &[Expr], schema: &DFSchema) -> Option<Spread> {
    let spread = Spread::named(name)?;
    let [arg] = args else {
        return None;
    };
    let arg_type = arg.get_type(schema).ok()?;
    (arg_type.is_integer() || decimal_scale(&arg_type).is_some()).then_some(spread)
}

fn retype_call(expr: &Expr, schema: &DFSchema) -> Result<Option<Retyped>> {
    let name = expr.schema_name().to_string();
    let call = match expr {
        Expr::Alias(alias) => alias.expr.as_ref(),
        call => call,
    };
    let retyped = match call {
        Expr::AggregateFunction(AggregateFunction { func, params })
            if exact_spread(func.name(), &params.args, schema).is_some() =>
        {
            let spread = exact_spread(func.name(), &params.args, schema);
            spread.map(|spread| {
                let call = Expr::AggregateFunction(AggregateFunction {
                    func: Arc::new(AggregateUDF::from(NumericSpread::new(spread))),
                    params: params.clone(),
                });
                (call, None)
            })
        }
        Expr::AggregateFunction(AggregateFunction { func, params }) => {
            retype(func.name(), &params.args, schema)?.map(|(args, result)| {
                let mut params = params.clone();
                params.args = args;
                let call = Expr::AggregateFunction(AggregateFunction {
                    func: func.clone(),
                    params,
                });
                (call, result)
            })
        }
        Expr::WindowFunction(window) => {
            let WindowFunction { fun, params } = window.as_ref();
            let func = match fun {
                // Postgres's `ntile()` is an `int4`.
                WindowFunctionDefinition::WindowUDF(func) if func.name() == "ntile" => {
                    return Ok(Some(Retyped {
                        call: call.clone().alias(name),
                        result: Some(DataType::Int32),
                    }));
                }
                WindowFunctionDefinition::AggregateUDF(func) => func,
                _ => return Ok(None),
            };
            retype(func.name(), &params.args, schema)?.map(|(args, result)| {
                let mut params = params.clone();
                params.args = args;
                let call = Expr::WindowFunction(Box::new(WindowFunction {
                    fun: fun.clone(),
                    params,
                }));
                (call, result)
            })
        }
        _ => None,
    };
    Ok(retyped.map(|(call, result)| Retyped {
        call: call.alias(name),
        result,
    }))
}

/// An aggregate or window node with its calls retyped, under a projection
/// that casts their results where the call alone cannot give the type.
fn aggregate_types(node: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    let (input, calls) = match &node {
        LogicalPlan::Aggregate(aggregate) => (aggregate.input.clone(), &aggregate.aggr_expr),
        LogicalPlan::Window(window) => (window.input.clone(), &window.window_expr),
        _ => return Ok(Transformed::no(node)),
    };
    let grouped = matches!(node, LogicalPlan::Aggregate(_));
    let mut changed = false;
    let mut results = Vec::new();
    let mut averages = Vec::new();
    let mut new_calls = Vec::with_capacity(calls.len());
    for call in calls {
        let name = call.schema_name().to_string();
        if let Some((sum, count)) = grouped
            .then(|| integer_average(call, input.schema()))
            .flatten()
        {
            changed = true;
            let (sum_name, count_name) =
                (format!("{name}\u{e000}sum"), format!("{name}\u{e000}count"));
            new_calls.push(sum.alias(&sum_name));
            new_calls.push(count.alias(&count_name));
            averages.push((name, sum_name, count_name));
            continue;
        }
        match retype_call(call, input.schema())? {
            Some(retyped) => {
                changed = true;
                if let Some(result) = retyped.result {
                    results.push((name, result));
                }
                new_calls.push(retyped.call);
            }
            None => new_calls.push(call.clone()),
        }
    }
    if !changed {
        return Ok(Transformed::no(node));
    }
    let retyped = match node {
        LogicalPlan::Aggregate(aggregate) => {
            LogicalPlan::Aggregate(Aggregate::try_new(input, aggregate.group_expr, new_calls)?)
        }
        _ => LogicalPlan::Window(Window::try_new(new_calls, input)?),
    };
    if results.is_empty() && averages.is_empty() {
        return Ok(Transformed::yes(retyped));
    }
    let column = |qualifier: Option<&TableReference>, name: &str| {
        Expr::Column(Column::new(qualifier.cloned(), name))
    };
    let columns = retyped
        .schema()
        .iter()
        .filter_map(|(qualifier, field)| {
            let own = |name: &String| qualifier.is_none() && name == field.name();
            if let Some((name, _, count)) = averages.iter().find(|(_, sum, _)| own(sum)) {
                let quotient = ScalarFunction::new_udf(
                    Arc::new(ScalarUDF::from(NumericDivide::default())),
                    vec![
                        column(None, field.name()),
                        column(None, count),
                        Expr::Literal(ScalarValue::Int64(Some(i64::from(QUOTIENT_SCALE))), None),
                    ],
                );
                return Some(Expr::ScalarFunction(quotient).alias(name));
            }
            if averages.iter().any(|(_, _, count)| own(count)) {
                return None;
            }
            let value = column(qualifier, field.name());
            Some(match results.iter().find(|(name, _)| own(name)) {
                Some((name, result)) => cast(value, result.clone()).alias(name),
                None => value,
            })
        })
        .collect();
    let projection = Projection::try_new(columns, Arc::new(retyped))?;
    Ok(Transformed::yes(LogicalPlan::Projection(projection)))
}

/// `avg()` of an integer as Postgres computes it (`numeric_avg`): the
/// exact sum ([`ExactSum`], a `numeric(38, 0)`) over the count, divided once per group
/// and rounded to [`QUOTIENT_SCALE`] places. Far cheaper than averaging
/// every value as a 13-place decimal. The sum and the count, for the call.
fn integer_average(call: &Expr, schema: &DFSchema) -> Option<(Expr, Expr)> {
    let call = match call {
        Expr::Alias(alias) => alias.expr.as_ref(),
        call => call,
    };
    let Expr::AggregateFunction(AggregateFunction { func, params }) = call else {
        return None;
    };
    let [arg] = params.args.as_slice() else {
        return None;
    };
    // `avg(DISTINCT x)` keeps DataFusion's distinct average.
    if func.name() != "avg" || params.distinct || !arg.get_type(schema).ok()?.is_integer() {
        return None;
    }
    let sum = Expr::AggregateFunction(AggregateFunction {
        func: Arc::new(AggregateUDF::from(ExactSum::default())),
        params: params.clone(),
    });
    let count = Expr::AggregateFunction(AggregateFunction {
        func: count_udaf(),
        params: params.clone(),
    });
    Some((sum, count))
}
