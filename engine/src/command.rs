//! Apiary's own SQL commands, which DataFusion does not know:
//! `USE HIVE h`, `USE BOX b` (or `USE h.b`), `SHOW HIVES`, `SHOW BOXES [IN h]`,
//! `SHOW FRAMES [IN h.b]`, `DESCRIBE [FRAME] h.b.f`, the swarm's
//! `SHOW SWARM` and `SHOW COLONY`, and frame maintenance: `OPTIMIZE`,
//! `VACUUM`, `DESCRIBE HISTORY` and `RESTORE`.
//!
//! They are recognised from the token stream of the statement (never by
//! rewriting SQL text); anything else goes to DataFusion unchanged.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use apiary_catalog::time_travel::AsOf;

use crate::error::{EngineError, Result};

/// A recognised Apiary command. Names are as written; the session validates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    UseHive(String),
    UseBox {
        hive: Option<String>,
        boxname: String,
    },
    ShowHives,
    ShowBoxes {
        hive: Option<String>,
    },
    ShowFrames {
        hive: Option<String>,
        boxname: Option<String>,
    },
    Describe(Vec<String>),
    /// The nodes of the root, as `swarm_status()`.
    ShowSwarm,
    /// This node's load, as `colony_status()`.
    ShowColony,
    /// `OPTIMIZE frame [WHERE partition filters] [ZORDER BY (col, …)]`:
    /// compacts the frame's cells (of the partitions the filters select).
    Optimize {
        frame: Vec<String>,
        /// `column op 'value'` comparisons, ANDed.
        filters: Vec<(String, String, String)>,
        zorder: Vec<String>,
    },
    /// `VACUUM frame [RETAIN n HOURS] [DRY RUN]`: deletes files no version
    /// within the retention needs.
    Vacuum {
        frame: Vec<String>,
        /// `RETAIN n HOURS`, in seconds.
        retain_seconds: Option<u64>,
        dry_run: bool,
    },
    /// `DESCRIBE HISTORY frame`: the frame's commits, newest first.
    History(Vec<String>),
    /// `RESTORE [TABLE] frame TO VERSION [AS OF] n` or `… TO TIMESTAMP
    /// [AS OF] 'instant'`: the frame's contents as of then, in a new commit.
    Restore {
        frame: Vec<String>,
        to: AsOf,
    },
}

/// Returns the command if `sql` is one of Apiary's own, `None` for anything
/// DataFusion should plan.
pub fn parse(sql: &str) -> Result<Option<Command>> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return Ok(None); // let DataFusion report the syntax error
    };
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .filter(|t| !matches!(t, Token::SemiColon))
        .collect();
    let keyword = |i: usize| -> Option<String> {
        match words.get(i) {
            Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        }
    };
    let first = keyword(0);
    let second = keyword(1);
    let command = match (first.as_deref(), second.as_deref()) {
        (Some("USE"), Some("HIVE")) => {
            let (parts, rest) = dotted(&words[2..]);
            expect_end(rest, "USE HIVE name")?;
            match parts.as_slice() {
                [hive] => Command::UseHive(hive.clone()),
                _ => return Err(usage("USE HIVE name")),
            }
        }
        (Some("USE"), Some("BOX")) | (Some("USE"), Some("SCHEMA")) => {
            let (parts, rest) = dotted(&words[2..]);
            expect_end(rest, "USE BOX name")?;
            use_box(parts, "USE BOX [hive.]box")?
        }
        (Some("USE"), _) => {
            let (parts, rest) = dotted(&words[1..]);
            expect_end(rest, "USE [hive.]box")?;
            use_box(parts, "USE [hive.]box")?
        }
        (Some("SHOW"), Some("HIVES")) | (Some("SHOW"), Some("DATABASES")) => {
            expect_end(&words[2..], "SHOW HIVES")?;
            Command::ShowHives
        }
        (Some("SHOW"), Some("BOXES")) | (Some("SHOW"), Some("SCHEMAS")) => {
            let parts = in_clause(&words[2..], "SHOW BOXES [IN hive]")?;
            match parts.as_slice() {
                [] => Command::ShowBoxes { hive: None },
                [h] => Command::ShowBoxes {
                    hive: Some(h.clone()),
                },
                _ => return Err(usage("SHOW BOXES [IN hive]")),
            }
        }
        (Some("SHOW"), Some("SWARM")) => {
            expect_end(&words[2..], "SHOW SWARM")?;
            Command::ShowSwarm
        }
        (Some("SHOW"), Some("COLONY")) => {
            expect_end(&words[2..], "SHOW COLONY")?;
            Command::ShowColony
        }
        (Some("SHOW"), Some("FRAMES")) => {
            let parts = in_clause(&words[2..], "SHOW FRAMES [IN [hive.]box]")?;
            match parts.as_slice() {
                [] => Command::ShowFrames {
                    hive: None,
                    boxname: None,
                },
                [b] => Command::ShowFrames {
                    hive: None,
                    boxname: Some(b.clone()),
                },
                [h, b] => Command::ShowFrames {
                    hive: Some(h.clone()),
                    boxname: Some(b.clone()),
                },
                _ => return Err(usage("SHOW FRAMES [IN [hive.]box]")),
            }
        }
        (Some("DESCRIBE") | Some("DESC"), Some("HISTORY")) if words.len() > 2 => {
            let (parts, rest) = dotted(&words[2..]);
            expect_end(rest, HISTORY_FORM)?;
            Command::History(frame_name(parts, HISTORY_FORM)?)
        }
        (Some("OPTIMIZE"), _) => {
            let (parts, mut rest) = dotted(&words[1..]);
            let frame = frame_name(parts, OPTIMIZE_FORM)?;
            let mut filters = Vec::new();
            if rest.first().is_some_and(|w| is_word(w, "WHERE")) {
                rest = &rest[1..];
                loop {
                    let [Token::Word(column), op, value, more @ ..] = rest else {
                        return Err(usage(OPTIMIZE_FORM));
                    };
                    let op = match op {
                        Token::Eq | Token::DoubleEq => "=",
                        Token::Neq => "!=",
                        Token::Lt => "<",
                        Token::LtEq => "<=",
                        Token::Gt => ">",
                        Token::GtEq => ">=",
                        _ => return Err(usage(OPTIMIZE_FORM)),
                    };
                    let value = match value {
                        Token::SingleQuotedString(v) | Token::Number(v, _) => v.clone(),
                        _ => return Err(usage(OPTIMIZE_FORM)),
                    };
                    filters.push((column.value.to_ascii_lowercase(), op.to_string(), value));
                    rest = more;
                    match rest.first() {
                        Some(and) if is_word(and, "AND") => rest = &rest[1..],
                        _ => break,
                    }
                }
            }
            let zorder = match rest {
                [] => Vec::new(),
                [order, by, Token::LParen, columns @ .., Token::RParen]
                    if is_word(order, "ZORDER") && is_word(by, "BY") =>
                {
                    column_list(columns).ok_or_else(|| usage(OPTIMIZE_FORM))?
                }
                _ => return Err(usage(OPTIMIZE_FORM)),
            };
            Command::Optimize {
                frame,
                filters,
                zorder,
            }
        }
        (Some("VACUUM"), _) => {
            let (parts, mut rest) = dotted(&words[1..]);
            let frame = frame_name(parts, VACUUM_FORM)?;
            let mut retain_seconds = None;
            if let [retain, Token::Number(hours, _), unit, more @ ..] = rest {
                if is_word(retain, "RETAIN") && is_word(unit, "HOURS") {
                    let hours = hours
                        .parse::<f64>()
                        .ok()
                        .filter(|h| (0.0..=1e6).contains(h))
                        .ok_or_else(|| usage(VACUUM_FORM))?;
                    retain_seconds = Some((hours * 3600.0).round() as u64);
                    rest = more;
                }
            }
            let dry_run = match rest {
                [] => false,
                [dry, run] if is_word(dry, "DRY") && is_word(run, "RUN") => true,
                _ => return Err(usage(VACUUM_FORM)),
            };
            Command::Vacuum {
                frame,
                retain_seconds,
                dry_run,
            }
        }
        (Some("RESTORE"), _) => {
            let start = if second.as_deref() == Some("TABLE") {
                2
            } else {
                1
            };
            let (parts, rest) = dotted(&words[start..]);
            let frame = frame_name(parts, RESTORE_FORM)?;
            let rest = match rest {
                [to, what, as_, of, point] if is_word(as_, "AS") && is_word(of, "OF") => {
                    [*to, *what, *point]
                }
                [to, what, point] => [*to, *what, *point],
                _ => return Err(usage(RESTORE_FORM)),
            };
            let to = match rest {
                [to, what, Token::Number(version, _)]
                    if is_word(to, "TO") && is_word(what, "VERSION") =>
                {
                    AsOf::Version(version.parse().map_err(|_| usage(RESTORE_FORM))?)
                }
                [to, what, Token::SingleQuotedString(instant)]
                    if is_word(to, "TO") && is_word(what, "TIMESTAMP") =>
                {
                    let nanos =
                        arrow::compute::kernels::cast_utils::string_to_timestamp_nanos(instant)
                            .map_err(|e| {
                                EngineError::InvalidArgument(format!(
                                    "RESTORE … TO TIMESTAMP {instant:?}: {e}; write it as \
                                     'YYYY-MM-DD HH:MM:SS[+zone]' (UTC when no zone is given)"
                                ))
                            })?;
                    AsOf::Timestamp(chrono::DateTime::from_timestamp_nanos(nanos))
                }
                _ => return Err(usage(RESTORE_FORM)),
            };
            Command::Restore { frame, to }
        }
        (Some("DESCRIBE"), _) | (Some("DESC"), _) => {
            let start = if second.as_deref() == Some("FRAME") {
                2
            } else {
                1
            };
            let (parts, rest) = dotted(&words[start..]);
            expect_end(rest, "DESCRIBE [hive.][box.]frame")?;
            if parts.is_empty() || parts.len() > 3 {
                return Err(usage("DESCRIBE [hive.][box.]frame"));
            }
            Command::Describe(parts)
        }
        _ => return Ok(None),
    };
    Ok(Some(command))
}

const HISTORY_FORM: &str = "DESCRIBE HISTORY [hive.][box.]frame";
const OPTIMIZE_FORM: &str =
    "OPTIMIZE [hive.][box.]frame [WHERE column = 'value' [AND …]] [ZORDER BY (column, ...)]";
const RESTORE_FORM: &str =
    "RESTORE [TABLE] [hive.][box.]frame TO VERSION [AS OF] n | TO TIMESTAMP [AS OF] 'instant'";
const VACUUM_FORM: &str = "VACUUM [hive.][box.]frame [RETAIN n HOURS] [DRY RUN]";

/// One to three name parts, or the usage error for `form`.
fn frame_name(parts: Vec<String>, form: &str) -> Result<Vec<String>> {
    match parts.len() {
        1..=3 => Ok(parts),
        _ => Err(usage(form)),
    }
}

fn is_word(token: &Token, word: &str) -> bool {
    matches!(token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

/// `a, b, "C"` as column names (unquoted ones folded to lower case).
fn column_list(tokens: &[&Token]) -> Option<Vec<String>> {
    let mut columns = Vec::new();
    for (i, token) in tokens.iter().enumerate() {
        match (i % 2, token) {
            (0, Token::Word(w)) => columns.push(match w.quote_style {
                Some(_) => w.value.clone(),
                None => w.value.to_ascii_lowercase(),
            }),
            (1, Token::Comma) => {}
            _ => return None,
        }
    }
    (!columns.is_empty() && tokens.len() % 2 == 1).then_some(columns)
}

fn use_box(parts: Vec<String>, form: &str) -> Result<Command> {
    match parts.as_slice() {
        [b] => Ok(Command::UseBox {
            hive: None,
            boxname: b.clone(),
        }),
        [h, b] => Ok(Command::UseBox {
            hive: Some(h.clone()),
            boxname: b.clone(),
        }),
        _ => Err(usage(form)),
    }
}

/// Reads `a.b.c` from the start of `words`; returns the parts and the rest.
/// Quoted identifiers keep their case, unquoted ones fold to lower case.
fn dotted<'a>(words: &'a [&'a Token]) -> (Vec<String>, &'a [&'a Token]) {
    let mut parts = Vec::new();
    let mut i = 0;
    while let Some(Token::Word(w)) = words.get(i) {
        parts.push(match w.quote_style {
            Some(_) => w.value.clone(),
            None => w.value.to_ascii_lowercase(),
        });
        i += 1;
        match words.get(i) {
            Some(Token::Period) => i += 1,
            _ => break,
        }
    }
    (parts, &words[i..])
}

fn in_clause(words: &[&Token], form: &str) -> Result<Vec<String>> {
    match words.first() {
        None => Ok(Vec::new()),
        Some(Token::Word(w))
            if w.value.eq_ignore_ascii_case("IN") || w.value.eq_ignore_ascii_case("FROM") =>
        {
            let (parts, rest) = dotted(&words[1..]);
            expect_end(rest, form)?;
            if parts.is_empty() {
                return Err(usage(form));
            }
            Ok(parts)
        }
        Some(_) => Err(usage(form)),
    }
}

fn expect_end(rest: &[&Token], form: &str) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(usage(form))
    }
}

fn usage(form: &str) -> EngineError {
    EngineError::InvalidArgument(format!("syntax error; the form is: {form}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apiary_commands_are_recognised() {
        assert_eq!(
            parse("use hive Analytics").unwrap(),
            Some(Command::UseHive("analytics".into()))
        );
        assert_eq!(
            parse("USE BOX events;").unwrap(),
            Some(Command::UseBox {
                hive: None,
                boxname: "events".into()
            })
        );
        assert_eq!(
            parse("use analytics.events").unwrap(),
            Some(Command::UseBox {
                hive: Some("analytics".into()),
                boxname: "events".into()
            })
        );
        assert_eq!(parse("SHOW HIVES").unwrap(), Some(Command::ShowHives));
        assert_eq!(
            parse("show frames in a.b").unwrap(),
            Some(Command::ShowFrames {
                hive: Some("a".into()),
                boxname: Some("b".into())
            })
        );
        assert_eq!(
            parse("DESCRIBE analytics.events.clicks").unwrap(),
            Some(Command::Describe(vec![
                "analytics".into(),
                "events".into(),
                "clicks".into()
            ]))
        );
    }

    #[test]
    fn maintenance_commands_are_recognised() {
        assert_eq!(
            parse("OPTIMIZE events.clicks ZORDER BY (country, \"Day\")").unwrap(),
            Some(Command::Optimize {
                frame: vec!["events".into(), "clicks".into()],
                filters: vec![],
                zorder: vec!["country".into(), "Day".into()],
            })
        );
        assert_eq!(
            parse("OPTIMIZE clicks WHERE Country = 'us' AND day >= 3").unwrap(),
            Some(Command::Optimize {
                frame: vec!["clicks".into()],
                filters: vec![
                    ("country".into(), "=".into(), "us".into()),
                    ("day".into(), ">=".into(), "3".into())
                ],
                zorder: vec![],
            })
        );
        assert!(parse("OPTIMIZE clicks WHERE country").is_err());
        assert!(parse("OPTIMIZE clicks WHERE country LIKE 'u%'").is_err());
        assert_eq!(
            parse("vacuum clicks retain 0 hours dry run;").unwrap(),
            Some(Command::Vacuum {
                frame: vec!["clicks".into()],
                retain_seconds: Some(0),
                dry_run: true,
            })
        );
        assert_eq!(
            parse("DESCRIBE HISTORY a.b.c").unwrap(),
            Some(Command::History(vec!["a".into(), "b".into(), "c".into()]))
        );
        // A frame named `history` is still described.
        assert_eq!(
            parse("DESCRIBE history").unwrap(),
            Some(Command::Describe(vec!["history".into()]))
        );
        let err = parse("OPTIMIZE t ZORDER (a)").unwrap_err().to_string();
        assert!(err.contains("ZORDER BY (column, ...)"), "{err}");
        assert!(parse("VACUUM t RETAIN x HOURS").is_err());
        assert!(parse("VACUUM t RETAIN -1 HOURS").is_err());
        assert!(parse("VACUUM").is_err());
        assert_eq!(
            parse("RESTORE TABLE b.clicks TO VERSION AS OF 3").unwrap(),
            Some(Command::Restore {
                frame: vec!["b".into(), "clicks".into()],
                to: AsOf::Version(3),
            })
        );
        let Some(Command::Restore {
            to: AsOf::Timestamp(at),
            ..
        }) = parse("restore clicks to timestamp '2026-12-07 12:00:00.5'").unwrap()
        else {
            panic!("a restore to an instant");
        };
        assert_eq!(at.to_rfc3339(), "2026-12-07T12:00:00.500+00:00");
        assert!(parse("RESTORE clicks TO VERSION x").is_err());
        assert!(parse("RESTORE clicks TO TIMESTAMP 'yesterday'").is_err());
    }

    #[test]
    fn ordinary_sql_is_left_to_datafusion() {
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert_eq!(parse("show tables").unwrap(), None);
        assert_eq!(parse("SELECT 'USE HIVE x'").unwrap(), None);
    }

    #[test]
    fn malformed_commands_show_the_form() {
        let err = parse("SHOW FRAMES IN").unwrap_err().to_string();
        assert!(err.contains("SHOW FRAMES [IN [hive.]box]"), "{err}");
        assert!(parse("USE HIVE a b").is_err());
    }
}
