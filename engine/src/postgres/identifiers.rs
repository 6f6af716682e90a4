//! Postgres's quoting of identifiers and literals in text it builds:
//! `quote_ident()` and `format()` with `%s`, `%I` and `%L`. Catalog
//! browsers (Grafana, Metabase, DBeaver) build names with them and compare
//! the result with `search_path` or cast it to `regclass`, so a name must
//! be quoted exactly when Postgres quotes it.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// An identifier as Postgres's `quote_ident` writes it: bare when it is
/// lower-case letters, digits and underscores not starting with a digit
/// and not a keyword, else double-quoted with inner quotes doubled.
pub fn quote_ident(name: &str) -> Cow<'_, str> {
    let mut bytes = name.bytes();
    let bare = bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !super::keywords::needs_quotes(name);
    if bare {
        Cow::Borrowed(name)
    } else {
        Cow::Owned(format!("\"{}\"", name.replace('"', "\"\"")))
    }
}

/// A literal as Postgres's `quote_literal` writes it (`E'…'` when it
/// holds a backslash).
pub fn quote_literal(value: &str) -> String {
    let quoted = value.replace('\'', "''");
    if value.contains('\\') {
        format!("E'{}'", quoted.replace('\\', "\\\\"))
    } else {
        format!("'{quoted}'")
    }
}

/// `format(template, args…)`, Postgres's: `%s` a value's text (NULL as
/// nothing), `%I` an identifier, `%L` a literal (NULL as `NULL`), `%%`;
/// each with an optional `n$` position, `-` and a width (or `*`).
pub fn format(template: &str, args: &[Option<&str>]) -> Result<String> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut chars = template.chars().peekable();
    let mut next = 0;
    let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let mut n = String::new();
        while let Some(c) = chars.peek().copied().filter(char::is_ascii_digit) {
            n.push(c);
            chars.next();
        }
        n
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        let mut number = digits(&mut chars);
        let mut position = None;
        if !number.is_empty() && chars.peek() == Some(&'$') {
            chars.next();
            match number.parse::<usize>() {
                Ok(n) if n >= 1 => position = Some(n - 1),
                _ => {
                    return exec_err!(
                        "format specifies argument 0, but arguments are numbered from 1"
                    )
                }
            }
            number = String::new();
        }
        let mut left = false;
        while chars.peek() == Some(&'-') {
            chars.next();
            left = true;
        }
        if number.is_empty() {
            number = digits(&mut chars);
        }
        let mut width: usize = number.parse().unwrap_or(0);
        if number.is_empty() && chars.peek() == Some(&'*') {
            chars.next();
            let Some(Some(value)) = args.get(next).copied() else {
                return exec_err!("too few arguments for format()");
            };
            next += 1;
            let n: i64 = value
                .trim()
                .parse()
                .or_else(|_| exec_err!("format() width must be an integer, not {value:?}"))?;
            left |= n < 0;
            width = n.unsigned_abs() as usize;
        }
        let index = position.unwrap_or(next);
        next = index + 1;
        let Some(value) = args.get(index).copied() else {
            return exec_err!("too few arguments for format()");
        };
        let text: Cow<'_, str> = match chars.next() {
            Some('s') => Cow::Borrowed(value.unwrap_or("")),
            Some('I') => match value {
                Some(name) => quote_ident(name),
                None => return exec_err!("null values cannot be formatted as an SQL identifier"),
            },
            Some('L') => Cow::Owned(value.map_or_else(|| "NULL".to_string(), quote_literal)),
            Some(other) => return exec_err!("unrecognized format() type specifier \"{other}\""),
            None => return exec_err!("unterminated format() type specifier"),
        };
        let pad = " ".repeat(width.saturating_sub(text.chars().count()));
        if left {
            out.push_str(&text);
            out.push_str(&pad);
        } else {
            out.push_str(&pad);
            out.push_str(&text);
        }
    }
    Ok(out)
}

/// `format()` and `quote_ident()` over columns as well as constants.
/// Arguments reach them as text: type coercion casts each, and the casts
/// write values as Postgres does (see [`super::casts`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TextFunction {
    name: &'static str,
    signature: Signature,
}

impl TextFunction {
    pub fn format() -> Self {
        TextFunction {
            name: "format",
            signature: Signature::user_defined(Volatility::Stable),
        }
    }

    pub fn quote_ident() -> Self {
        TextFunction {
            name: "quote_ident",
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for TextFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        match (self.name, args.len()) {
            ("format", 0) => plan_err!("format() takes a template and its arguments"),
            ("quote_ident", n) if n != 1 => plan_err!("quote_ident() takes one argument"),
            _ => Ok(vec![DataType::Utf8; args.len()]),
        }
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|arg| arg.to_array(rows))
            .collect::<Result<_>>()?;
        let texts: Vec<_> = arrays.iter().map(|a| a.as_string::<i32>()).collect();
        let mut out = StringBuilder::with_capacity(rows, rows * 16);
        let mut values = Vec::with_capacity(texts.len());
        for row in 0..rows {
            values.clear();
            values.extend(
                texts
                    .iter()
                    .map(|t| (!t.is_null(row)).then(|| t.value(row))),
            );
            match (self.name, values.as_slice()) {
                (_, [None, ..]) => out.append_null(),
                ("quote_ident", [Some(name)]) => out.append_value(quote_ident(name)),
                (_, [Some(template), rest @ ..]) => out.append_value(format(template, rest)?),
                _ => out.append_null(),
            }
        }
        let result: ArrayRef = Arc::new(out.finish());
        Ok(
            if args
                .args
                .iter()
                .all(|a| matches!(a, ColumnarValue::Scalar(_)))
            {
                ColumnarValue::Scalar(datafusion::common::ScalarValue::try_from_array(&result, 0)?)
            } else {
                ColumnarValue::Array(result)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_as_postgres_quotes_them() {
        assert_eq!(quote_ident("clicks"), "clicks");
        assert_eq!(quote_ident("default"), "\"default\"");
        assert_eq!(quote_ident("Abc"), "\"Abc\"");
        assert_eq!(quote_ident("a b"), "\"a b\"");
        assert_eq!(quote_ident("1st"), "\"1st\"");
        assert_eq!(quote_ident("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote_ident("names"), "names");
    }

    #[test]
    fn format_reads_positions_widths_and_nulls() {
        let f = |t: &str, args: &[Option<&str>]| format(t, args).unwrap();
        assert_eq!(
            f("%s.%I = %L", &[Some("a"), Some("B c"), Some("it's")]),
            "a.\"B c\" = 'it''s'"
        );
        assert_eq!(f("%2$s %1$s %%", &[Some("a"), Some("b")]), "b a %");
        assert_eq!(f("[%-4s][%4s]", &[Some("x"), Some("y")]), "[x   ][   y]");
        assert_eq!(f("[%*s]", &[Some("3"), Some("z")]), "[  z]");
        assert_eq!(f("%s|%L", &[None, None]), "|NULL");
        assert_eq!(f("%L", &[Some("a\\b")]), "E'a\\\\b'");
        assert!(format("%I", &[None]).is_err());
        assert!(format("%s %s", &[Some("one")]).is_err());
        assert!(format("%x", &[Some("one")]).is_err());
    }
}
