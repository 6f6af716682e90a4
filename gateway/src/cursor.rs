//! Server-side cursors: `DECLARE … CURSOR FOR`, `FETCH`, `MOVE`, `CLOSE`.
//!
//! psycopg's named cursors, SQLAlchemy's `stream_results`, Django's
//! `iterator()` and psqlODBC read large results this way. A cursor holds
//! the query's record-batch stream and pulls from it only as rows are
//! fetched, so a cursor over any number of rows needs the memory of a few
//! batches. Cursors scan forward only; `WITH HOLD` cursors outlive their
//! transaction block, others close when it ends (Postgres' rules).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer};
use futures::{stream, StreamExt};
use pgwire::error::{PgWireError, PgWireResult};

use crate::sqlstate::error;

/// A cursor statement, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum CursorStatement {
    /// `DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH|WITHOUT HOLD] FOR query`.
    Declare(Declare),
    /// `FETCH` (`moves: false`) or `MOVE` (`moves: true`).
    Fetch {
        name: String,
        count: Count,
        moves: bool,
    },
    /// `CLOSE name`, or `CLOSE ALL` (`None`).
    Close(Option<String>),
}

/// What `DECLARE` asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Declare {
    pub name: String,
    pub binary: bool,
    pub hold: bool,
    /// The text of the query after `FOR`.
    pub query: String,
}

/// How many rows a `FETCH` or `MOVE` reads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Count {
    Rows(usize),
    All,
}

impl Count {
    pub fn limit(self) -> usize {
        match self {
            Count::Rows(n) => n,
            Count::All => usize::MAX,
        }
    }
}

/// Parses `sql` if it is a cursor statement; `Ok(None)` for anything else.
pub fn parse(sql: &str) -> PgWireResult<Option<CursorStatement>> {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next();
    let Some(first) = first.map(str::to_ascii_uppercase) else {
        return Ok(None);
    };
    if !matches!(first.as_str(), "DECLARE" | "FETCH" | "MOVE" | "CLOSE") {
        return Ok(None);
    }
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize_with_location() else {
        return Ok(None);
    };
    // Several statements in one string go through the SQL parser, which
    // splits them ([`from_statement`]).
    let mut significant = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF));
    if significant.any(|t| t.token == Token::SemiColon)
        && significant.any(|t| t.token != Token::SemiColon)
    {
        return Ok(None);
    }
    let mut words = Words::new(sql, tokens);
    words.next_keyword();
    match first.as_str() {
        "DECLARE" => parse_declare(words).map(|d| d.map(CursorStatement::Declare)),
        "CLOSE" => {
            let name = if words.eat("ALL") {
                None
            } else {
                Some(words.name()?)
            };
            words.end()?;
            Ok(Some(CursorStatement::Close(name)))
        }
        _ => {
            let count = parse_direction(&mut words)?;
            if !words.eat("FROM") {
                words.eat("IN");
            }
            let name = words.name()?;
            words.end()?;
            Ok(Some(CursorStatement::Fetch {
                name,
                count,
                moves: first == "MOVE",
            }))
        }
    }
}

/// The cursor statement among several in one query string, which the SQL
/// parser has split; its text is parsed as [`parse`] does.
pub fn from_statement(statement: &Statement) -> PgWireResult<Option<CursorStatement>> {
    match statement {
        Statement::Declare { .. } | Statement::Fetch { .. } | Statement::Close { .. } => {
            parse(&statement.to_string())
        }
        _ => Ok(None),
    }
}

/// `DECLARE`'s options up to `FOR`; `None` where it is not a cursor (a
/// `DECLARE` of another dialect).
fn parse_declare(mut words: Words) -> PgWireResult<Option<Declare>> {
    let name = words.name()?;
    let mut binary = false;
    let mut hold = false;
    loop {
        if words.eat("BINARY") {
            binary = true;
        } else if words.eat("ASENSITIVE") || words.eat("INSENSITIVE") {
        } else if words.eat("NO") {
            words.expect("SCROLL")?;
        } else if words.eat("SCROLL") {
            return Err(error(
                "0A000",
                "scrollable cursors are not supported; declare the cursor NO SCROLL and fetch forward",
            ));
        } else {
            break;
        }
    }
    if !words.eat("CURSOR") {
        return Ok(None);
    }
    if words.eat("WITH") {
        words.expect("HOLD")?;
        hold = true;
    } else if words.eat("WITHOUT") {
        words.expect("HOLD")?;
    }
    words.expect("FOR")?;
    let query = words.rest().trim().trim_end_matches(';').to_string();
    if query.is_empty() {
        return Err(error(
            "42601",
            "syntax error: DECLARE … CURSOR FOR needs a query",
        ));
    }
    Ok(Some(Declare {
        name,
        binary,
        hold,
        query,
    }))
}

/// `FETCH`/`MOVE`'s direction; only forward ones.
fn parse_direction(words: &mut Words) -> PgWireResult<Count> {
    let backward = || {
        error(
            "55000",
            "cursor can only scan forward; fetch with NEXT, FORWARD n or ALL",
        )
    };
    if words.eat("NEXT") {
        return Ok(Count::Rows(1));
    }
    if words.eat("ALL") {
        return Ok(Count::All);
    }
    if words.eat("FORWARD") {
        if words.eat("ALL") {
            return Ok(Count::All);
        }
        return Ok(words.count()?.unwrap_or(Count::Rows(1)));
    }
    for backwards in ["PRIOR", "FIRST", "LAST", "ABSOLUTE", "RELATIVE", "BACKWARD"] {
        if words.eat(backwards) {
            return Err(backward());
        }
    }
    if words.peek_minus() {
        return Err(backward());
    }
    Ok(words.count()?.unwrap_or(Count::Rows(1)))
}

/// The significant tokens of a statement, with their place in its text.
struct Words<'a> {
    sql: &'a str,
    tokens: Vec<TokenWithSpan>,
    at: usize,
}

impl<'a> Words<'a> {
    fn new(sql: &'a str, tokens: Vec<TokenWithSpan>) -> Self {
        let tokens = tokens
            .into_iter()
            .filter(|t| !matches!(t.token, Token::Whitespace(_)))
            .collect();
        Words { sql, tokens, at: 0 }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|t| &t.token)
    }

    fn next_keyword(&mut self) {
        self.at += 1;
    }

    /// Consumes the next token if it is the unquoted keyword `word`.
    fn eat(&mut self, word: &str) -> bool {
        let found = matches!(self.peek(), Some(Token::Word(w))
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word));
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, word: &str) -> PgWireResult<()> {
        if self.eat(word) {
            Ok(())
        } else {
            Err(syntax(format!("expected {word}")))
        }
    }

    fn peek_minus(&self) -> bool {
        matches!(self.peek(), Some(Token::Minus))
    }

    /// A row count, if one comes next.
    fn count(&mut self) -> PgWireResult<Option<Count>> {
        let Some(Token::Number(n, _)) = self.peek() else {
            return Ok(None);
        };
        let n: usize = n
            .parse()
            .map_err(|_| syntax(format!("{n} is not a row count")))?;
        self.at += 1;
        if n == 0 {
            return Err(error(
                "0A000",
                "FETCH 0 re-reads the current row, which forward-only cursors do not keep; fetch NEXT",
            ));
        }
        Ok(Some(Count::Rows(n)))
    }

    /// A cursor name: lower-cased unless quoted, as Postgres folds names.
    fn name(&mut self) -> PgWireResult<String> {
        match self.peek() {
            Some(Token::Word(w)) => {
                let name = match w.quote_style {
                    Some(_) => w.value.clone(),
                    None => w.value.to_lowercase(),
                };
                self.at += 1;
                Ok(name)
            }
            _ => Err(syntax("expected a cursor name".into())),
        }
    }

    /// The statement's text from the next token on.
    fn rest(&self) -> &'a str {
        let Some(token) = self.tokens.get(self.at) else {
            return "";
        };
        let start = token.span.start;
        let offset: usize = self
            .sql
            .split_inclusive('\n')
            .take(start.line.saturating_sub(1) as usize)
            .map(str::len)
            .sum();
        let line = &self.sql[offset..];
        let column = line
            .char_indices()
            .nth(start.column.saturating_sub(1) as usize)
            .map_or(line.len(), |(i, _)| i);
        &line[column..]
    }

    fn end(&mut self) -> PgWireResult<()> {
        while matches!(self.peek(), Some(Token::SemiColon)) {
            self.at += 1;
        }
        match self.peek() {
            None | Some(Token::EOF) => Ok(()),
            Some(other) => Err(syntax(format!("unexpected {other}"))),
        }
    }
}

fn syntax(message: String) -> PgWireError {
    error(
        "42601",
        format!("syntax error in cursor statement: {message}"),
    )
}

/// An open cursor.
pub struct Cursor {
    schema: SchemaRef,
    rows: SendableRecordBatchStream,
    /// Rows of the last batch read but not yet fetched.
    pending: Option<RecordBatch>,
    pub hold: bool,
    pub binary: bool,
}

impl Cursor {
    pub fn new(rows: SendableRecordBatchStream, hold: bool, binary: bool) -> Self {
        Cursor {
            schema: rows.schema(),
            rows,
            pending: None,
            hold,
            binary,
        }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The next rows, at most `limit` of them; `None` at the end.
    async fn next_rows(&mut self, limit: usize) -> Option<datafusion::error::Result<RecordBatch>> {
        let batch = match self.pending.take() {
            Some(batch) => batch,
            None => match self.rows.next().await? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(e)),
            },
        };
        if batch.num_rows() > limit {
            self.pending = Some(batch.slice(limit, batch.num_rows() - limit));
            return Some(Ok(batch.slice(0, limit)));
        }
        Some(Ok(batch))
    }
}

type Shared = Arc<tokio::sync::Mutex<Cursor>>;

/// A connection's open cursors, by name.
#[derive(Default)]
pub struct Cursors {
    open: Mutex<HashMap<String, Shared>>,
}

impl Cursors {
    fn open(&self) -> std::sync::MutexGuard<'_, HashMap<String, Shared>> {
        self.open
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn declare(&self, name: &str, cursor: Cursor) -> PgWireResult<()> {
        let mut open = self.open();
        if open.contains_key(name) {
            return Err(error(
                "42P03",
                format!("cursor \"{name}\" already exists; CLOSE it first"),
            ));
        }
        open.insert(name.to_string(), Arc::new(tokio::sync::Mutex::new(cursor)));
        Ok(())
    }

    fn get(&self, name: &str) -> PgWireResult<Shared> {
        self.open()
            .get(name)
            .cloned()
            .ok_or_else(|| error("34000", format!("cursor \"{name}\" does not exist")))
    }

    pub fn contains(&self, name: &str) -> bool {
        self.open().contains_key(name)
    }

    /// The columns `name` returns.
    pub async fn schema(&self, name: &str) -> PgWireResult<SchemaRef> {
        Ok(self.get(name)?.lock().await.schema())
    }

    /// Whether `name` was declared `BINARY`.
    pub async fn binary(&self, name: &str) -> PgWireResult<bool> {
        Ok(self.get(name)?.lock().await.binary)
    }

    /// The next `count` rows of `name`, read as the stream is polled.
    pub fn fetch(&self, name: &str, count: Count) -> PgWireResult<SendableRecordBatchStream> {
        let cursor = self.get(name)?;
        let schema = cursor
            .try_lock()
            .map(|c| c.schema())
            .map_err(|_| error("55006", format!("cursor \"{name}\" is in use")))?;
        let rows = stream::unfold((cursor, count.limit()), |(cursor, left)| async move {
            if left == 0 {
                return None;
            }
            let batch = cursor.lock().await.next_rows(left).await?;
            let left = match &batch {
                Ok(batch) => left - batch.num_rows(),
                Err(_) => 0,
            };
            Some((batch, (cursor, left)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, rows)))
    }

    /// Closes `name`, or every cursor (`None`).
    pub fn close(&self, name: Option<&str>) -> PgWireResult<()> {
        let mut open = self.open();
        match name {
            None => open.clear(),
            Some(name) => {
                open.remove(name)
                    .ok_or_else(|| error("34000", format!("cursor \"{name}\" does not exist")))?;
            }
        }
        Ok(())
    }

    /// A transaction block ended: cursors without `WITH HOLD` close.
    pub fn end_transaction(&self) {
        self.open()
            .retain(|_, cursor| cursor.try_lock().map_or(true, |c| c.hold));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(sql: &str) -> CursorStatement {
        parse(sql).unwrap().unwrap()
    }

    #[test]
    fn declare_keeps_the_query_text() {
        assert_eq!(
            parsed("declare \"C_1\" binary no scroll cursor with hold for\n  select 'for' from t;"),
            CursorStatement::Declare(Declare {
                name: "C_1".into(),
                binary: true,
                hold: true,
                query: "select 'for' from t".into(),
            })
        );
        assert_eq!(
            parsed("DECLARE Cur CURSOR WITHOUT HOLD FOR SELECT 1"),
            CursorStatement::Declare(Declare {
                name: "cur".into(),
                binary: false,
                hold: false,
                query: "SELECT 1".into(),
            })
        );
    }

    #[test]
    fn fetch_and_move_directions() {
        let fetch = |count, moves| CursorStatement::Fetch {
            name: "c".into(),
            count,
            moves,
        };
        assert_eq!(
            parsed("FETCH FORWARD 100 FROM c"),
            fetch(Count::Rows(100), false)
        );
        assert_eq!(parsed("fetch c"), fetch(Count::Rows(1), false));
        assert_eq!(parsed("FETCH NEXT IN c;"), fetch(Count::Rows(1), false));
        assert_eq!(parsed("FETCH ALL c"), fetch(Count::All, false));
        assert_eq!(parsed("MOVE FORWARD ALL IN c"), fetch(Count::All, true));
        assert_eq!(parsed("move 5 from \"c\""), fetch(Count::Rows(5), true));
        for backward in [
            "FETCH PRIOR FROM c",
            "FETCH -1 FROM c",
            "MOVE BACKWARD 2 IN c",
        ] {
            let e = parse(backward).unwrap_err().to_string();
            assert!(e.contains("forward"), "{backward}: {e}");
        }
        assert!(parse("FETCH 1 FROM c extra").is_err());
    }

    #[test]
    fn close_and_other_statements() {
        assert_eq!(parsed("CLOSE ALL"), CursorStatement::Close(None));
        assert_eq!(
            parsed("close \"X\""),
            CursorStatement::Close(Some("X".into()))
        );
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert_eq!(parse("closet").unwrap(), None);
        assert!(parse("DECLARE c SCROLL CURSOR FOR SELECT 1").is_err());
        assert_eq!(parse("FETCH 1 FROM c; SELECT 1").unwrap(), None);
        assert_eq!(
            parse("DECLARE c CURSOR FOR SELECT ';'; ").unwrap(),
            parse("DECLARE c CURSOR FOR SELECT ';'").unwrap()
        );
    }
}
