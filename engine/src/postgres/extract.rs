//! `EXTRACT` and `date_part` with Postgres's result types.
//!
//! Postgres's `extract(field FROM x)` is a `numeric` with the field's own
//! scale (`extract(second FROM …)` is `56.789000`, `extract(epoch FROM
//! timestamp)` has six decimals, `extract(year FROM …)` none), and
//! `date_part('field', x)` is a `float8`. DataFusion reads both as its
//! `date_part`, an `int4` for most fields. An [`ExprPlanner`] plans
//! `EXTRACT` as [`Extract`], and `date_part` is replaced by the same
//! function giving `float8`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Decimal128Array, Int32Array};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::compute::kernels::temporal::{date_part, DatePart};
use datafusion::arrow::datatypes::{
    DataType, Field, FieldRef, Int64Type, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
};
use datafusion::common::{exec_err, internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::columnar;

/// Plans `EXTRACT(field FROM x)` as Postgres's `extract`.
#[derive(Debug)]
pub struct ExtractPlanner;

impl ExprPlanner for ExtractPlanner {
    fn plan_extract(&self, args: Vec<Expr>) -> Result<PlannerResult<Vec<Expr>>> {
        Ok(PlannerResult::Planned(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(ScalarUDF::from(Extract::numeric())), args),
        )))
    }
}

/// `extract` (a `numeric`) or `date_part` (a `float8`) of a timestamp,
/// date, time or interval.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Extract {
    name: &'static str,
    aliases: Vec<String>,
    /// `date_part`'s `float8` rather than `extract`'s `numeric`.
    float: bool,
    signature: Signature,
}

impl Extract {
    pub fn numeric() -> Self {
        Extract {
            name: "extract",
            aliases: vec![],
            float: false,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }

    pub fn float() -> Self {
        Extract {
            name: "date_part",
            aliases: vec!["datepart".into()],
            float: true,
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

/// The field named by the first argument, as Postgres spells it.
fn field_name(value: Option<&ScalarValue>) -> Result<String> {
    let Some(name) = value.and_then(|v| v.try_as_str().flatten()) else {
        return plan_err!("the field of extract/date_part must be a constant string");
    };
    let name = name.trim().to_lowercase();
    // Postgres accepts singular and plural spellings.
    Ok(match name.as_str() {
        "years" => "year",
        "months" | "mon" | "mons" => "month",
        "days" => "day",
        "hours" => "hour",
        "minutes" | "min" | "mins" => "minute",
        "seconds" | "sec" | "secs" => "second",
        "millisecond" | "ms" => "milliseconds",
        "microsecond" | "us" => "microseconds",
        "centuries" => "century",
        "millenniums" | "millennia" => "millennium",
        "decades" => "decade",
        "quarters" => "quarter",
        "weeks" => "week",
        other => other,
    }
    .to_string())
}

/// Decimal places of a field's value: seconds carry microseconds.
fn field_scale(field: &str, source: &DataType) -> i8 {
    match (field, source) {
        ("epoch", DataType::Date32) => 0,
        ("epoch" | "second", _) => 6,
        ("milliseconds", _) => 3,
        _ => 0,
    }
}

impl ScalarUDFImpl for Extract {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        internal_err!("extract's type depends on its field: return_field_from_args gives it")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let field = field_name(args.scalar_arguments.first().copied().flatten())?;
        let source = args.arg_fields[1].data_type();
        let data_type = if self.float {
            DataType::Float64
        } else {
            DataType::Decimal128(38, field_scale(&field, source))
        };
        Ok(Arc::new(Field::new(self.name, data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let field = match &args.args[0] {
            ColumnarValue::Scalar(value) => field_name(Some(value))?,
            ColumnarValue::Array(_) => field_name(None)?,
        };
        let source = args.args[1].to_array(args.number_rows)?;
        let scale = field_scale(&field, source.data_type());
        let values =
            Decimal128Array::from(extract(&field, &source)?).with_precision_and_scale(38, scale)?;
        let result: ArrayRef = if self.float {
            cast(&values, &DataType::Float64)?
        } else {
            Arc::new(values)
        };
        columnar(&args.args, result)
    }
}

/// The unscaled values of `field` of each of `source`'s values.
fn extract(field: &str, source: &ArrayRef) -> Result<Vec<Option<i128>>> {
    if field == "epoch" {
        return epoch(source);
    }
    let part = |part| -> Result<Int32Array> {
        let values = date_part(source.as_ref(), part)?;
        Ok(values.as_primitive().clone())
    };
    let widen = |values: Int32Array| values.iter().map(|v| v.map(i128::from)).collect();
    let simple = match field {
        "year" => Some(DatePart::Year),
        "isoyear" => Some(DatePart::YearISO),
        "quarter" => Some(DatePart::Quarter),
        "month" => Some(DatePart::Month),
        "week" => Some(DatePart::WeekISO),
        "day" => Some(DatePart::Day),
        "dow" => Some(DatePart::DayOfWeekSunday0),
        "isodow" => Some(DatePart::DayOfWeekMonday1),
        "doy" => Some(DatePart::DayOfYear),
        "hour" => Some(DatePart::Hour),
        "minute" => Some(DatePart::Minute),
        _ => None,
    };
    if let Some(simple) = simple {
        return Ok(widen(part(simple)?));
    }
    match field {
        // Seconds with their fraction, in microseconds; the scale says
        // whether they read as seconds, milliseconds or microseconds.
        "second" | "milliseconds" | "microseconds" => {
            let seconds = part(DatePart::Second)?;
            let micros = part(DatePart::Microsecond)?;
            Ok(seconds
                .iter()
                .zip(micros.iter())
                .map(|(s, m)| Some(i128::from(s?) * 1_000_000 + i128::from(m?)))
                .collect())
        }
        "decade" | "century" | "millennium" => {
            let years = part(DatePart::Year)?;
            let of_year = |year: i128| match field {
                "decade" => year.div_euclid(10),
                "century" if year > 0 => (year + 99) / 100,
                "century" => -((99 - (year - 1)) / 100),
                _ if year > 0 => (year + 999) / 1000,
                _ => -((999 - (year - 1)) / 1000),
            };
            Ok(years.iter().map(|y| y.map(|y| of_year(y.into()))).collect())
        }
        other => exec_err!("unit \"{other}\" not recognized for extract/date_part"),
    }
}

/// Seconds since 1970-01-01 00:00 UTC (six decimals; a date's are whole),
/// or an interval's length in seconds, counting a month as 30 days and a
/// year as 365.25, as Postgres does.
fn epoch(source: &ArrayRef) -> Result<Vec<Option<i128>>> {
    let raw = |unit_micros: f64| -> Result<Vec<Option<i128>>> {
        let values = cast(source, &DataType::Int64)?;
        Ok(values
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|v| (v as f64 * unit_micros).round() as i128))
            .collect())
    };
    match source.data_type() {
        DataType::Timestamp(unit, _) | DataType::Duration(unit) => {
            let values = cast(source, &DataType::Int64)?;
            let micros = |v: i64| -> i128 {
                match unit {
                    TimeUnit::Second => i128::from(v) * 1_000_000,
                    TimeUnit::Millisecond => i128::from(v) * 1_000,
                    TimeUnit::Microsecond => i128::from(v),
                    TimeUnit::Nanosecond => i128::from(v).div_euclid(1_000),
                }
            };
            Ok(values
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| v.map(micros))
                .collect())
        }
        DataType::Date32 => {
            let days = cast(source, &DataType::Int32)?;
            let days: &Int32Array = days.as_primitive();
            Ok(days
                .iter()
                .map(|d| d.map(|d| i128::from(d) * 86_400))
                .collect())
        }
        DataType::Date64 => raw(1_000.0),
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let day = 86_400_000_000i128;
            Ok(source
                .as_primitive::<IntervalMonthDayNanoType>()
                .iter()
                .map(|v| {
                    v.map(|v| {
                        let months = i128::from(v.months);
                        let years = months / 12;
                        years * 36_525 * day / 100
                            + (months % 12) * 30 * day
                            + i128::from(v.days) * day
                            + i128::from(v.nanoseconds) / 1_000
                    })
                })
                .collect())
        }
        DataType::Interval(_) => {
            let as_mdn = cast(source, &DataType::Interval(IntervalUnit::MonthDayNano))?;
            epoch(&as_mdn)
        }
        other => exec_err!("extract(epoch from …) does not support {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, TimestampMicrosecondArray};

    fn unscaled(field: &str, source: ArrayRef) -> Vec<Option<i128>> {
        extract(field, &source).unwrap()
    }

    #[test]
    fn fields_of_a_timestamp() {
        // 2024-02-29 12:34:56.789
        let at: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            Some(1_709_210_096_789_000),
            None,
        ]));
        assert_eq!(unscaled("year", at.clone()), [Some(2024), None]);
        assert_eq!(unscaled("second", at.clone()), [Some(56_789_000), None]);
        assert_eq!(
            unscaled("epoch", at.clone()),
            [Some(1_709_210_096_789_000), None]
        );
        assert_eq!(unscaled("century", at.clone()), [Some(21), None]);
        assert_eq!(unscaled("isodow", at), [Some(4), None]);
    }

    #[test]
    fn centuries_and_millennia_start_at_year_one() {
        // 2000-01-01 and 2001-01-01
        let days: ArrayRef = Arc::new(Date32Array::from(vec![10_957, 11_323]));
        assert_eq!(unscaled("century", days.clone()), [Some(20), Some(21)]);
        assert_eq!(unscaled("millennium", days.clone()), [Some(2), Some(3)]);
        assert_eq!(
            unscaled("epoch", days),
            [Some(946_684_800), Some(978_307_200)]
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let days: ArrayRef = Arc::new(Date32Array::from(vec![1]));
        assert!(extract("fortnight", &days).is_err());
    }
}
