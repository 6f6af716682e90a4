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
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
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
    let Expr::ScalarFunction(mut function) = expr else {
        return Ok(Transformed::no(expr));
    };
    let formatted = matches!(
        function.func.name(),
        "to_char" | "date_format" | "to_date" | "to_timestamp"
    );
    let pattern = match function.args.get_mut(1) {
        Some(Expr::Literal(ScalarValue::Utf8(Some(pattern)), _)) if formatted => pattern,
        _ => return Ok(Transformed::no(Expr::ScalarFunction(function))),
    };
    match chrono_pattern(pattern) {
        Some(chrono) => {
            *pattern = chrono;
            Ok(Transformed::yes(Expr::ScalarFunction(function)))
        }
        None => Ok(Transformed::no(Expr::ScalarFunction(function))),
    }
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
    ("MONTH", "%B", "%B"),
    ("Month", "%B", "%B"),
    ("DDD", "%j", "%-j"),
    ("Day", "%A", "%A"),
    ("Mon", "%b", "%b"),
    ("HH", "%I", "%-I"),
    ("MI", "%M", "%-M"),
    ("SS", "%S", "%-S"),
    ("MS", "%3f", "%3f"),
    ("US", "%6f", "%6f"),
    ("YY", "%y", "%y"),
    ("MM", "%m", "%-m"),
    ("DD", "%d", "%-d"),
    ("Dy", "%a", "%a"),
    ("AM", "%p", "%p"),
    ("PM", "%p", "%p"),
    ("am", "%P", "%P"),
    ("pm", "%P", "%P"),
    ("IW", "%V", "%-V"),
];

/// chrono's pattern for a Postgres one; `None` when it has no Postgres
/// field or already looks like chrono's.
pub fn chrono_pattern(postgres: &str) -> Option<String> {
    if postgres.contains('%') {
        return None;
    }
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
        let field = FIELDS.iter().find(|(pg, _, _)| {
            field_start.starts_with(pg)
                || (pg
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
                    && !matches!(*pg, "AM" | "PM" | "MONTH")
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
    translated.then_some(out)
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
    }

    #[test]
    fn similar_to_patterns_become_anchored_regexes() {
        assert_eq!(similar_to_regex("a(b|c)c"), "^(?:a(b|c)c)$");
        assert_eq!(similar_to_regex("%(b|d)"), "^(?:.*(b|d))$");
        assert_eq!(similar_to_regex("a_c.d"), "^(?:a.c\\.d)$");
        assert_eq!(similar_to_regex("100\\%"), "^(?:100%)$");
    }
}
