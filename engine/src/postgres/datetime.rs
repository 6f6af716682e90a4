//! Postgres's `make_timestamp(year, month, day, hour, minute, seconds)` and
//! `timezone(zone, t)` (`t AT TIME ZONE zone`).

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Offset, TimeZone};
use datafusion::arrow::array::timezone::Tz;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, TimestampMicrosecondArray};
use datafusion::arrow::compute::kernels::cast::cast;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, Int32Type, TimeUnit, TimestampMicrosecondType,
};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use datafusion::common::tree_node::Transformed;
use datafusion::common::DFSchema;
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{
    self as logical, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::{columnar, rewrite_node_expressions};

/// `make_timestamp`: a `timestamp` from its fields, the seconds with a
/// fraction.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MakeTimestamp {
    signature: Signature,
}

impl Default for MakeTimestamp {
    fn default() -> Self {
        MakeTimestamp {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for MakeTimestamp {
    fn name(&self) -> &str {
        "make_timestamp"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        if args.len() != 6 || !args.iter().all(|t| t.is_numeric() || t == &DataType::Null) {
            return plan_err!(
                "make_timestamp takes (year, month, day, hour, minute, seconds) as numbers"
            );
        }
        let mut types = vec![DataType::Int32; 5];
        types.push(DataType::Float64);
        Ok(types)
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Microsecond, None))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let fields: Vec<_> = arrays[..5]
            .iter()
            .map(|a| cast(a, &DataType::Int32))
            .collect::<std::result::Result<_, _>>()?;
        let seconds = cast(&arrays[5], &DataType::Float64)?;
        let seconds = seconds.as_primitive::<Float64Type>();
        let field = |f: usize, row: usize| {
            let values = fields[f].as_primitive::<Int32Type>();
            (!values.is_null(row)).then(|| values.value(row))
        };
        let mut out = Vec::with_capacity(seconds.len());
        for row in 0..seconds.len() {
            let parts = (0..5).map(|f| field(f, row)).collect::<Option<Vec<i32>>>();
            let (Some(parts), false) = (parts, seconds.is_null(row)) else {
                out.push(None);
                continue;
            };
            let second = seconds.value(row);
            let micros = (second * 1e6).round() as i64;
            let time = NaiveDate::from_ymd_opt(parts[0], parts[1] as u32, parts[2] as u32)
                .and_then(|date| date.and_hms_opt(parts[3] as u32, parts[4] as u32, 0))
                .filter(|_| (0..60_000_000).contains(&micros));
            let Some(time) = time else {
                return exec_err!(
                    "date field value out of range: {}-{:02}-{:02} {:02}:{:02}:{second}",
                    parts[0],
                    parts[1],
                    parts[2],
                    parts[3],
                    parts[4]
                );
            };
            out.push(Some(time.and_utc().timestamp_micros() + micros));
        }
        let result: Arc<dyn Array> = Arc::new(TimestampMicrosecondArray::from(out));
        columnar(&args.args, result)
    }
}

/// Postgres's `timezone(zone, t)`, which `t AT TIME ZONE zone` means: a
/// `timestamptz` becomes the wall-clock `timestamp` in `zone`, a
/// `timestamp` read as wall-clock time in `zone` becomes a `timestamptz`.
/// (DataFusion's own `AT TIME ZONE` relabels a `timestamptz`'s zone, so it
/// stays the same instant and type.)
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Timezone {
    signature: Signature,
}

impl Default for Timezone {
    fn default() -> Self {
        Timezone {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The zone every session's `timestamptz` is in.
const SESSION_ZONE: &str = "UTC";

impl ScalarUDFImpl for Timezone {
    fn name(&self) -> &str {
        "timezone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match args {
            [_, DataType::Timestamp(..)] => Ok(vec![DataType::Utf8, args[1].clone()]),
            [_, DataType::Date32 | DataType::Date64 | DataType::Null] => Ok(vec![
                DataType::Utf8,
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ]),
            _ => plan_err!("timezone(zone, t) takes a zone name and a timestamp"),
        }
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match &args[1] {
            DataType::Timestamp(unit, Some(_)) => DataType::Timestamp(*unit, None),
            DataType::Timestamp(unit, None) => {
                DataType::Timestamp(*unit, Some(SESSION_ZONE.into()))
            }
            _ => DataType::Timestamp(TimeUnit::Microsecond, Some(SESSION_ZONE.into())),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let zone = match &args.args[0] {
            ColumnarValue::Scalar(
                ScalarValue::Utf8(Some(zone))
                | ScalarValue::Utf8View(Some(zone))
                | ScalarValue::LargeUtf8(Some(zone)),
            ) => zone.clone(),
            _ => return exec_err!("AT TIME ZONE takes a constant zone name"),
        };
        // Postgres reads a numeric zone the POSIX way, `+05:00` west of
        // Greenwich, where Arrow reads it the ISO way.
        let zone = match zone.chars().next() {
            Some('+') => zone.replacen('+', "-", 1),
            Some('-') => zone.replacen('-', "+", 1),
            _ => zone,
        };
        if zone.parse::<Tz>().is_err() {
            return Err(super::sql_error(
                "22023",
                format!("time zone \"{zone}\" not recognized"),
            ));
        }
        let times = args.args[1].to_array(args.number_rows)?;
        let result = match times.data_type().clone() {
            DataType::Timestamp(unit, Some(_)) => cast(
                &wall_clock_in(&times, &zone)?,
                &DataType::Timestamp(unit, None),
            )?,
            // Wall-clock times in `zone`, then the same instants in UTC.
            DataType::Timestamp(unit, None) => cast(
                &cast(
                    &times,
                    &DataType::Timestamp(unit, Some(zone.as_str().into())),
                )?,
                &DataType::Timestamp(unit, Some(SESSION_ZONE.into())),
            )?,
            other => return exec_err!("timezone(zone, t) cannot take {other}"),
        };
        columnar(&args.args, result)
    }
}

/// The wall-clock times in `zone` of the instants `times`, as microseconds.
fn wall_clock_in(times: &ArrayRef, zone: &str) -> Result<ArrayRef> {
    let tz: Tz = zone.parse()?;
    let micros = cast(times, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
    let local = micros
        .as_primitive::<TimestampMicrosecondType>()
        .iter()
        .map(|utc| {
            utc.map(|utc| {
                let instant = DateTime::from_timestamp_micros(utc).unwrap_or_default();
                let offset = tz.offset_from_utc_datetime(&instant.naive_utc()).fix();
                utc + i64::from(offset.local_minus_utc()) * 1_000_000
            })
        })
        .collect::<TimestampMicrosecondArray>();
    Ok(Arc::new(local))
}

/// `date ± interval` is a `timestamp` in Postgres (midnight of the date,
/// moved); DataFusion keeps a `date`, dropping any hours. Before type
/// coercion (where `date + 30` still adds an integer), [`DateArithmetic`]
/// casts the date of such a sum to a `timestamp`.
#[derive(Debug)]
pub struct DateArithmetic;

impl AnalyzerRule for DateArithmetic {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| rewrite_node_expressions(node, date_as_timestamp))
            .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_date_arithmetic"
    }
}

fn date_as_timestamp(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    if !matches!(op, Operator::Plus | Operator::Minus) {
        return Ok(Transformed::no(expr));
    }
    let type_of = |e: &Expr| e.get_type(schema).ok();
    let is_date = |t: &Option<DataType>| matches!(t, Some(DataType::Date32 | DataType::Date64));
    let is_interval = |t: &Option<DataType>| matches!(t, Some(DataType::Interval(_)));
    // Type coercion writes `date + 30` as `date + CAST(CAST(… AS
    // Duration) AS Interval)`; a statement analyzed again keeps its date.
    let days = |e: &Expr| matches!(e, Expr::Cast(c) if matches!(c.expr.as_ref(), Expr::Cast(d) if matches!(d.field.data_type(), DataType::Duration(_))));
    if days(left) || days(right) {
        return Ok(Transformed::no(expr));
    }
    let (l, r) = (type_of(left), type_of(right));
    let timestamp =
        |e: &Expr| logical::cast(e.clone(), DataType::Timestamp(TimeUnit::Microsecond, None));
    let rewritten = if is_date(&l) && is_interval(&r) {
        Expr::BinaryExpr(BinaryExpr::new(
            Box::new(timestamp(left)),
            *op,
            right.clone(),
        ))
    } else if is_interval(&l) && is_date(&r) && *op == Operator::Plus {
        Expr::BinaryExpr(BinaryExpr::new(
            left.clone(),
            *op,
            Box::new(timestamp(right)),
        ))
    } else {
        return Ok(Transformed::no(expr));
    };
    Ok(Transformed::yes(rewritten))
}
