//! `COPY frame [(columns)] FROM STDIN` in Postgres text or CSV format: how
//! psql's `\copy` and bulk loaders feed data.
//!
//! The client's data is split into rows and fields as it arrives (Postgres
//! manual, "COPY — File Formats"), and each column is cast from text to the
//! frame's declared type. The batches stream into one write that commits
//! when the client sends `CopyDone`, so a load need not fit in memory and a
//! bad row anywhere (or a client that goes away) leaves the frame as it
//! was.

use std::sync::Arc;

use apiary_engine::catalog::frame::arrow_schema;
use apiary_engine::catalog::{FrameDef, FrameName, WriteMode, WriteOptions, WriteResult};
use apiary_engine::Session;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::sql::sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Ident, ObjectName,
    Statement,
};
use futures::stream::{self, BoxStream};
use futures::StreamExt;
use pgwire::error::PgWireError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::sqlstate::{error, from_engine};

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
    /// `Some` for `COPY … FROM STDIN`, `None` for `COPY … TO` and other
    /// statements; an error for `COPY FROM` anything else.
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
        if *to {
            return Ok(None);
        }
        let (
            CopySource::Table {
                table_name,
                columns,
            },
            CopyTarget::Stdin,
        ) = (source, target)
        else {
            return Err(error(
                "0A000",
                "COPY FROM reads only from STDIN (psql's \\copy sends a file that way)",
            ));
        };
        let (format, binary) = copy_format(options, legacy_options)?;
        if binary {
            return Err(error(
                "0A000",
                "binary COPY FROM is not supported; use text or csv",
            ));
        }
        Ok(Some(CopyIn {
            table: table_name.clone(),
            columns: columns.iter().map(|c: &Ident| c.value.clone()).collect(),
            format,
        }))
    }
}

/// The layout a `COPY`'s options ask for, and whether it is binary.
pub fn copy_format(
    options: &[CopyOption],
    legacy_options: &[CopyLegacyOption],
) -> Result<(CopyFormat, bool), PgWireError> {
    let mut format = CopyFormat {
        csv: false,
        delimiter: '\t',
        null: "\\N".into(),
        header: false,
        quote: '"',
    };
    let mut binary = false;
    let mut delimiter = None;
    let mut null = None;
    for option in options {
        match option {
            CopyOption::Format(name) => match name.value.to_ascii_lowercase().as_str() {
                "csv" => format.csv = true,
                "text" => format.csv = false,
                "binary" => binary = true,
                other => {
                    return Err(error(
                        "22023",
                        format!("COPY format \"{other}\" not recognized; use text, csv or binary"),
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
            CopyLegacyOption::Binary => binary = true,
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
    Ok((format, binary))
}

/// A `COPY FROM STDIN` in progress.
pub enum CopyLoad {
    /// Chunks are decoded into the write as they come.
    Streaming {
        /// Boxed: a decoder is several times the size of the other variant.
        decoder: Box<CopyDecoder>,
        batches: mpsc::Sender<CopyChunk>,
        write: JoinHandle<apiary_engine::Result<WriteResult>>,
    },
    /// A chunk was bad: the write was abandoned and this error answers
    /// `CopyDone`, as Postgres reports a bad row once the copy ends.
    Failed(PgWireError),
}

/// What goes to the writer.
pub enum CopyChunk {
    Batch(RecordBatch),
    /// `CopyDone`: the write may commit.
    Done,
}

/// Decoded batches waiting for the writer; the client's `CopyData` waits
/// when the writer falls behind, so a load is never gathered in memory.
const COPY_QUEUE: usize = 2;

impl CopyLoad {
    /// Checks the frame and the columns of `copy` and starts the write its
    /// data will stream into; also returns how many columns the client sends.
    pub async fn start(session: &Session, copy: CopyIn) -> Result<(CopyLoad, usize), PgWireError> {
        let (name, def) = session.frame(&copy.table).await.map_err(from_engine)?;
        let decoder = CopyDecoder::new(&copy.format, &copy.columns, &name, &def)?;
        let columns = decoder.fields.len();
        let (batches, received) = mpsc::channel(COPY_QUEUE);
        let write = session
            .write_stream(
                name,
                def,
                writer_input(received),
                WriteMode::Append,
                WriteOptions::default(),
            )
            .await
            .map_err(from_engine)?;
        let load = CopyLoad::Streaming {
            decoder: Box::new(decoder),
            batches,
            write: tokio::spawn(write),
        };
        Ok((load, columns))
    }

    /// Decodes a `CopyData` chunk into the write. A bad chunk abandons the
    /// write; its error is kept for `CopyDone`.
    pub async fn push(self, data: &[u8]) -> CopyLoad {
        let CopyLoad::Streaming {
            mut decoder,
            batches,
            write,
        } = self
        else {
            return self;
        };
        match decoder.push(data) {
            Ok(decoded) => {
                send(&batches, decoded.into_iter().map(CopyChunk::Batch)).await;
                CopyLoad::Streaming {
                    decoder,
                    batches,
                    write,
                }
            }
            Err(e) => {
                write.abort();
                CopyLoad::Failed(e)
            }
        }
    }

    /// `CopyDone`: decodes the rest, lets the write commit and waits for it.
    pub async fn finish(self) -> Result<WriteResult, PgWireError> {
        let (decoder, batches, write) = match self {
            CopyLoad::Streaming {
                decoder,
                batches,
                write,
            } => (decoder, batches, write),
            CopyLoad::Failed(e) => return Err(e),
        };
        let last = match decoder.finish() {
            Ok(last) => last,
            Err(e) => {
                write.abort();
                return Err(e);
            }
        };
        let chunks = last.into_iter().map(CopyChunk::Batch);
        send(&batches, chunks.chain([CopyChunk::Done])).await;
        drop(batches);
        write
            .await
            .map_err(|e| error("XX000", format!("the COPY's writer stopped: {e}")))?
            .map_err(from_engine)
    }

    /// `CopyFail`: nothing is written.
    pub fn abandon(self) {
        if let CopyLoad::Streaming { write, .. } = self {
            write.abort();
        }
    }
}

/// Hands chunks to the writer. A writer that stopped early has failed; its
/// error answers `CopyDone`, so the rest is dropped.
async fn send(batches: &mpsc::Sender<CopyChunk>, chunks: impl IntoIterator<Item = CopyChunk>) {
    for chunk in chunks {
        if batches.send(chunk).await.is_err() {
            break;
        }
    }
}

/// The writer's input: the batches, ending at `Done`. A queue closed
/// without `Done` (the client went away) is an error, so nothing commits.
fn writer_input(
    received: mpsc::Receiver<CopyChunk>,
) -> BoxStream<'static, apiary_engine::catalog::Result<RecordBatch>> {
    stream::unfold(Some(received), |state| async move {
        let mut received = state?;
        match received.recv().await {
            Some(CopyChunk::Batch(batch)) => Some((Ok(batch), Some(received))),
            Some(CopyChunk::Done) => None,
            None => Some((
                Err(ArrowError::InvalidArgumentError(
                    "the COPY ended without CopyDone; nothing was written".into(),
                )
                .into()),
                None,
            )),
        }
    })
    .boxed()
}

/// Turns the client's `CopyData` chunks into batches of the frame's types
/// as they arrive. A chunk may end inside a record; the unfinished part
/// waits for the next chunk. Rows are gathered into batches of
/// [`BATCH_ROWS`], so only one batch and one partial record are ever held.
pub struct CopyDecoder {
    format: CopyFormat,
    name: FrameName,
    fields: Vec<Arc<Field>>,
    builders: Vec<StringBuilder>,
    rows_in_batch: usize,
    /// Bytes after the last complete record.
    pending: Vec<u8>,
    /// Records read so far, for error messages.
    line_no: usize,
    header_pending: bool,
    /// The `\.` end marker was seen; the rest is ignored.
    ended: bool,
}

impl CopyDecoder {
    /// A decoder for `columns` (all of the frame's when empty) of `def`.
    pub fn new(
        format: &CopyFormat,
        columns: &[String],
        name: &FrameName,
        def: &FrameDef,
    ) -> Result<Self, PgWireError> {
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
        Ok(CopyDecoder {
            format: format.clone(),
            name: name.clone(),
            builders: new_builders(fields.len()),
            fields,
            rows_in_batch: 0,
            pending: Vec::new(),
            line_no: 0,
            header_pending: format.header,
            ended: false,
        })
    }

    /// Decodes the records `data` completes; returns the batches filled.
    pub fn push(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>, PgWireError> {
        self.pending.extend_from_slice(data);
        let complete = complete_records(&self.pending, &self.format);
        let records: Vec<u8> = self.pending.drain(..complete).collect();
        self.decode(&records)
    }

    /// Decodes what is left after the last chunk; returns the last batches.
    pub fn finish(mut self) -> Result<Vec<RecordBatch>, PgWireError> {
        let rest = std::mem::take(&mut self.pending);
        let mut batches = self.decode(&rest)?;
        if self.rows_in_batch > 0 {
            batches.push(self.finish_batch()?);
        }
        Ok(batches)
    }

    fn decode(&mut self, data: &[u8]) -> Result<Vec<RecordBatch>, PgWireError> {
        if self.ended || data.is_empty() {
            return Ok(vec![]);
        }
        let text = std::str::from_utf8(data)
            .map_err(|e| error("22021", format!("COPY data is not valid UTF-8: {e}")))?;
        self.ended = text
            .split('\n')
            .any(|line| line.strip_suffix('\r').unwrap_or(line) == "\\.");
        let mut batches = Vec::new();
        let format = self.format.clone();
        let mut records = records(text, &format);
        if std::mem::take(&mut self.header_pending) {
            records.next();
        }
        for record in records {
            self.line_no += 1;
            let line_no = self.line_no;
            let values = record.map_err(|e| error("22P04", format!("COPY line {line_no}: {e}")))?;
            if values.len() != self.fields.len() {
                return Err(error(
                    "22P04",
                    format!(
                        "COPY line {line_no}: expected {} values, found {}",
                        self.fields.len(),
                        values.len()
                    ),
                ));
            }
            for (builder, value) in self.builders.iter_mut().zip(values) {
                builder.append_option(value);
            }
            self.rows_in_batch += 1;
            if self.rows_in_batch == BATCH_ROWS {
                batches.push(self.finish_batch()?);
            }
        }
        Ok(batches)
    }

    fn finish_batch(&mut self) -> Result<RecordBatch, PgWireError> {
        self.rows_in_batch = 0;
        finish(&mut self.builders, &self.fields, &self.name)
    }
}

/// How many leading bytes of `data` are whole records: up to the last line
/// end that is not inside a CSV quoted field.
fn complete_records(data: &[u8], format: &CopyFormat) -> usize {
    let quote = u8::try_from(format.quote).ok().filter(|_| format.csv);
    let mut in_quotes = false;
    let mut complete = 0;
    for (i, byte) in data.iter().enumerate() {
        if Some(*byte) == quote {
            // A doubled quote inside a field toggles twice: no change.
            in_quotes = !in_quotes;
        } else if *byte == b'\n' && !in_quotes {
            complete = i + 1;
        }
    }
    complete
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
    use datafusion::arrow::array::AsArray;

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
    fn records_split_across_chunks_decode_whole() {
        let def = FrameDef {
            columns: vec![
                apiary_engine::catalog::ColumnDef {
                    name: "id".into(),
                    type_name: "int64".into(),
                    nullable: true,
                },
                apiary_engine::catalog::ColumnDef {
                    name: "note".into(),
                    type_name: "utf8".into(),
                    nullable: true,
                },
            ],
            partition_by: vec![],
            created_at: String::new(),
            indexes: Vec::new(),
            location: None,
        };
        let name = FrameName::new("h", "b", "f").unwrap();
        let mut format = csv();
        format.header = true;
        let data = "id,note\n1,\"two\nlines\"\n2,plain\n3,\"a,b\"\n";
        // Every split point gives the same rows.
        for split in 0..data.len() {
            let mut decoder = CopyDecoder::new(&format, &[], &name, &def).unwrap();
            let mut batches = decoder.push(&data.as_bytes()[..split]).unwrap();
            batches.extend(decoder.push(&data.as_bytes()[split..]).unwrap());
            batches.extend(decoder.finish().unwrap());
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows, 3, "split at {split}");
            let notes = batches[0].column(1).as_string::<i32>();
            assert_eq!(notes.value(0), "two\nlines", "split at {split}");
            assert_eq!(notes.value(2), "a,b", "split at {split}");
        }
        let mut decoder = CopyDecoder::new(&csv(), &[], &name, &def).unwrap();
        let err = decoder
            .push(b"1,x\nnot a number,y\n")
            .and_then(|_| decoder.finish());
        assert!(err.unwrap_err().to_string().contains("22P02"));
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
