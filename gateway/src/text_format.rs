//! Timestamps in text results, written the way Postgres writes them.
//!
//! pgwire's text encoder always writes six fractional digits and a UTC
//! offset of the column's own zone (`2024-01-01 10:00:00.000000+00`).
//! Postgres trims the fraction (`10:00:00`, `10:00:00.5`) and shows a
//! `timestamptz` in the connection's `TimeZone`. With the ISO `DateStyle`
//! (the default, and what drivers ask for), text-format timestamp columns
//! are written here, as strings, before arrow-pg encodes the batch; binary
//! columns and other date styles are left to arrow-pg.

use std::str::FromStr;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, TimeUnit, TimestampMicrosecondType};
use chrono::{DateTime, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use pgwire::api::results::{FieldFormat, FieldInfo};

use crate::builtin::Settings;

/// Which columns of a result to rewrite, and in which zone.
pub struct TextTimestamps {
    columns: Vec<usize>,
    /// The connection's `TimeZone`; `None` (or one that does not parse)
    /// is UTC.
    zone: Option<Tz>,
}

impl TextTimestamps {
    pub fn new(schema: &Schema, fields: &[FieldInfo], settings: &Settings) -> Self {
        let iso = settings
            .get("datestyle")
            .is_none_or(|style| style.trim().to_ascii_uppercase().starts_with("ISO"));
        let columns = schema
            .fields()
            .iter()
            .zip(fields)
            .enumerate()
            .filter(|(_, (field, info))| {
                iso && info.format() == FieldFormat::Text
                    && matches!(field.data_type(), DataType::Timestamp(_, _))
            })
            .map(|(i, _)| i)
            .collect();
        let zone = settings
            .get("timezone")
            .and_then(|name| Tz::from_str(&name).ok());
        TextTimestamps { columns, zone }
    }

    /// `batch` with its text timestamp columns as Postgres-formatted strings.
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
        for &i in &self.columns {
            if let Some(text) = self.format_column(&columns[i]) {
                fields[i] = fields[i].clone().with_data_type(DataType::Utf8);
                columns[i] = text;
            }
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap_or(batch)
    }

    fn format_column(&self, column: &ArrayRef) -> Option<ArrayRef> {
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

/// `2024-01-02 03:04:05.5`: date, time, and the fraction without trailing zeros.
fn wall_clock(time: NaiveDateTime) -> String {
    let mut text = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let micros = time.nanosecond() / 1000;
    if micros > 0 {
        let fraction = format!(".{micros:06}");
        text.push_str(fraction.trim_end_matches('0'));
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
        let out = TextTimestamps::new(&schema, &[info], &settings).apply(batch);
        let column = out.column(0).as_string::<i32>();
        assert!(column.is_null(1));
        column.value(0).to_string()
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
