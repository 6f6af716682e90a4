//! Column type names used in frame schemas (the SDK's `create_frame` dict and
//! the registry) and their Arrow and Delta Lake equivalents.
//!
//! Delta Lake has no unsigned integers and stores timestamps as UTC
//! microseconds, so a few declared types are stored in a wider physical type:
//! `uint8`→int16, `uint16`→int32, `uint32`→int64, `uint64`→decimal(20,0),
//! `timestamp`→timestamp(µs, UTC). The declared name is kept in the registry.
//!
//! SQL's own types are declared too: `timestamp_ntz` (SQL `timestamp`, a
//! wall-clock time stored as Delta's `timestamp_ntz`), and `varchar(n)` /
//! `char(n)` (strings of at most `n` characters, stored as Delta strings;
//! a `char(n)` is padded with spaces to `n`).

use arrow::datatypes::{DataType, TimeUnit};
use deltalake::kernel::DataType as DeltaType;

use crate::error::{Error, Result};

/// A parsed column type: the name as declared plus its storage types.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnType {
    /// Canonical spelling, e.g. `int64`, `utf8`, `decimal(10,2)`.
    pub name: String,
    /// The Arrow type values are converted to before they are written.
    pub arrow: DataType,
}

/// The type names accepted, for error messages.
pub const TYPE_NAMES: &str = "int8, int16, int32, int64, uint8, uint16, uint32, uint64, float32, float64, utf8 (string), varchar(n), char(n), bool (boolean), date32 (date), timestamp, timestamp_ntz, binary, decimal(p,s)";

/// Arrow field metadata naming a column's SQL string type (`varchar(10)`,
/// `char(3)`), so results can report it.
pub const SQL_TYPE_KEY: &str = "apiary.sql_type";

impl ColumnType {
    /// Parses a declared type name (case-insensitive, surrounding space ignored).
    pub fn parse(declared: &str) -> Result<Self> {
        let lowered = declared.trim().to_ascii_lowercase();
        let (name, arrow) = match lowered.as_str() {
            "int8" | "tinyint" => ("int8", DataType::Int8),
            "int16" | "smallint" => ("int16", DataType::Int16),
            "int32" | "int" | "integer" => ("int32", DataType::Int32),
            "int64" | "bigint" | "long" => ("int64", DataType::Int64),
            "uint8" => ("uint8", DataType::Int16),
            "uint16" => ("uint16", DataType::Int32),
            "uint32" => ("uint32", DataType::Int64),
            "uint64" => ("uint64", DataType::Decimal128(20, 0)),
            "float32" | "float" | "real" => ("float32", DataType::Float32),
            "float64" | "double" => ("float64", DataType::Float64),
            "utf8" | "string" | "text" => ("utf8", DataType::Utf8),
            "varchar" => ("varchar", DataType::Utf8),
            "bool" | "boolean" => ("bool", DataType::Boolean),
            "date32" | "date" => ("date32", DataType::Date32),
            "timestamp" | "timestamp[us]" => (
                "timestamp",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ),
            "timestamp_ntz" => (
                "timestamp_ntz",
                DataType::Timestamp(TimeUnit::Microsecond, None),
            ),
            "binary" | "bytes" => ("binary", DataType::Binary),
            other => {
                if let Some(string) = parse_bounded_string(other, declared)? {
                    return Ok(string);
                }
                return parse_decimal(other, declared);
            }
        };
        Ok(ColumnType {
            name: name.to_string(),
            arrow,
        })
    }

    /// The declared type for values of Arrow type `arrow`, used when a frame
    /// is created from a query's result (`CREATE TABLE … AS SELECT`).
    pub fn from_arrow(arrow: &DataType) -> Result<Self> {
        use DataType::*;
        let name = match arrow {
            Null | Utf8 | LargeUtf8 | Utf8View => "utf8".to_string(),
            Int8 => "int8".into(),
            Int16 => "int16".into(),
            Int32 => "int32".into(),
            Int64 => "int64".into(),
            UInt8 => "uint8".into(),
            UInt16 => "uint16".into(),
            UInt32 => "uint32".into(),
            UInt64 => "uint64".into(),
            Float16 | Float32 => "float32".into(),
            Float64 => "float64".into(),
            Boolean => "bool".into(),
            Date32 | Date64 => "date32".into(),
            Timestamp(_, _) => "timestamp".into(),
            Binary | LargeBinary | BinaryView | FixedSizeBinary(_) => "binary".into(),
            Decimal128(p, s) => format!("decimal({p},{s})"),
            Dictionary(_, value) => return Self::from_arrow(value),
            other => {
                return Err(Error::InvalidSchema(format!(
                    "a frame cannot store values of type {other}; cast the column to one of {TYPE_NAMES}"
                )))
            }
        };
        Self::parse(&name)
    }

    /// A `varchar(n)` or `char(n)` column's limit `n`, and whether values
    /// are padded to it (`char`).
    pub fn max_chars(&self) -> Option<(usize, bool)> {
        let (base, rest) = self.name.split_once('(')?;
        let limit = rest.strip_suffix(')')?.parse().ok()?;
        Some((limit, base == "char"))
    }

    /// The SQL type a result column of this type reports, when it is not
    /// the one its Arrow type gives (`varchar`, `varchar(10)`, `char(3)`).
    pub fn sql_type(&self) -> Option<&str> {
        (self.name == "varchar" || self.max_chars().is_some()).then_some(self.name.as_str())
    }

    /// The Delta Lake type this column is stored as.
    pub fn delta(&self) -> Result<DeltaType> {
        Ok(match &self.arrow {
            DataType::Int8 => DeltaType::BYTE,
            DataType::Int16 => DeltaType::SHORT,
            DataType::Int32 => DeltaType::INTEGER,
            DataType::Int64 => DeltaType::LONG,
            DataType::Float32 => DeltaType::FLOAT,
            DataType::Float64 => DeltaType::DOUBLE,
            DataType::Utf8 => DeltaType::STRING,
            DataType::Boolean => DeltaType::BOOLEAN,
            DataType::Date32 => DeltaType::DATE,
            DataType::Timestamp(_, None) => DeltaType::TIMESTAMP_NTZ,
            DataType::Timestamp(_, _) => DeltaType::TIMESTAMP,
            DataType::Binary => DeltaType::BINARY,
            DataType::Decimal128(p, s) => DeltaType::decimal(*p, *s as u8)
                .map_err(|e| Error::InvalidSchema(format!("{}: {e}", self.name)))?,
            other => {
                return Err(Error::InvalidSchema(format!(
                    "type {other} has no Delta Lake equivalent"
                )))
            }
        })
    }
}

/// `varchar(n)` and `char(n)`, `n` from 1 to 10485760 as in Postgres.
fn parse_bounded_string(lowered: &str, declared: &str) -> Result<Option<ColumnType>> {
    let Some((base, rest)) = lowered.split_once('(') else {
        return Ok(None);
    };
    let base = base.trim();
    if base != "varchar" && base != "char" {
        return Ok(None);
    }
    let limit: usize = rest
        .strip_suffix(')')
        .and_then(|n| n.trim().parse().ok())
        .filter(|n| (1..=10_485_760).contains(n))
        .ok_or_else(|| {
            Error::InvalidSchema(format!(
                "{declared:?}: the length of {base}(n) must be a number from 1 to 10485760"
            ))
        })?;
    Ok(Some(ColumnType {
        name: format!("{base}({limit})"),
        arrow: DataType::Utf8,
    }))
}

fn parse_decimal(lowered: &str, declared: &str) -> Result<ColumnType> {
    let unknown = || {
        Error::InvalidSchema(format!(
            "unknown type {declared:?}; use one of {TYPE_NAMES}"
        ))
    };
    let inner = lowered
        .strip_prefix("decimal(")
        .or_else(|| lowered.strip_prefix("numeric("))
        .and_then(|rest| rest.strip_suffix(')'))
        .ok_or_else(unknown)?;
    let (p, s) = inner.split_once(',').ok_or_else(unknown)?;
    let precision: u8 = p.trim().parse().map_err(|_| unknown())?;
    let scale: i8 = s.trim().parse().map_err(|_| unknown())?;
    if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
        return Err(Error::InvalidSchema(format!(
            "decimal({precision},{scale}) is out of range: precision must be 1..=38 and 0 <= scale <= precision"
        )));
    }
    Ok(ColumnType {
        name: format!("decimal({precision},{scale})"),
        arrow: DataType::Decimal128(precision, scale),
    })
}

/// Whether a column declared `from` may be declared `to` with every value it
/// holds kept exactly: the widenings Delta's type-widening feature allows
/// (a wider integer, `float32`→`float64`, integers to `float64` or to a
/// decimal with room for every digit, a decimal with more digits on either
/// side, `date32`→`timestamp_ntz`), unsigned integers to any type that
/// holds them, and longer or unbounded `varchar`s.
pub fn is_widening(from: &ColumnType, to: &ColumnType) -> bool {
    use DataType::*;
    let unsigned = |t: &ColumnType| t.name.starts_with("uint");
    if from.name == to.name {
        return true;
    }
    if from.arrow == Utf8 || to.arrow == Utf8 {
        // `char(n)` pads to n, so a change of n changes values.
        return from.arrow == to.arrow
            && !from.name.starts_with("char")
            && !to.name.starts_with("char")
            && match (from.max_chars(), to.max_chars()) {
                (_, None) => true,
                (Some((from_limit, _)), Some((to_limit, _))) => to_limit >= from_limit,
                (None, Some(_)) => false,
            };
    }
    // A signed column may hold negative values, which no unsigned type does.
    if unsigned(to) && !unsigned(from) {
        return false;
    }
    if from.arrow == to.arrow {
        return true;
    }
    let digits = |t: &DataType| match t {
        Int8 => Some(3),
        Int16 => Some(5),
        Int32 => Some(10),
        Int64 => Some(20),
        _ => None,
    };
    match (&from.arrow, &to.arrow) {
        (Int8, Int16 | Int32 | Int64) | (Int16, Int32 | Int64) | (Int32, Int64) => true,
        (Int8 | Int16 | Int32, Float64) | (Float32, Float64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        (int, Decimal128(p, s)) => digits(int).is_some_and(|d| i16::from(*p) - i16::from(*s) >= d),
        (Date32, Timestamp(TimeUnit::Microsecond, None)) => true,
        _ => false,
    }
}

/// Whether a value of type `from` may be written into a column of type `to`
/// without losing information (widening casts, string/binary encodings,
/// dictionary-encoded values, timestamps of any unit or zone).
pub fn is_safe_cast(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    if from == to {
        return true;
    }
    if let Dictionary(_, value) = from {
        return is_safe_cast(value, to);
    }
    match (from, to) {
        (Null, _) => true,
        (Int8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (Int16, Int32 | Int64 | Float32 | Float64) => true,
        (Int32, Int64 | Float64) => true,
        (UInt8, Int16 | Int32 | Int64 | Float32 | Float64) => true,
        (UInt16, Int32 | Int64 | Float32 | Float64) => true,
        (UInt32, Int64 | Float64) => true,
        (UInt8 | UInt16 | UInt32 | UInt64, Decimal128(p, 0)) => *p >= 20,
        (Int8 | Int16 | Int32 | Int64, Decimal128(p, s)) => (*p as i16 - *s as i16) >= 19,
        (Float32, Float64) => true,
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && (p2 - *s2 as u8) >= (p1 - *s1 as u8)
        }
        (LargeUtf8 | Utf8View, Utf8) => true,
        (LargeBinary | BinaryView | FixedSizeBinary(_), Binary) => true,
        (Timestamp(_, _), Timestamp(TimeUnit::Microsecond, _)) => true,
        (Date64, Date32) => false,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widening_keeps_every_value() {
        let widens = |from: &str, to: &str| {
            is_widening(
                &ColumnType::parse(from).unwrap(),
                &ColumnType::parse(to).unwrap(),
            )
        };
        for (from, to) in [
            ("int32", "int64"),
            ("int8", "int32"),
            ("int16", "float64"),
            ("float32", "float64"),
            ("int32", "decimal(12,2)"),
            ("decimal(10,2)", "decimal(12,3)"),
            ("uint8", "int16"),
            ("uint32", "int64"),
            ("uint64", "decimal(25,0)"),
            ("date32", "timestamp_ntz"),
            ("varchar(10)", "varchar(20)"),
            ("varchar(10)", "text"),
            ("int64", "int64"),
        ] {
            assert!(widens(from, to), "{from} -> {to}");
        }
        for (from, to) in [
            ("int64", "int32"),
            ("int64", "float64"),
            ("float64", "float32"),
            ("int32", "decimal(10,2)"),
            ("decimal(10,2)", "decimal(10,3)"),
            ("int16", "uint16"),
            ("uint64", "int64"),
            ("text", "int64"),
            ("int64", "text"),
            ("varchar(20)", "varchar(10)"),
            ("text", "varchar(10)"),
            ("char(5)", "char(10)"),
            ("timestamp", "timestamp_ntz"),
        ] {
            assert!(!widens(from, to), "{from} -> {to}");
        }
    }

    #[test]
    fn sql_string_and_timestamp_types_parse() {
        let varchar = ColumnType::parse("VARCHAR(10)").unwrap();
        assert_eq!(
            (varchar.name.as_str(), varchar.max_chars()),
            ("varchar(10)", Some((10, false)))
        );
        assert_eq!(
            ColumnType::parse("char( 3 )").unwrap().max_chars(),
            Some((3, true))
        );
        assert!(ColumnType::parse("varchar(0)").is_err());
        assert_eq!(ColumnType::parse("utf8").unwrap().max_chars(), None);
        let ntz = ColumnType::parse("timestamp_ntz").unwrap();
        assert_eq!(ntz.arrow, DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(ntz.delta().unwrap(), DeltaType::TIMESTAMP_NTZ);
    }

    #[test]
    fn tutorial_types_parse() {
        assert_eq!(ColumnType::parse("int64").unwrap().arrow, DataType::Int64);
        assert_eq!(ColumnType::parse("UTF8").unwrap().name, "utf8");
        assert_eq!(ColumnType::parse("string").unwrap().name, "utf8");
        assert_eq!(
            ColumnType::parse("decimal(10, 2)").unwrap().arrow,
            DataType::Decimal128(10, 2)
        );
    }

    #[test]
    fn unknown_types_list_the_accepted_ones() {
        let err = ColumnType::parse("varchar2").unwrap_err().to_string();
        assert!(
            err.contains("int64") && err.contains("decimal(p,s)"),
            "{err}"
        );
        assert!(ColumnType::parse("decimal(40,2)").is_err());
        assert!(ColumnType::parse("decimal(5,6)").is_err());
    }

    #[test]
    fn only_widening_casts_are_safe() {
        assert!(is_safe_cast(&DataType::Int32, &DataType::Int64));
        assert!(is_safe_cast(&DataType::LargeUtf8, &DataType::Utf8));
        assert!(!is_safe_cast(&DataType::Int64, &DataType::Int32));
        assert!(!is_safe_cast(&DataType::Utf8, &DataType::Int64));
        assert!(!is_safe_cast(&DataType::Float64, &DataType::Int64));
        assert!(!is_safe_cast(&DataType::Int64, &DataType::Float64));
    }
}
