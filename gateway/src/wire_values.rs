//! Result values written the way Postgres writes them.
//!
//! arrow-pg's text encoder writes what Rust's formatting gives: six
//! fractional digits and the column's own UTC offset for a timestamp,
//! `1.0` and `1e16` for a `float8`, `inf`, and intervals as ISO durations.
//! Postgres writes `10:00:00.5+01` in the connection's `TimeZone`, `1`,
//! `1e+16`, `Infinity`, and `1 day 12:00:00`. Its `numeric` goes through
//! `rust_decimal`, which holds 28 digits (a `numeric(38, 16)` does not
//! fit) and drops the scale of a zero (`0.00` arrives as `0`). Columns of
//! these types are written here, before arrow-pg encodes the batch: as
//! strings in text format, as Postgres's own bytes for a binary `numeric`
//! (arrow-pg copies a binary column's bytes as they are). Timestamps are
//! rewritten only with the ISO `DateStyle` (the default, and what drivers
//! ask for).

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{Array, ArrayRef, AsArray, BinaryArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Decimal128Type, DurationMicrosecondType, Field, Float32Type, Float64Type, Int32Type,
    IntervalDayTimeType, IntervalMonthDayNanoType, IntervalUnit, IntervalYearMonthType, Schema,
    TimeUnit, TimestampMicrosecondType,
};
use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Utc};
use pgwire::api::results::{FieldFormat, FieldInfo};

use apiary_engine::postgres::{float_text, wall_clock};

use crate::builtin::Settings;
use crate::regproc::{is_regproc_name, oid_bytes};
use crate::types::{type_name, TYPE_NAME_KEY};

/// How one text column is written.
#[derive(Clone, Copy)]
enum Render {
    Timestamp,
    Float,
    Interval,
    /// A `pg_typeof()` result: the type's name.
    TypeName,
    Numeric,
    /// A `numeric` in binary format: Postgres's base-10000 digits.
    NumericBinary,
    /// A `regproc` (a catalog function name) in binary format: its OID.
    RegprocBinary,
}

/// Which columns of a result to rewrite, how, and in which zone.
pub struct WireValues {
    columns: Vec<(usize, Render)>,
    /// The connection's `TimeZone`; `None` (or one that does not parse)
    /// is UTC.
    zone: Option<Tz>,
}

impl WireValues {
    pub fn new(schema: &Schema, fields: &[FieldInfo], settings: &Settings) -> Self {
        let iso = settings
            .get("datestyle")
            .is_none_or(|style| style.trim().to_ascii_uppercase().starts_with("ISO"));
        let columns = schema
            .fields()
            .iter()
            .zip(fields)
            .enumerate()
            .filter_map(|(i, (field, info))| {
                let text = info.format() == FieldFormat::Text;
                let render = match field.data_type() {
                    DataType::Decimal128(_, _) if text => Render::Numeric,
                    DataType::Decimal128(_, _) => Render::NumericBinary,
                    _ if !text && is_regproc_name(field) => Render::RegprocBinary,
                    _ if !text => return None,
                    _ if field.metadata().contains_key(TYPE_NAME_KEY) => Render::TypeName,
                    DataType::Timestamp(_, _) if iso => Render::Timestamp,
                    DataType::Float32 | DataType::Float64 => Render::Float,
                    DataType::Interval(_) | DataType::Duration(_) => Render::Interval,
                    _ => return None,
                };
                Some((i, render))
            })
            .collect();
        let zone = settings
            .get("timezone")
            .and_then(|name| Tz::from_str(&name).ok());
        WireValues { columns, zone }
    }

    /// `batch` with its rewritten columns: Postgres-formatted strings, or
    /// the bytes of a binary `numeric` or `regproc`.
    pub fn apply(&self, batch: RecordBatch) -> RecordBatch {
        if self.columns.is_empty() {
            return batch;
        }
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut columns = batch.columns().to_vec();
        for &(i, render) in &self.columns {
            let text = match render {
                Render::Timestamp => self.timestamps(&columns[i]),
                Render::Float => floats(&columns[i]),
                Render::Interval => intervals(&columns[i]),
                Render::TypeName => type_names(&columns[i]),
                Render::Numeric => cast(&columns[i], &DataType::Utf8).ok(),
                Render::NumericBinary => numerics_binary(&columns[i]),
                Render::RegprocBinary => oid_bytes(&columns[i]),
            };
            if let Some(text) = text {
                let data_type = text.data_type().clone();
                fields[i] = Field::new(fields[i].name(), data_type, true);
                columns[i] = text;
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap_or(batch)
    }

    fn timestamps(&self, column: &ArrayRef) -> Option<ArrayRef> {
        let DataType::Timestamp(_, zone) = column.data_type() else {
            return None;
        };
        let with_zone = zone.is_some();
        let micros = cast(column, &DataType::Timestamp(TimeUnit::Microsecond, None)).ok()?;
        let micros = micros.as_primitive::<TimestampMicrosecondType>();
        let text: StringArray = micros
            .iter()
            .map(|value| {
                let utc = DateTime::from_timestamp_micros(value?)?.naive_utc();
                Some(if with_zone {
                    with_offset(self.zone.as_ref(), utc)
                } else {
                    wall_clock(utc)
                })
            })
            .collect();
        Some(Arc::new(text))
    }
}

fn floats(column: &ArrayRef) -> Option<ArrayRef> {
    let text: StringArray = match column.data_type() {
        DataType::Float64 => column
            .as_primitive::<Float64Type>()
            .iter()
            .map(|v| v.map(|v| float_text(v, 15)))
            .collect(),
        DataType::Float32 => column
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map(|v| float_text(v, 6)))
            .collect(),
        _ => return None,
    };
    Some(Arc::new(text))
}

fn numerics_binary(column: &ArrayRef) -> Option<ArrayRef> {
    let DataType::Decimal128(_, scale) = column.data_type() else {
        return None;
    };
    let bytes: BinaryArray = column
        .as_primitive::<Decimal128Type>()
        .iter()
        .map(|v| v.map(|v| numeric_binary(v, *scale)))
        .collect();
    Some(Arc::new(bytes))
}

/// Postgres's binary `numeric` (`numeric_send`) of `value` × 10^-`scale`:
/// digit count, weight of the first base-10000 digit, sign, display scale,
/// then the digits, with no leading or trailing zero digits.
pub fn numeric_binary(value: i128, scale: i8) -> Vec<u8> {
    // Digits as text: 38 of them, padded or shifted by the scale, do not
    // fit an integer once aligned to base-10000 digits.
    let digits = value.unsigned_abs().to_string();
    let (whole, fraction) = match usize::try_from(scale) {
        Ok(scale) if scale >= digits.len() => (String::new(), format!("{digits:0>scale$}")),
        Ok(scale) => {
            let (whole, fraction) = digits.split_at(digits.len() - scale);
            (whole.to_string(), fraction.to_string())
        }
        // A negative scale multiplies by a power of ten.
        Err(_) => (
            format!("{digits}{}", "0".repeat(scale.unsigned_abs().into())),
            String::new(),
        ),
    };
    let group = |text: &str| text.parse::<i16>().unwrap_or(0);
    // Whole digits grouped from the point leftwards, fraction digits from
    // the point rightwards (the last group padded with zeros).
    let whole = whole.trim_start_matches('0');
    let lead = whole.len() % 4;
    let mut groups: Vec<i16> = Vec::new();
    if lead > 0 {
        groups.push(group(&whole[..lead]));
    }
    groups.extend(
        whole.as_bytes()[lead..]
            .chunks(4)
            .map(|g| group(std::str::from_utf8(g).unwrap_or("0"))),
    );
    let whole_groups = groups.len() as i32;
    let padded = format!(
        "{fraction:0<width$}",
        width = fraction.len().div_ceil(4) * 4
    );
    groups.extend(
        padded
            .as_bytes()
            .chunks(4)
            .map(|g| group(std::str::from_utf8(g).unwrap_or("0"))),
    );
    let mut weight = whole_groups - 1;
    let leading = groups.iter().take_while(|&&g| g == 0).count();
    groups.drain(..leading);
    weight -= leading as i32;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    let mut out = Vec::with_capacity(8 + 2 * groups.len());
    out.extend_from_slice(&(groups.len() as u16).to_be_bytes());
    out.extend_from_slice(&(weight as i16).to_be_bytes());
    let sign: u16 = if value < 0 { 0x4000 } else { 0 };
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&(scale.max(0) as u16).to_be_bytes());
    for group in groups {
        out.extend_from_slice(&group.to_be_bytes());
    }
    out
}

fn type_names(column: &ArrayRef) -> Option<ArrayRef> {
    let oids = column.as_primitive_opt::<Int32Type>()?;
    let text: StringArray = oids
        .iter()
        .map(|oid| oid.map(|oid| type_name(oid as u32)))
        .collect();
    Some(Arc::new(text))
}

fn intervals(column: &ArrayRef) -> Option<ArrayRef> {
    // (months, days, microseconds) of each value.
    let parts: Vec<Option<(i64, i64, i64)>> = match column.data_type() {
        DataType::Interval(IntervalUnit::MonthDayNano) => column
            .as_primitive::<IntervalMonthDayNanoType>()
            .iter()
            .map(|v| v.map(|v| (v.months as i64, v.days as i64, v.nanoseconds / 1000)))
            .collect(),
        DataType::Interval(IntervalUnit::DayTime) => column
            .as_primitive::<IntervalDayTimeType>()
            .iter()
            .map(|v| v.map(|v| (0, v.days as i64, v.milliseconds as i64 * 1000)))
            .collect(),
        DataType::Interval(IntervalUnit::YearMonth) => column
            .as_primitive::<IntervalYearMonthType>()
            .iter()
            .map(|v| v.map(|v| (v as i64, 0, 0)))
            .collect(),
        // A difference of two timestamps: Postgres counts whole days of it
        // as days (`1 day 12:00:00`, not `36:00:00`).
        DataType::Duration(_) => {
            let micros = cast(column, &DataType::Duration(TimeUnit::Microsecond)).ok()?;
            micros
                .as_primitive::<DurationMicrosecondType>()
                .iter()
                .map(|v| v.map(|v| (0, v / 86_400_000_000, v % 86_400_000_000)))
                .collect()
        }
        _ => return None,
    };
    let text: StringArray = parts
        .into_iter()
        .map(|v| v.map(|(months, days, micros)| interval_text(months, days, micros)))
        .collect();
    Some(Arc::new(text))
}

/// Postgres's interval output in its default `IntervalStyle`:
/// `1 year 2 mons -3 days +04:05:06.5`.
pub fn interval_text(months: i64, days: i64, micros: i64) -> String {
    let mut text = String::new();
    // Whether the last part written was negative: a positive part after it
    // then gets an explicit `+`.
    let mut before_negative = false;
    for (value, unit) in [(months / 12, "year"), (months % 12, "mon"), (days, "day")] {
        if value == 0 {
            continue;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        let sign = if before_negative && value > 0 {
            "+"
        } else {
            ""
        };
        let plural = if value != 1 { "s" } else { "" };
        text.push_str(&format!("{sign}{value} {unit}{plural}"));
        before_negative = value < 0;
    }
    if text.is_empty() || micros != 0 {
        let sign = if micros < 0 {
            "-"
        } else if before_negative {
            "+"
        } else {
            ""
        };
        let micros = micros.unsigned_abs();
        let (hours, minutes) = (micros / 3_600_000_000, micros / 60_000_000 % 60);
        let (seconds, fraction) = (micros / 1_000_000 % 60, micros % 1_000_000);
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!("{sign}{hours:02}:{minutes:02}:{seconds:02}"));
        if fraction > 0 {
            text.push_str(format!(".{fraction:06}").trim_end_matches('0'));
        }
    }
    text
}

/// The instant `utc` in `zone`, followed by its offset: `+00`, `-05`, `+05:30`.
fn with_offset(zone: Option<&Tz>, utc: NaiveDateTime) -> String {
    let (local, seconds) = match zone {
        Some(zone) => {
            let local = Utc.from_utc_datetime(&utc).with_timezone(zone);
            (local.naive_local(), local.offset().fix().local_minus_utc())
        }
        None => (utc, 0),
    };
    let sign = if seconds < 0 { '-' } else { '+' };
    let (hours, minutes) = (seconds.abs() / 3600, seconds.abs() % 3600 / 60);
    let mut text = wall_clock(local);
    text.push_str(&format!("{sign}{hours:02}"));
    if minutes > 0 {
        text.push_str(&format!(":{minutes:02}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampMicrosecondArray;
    use pgwire::api::Type;

    fn render(zone: &str, tz: Option<&str>, micros: i64) -> String {
        let settings = Settings::default();
        settings.set("TimeZone", zone).unwrap();
        let array = TimestampMicrosecondArray::from(vec![Some(micros), None]).with_timezone_opt(tz);
        let schema = Schema::new(vec![Field::new("at", array.data_type().clone(), true)]);
        let info = FieldInfo::new(
            "at".into(),
            None,
            None,
            Type::TIMESTAMPTZ,
            FieldFormat::Text,
        );
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(array)]).unwrap();
        let out = WireValues::new(&schema, &[info], &settings).apply(batch);
        let column = out.column(0).as_string::<i32>();
        assert!(column.is_null(1));
        column.value(0).to_string()
    }

    #[test]
    fn numerics_are_sent_as_postgres_sends_them() {
        let words = |bytes: Vec<u8>| -> Vec<i16> {
            bytes
                .chunks(2)
                .map(|pair| i16::from_be_bytes([pair[0], pair[1]]))
                .collect()
        };
        // ndigits, weight, sign, dscale, digits…
        assert_eq!(words(numeric_binary(0, 2)), [0, 0, 0, 2]);
        assert_eq!(words(numeric_binary(12345, 2)), [2, 0, 0, 2, 123, 4500]);
        assert_eq!(words(numeric_binary(-5, 0)), [1, 0, 0x4000, 0, 5]);
        assert_eq!(words(numeric_binary(100_000_000, 0)), [1, 2, 0, 0, 1]);
        assert_eq!(words(numeric_binary(1, 5)), [1, -2, 0, 5, 1000]);
        let big = 10i128.pow(37) + 7;
        // The largest 38-digit value at the largest scale.
        let max = 10i128.pow(38) - 1;
        assert_eq!(words(numeric_binary(max, 38))[..4], [10, -1, 0, 38]);
        assert_eq!(words(numeric_binary(5, -2)), [1, 0, 0, 0, 500]);
        assert_eq!(
            words(numeric_binary(big, 16)),
            [10, 5, 0, 16, 10, 0, 0, 0, 0, 0, 0, 0, 0, 7]
        );
    }

    #[test]
    fn intervals_read_like_postgres() {
        let hour = 3_600_000_000;
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(interval_text(0, 1, 12 * hour), "1 day 12:00:00");
        assert_eq!(interval_text(0, 0, 1_500_000), "00:00:01.5");
        assert_eq!(interval_text(14, 3, 0), "1 year 2 mons 3 days");
        assert_eq!(interval_text(0, -1, 2 * hour), "-1 days +02:00:00");
        assert_eq!(interval_text(0, 0, -36 * hour), "-36:00:00");
    }

    #[test]
    fn timestamps_read_like_postgres() {
        let noon = 1_704_110_400_000_000; // 2024-01-01 12:00:00 UTC
        assert_eq!(render("UTC", Some("UTC"), noon), "2024-01-01 12:00:00+00");
        assert_eq!(
            render("UTC", Some("UTC"), noon + 500_000),
            "2024-01-01 12:00:00.5+00"
        );
        assert_eq!(
            render("UTC", None, noon + 123_456),
            "2024-01-01 12:00:00.123456"
        );
        assert_eq!(
            render("Europe/Berlin", Some("UTC"), noon),
            "2024-01-01 13:00:00+01"
        );
        assert_eq!(
            render("Asia/Kolkata", Some("UTC"), noon),
            "2024-01-01 17:30:00+05:30"
        );
        assert_eq!(
            render("America/New_York", Some("UTC"), noon),
            "2024-01-01 07:00:00-05"
        );
        assert_eq!(
            render("nowhere/at all", Some("UTC"), noon),
            "2024-01-01 12:00:00+00"
        );
    }
}
