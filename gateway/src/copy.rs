//! `COPY frame [(columns)] FROM STDIN` in Postgres text or CSV format: how
//! psql's `\copy` and bulk loaders feed data.
//!
//! The client's data is gathered until `CopyDone`, split into rows and
//! fields (Postgres manual, "COPY — File Formats"), and each column is cast
//! from text to the frame's declared type. The rows are then written in one
//! commit through the catalog, so a bad row anywhere leaves the frame as it
//! was.

use std::sync::Arc;

use apiary_engine::catalog::frame::arrow_schema;
use apiary_engine::catalog::{FrameDef, FrameName};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName,
    Statement,
};
use pgwire::error::PgWireError;

use crate::sqlstate::error;

/// Rows per batch handed to the writer.
const BATCH_ROWS: usize = 65_536;

/// How the client's bytes are laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyFormat {
    pub csv: bool,
    pub delimiter: char,
    pub null: String,
    pub header: bool,
    pub quote: char,
}

/// A parsed `COPY … FROM STDIN`.
#[derive(Debug, Clone)]
pub struct CopyIn {
    pub table: ObjectName,
    pub columns: Vec<String>,
    pub format: CopyFormat,
}

impl CopyIn {
    /// `Some` for `COPY … FROM STDIN`; an error for other `COPY` forms.
    pub fn from_statement(statement: &Statement) -> Result<Option<CopyIn>, PgWireError> {
        let Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        } = statement
        else {
            return Ok(None);
        };
        let (
            CopySource::Table {
                table_name,
                columns,
            },
            false,
            CopyTarget::Stdin,
        ) = (source, to, target)
        else {
            return Err(error(
                "0A000",
                "only COPY table [(columns)] FROM STDIN is supported; read data out with SELECT",
            ));
        };
        let mut format = CopyFormat {
            csv: false,
            delimiter: '\t',
            null: "\\N".into(),
            header: false,
            quote: '"',
        };
        let mut delimiter = None;
        let mut null = None;
        for option in options {
            match option {
                CopyOption::Format(name) => match name.value.to_ascii_lowercase().as_str() {
                    "csv" => format.csv = true,
                    "text" => format.csv = false,
                    other => {
                        return Err(error(
                            "0A000",
                            format!("COPY format {other} is not supported; use text or csv"),
                        ))
                    }
                },
                CopyOption::Delimiter(c) => delimiter = Some(*c),
                CopyOption::Null(s) => null = Some(s.clone()),
                CopyOption::Header(h) => format.header = *h,
                CopyOption::Quote(c) => format.quote = *c,
                _ => {}
            }
        }
        for option in legacy_options {
            match option {
                CopyLegacyOption::Csv(csv_options) => {
                    format.csv = true;
                    for o in csv_options {
                        match o {
                            CopyLegacyCsvOption::Header => format.header = true,
                            CopyLegacyCsvOption::Quote(c) => format.quote = *c,
                            _ => {}
                        }
                    }
                }
                CopyLegacyOption::Delimiter(c) => delimiter = Some(*c),
                CopyLegacyOption::Null(s) => null = Some(s.clone()),
                CopyLegacyOption::Header => format.header = true,
                CopyLegacyOption::Binary => {
                    return Err(error(
                        "0A000",
                        "binary COPY is not supported; use text or csv",
                    ))
                }
                _ => {}
            }
        }
        if format.csv {
            format.delimiter = delimiter.unwrap_or(',');
            format.null = null.unwrap_or_default();
        } else {
            format.delimiter = delimiter.unwrap_or('\t');
            format.null = null.unwrap_or_else(|| "\\N".into());
        }
        Ok(Some(CopyIn {
            table: table_name.clone(),
            columns: columns.iter().map(|c: &Ident| c.value.clone()).collect(),
            format,
        }))
    }
}

/// Turns the client's bytes into batches typed like the frame.
pub fn decode(
    data: &[u8],
    format: &CopyFormat,
    columns: &[String],
    name: &FrameName,
    def: &FrameDef,
) -> Result<Vec<RecordBatch>, PgWireError> {
    let text = std::str::from_utf8(data)
        .map_err(|e| error("22021", format!("COPY data is not valid UTF-8: {e}")))?;
    let target = arrow_schema(def).map_err(|e| error("XX000", e.to_string()))?;
    let columns: Vec<String> = if columns.is_empty() {
        def.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        columns.iter().map(|c| c.to_ascii_lowercase()).collect()
    };
    let mut fields = Vec::with_capacity(columns.len());
    for column in &columns {
        let field = target.field_with_name(column).map_err(|_| {
            error(
                "42703",
                format!("column {column:?} of frame {name} does not exist"),
            )
        })?;
        fields.push(Arc::new(field.clone()));
    }

    let mut batches = Vec::new();
    let mut builders = new_builders(fields.len());
    let mut rows_in_batch = 0;
    let mut line_no = 0;
    let mut records = records(text, format);
    if format.header {
        records.next();
    }
    for record in records {
        line_no += 1;
        let values = record.map_err(|e| error("22P04", format!("COPY line {line_no}: {e}")))?;
        if values.len() != fields.len() {
            return Err(error(
                "22P04",
                format!(
                    "COPY line {line_no}: expected {} values, found {}",
                    fields.len(),
                    values.len()
                ),
            ));
        }
        for (builder, value) in builders.iter_mut().zip(values) {
            builder.append_option(value);
        }
        rows_in_batch += 1;
        if rows_in_batch == BATCH_ROWS {
            batches.push(finish(&mut builders, &fields, name)?);
            rows_in_batch = 0;
        }
    }
    if rows_in_batch > 0 {
        batches.push(finish(&mut builders, &fields, name)?);
    }
    Ok(batches)
}

fn new_builders(n: usize) -> Vec<StringBuilder> {
    (0..n).map(|_| StringBuilder::new()).collect()
}

/// Casts the text columns to the frame's types; errors name the column.
fn finish(
    builders: &mut [StringBuilder],
    fields: &[Arc<Field>],
    name: &FrameName,
) -> Result<RecordBatch, PgWireError> {
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(fields.len());
    for (builder, field) in builders.iter_mut().zip(fields) {
        let text: ArrayRef = Arc::new(builder.finish());
        let typed = cast_with_options(&text, field.data_type(), &options).map_err(|e| {
            error(
                "22P02",
                format!("COPY into {name}, column {:?}: {e}", field.name()),
            )
        })?;
        arrays.push(typed);
    }
    let schema = Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, arrays).map_err(|e| error("XX000", e.to_string()))
}

type Record = Result<Vec<Option<String>>, String>;

/// The records of `text`, each a list of values (`None` for NULL).
fn records<'a>(text: &'a str, format: &'a CopyFormat) -> Box<dyn Iterator<Item = Record> + 'a> {
    if format.csv {
        Box::new(CsvRecords { rest: text, format })
    } else {
        Box::new(
            text.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l))
                .take_while(|l| *l != "\\.")
                .filter(|l| !l.is_empty())
                .map(|line| {
                    Ok(line
                        .split(format.delimiter)
                        .map(|field| (field != format.null).then(|| unescape_text(field)))
                        .collect())
                }),
        )
    }
}

/// Text-format escapes: `\t`, `\n`, `\r`, `\\` and friends.
fn unescape_text(field: &str) -> String {
    if !field.contains('\\') {
        return field.to_string();
    }
    let mut out = String::with_capacity(field.len());
    let mut chars = field.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('v') => out.push('\u{b}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// CSV records: quoted fields may hold delimiters, quotes (doubled) and
/// newlines; an unquoted field equal to the NULL string is NULL.
struct CsvRecords<'a> {
    rest: &'a str,
    format: &'a CopyFormat,
}

impl Iterator for CsvRecords<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        loop {
            if self.rest.is_empty() || self.rest.starts_with("\\.") {
                return None;
            }
            if let Some(rest) = self.rest.strip_prefix('\n') {
                self.rest = rest;
                continue;
            }
            if let Some(rest) = self.rest.strip_prefix("\r\n") {
                self.rest = rest;
                continue;
            }
            break;
        }
        let (quote, delim) = (self.format.quote, self.format.delimiter);
        let mut values = Vec::new();
        let mut chars = self.rest.char_indices().peekable();
        let mut field = String::new();
        let mut quoted = false;
        let mut in_quotes = false;
        let mut end = self.rest.len();
        while let Some((i, c)) = chars.next() {
            if in_quotes {
                if c == quote {
                    if chars.peek().map(|(_, n)| *n) == Some(quote) {
                        field.push(quote);
                        chars.next();
                    } else {
                        in_quotes = false;
                    }
                } else {
                    field.push(c);
                }
            } else if c == quote {
                in_quotes = true;
                quoted = true;
            } else if c == delim {
                values.push(csv_value(std::mem::take(&mut field), quoted, self.format));
                quoted = false;
            } else if c == '\n' {
                end = i + 1;
                break;
            } else if c == '\r' && chars.peek().map(|(_, n)| *n) == Some('\n') {
                chars.next();
                end = i + 2;
                break;
            } else {
                field.push(c);
            }
        }
        if in_quotes {
            self.rest = "";
            return Some(Err("unterminated CSV quoted field".into()));
        }
        values.push(csv_value(field, quoted, self.format));
        self.rest = &self.rest[end.min(self.rest.len())..];
        Some(Ok(values))
    }
}

fn csv_value(field: String, quoted: bool, format: &CopyFormat) -> Option<String> {
    (quoted || field != format.null).then_some(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv() -> CopyFormat {
        CopyFormat {
            csv: true,
            delimiter: ',',
            null: String::new(),
            header: false,
            quote: '"',
        }
    }

    #[test]
    fn csv_quotes_hold_delimiters_newlines_and_quotes() {
        let rows: Vec<_> = records("1,\"a,b\"\n2,\"x\"\"y\nz\"\n3,\n", &csv())
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a,b".into())],
                vec![Some("2".into()), Some("x\"y\nz".into())],
                vec![Some("3".into()), None],
            ]
        );
    }

    #[test]
    fn text_format_unescapes_and_reads_nulls() {
        let format = CopyFormat {
            csv: false,
            delimiter: '\t',
            null: "\\N".into(),
            header: false,
            quote: '"',
        };
        let rows: Vec<_> = records("1\ta\\tb\n2\t\\N\n\\.\n", &format)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            vec![
                vec![Some("1".into()), Some("a\tb".into())],
                vec![Some("2".into()), None],
            ]
        );
    }
}
