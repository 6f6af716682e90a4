//! `COPY frame [(columns)] | (query) TO STDOUT` in Postgres text, CSV or
//! binary format: how psql's `\copy … to`, pg_dump's data and the ADBC
//! driver read data out.
//!
//! The rows are the query's rows as the wire would carry them (text values
//! formatted by the session's settings, or binary values); this module only
//! lays each one out as a `COPY` line (Postgres manual, "COPY — File
//! Formats"). The handler streams them, so a `COPY` of any size needs the
//! memory of a few batches.

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::sql::sqlparser::ast::{CopySource, CopyTarget, Statement};
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyOutResponse;
use pgwire::messages::data::DataRow;

use crate::copy::{copy_format, CopyFormat};
use crate::sqlstate::error;

/// The binary format's signature, flags and header-extension length.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The binary format's trailer: a field count of -1.
const BINARY_TRAILER: &[u8] = &[0xff, 0xff];

/// A parsed `COPY … TO STDOUT`.
#[derive(Debug, Clone)]
pub struct CopyOut {
    /// The query whose rows are copied.
    pub query: String,
    pub format: CopyFormat,
    pub binary: bool,
    /// `format.delimiter` encoded once, for every field of every row.
    delimiter: Bytes,
}

impl CopyOut {
    /// `Some` for `COPY … TO STDOUT`; an error for `COPY … TO` a file or
    /// program, which would write on the server.
    pub fn from_statement(statement: &Statement) -> PgWireResult<Option<CopyOut>> {
        let Statement::Copy {
            source,
            to: true,
            target,
            options,
            legacy_options,
            ..
        } = statement
        else {
            return Ok(None);
        };
        if !matches!(target, CopyTarget::Stdout) {
            return Err(error(
                "0A000",
                "COPY TO writes only to STDOUT; use psql's \\copy … to 'file' to save it on the client",
            ));
        }
        let query = match source {
            CopySource::Table {
                table_name,
                columns,
            } if columns.is_empty() => format!("SELECT * FROM {table_name}"),
            CopySource::Table {
                table_name,
                columns,
            } => {
                let columns: Vec<String> = columns.iter().map(ToString::to_string).collect();
                format!("SELECT {} FROM {table_name}", columns.join(", "))
            }
            CopySource::Query(query) => query.to_string(),
        };
        let (format, binary) = copy_format(options, legacy_options)?;
        let delimiter = Bytes::from(format.delimiter.to_string());
        Ok(Some(CopyOut {
            query,
            format,
            binary,
            delimiter,
        }))
    }

    /// The message that starts the copy.
    pub fn start(&self, columns: usize) -> CopyOutResponse {
        let format = i16::from(self.binary);
        CopyOutResponse::new(format as i8, columns as i16, vec![format; columns])
    }

    /// What comes before the first row: the binary signature, or the
    /// column names when `HEADER` was asked for.
    pub fn header(&self, fields: &[FieldInfo]) -> Option<Bytes> {
        if self.binary {
            return Some(Bytes::from_static(BINARY_HEADER));
        }
        if !self.format.header {
            return None;
        }
        let mut line = BytesMut::new();
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.put_slice(&self.delimiter);
            }
            self.put_value(&mut line, field.name().as_bytes(), fields.len() == 1);
        }
        line.put_u8(b'\n');
        Some(line.freeze())
    }

    /// What comes after the last row.
    pub fn trailer(&self) -> Option<Bytes> {
        self.binary.then_some(Bytes::from_static(BINARY_TRAILER))
    }

    /// One row as a `COPY` line. `row` is encoded as the client would get
    /// it: text values for text and CSV, binary values for binary.
    pub fn line(&self, row: &DataRow) -> Bytes {
        let mut line = BytesMut::with_capacity(row.data.len() + 8);
        if self.binary {
            // A binary tuple is a DataRow's body: a field count, then
            // length-prefixed values (-1 for NULL).
            line.put_i16(row.field_count);
            line.put_slice(&row.data);
            return line.freeze();
        }
        let single = row.field_count == 1;
        for (i, value) in values(&row.data).enumerate() {
            if i > 0 {
                line.put_slice(&self.delimiter);
            }
            match value {
                None => line.put_slice(self.format.null.as_bytes()),
                Some(value) => self.put_value(&mut line, value, single),
            }
        }
        line.put_u8(b'\n');
        line.freeze()
    }

    fn put_value(&self, line: &mut BytesMut, value: &[u8], single: bool) {
        if self.format.csv {
            put_csv(line, value, &self.delimiter, &self.format, single);
        } else {
            put_text(line, value, &self.delimiter);
        }
    }
}

/// The values of a DataRow body, `None` for NULL.
fn values(mut data: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    std::iter::from_fn(move || {
        let (length, rest) = data.split_first_chunk::<4>()?;
        let length = i32::from_be_bytes(*length);
        if length < 0 {
            data = rest;
            return Some(None);
        }
        let (value, rest) = rest.split_at((length as usize).min(rest.len()));
        data = rest;
        Some(Some(value))
    })
}

/// A text-format value: backslash escapes for backslash, the delimiter
/// and the control characters Postgres escapes.
fn put_text(line: &mut BytesMut, value: &[u8], delimiter: &[u8]) {
    for &byte in value {
        let escaped = match byte {
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x0b => b'v',
            _ if delimiter == [byte] => byte,
            _ => {
                line.put_u8(byte);
                continue;
            }
        };
        line.put_slice(&[b'\\', escaped]);
    }
}

/// A CSV value, quoted when it holds the delimiter, the quote, a line
/// break, equals the NULL string, or is `\.` alone on its line.
fn put_csv(line: &mut BytesMut, value: &[u8], delimiter: &[u8], format: &CopyFormat, single: bool) {
    let quote = format.quote as u8;
    let quoted = value == format.null.as_bytes()
        || (single && value == b"\\.")
        || value
            .iter()
            .any(|&b| b == quote || b == b'\n' || b == b'\r')
        || value.windows(delimiter.len()).any(|w| w == delimiter);
    if !quoted {
        line.put_slice(value);
        return;
    }
    line.put_u8(quote);
    for &byte in value {
        if byte == quote {
            line.put_u8(quote);
        }
        line.put_u8(byte);
    }
    line.put_u8(quote);
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn copy(sql: &str) -> CopyOut {
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        CopyOut::from_statement(&statement).unwrap().unwrap()
    }

    fn row(values: &[Option<&str>]) -> DataRow {
        let mut data = BytesMut::new();
        for value in values {
            match value {
                None => data.put_i32(-1),
                Some(v) => {
                    data.put_i32(v.len() as i32);
                    data.put_slice(v.as_bytes());
                }
            }
        }
        DataRow::new(data, values.len() as i16)
    }

    #[test]
    fn table_and_query_sources() {
        assert_eq!(copy("COPY b.t TO STDOUT").query, "SELECT * FROM b.t");
        assert_eq!(
            copy("COPY t (a, \"B\") TO STDOUT").query,
            "SELECT a, \"B\" FROM t"
        );
        assert_eq!(
            copy("COPY (SELECT 1 AS x) TO STDOUT").query,
            "SELECT 1 AS x"
        );
        assert!(copy("COPY t TO STDOUT (FORMAT binary)").binary);
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, "COPY t TO '/etc/x'")
            .unwrap()
            .remove(0);
        assert!(CopyOut::from_statement(&statement).is_err());
    }

    #[test]
    fn text_lines_escape_as_postgres() {
        let text = copy("COPY t TO STDOUT");
        let line = text.line(&row(&[Some("a\tb\\c\nd"), None, Some("")]));
        assert_eq!(&line[..], b"a\\tb\\\\c\\nd\t\\N\t\n");
    }

    #[test]
    fn csv_lines_quote_as_postgres() {
        let csv = copy("COPY t TO STDOUT WITH (FORMAT csv, HEADER)");
        let line = csv.line(&row(&[
            Some("a,b"),
            None,
            Some(""),
            Some("say \"hi\""),
            Some("x"),
        ]));
        assert_eq!(&line[..], b"\"a,b\",,\"\",\"say \"\"hi\"\"\",x\n");
        assert_eq!(&csv.line(&row(&[Some("\\.")]))[..], b"\"\\.\"\n");
    }

    #[test]
    fn binary_rows_are_tuples() {
        let binary = copy("COPY t TO STDOUT (FORMAT binary)");
        let line = binary.line(&row(&[Some("ab"), None]));
        assert_eq!(&line[..], b"\x00\x02\x00\x00\x00\x02ab\xff\xff\xff\xff");
        assert_eq!(binary.header(&[]).unwrap().len(), 19);
    }
}
