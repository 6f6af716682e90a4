//! Apiary's own SQL commands, which DataFusion does not know:
//! `USE HIVE h`, `USE BOX b` (or `USE h.b`), `SHOW HIVES`, `SHOW BOXES [IN h]`,
//! `SHOW FRAMES [IN h.b]`, `DESCRIBE [FRAME] h.b.f`, and the swarm's
//! `SHOW SWARM` and `SHOW COLONY`.
//!
//! They are recognised from the token stream of the statement (never by
//! rewriting SQL text); anything else goes to DataFusion unchanged.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

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
