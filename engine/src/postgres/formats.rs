//! Postgres's patterns: date/time formats in `to_char`, `to_date` and
//! `to_timestamp`, and `SIMILAR TO`.
//!
//! Postgres writes `to_char(d, 'YYYY-MM-DD')`; DataFusion's functions take
//! chrono's `%Y-%m-%d` and print a Postgres pattern back unchanged.
//! [`PostgresFormats`] translates a constant Postgres pattern into
//! chrono's. A pattern that already holds a `%` is taken to be chrono's
//! and left alone.
//!
//! `x SIMILAR TO 'a(b|c)%'` is matched as the regular expression Postgres
//! reads it as (`^(?:a(b|c).*)$`); DataFusion's own translation misses
//! `%` and `_` inside a pattern.

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::functions::expr_fn::{concat, lower, upper};
use datafusion::functions::unicode::expr_fn::rpad;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{lit, BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::optimizer::analyzer::AnalyzerRule;

use super::rewrite_node_expressions;

/// Translates constant Postgres format patterns; see the module's
/// documentation.
#[derive(Debug)]
pub struct PostgresFormats;

impl AnalyzerRule for PostgresFormats {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            rewrite_node_expressions(node, |expr, _| translate(expr))
        })
        .map(|transformed| transformed.data)
    }

    fn name(&self) -> &str {
        "postgres_formats"
    }
}

fn translate(expr: Expr) -> Result<Transformed<Expr>> {
    if let Expr::SimilarTo(like) = &expr {
        if let (Expr::Literal(ScalarValue::Utf8(Some(pattern)), _), None) =
            (like.pattern.as_ref(), like.escape_char)
        {
            let op = match (like.negated, like.case_insensitive) {
                (false, false) => Operator::RegexMatch,
                (false, true) => Operator::RegexIMatch,
                (true, false) => Operator::RegexNotMatch,
                (true, true) => Operator::RegexNotIMatch,
            };
            let regex = Expr::Literal(ScalarValue::Utf8(Some(similar_to_regex(pattern))), None);
            return Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                like.expr.clone(),
                op,
                Box::new(regex),
            ))));
        }
    }
    let Expr::ScalarFunction(function) = expr else {
        return Ok(Transformed::no(expr));
    };
    let name = function.func.name();
    let pattern = match function.args.get(1) {
        Some(Expr::Literal(ScalarValue::Utf8(Some(pattern)), _)) => pattern.clone(),
        _ => return Ok(Transformed::no(Expr::ScalarFunction(function))),
    };
    let rewritten = match name {
        "to_char" | "date_format" => formatted(&function, &function.args[0], &pattern),
        "to_date" | "to_timestamp" => chrono_pattern(&pattern).map(|chrono| {
            let mut call = function.clone();
            call.args[1] = lit(chrono);
            Expr::ScalarFunction(call)
        }),
        _ => None,
    };
    Ok(match rewritten {
        Some(expr) => Transformed::yes(expr),
        None => Transformed::no(Expr::ScalarFunction(function)),
    })
}

/// The regular expression a `SIMILAR TO` pattern means: the whole string
/// matches, `%` is any text, `_` any character, `\` escapes, and the
/// regular-expression operators (`|`, `*`, `+`, `?`, `{}`, `()`, `[]`)
/// are kept; other characters match themselves.
pub fn similar_to_regex(pattern: &str) -> String {
    let mut regex = String::from("^(?:");
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' => regex.push_str(".*"),
            '_' => regex.push('.'),
            '\\' => match chars.next() {
                Some(escaped) => regex.push_str(&regex_escape(escaped)),
                None => regex.push_str("\\\\"),
            },
            '|' | '*' | '+' | '?' | '{' | '}' | '(' | ')' | '[' | ']' => regex.push(c),
            other => regex.push_str(&regex_escape(other)),
        }
    }
    regex.push_str(")$");
    regex
}

fn regex_escape(c: char) -> String {
    match c {
        '.' | '^' | '$' | '\\' | '|' | '*' | '+' | '?' | '{' | '}' | '(' | ')' | '[' | ']' => {
            format!("\\{c}")
        }
        other => other.to_string(),
    }
}

/// Postgres pattern fields and their chrono equivalents, longest first.
/// `FM` (no padding) is handled before these.
const FIELDS: &[(&str, &str, &str)] = &[
    // (Postgres, chrono, chrono without padding)
    ("HH24", "%H", "%-H"),
    ("HH12", "%I", "%-I"),
    ("YYYY", "%Y", "%Y"),
    ("IYYY", "%G", "%G"),
    ("DDD", "%j", "%-j"),
    ("HH", "%I", "%-I"),
    ("MI", "%M", "%-M"),
    ("SS", "%S", "%-S"),
    ("MS", "%3f", "%3f"),
    ("US", "%6f", "%6f"),
    ("YY", "%y", "%y"),
    ("MM", "%m", "%-m"),
    ("DD", "%d", "%-d"),
    ("AM", "%p", "%p"),
    ("PM", "%p", "%p"),
    ("am", "%P", "%P"),
    ("pm", "%P", "%P"),
    ("IW", "%V", "%-V"),
];

/// Day and month names: Postgres's field (any case), chrono's, and the
/// width Postgres pads the name to without `FM`.
const NAMES: &[(&str, &str, usize)] = &[
    ("MONTH", "%B", 9),
    ("DAY", "%A", 9),
    ("MON", "%b", 0),
    ("DY", "%a", 0),
];

/// How a name field is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// `Day`: as chrono writes it.
    Title,
    Upper,
    Lower,
}

/// A piece of a translated pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// chrono's pattern for fields and text.
    Chrono(String),
    /// A day or month name, in `case`, padded with spaces to `width`.
    Name {
        chrono: &'static str,
        case: Case,
        width: usize,
    },
}

/// The pieces of a Postgres pattern; `None` when it has no Postgres field
/// or already looks like chrono's.
fn pieces(postgres: &str) -> Option<Vec<Piece>> {
    if postgres.contains('%') {
        return None;
    }
    let mut pieces = Vec::new();
    let mut out = String::new();
    let mut rest = postgres;
    let mut translated = false;
    while !rest.is_empty() {
        // Double-quoted text is written as it is.
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            out.push_str(&quoted[..end]);
            rest = quoted.get(end + 1..).unwrap_or("");
            continue;
        }
        let (fill_mode, field_start) = match rest.strip_prefix("FM") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let name = NAMES.iter().find(|(pg, _, _)| {
            field_start.len() >= pg.len()
                && field_start.is_char_boundary(pg.len())
                && field_start[..pg.len()].eq_ignore_ascii_case(pg)
        });
        if let Some((pg, chrono, width)) = name {
            let written = &field_start[..pg.len()];
            let case = if written == *pg {
                Case::Upper
            } else if written.chars().skip(1).all(|c| c.is_ascii_lowercase()) {
                match written.starts_with(|c: char| c.is_ascii_uppercase()) {
                    true => Case::Title,
                    false => Case::Lower,
                }
            } else {
                Case::Title
            };
            if !out.is_empty() {
                pieces.push(Piece::Chrono(std::mem::take(&mut out)));
            }
            pieces.push(Piece::Name {
                chrono,
                case,
                width: if fill_mode { 0 } else { *width },
            });
            rest = &field_start[pg.len()..];
            translated = true;
            continue;
        }
        let field = FIELDS.iter().find(|(pg, _, _)| {
            field_start.starts_with(pg)
                || (pg
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    && !matches!(*pg, "AM" | "PM")
                    && field_start.len() >= pg.len()
                    && field_start.is_char_boundary(pg.len())
                    && field_start[..pg.len()].eq_ignore_ascii_case(pg))
        });
        match field {
            Some((pg, chrono, unpadded)) => {
                out.push_str(if fill_mode { unpadded } else { chrono });
                rest = &field_start[pg.len()..];
                translated = true;
            }
            None => {
                let mut chars = rest.chars();
                out.extend(chars.next());
                rest = chars.as_str();
            }
        }
    }
    if !out.is_empty() {
        pieces.push(Piece::Chrono(out));
    }
    translated.then_some(pieces)
}

/// chrono's pattern for a Postgres one (names unpadded, in chrono's case,
/// which parsing ignores); `None` when it has no Postgres field or already
/// looks like chrono's.
pub fn chrono_pattern(postgres: &str) -> Option<String> {
    let pieces = pieces(postgres)?;
    Some(
        pieces
            .iter()
            .map(|piece| match piece {
                Piece::Chrono(text) => text.as_str(),
                Piece::Name { chrono, .. } => chrono,
            })
            .collect(),
    )
}

/// `to_char(value, pattern)` written as Postgres writes it: one call with
/// chrono's pattern, or, when a day or month name needs Postgres's case or
/// padding, the concatenation of one call per piece.
fn formatted(function: &ScalarFunction, value: &Expr, postgres: &str) -> Option<Expr> {
    let pieces = pieces(postgres)?;
    let call = |pattern: &str| {
        let mut call = function.clone();
        call.args = vec![value.clone(), lit(pattern)];
        Expr::ScalarFunction(call)
    };
    let plain = pieces.iter().all(|piece| {
        matches!(
            piece,
            Piece::Chrono(_)
                | Piece::Name {
                    case: Case::Title,
                    width: 0,
                    ..
                }
        )
    });
    if plain {
        return chrono_pattern(postgres).map(|pattern| call(&pattern));
    }
    let parts = pieces
        .iter()
        .map(|piece| match piece {
            Piece::Chrono(pattern) => call(pattern),
            Piece::Name {
                chrono,
                case,
                width,
            } => {
                let name = call(chrono);
                let name = match case {
                    Case::Title => name,
                    Case::Upper => upper(name),
                    Case::Lower => lower(name),
                };
                match width {
                    0 => name,
                    width => rpad(vec![name, lit(*width as i64)]),
                }
            }
        })
        .collect();
    Some(concat(parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_patterns_become_chrono_ones() {
        assert_eq!(chrono_pattern("YYYY-MM-DD").as_deref(), Some("%Y-%m-%d"));
        assert_eq!(
            chrono_pattern("HH24:MI:SS.MS").as_deref(),
            Some("%H:%M:%S.%3f")
        );
        assert_eq!(chrono_pattern("HH12 AM").as_deref(), Some("%I %p"));
        assert_eq!(chrono_pattern("DD Mon YYYY").as_deref(), Some("%d %b %Y"));
        assert_eq!(chrono_pattern("FMDD/FMMM").as_deref(), Some("%-d/%-m"));
        assert_eq!(chrono_pattern("yyyy\"w\"IW").as_deref(), Some("%Yw%V"));
        assert_eq!(chrono_pattern("%Y-%m"), None);
        assert_eq!(chrono_pattern("plain"), None);
        assert_eq!(chrono_pattern("FMDay, Mon").as_deref(), Some("%A, %b"));
    }

    #[test]
    fn names_get_postgres_case_and_padding() {
        let name = |chrono, case, width| Piece::Name {
            chrono,
            case,
            width,
        };
        assert_eq!(
            pieces("Day DD").unwrap(),
            vec![name("%A", Case::Title, 9), Piece::Chrono(" %d".into())]
        );
        assert_eq!(pieces("FMMONTH").unwrap(), vec![name("%B", Case::Upper, 0)]);
        assert_eq!(pieces("dy").unwrap(), vec![name("%a", Case::Lower, 0)]);
    }

    #[test]
    fn similar_to_patterns_become_anchored_regexes() {
        assert_eq!(similar_to_regex("a(b|c)c"), "^(?:a(b|c)c)$");
        assert_eq!(similar_to_regex("%(b|d)"), "^(?:.*(b|d))$");
        assert_eq!(similar_to_regex("a_c.d"), "^(?:a.c\\.d)$");
        assert_eq!(similar_to_regex("100\\%"), "^(?:100%)$");
    }
}
