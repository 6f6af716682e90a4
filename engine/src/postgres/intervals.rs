//! `interval * number` and `interval / number`, as in Postgres.
//!
//! DataFusion has no product of an interval and a number (planning fails).
//! [`IntervalPlanner`] plans it as [`ScaleInterval`], which follows Postgres's `interval_mul`: whole months
//! and days are scaled, and what is left of a fractional month (30 days)
//! or day (24 hours) moves down to the next field.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, IntervalMonthDayNanoArray};
use datafusion::arrow::datatypes::{
    DataType, Float64Type, IntervalMonthDayNano, IntervalMonthDayNanoType, IntervalUnit,
};
use datafusion::common::{DFSchema, Result};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawBinaryExpr};
use datafusion::logical_expr::{
    cast as cast_expr, lit, BinaryExpr, ColumnarValue, Expr, ExprSchemable, Operator,
    ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::sql::sqlparser::ast::BinaryOperator;

use super::columnar;

const MONTH_DAYS: f64 = 30.0;
const DAY_SECONDS: f64 = 86_400.0;

/// `scale_interval(interval, factor)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ScaleInterval {
    signature: Signature,
}

impl Default for ScaleInterval {
    fn default() -> Self {
        ScaleInterval {
            signature: Signature::exact(
                vec![
                    DataType::Interval(IntervalUnit::MonthDayNano),
                    DataType::Float64,
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for ScaleInterval {
    fn name(&self) -> &str {
        "scale_interval"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let factors = arrays[1].as_primitive::<Float64Type>();
        let scaled: IntervalMonthDayNanoArray = arrays[0]
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .zip(factors.iter())
            .map(|(span, factor)| Some(scale(span?, factor?)))
            .collect();
        let result: Arc<dyn Array> = Arc::new(scaled);
        columnar(&args.args, result)
    }
}

/// Postgres's `interval_mul` (microsecond precision).
pub fn scale(span: IntervalMonthDayNano, factor: f64) -> IntervalMonthDayNano {
    let months_exact = f64::from(span.months) * factor;
    let months = months_exact.trunc();
    let days_exact = f64::from(span.days) * factor;
    let days = days_exact.trunc();
    let round = |v: f64| (v * 1e6).round() / 1e6;
    let month_remainder_days = round((months_exact - months) * MONTH_DAYS);
    let mut seconds_remainder =
        round((days_exact - days + month_remainder_days.fract()) * DAY_SECONDS);
    let mut days = days as i64 + month_remainder_days.trunc() as i64;
    if seconds_remainder.abs() >= DAY_SECONDS {
        let whole = (seconds_remainder / DAY_SECONDS).trunc();
        days += whole as i64;
        seconds_remainder -= whole * DAY_SECONDS;
    }
    let micros = (span.nanoseconds as f64 / 1_000.0 * factor + seconds_remainder * 1e6).round();
    IntervalMonthDayNano::new(months as i32, days as i32, micros as i64 * 1_000)
}

/// Plans `interval * number`, `number * interval` and `interval / number`
/// as [`ScaleInterval`]. An expression planner, because DataFusion fails
/// to type such a product while it builds the plan.
#[derive(Debug)]
pub struct IntervalPlanner;

impl ExprPlanner for IntervalPlanner {
    fn plan_binary_op(
        &self,
        expr: RawBinaryExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawBinaryExpr>> {
        let is_interval = |e: &Expr| matches!(e.get_type(schema), Ok(DataType::Interval(_)));
        let is_number = |e: &Expr| e.get_type(schema).is_ok_and(|t| t.is_numeric());
        let (span, factor) = match expr.op {
            BinaryOperator::Multiply if is_interval(&expr.left) && is_number(&expr.right) => {
                (expr.left, expr.right)
            }
            BinaryOperator::Multiply if is_number(&expr.left) && is_interval(&expr.right) => {
                (expr.right, expr.left)
            }
            BinaryOperator::Divide if is_interval(&expr.left) && is_number(&expr.right) => {
                let inverse = Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(lit(1.0f64)),
                    Operator::Divide,
                    Box::new(cast_expr(expr.right, DataType::Float64)),
                ));
                (expr.left, inverse)
            }
            _ => return Ok(PlannerResult::Original(expr)),
        };
        let call = ScalarFunction::new_udf(
            Arc::new(ScalarUDF::from(ScaleInterval::default())),
            vec![
                cast_expr(span, DataType::Interval(IntervalUnit::MonthDayNano)),
                cast_expr(factor, DataType::Float64),
            ],
        );
        Ok(PlannerResult::Planned(Expr::ScalarFunction(call)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(months: i32, days: i32, micros: i64) -> IntervalMonthDayNano {
        IntervalMonthDayNano::new(months, days, micros * 1_000)
    }

    #[test]
    fn scaling_moves_fractions_down() {
        let hour = 3_600_000_000;
        assert_eq!(scale(interval(0, 1, 0), 3.0), interval(0, 3, 0));
        assert_eq!(scale(interval(0, 0, hour), 0.5), interval(0, 0, hour / 2));
        assert_eq!(scale(interval(1, 0, 0), 1.5), interval(1, 15, 0));
        assert_eq!(scale(interval(0, 1, 0), 1.5), interval(0, 1, 12 * hour));
    }
}
