//! PostgreSQL 15's keywords, as its `pg_get_keywords()` lists them.
//!
//! `keywords.txt` is that function's answer (word, category, whether it
//! can be a bare column label), taken from a PostgreSQL 15 server. The
//! gateway serves it as `pg_get_keywords()` (pgJDBC's `getSQLKeywords`,
//! DBeaver's highlighting) and `quote_ident`/`format('%I')` quote every
//! keyword that is not unreserved, as Postgres's do.

use std::sync::OnceLock;

/// One keyword: its word, category and label rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyword {
    pub word: &'static str,
    /// `U` unreserved, `C` column name, `T` type or function name,
    /// `R` reserved.
    pub category: char,
    /// Whether it can label a column without `AS`.
    pub bare_label: bool,
}

impl Keyword {
    /// `pg_get_keywords().catdesc`.
    pub fn category_description(&self) -> &'static str {
        match self.category {
            'U' => "unreserved",
            'C' => "unreserved (cannot be function or type name)",
            'T' => "reserved (can be function or type name)",
            _ => "reserved",
        }
    }

    /// `pg_get_keywords().baredesc`.
    pub fn bare_label_description(&self) -> &'static str {
        match self.bare_label {
            true => "can be bare label",
            false => "requires AS",
        }
    }
}

/// Every keyword, sorted by word.
pub fn keywords() -> &'static [Keyword] {
    static KEYWORDS: OnceLock<Vec<Keyword>> = OnceLock::new();
    KEYWORDS.get_or_init(|| {
        let mut keywords: Vec<Keyword> = include_str!("keywords.txt")
            .lines()
            .filter_map(|line| {
                let mut parts = line.split(' ');
                Some(Keyword {
                    word: parts.next()?,
                    category: parts.next()?.chars().next()?,
                    bare_label: parts.next()? == "t",
                })
            })
            .collect();
        keywords.sort_by_key(|keyword| keyword.word);
        keywords
    })
}

/// Whether `word` is a keyword that must be quoted as an identifier (any
/// category but unreserved).
pub fn needs_quotes(word: &str) -> bool {
    keywords()
        .binary_search_by_key(&word, |keyword| keyword.word)
        .is_ok_and(|at| keywords()[at].category != 'U')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_15_lists_460_keywords_151_of_them_quoted() {
        assert_eq!(keywords().len(), 460);
        assert_eq!(keywords().iter().filter(|k| k.category != 'U').count(), 151);
        assert!(needs_quotes("select") && needs_quotes("int") && needs_quotes("collation"));
        assert!(!needs_quotes("abort") && !needs_quotes("clicks"));
    }
}
