//! Casts, rounding and date arithmetic with Postgres's results.
//!
//! After type coercion, [`PostgresCasts`] rewrites what DataFusion
//! computes differently:
//! - `float8::int` rounds half to even (`2.5` → 2), and `numeric::int`
//!   half away from zero (`2.5` → 3); DataFusion truncates both. One-argument
//!   `round(float8)` rounds half to even too.
//! - `'\xdead'::bytea` reads Postgres's hex (or escape) input format;
//!   DataFusion takes the text's bytes as they are.
//! - `float8::text` is Postgres's shortest form (`1e+16`, not `1e16`),
//!   and `timestamp::text` Postgres's (`2024-01-01 00:00:00`, not ISO's
//!   `2024-01-01T00:00:00`).
//! - `date - date` is an `int4`.
//! - Intervals compare as Postgres compares them (`'1 day' = '24 hours'`),
//!   counting a month as 30 days.
//! - `to_hex()` of an `int4` writes its 32 bits (`ffffffff` for -1).
//! - `concat()` and `format()` write a boolean as `t`/`f`, as Postgres's
//!   text of one.
//! - `date_trunc` of a date is a `timestamptz`.
//! - `array_length`, `cardinality` and `gcd`/`lcm` of `int4`s are `int4`,
//!   and `length(bytea)` counts bytes.
//!
//! `upper` and `lower` are replaced by [`Convert`]'s, which keep a
//! character whose case mapping is several characters (`upper('ß')` is
//! `ß` in Postgres, `SS` in DataFusion).

use std::sync::Arc;

use chrono::DateTime;
use datafusion::arrow::array::{
    ArrayRef, AsArray, BinaryArray, Decimal128Array, Float64Array, StringArray,
};
use datafusion::arrow::compute::kernels::cast::cast as cast_array;
use datafusion::arrow::datatypes::{
    DataType, Float64Type, IntervalMonthDayNanoType, IntervalUnit, TimeUnit,
    TimestampMicrosecondType,
};
use datafusion::common::tree_node::Transformed;
use datafusion::common::{exec_err, DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{
    cast, lit, not, when, BinaryExpr, Cast, ColumnarValue, Expr, ExprSchemable, LogicalPlan,
    Operator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::text::{float_text, wall_clock};
use super::{columnar, declared, is_comparison, rewrite_node_expressions};
use apiary_catalog::types::SQL_TYPE_KEY;

/// A conversion Postgres does its own way, as a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Conversion {
    /// `float8` rounded half to even (Postgres's `rint`).
    RoundHalfEven,
    /// Text in `bytea`'s input format to its bytes.
    ByteaIn,
    /// `float8` as Postgres's text.
    FloatText,
    /// An interval as one number to compare by: Postgres compares
    /// intervals counting a month as 30 days and a day as 24 hours.
    IntervalOrder,
    /// The number of bytes of a `bytea`.
    ByteLength,
    /// `upper`: each character's single upper-case character (`ß` stays).
    Upper,
    /// `lower`: each character's single lower-case character.
    Lower,
    /// A timestamp as Postgres's text (`2024-01-01 00:00:00`, and `+00`
    /// after an instant, written in UTC).
    TimestampText,
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Convert {
    conversion: Conversion,
    signature: Signature,
}

impl Convert {
    fn new(conversion: Conversion) -> Self {
        let signature = match conversion {
            Conversion::RoundHalfEven | Conversion::FloatText => {
                Signature::exact(vec![DataType::Float64], Volatility::Immutable)
            }
            Conversion::ByteaIn | Conversion::Upper | Conversion::Lower => {
                Signature::string(1, Volatility::Immutable)
            }
            Conversion::TimestampText | Conversion::ByteLength => {
                Signature::any(1, Volatility::Immutable)
            }
            Conversion::IntervalOrder => Signature::exact(
                vec![DataType::Interval(IntervalUnit::MonthDayNano)],
                Volatility::Immutable,
            ),
        };
        Convert {
            conversion,
            signature,
        }
    }

    /// Every conversion, for registering.
    pub fn all() -> Vec<ScalarUDF> {
        [
            Conversion::RoundHalfEven,
            Conversion::ByteaIn,
            Conversion::FloatText,
            Conversion::TimestampText,
            Conversion::IntervalOrder,
            Conversion::Upper,
            Conversion::Lower,
            Conversion::ByteLength,
        ]
        .into_iter()
        .map(|conversion| ScalarUDF::from(Convert::new(conversion)))
        .collect()
    }

    fn call(conversion: Conversion, arg: Expr) -> Expr {
        Expr::ScalarFunction(ScalarFunction::new_udf(
            Arc::new(ScalarUDF::from(Convert::new(conversion))),
            vec![arg],
        ))
    }
}

impl ScalarUDFImpl for Convert {
    fn name(&self) -> &str {
        match self.conversion {
            Conversion::RoundHalfEven => "round_half_even",
            Conversion::ByteaIn => "bytea_in",
            Conversion::FloatText => "float8_text",
            Conversion::TimestampText => "timestamp_text",
            Conversion::IntervalOrder => "interval_order",
            Conversion::Upper => "upper",
            Conversion::Lower => "lower",
            Conversion::ByteLength => "bytea_length",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        Ok(match self.conversion {
            Conversion::Upper | Conversion::Lower => {
                args.first().cloned().unwrap_or(DataType::Utf8)
            }
            Conversion::RoundHalfEven => DataType::Float64,
            Conversion::ByteaIn => DataType::Binary,
            Conversion::FloatText | Conversion::TimestampText => DataType::Utf8,
            Conversion::IntervalOrder => DataType::Decimal128(38, 0),
            Conversion::ByteLength => DataType::Int32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let input = args.args[0].to_array(args.number_rows)?;
        let result: ArrayRef = match self.conversion {
            Conversion::RoundHalfEven => {
                let values: Float64Array = input
                    .as_primitive::<Float64Type>()
                    .unary(f64::round_ties_even);
                Arc::new(values)
            }
            Conversion::FloatText => {
                let values: StringArray = input
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(|v| float_text(v, 15)))
                    .collect();
                Arc::new(values)
            }
            Conversion::ByteLength => {
                let bytes = cast_array(&input, &DataType::Binary)?;
                datafusion::arrow::compute::kernels::length::length(&bytes)?
            }
            Conversion::Upper | Conversion::Lower => {
                let upper = self.conversion == Conversion::Upper;
                let text = cast_array(&input, &DataType::Utf8)?;
                let values: StringArray = text
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(|v| change_case(v, upper)))
                    .collect();
                cast_array(&values, input.data_type())?
            }
            Conversion::IntervalOrder => {
                let day = 86_400_000_000_000i128;
                let values: Decimal128Array = input
                    .as_primitive::<IntervalMonthDayNanoType>()
                    .iter()
                    .map(|v| {
                        v.map(|v| {
                            i128::from(v.months) * 30 * day
                                + i128::from(v.days) * day
                                + i128::from(v.nanoseconds)
                        })
                    })
                    .collect();
                Arc::new(values.with_precision_and_scale(38, 0)?)
            }
            Conversion::TimestampText => {
                let with_zone = matches!(input.data_type(), DataType::Timestamp(_, Some(_)));
                let micros = cast_array(&input, &DataType::Timestamp(TimeUnit::Microsecond, None))?;
                let values: StringArray = micros
                    .as_primitive::<TimestampMicrosecondType>()
                    .iter()
                    .map(|v| {
                        let time = DateTime::from_timestamp_micros(v?)?.naive_utc();
                        let zone = if with_zone { "+00" } else { "" };
                        Some(format!("{}{zone}", wall_clock(time)))
                    })
                    .collect();
                Arc::new(values)
            }
            Conversion::ByteaIn => {
                let text = cast_array(&input, &DataType::Utf8)?;
                let bytes = text
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(bytea_in).transpose())
                    .collect::<Result<BinaryArray>>()?;
                Arc::new(bytes)
            }
        };
        columnar(&args.args, result)
    }
}

/// Postgres's `upper`/`lower`: character by character, a character whose
/// case mapping is several characters (`ß` → `SS`) stays as it is.
fn change_case(text: &str, upper: bool) -> String {
    text.chars()
        .map(|c| {
            let mut mapped: Vec<char> = if upper {
                c.to_uppercase().collect()
            } else {
                c.to_lowercase().collect()
            };
            match mapped.len() {
                1 => mapped.pop().unwrap_or(c),
                _ => c,
            }
        })
        .collect()
}

/// Postgres's `bytea` input: `\x` and hex digits, or the escape format
/// (`\\` is a backslash, `\ooo` an octal byte, anything else itself).
pub fn bytea_in(text: &str) -> Result<Vec<u8>> {
    if let Some(hex) = text.strip_prefix("\\x") {
        let digits: Vec<u8> = hex.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        if !digits.len().is_multiple_of(2) {
            return exec_err!("invalid hexadecimal data: odd number of digits");
        }
        return digits
            .chunks(2)
            .map(|pair| {
                let pair = std::str::from_utf8(pair).unwrap_or("");
                u8::from_str_radix(pair, 16)
                    .or_else(|_| exec_err!("invalid hexadecimal digit in \"{pair}\""))
            })
            .collect();
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        if first != b'\\' {
            bytes.push(first);
            rest = tail;
        } else if tail.first() == Some(&b'\\') {
            bytes.push(b'\\');
            rest = &tail[1..];
        } else if tail.len() >= 3 && tail[..3].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let octal = std::str::from_utf8(&tail[..3]).unwrap_or("0");
            match u8::from_str_radix(octal, 8) {
                Ok(byte) => bytes.push(byte),
                Err(_) => return exec_err!("invalid input syntax for type bytea"),
            }
            rest = &tail[3..];
        } else {
            return exec_err!("invalid input syntax for type bytea");
        }
    }
    Ok(bytes)
}

/// Rewrites casts, `round(float8)` and `date - date`; see the module's
/// documentation.
#[derive(Debug)]
pub struct PostgresCasts;

impl AnalyzerRule for PostgresCasts {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        // Type coercion has run: a node whose expressions change type here
        // (`date - date` is now `int4`) has its schema computed again, so a
        // statement is described with the types it sends.
        plan.transform_up_with_subqueries(|node| rewrite_node_expressions(node, as_postgres))
            .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_casts"
    }
}

fn is_text(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
    )
}

fn is_binary(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Binary | DataType::BinaryView | DataType::LargeBinary
    )
}

fn is_call(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::ScalarFunction(f) if f.func.name() == name)
}

/// Whether `arg` is an `int4` or `int2` (or one type coercion widened).
fn narrow_int(arg: &Expr, type_of: &impl Fn(&Expr) -> Option<DataType>) -> bool {
    let narrow = |t: Option<DataType>| matches!(t, Some(DataType::Int32 | DataType::Int16));
    match arg {
        Expr::Cast(c) => narrow(type_of(&c.expr)),
        other => narrow(type_of(other)),
    }
}

/// Whether `arg` is a date, or a date type coercion made a timestamp.
fn is_date(arg: &Expr, type_of: &impl Fn(&Expr) -> Option<DataType>) -> bool {
    let date = |t: Option<DataType>| matches!(t, Some(DataType::Date32 | DataType::Date64));
    match arg {
        Expr::Cast(c) => date(type_of(&c.expr)),
        other => date(type_of(other)),
    }
}

/// A boolean argument, or one type coercion cast to text.
fn boolean(arg: &Expr, type_of: &impl Fn(&Expr) -> Option<DataType>) -> Option<Expr> {
    match arg {
        Expr::Cast(c) if type_of(&c.expr) == Some(DataType::Boolean) => Some(*c.expr.clone()),
        other if type_of(other) == Some(DataType::Boolean) => Some(other.clone()),
        _ => None,
    }
}

fn as_postgres(expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let type_of = |e: &Expr| e.get_type(schema).ok();
    match expr {
        Expr::Cast(Cast { expr: inner, field }) => {
            let to = field.data_type().clone();
            let declared = field
                .metadata()
                .get(SQL_TYPE_KEY)
                .and_then(|d| declared::bounded(d));
            let rewritten = match type_of(&inner) {
                _ if declared.is_some() => declared.map(|(limit, pad)| {
                    Expr::ScalarFunction(ScalarFunction::new_udf(
                        Arc::new(ScalarUDF::from(declared::BoundText::default())),
                        vec![cast(*inner.clone(), DataType::Utf8), lit(limit), lit(pad)],
                    ))
                }),
                Some(DataType::Float64 | DataType::Float32)
                    if to.is_integer() && !is_call(&inner, "round_half_even") =>
                {
                    let float = cast(*inner.clone(), DataType::Float64);
                    Some(cast(
                        Convert::call(Conversion::RoundHalfEven, float),
                        to.clone(),
                    ))
                }
                Some(DataType::Decimal128(_, scale)) if scale > 0 && to.is_integer() => Some(cast(
                    cast(*inner.clone(), DataType::Decimal128(38, 0)),
                    to.clone(),
                )),
                Some(from) if is_text(&from) && is_binary(&to) => Some(cast(
                    Convert::call(Conversion::ByteaIn, *inner.clone()),
                    to.clone(),
                )),
                Some(DataType::Timestamp(_, _)) if is_text(&to) => Some(cast(
                    Convert::call(Conversion::TimestampText, *inner.clone()),
                    to.clone(),
                )),
                Some(DataType::Float64 | DataType::Float32) if is_text(&to) => {
                    let float = cast(*inner.clone(), DataType::Float64);
                    Some(cast(
                        Convert::call(Conversion::FloatText, float),
                        to.clone(),
                    ))
                }
                _ => None,
            };
            Ok(match rewritten {
                Some(expr) => Transformed::yes(expr),
                None => Transformed::no(Expr::Cast(Cast { expr: inner, field })),
            })
        }
        // `to_hex` of an `int4` writes its 32 bits (`ffffffff` for -1).
        Expr::ScalarFunction(mut f)
            if f.func.name() == "to_hex"
                && f.args.len() == 1
                && matches!(
                    type_of(&f.args[0]).or_else(|| match &f.args[0] {
                        Expr::Cast(c) => type_of(&c.expr),
                        _ => None,
                    }),
                    Some(DataType::Int32 | DataType::Int16)
                )
                && !matches!(f.args[0], Expr::BinaryExpr(_)) =>
        {
            let value = match f.args.remove(0) {
                Expr::Cast(c) => *c.expr,
                other => other,
            };
            let bits = Expr::BinaryExpr(BinaryExpr {
                left: Box::new(cast(value, DataType::Int64)),
                op: Operator::BitwiseAnd,
                right: Box::new(Expr::Literal(ScalarValue::Int64(Some(0xffff_ffff)), None)),
            });
            f.args.insert(0, bits);
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        // `concat()` and `format()` write a boolean as Postgres's `t`/`f`.
        Expr::ScalarFunction(mut f)
            if matches!(f.func.name(), "concat" | "concat_ws" | "format")
                && f.args.iter().any(|a| boolean(a, &type_of).is_some()) =>
        {
            for arg in f.args.iter_mut() {
                if let Some(flag) = boolean(arg, &type_of) {
                    *arg = when(flag.clone(), lit("t"))
                        .when(not(flag), lit("f"))
                        .end()?;
                }
            }
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        // Postgres's `array_length`, `cardinality`, and `gcd`/`lcm` of
        // `int4`s are `int4`s.
        Expr::ScalarFunction(f)
            if matches!(f.func.name(), "array_length" | "cardinality")
                && type_of(&Expr::ScalarFunction(f.clone())) != Some(DataType::Int32) =>
        {
            Ok(Transformed::yes(cast(
                Expr::ScalarFunction(f),
                DataType::Int32,
            )))
        }
        Expr::ScalarFunction(f)
            if matches!(f.func.name(), "gcd" | "lcm")
                && f.args.iter().all(|a| narrow_int(a, &type_of)) =>
        {
            Ok(Transformed::yes(cast(
                Expr::ScalarFunction(f),
                DataType::Int32,
            )))
        }
        // `length(bytea)` counts bytes; DataFusion reads the bytes as text.
        Expr::ScalarFunction(mut f)
            if matches!(f.func.name(), "length" | "char_length" | "character_length")
                && f.args.len() == 1
                && matches!(&f.args[0], Expr::Cast(c) if type_of(&c.expr).is_some_and(|t| is_binary(&t))) =>
        {
            let bytes = match f.args.remove(0) {
                Expr::Cast(c) => *c.expr,
                other => other,
            };
            Ok(Transformed::yes(Convert::call(
                Conversion::ByteLength,
                bytes,
            )))
        }
        // `date_trunc` of a date truncates it as a `timestamptz`, as Postgres
        // casts it.
        Expr::ScalarFunction(mut f)
            if matches!(f.func.name(), "date_trunc" | "datetrunc")
                && f.args.len() == 2
                && is_date(&f.args[1], &type_of) =>
        {
            let date = match f.args.remove(1) {
                Expr::Cast(c) => *c.expr,
                other => other,
            };
            let instant = DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
            f.args.insert(1, cast(date, instant));
            Ok(Transformed::yes(Expr::ScalarFunction(f)))
        }
        Expr::ScalarFunction(mut f)
            if f.func.name() == "round"
                && f.args.len() == 1
                && type_of(&f.args[0]) == Some(DataType::Float64) =>
        {
            Ok(Transformed::yes(Convert::call(
                Conversion::RoundHalfEven,
                f.args.remove(0),
            )))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (l, r) = (type_of(&left), type_of(&right));
            let date = Some(DataType::Date32);
            let interval = |t: &Option<DataType>| matches!(t, Some(DataType::Interval(_)));
            match op {
                op if is_comparison(&op) && interval(&l) && interval(&r) => {
                    let order = |e: Expr| {
                        let mdn = cast(e, DataType::Interval(IntervalUnit::MonthDayNano));
                        Box::new(Convert::call(Conversion::IntervalOrder, mdn))
                    };
                    let (left, right) = (order(*left), order(*right));
                    Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr {
                        left,
                        op,
                        right,
                    })))
                }
                Operator::Minus if l == date && r == date => {
                    let days = Expr::BinaryExpr(BinaryExpr { left, op, right });
                    Ok(Transformed::yes(cast(days, DataType::Int32)))
                }
                _ => Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr {
                    left,
                    op,
                    right,
                }))),
            }
        }
        expr => Ok(Transformed::no(expr)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_changes_keep_one_character_per_character() {
        assert_eq!(change_case("straße", true), "STRAßE");
        assert_eq!(change_case("ÀÉÎ", false), "àéî");
        assert_eq!(change_case("İ", false), "İ");
    }

    #[test]
    fn bytea_input_reads_hex_and_escapes() {
        assert_eq!(bytea_in("\\xdeadBEEF").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(bytea_in("\\x").unwrap(), Vec::<u8>::new());
        assert_eq!(bytea_in("a\\\\b\\001").unwrap(), [b'a', b'\\', b'b', 1]);
        assert!(bytea_in("\\xabc").is_err());
        assert!(bytea_in("\\xzz").is_err());
        assert!(bytea_in("bad\\9").is_err());
    }
}
