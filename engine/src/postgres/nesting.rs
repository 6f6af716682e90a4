//! Refusing statements whose expressions nest too deeply to plan safely.
//!
//! Expression trees are cloned, compared, hashed and dropped recursively
//! (by the SQL parser's AST and DataFusion's `Expr` alike), so a 5,000-term
//! `OR` chain or a megabyte of `a + a + …` overflowed a thread's stack and
//! aborted the whole node. Postgres refuses such a statement with 54001
//! (`stack depth limit exceeded`); Apiary does the same, from the token
//! stream, before any tree is built.

use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::sql_error;

/// The deepest nesting a statement may have: far beyond hand-written SQL,
/// and well within the stack of every thread that plans a statement.
pub const MAX_NESTING: usize = 1000;

/// The longest chain of arithmetic, comparison and text operators one
/// expression may have. Planning such a chain costs time cubic in its
/// length (each level's type and name are worked out from the whole
/// chain below it, at every level), so it is held far below
/// [`MAX_NESTING`]; `AND`/`OR` chains plan in linear time.
pub const MAX_OPERATOR_CHAIN: usize = 100;

/// 54001 when `sql`'s expressions may nest more than [`MAX_NESTING`]
/// levels deep, or chain more than [`MAX_OPERATOR_CHAIN`] arithmetic or
/// comparison operators. Text that does not tokenize passes: the parser
/// reports it.
pub fn check_nesting(sql: &str) -> Result<(), DataFusionError> {
    let Ok(tokens) = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize() else {
        return Ok(());
    };
    let (depth, chain) = nesting(&tokens);
    if depth > MAX_NESTING {
        return Err(sql_error(
            "54001",
            format!(
                "statement too complex: its expressions nest about {depth} levels deep, \
                 more than the {MAX_NESTING} allowed; write a long chain of OR'ed \
                 equalities as IN (…), or split the statement"
            ),
        ));
    }
    if chain > MAX_OPERATOR_CHAIN {
        return Err(sql_error(
            "54001",
            format!(
                "statement too complex: an expression chains about {chain} operators \
                 (+, -, *, /, ||, =, …), more than the {MAX_OPERATOR_CHAIN} allowed; \
                 split it into several columns or statements"
            ),
        ));
    }
    Ok(())
}

/// Operator classes, loosest-binding first, as Postgres orders them.
const CLASSES: usize = 9;

/// The class of `=`, `<` and the rest; the classes after it bind tighter.
const COMPARISON: usize = 5;

/// The depth of the statement's expression tree, estimated from its
/// tokens: a chain of operators of one class nests one level per operator
/// above its deepest operand, an operator that binds tighter sits in an
/// operand, and a parenthesised group sits below everything around it.
/// The second number is the longest chain of the tighter-binding classes
/// (comparison and above) alone.
fn nesting(tokens: &[Token]) -> (usize, usize) {
    // The chains of each enclosing group, innermost last.
    let mut outer: Vec<Chains> = Vec::new();
    let mut enclosing = 0;
    let mut chains = Chains::default();
    let mut deepest = 0;
    let mut longest = 0;
    for token in tokens {
        match token {
            Token::LParen | Token::LBracket => {
                enclosing += chains.depth(0) + 1;
                outer.push(std::mem::take(&mut chains));
            }
            Token::RParen | Token::RBracket => {
                if let Some(saved) = outer.pop() {
                    enclosing -= saved.depth(0) + 1;
                    chains = saved;
                }
            }
            Token::Comma | Token::SemiColon => chains = Chains::default(),
            token => {
                if let Some(class) = class(token) {
                    chains.push(class);
                }
            }
        }
        deepest = deepest.max(enclosing + chains.depth(0));
        longest = longest.max(chains.depth(COMPARISON));
    }
    (deepest, longest)
}

/// The operator chains open in one group, one per class.
#[derive(Default)]
struct Chains {
    /// Operators in each class's chain.
    count: [usize; CLASSES],
    /// The deepest operand each class's chain has had.
    operand: [usize; CLASSES],
}

impl Chains {
    /// The depth of the chains of classes `from` and tighter.
    fn depth(&self, from: usize) -> usize {
        (from..CLASSES)
            .rev()
            .fold(0, |inner, k| match self.count[k] {
                0 => inner,
                n => n + self.operand[k].max(inner),
            })
    }

    /// An operator of `class`: what binds tighter so far is its left
    /// operand, and its right operand starts new tighter chains.
    fn push(&mut self, class: usize) {
        let operand = self.depth(class + 1);
        self.operand[class] = self.operand[class].max(operand);
        self.count[class] += 1;
        self.count[class + 1..].fill(0);
        self.operand[class + 1..].fill(0);
    }
}

/// The class of an operator token, `None` for other tokens.
fn class(token: &Token) -> Option<usize> {
    if let Token::Word(word) = token {
        return match word.keyword {
            Keyword::UNION | Keyword::EXCEPT => Some(0),
            Keyword::INTERSECT => Some(1),
            Keyword::OR => Some(2),
            Keyword::AND => Some(3),
            Keyword::NOT => Some(4),
            _ => None,
        };
    }
    Some(match token {
        Token::Eq
        | Token::DoubleEq
        | Token::Neq
        | Token::Lt
        | Token::Gt
        | Token::LtEq
        | Token::GtEq => COMPARISON,
        Token::StringConcat
        | Token::Ampersand
        | Token::Pipe
        | Token::ShiftLeft
        | Token::ShiftRight => 6,
        Token::Plus | Token::Minus => 7,
        Token::Mul | Token::Div | Token::Mod | Token::Caret | Token::DoubleColon => 8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(sql: &str) -> usize {
        nesting(
            &Tokenizer::new(&PostgreSqlDialect {}, sql)
                .tokenize()
                .unwrap(),
        )
        .0
    }

    fn code(sql: &str) -> Option<&'static str> {
        match check_nesting(sql) {
            Ok(()) => None,
            Err(DataFusionError::External(inner)) => {
                Some(inner.downcast_ref::<super::super::SqlError>().unwrap().code)
            }
            Err(e) => panic!("not an SqlError: {e}"),
        }
    }

    #[test]
    fn chains_and_groups_nest() {
        assert_eq!(depth("SELECT 1"), 0);
        assert_eq!(depth("SELECT a + b + c FROM t"), 2);
        assert_eq!(depth("SELECT f(f(f(x)))"), 3);
        assert_eq!(depth("SELECT a + (b * (c - d))"), 5);
        // One level per OR, and each term's own operators below it.
        assert_eq!(
            depth("SELECT 1 WHERE a + 1 = 1 OR a + 1 = 2 OR a + 1 = 3"),
            4
        );
        assert_eq!(depth("SELECT a + b * c + d * e"), 3);
        // Lists are wide, not deep.
        assert_eq!(depth("SELECT 1, 2, 3 WHERE x IN (1, 2, 3)"), 1);
        assert_eq!(
            depth("INSERT INTO t VALUES (-1, 'a'), (-2, 'b'), (-3, 'c')"),
            2
        );
    }

    #[test]
    fn long_chains_are_refused_with_54001() {
        let chain = |n: usize, op: &str| {
            let terms: Vec<String> = (0..n).map(|i| format!("a = {i}")).collect();
            format!("SELECT * FROM t WHERE {}", terms.join(op))
        };
        assert_eq!(code(&chain(900, " OR ")), None);
        assert_eq!(code(&chain(5000, " OR ")), Some("54001"));
        let sum = |n: usize| format!("SELECT {} FROM t", vec!["a"; n].join(" + "));
        assert_eq!(code(&sum(90)), None);
        assert_eq!(code(&sum(200)), Some("54001"));
        assert_eq!(code(&sum(200_000)), Some("54001"));
        let wide: Vec<String> = (0..100_000).map(|i| i.to_string()).collect();
        assert_eq!(
            code(&format!("SELECT * FROM t WHERE a IN ({})", wide.join(", "))),
            None
        );
    }
}
