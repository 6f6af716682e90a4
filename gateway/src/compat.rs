//! Postgres SQL as clients write it, rewritten so DataFusion can plan it.
//!
//! The rewrites come from `datafusion-pg-catalog`'s compatibility parser
//! (`= ANY('{…}')`, `OPERATOR(pg_catalog.~)`, `COLLATE`, `'x'::regclass`,
//! known client queries it swaps for plannable ones, …) plus two of
//! Apiary's own. One of the crate's rules replaces correlated scalar
//! subqueries in a select list with NULL: harmless for the catalog
//! browsing it was written for, a wrong answer for a query over frames. So
//! a statement that reads a frame gets every rule but that one, and only a
//! statement that reads nothing but the system catalogs gets the
//! catalog-only shims (see docs/decisions.md).
//!
//! Apiary's own rewrites: `(expr).field` becomes `expr['field']`, `LIKE …
//! ESCAPE 'c'` goes through `like_escape`, result columns get Postgres's
//! names (`count`, not `count(*)`), and in catalog statements the
//! crate's text-encoded `int2vector`/`oidvector` columns (`pg_index.indkey`)
//! become arrays where a client unnests them.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use datafusion::sql::sqlparser::ast::{
    visit_relations_mut, AccessExpr, ArrayElemTypeDef, BinaryOperator, DataType, ExcludeSelectItem,
    Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, JoinConstraint, JoinOperator,
    LimitClause, ObjectName, ObjectNamePart, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, Subscript, TableAliasColumnDef,
    TableFactor, TimezoneInfo, Value, ValueWithSpan, Visit, VisitMut, Visitor, VisitorMut,
    WildcardAdditionalOptions,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};
use datafusion_postgres::datafusion_pg_catalog::pg_catalog::PG_CATALOG_TABLES;

use crate::pg::{catalog_oid, APIARY_TABLES};
use crate::regclass::REGCLASS_FUNCTION;
use crate::regproc::proc_oid;
use datafusion_postgres::datafusion_pg_catalog::sql::rules::{
    AliasDuplicatedProjectionRewrite, CurrentUserVariableToSessionUserFunctionCall,
    FixVersionColumnName, PrependUnqualifiedPgTableName, ResolveUnqualifiedIdentifier,
    RewriteArrayAnyAllOperation, RewritePgCatalogOperator, RewriteRegCastToSubquery,
    SqlStatementRewriteRule, StripCallableQualifier, StripCollate,
};
use datafusion_postgres::datafusion_pg_catalog::sql::PostgresCompatibilityParser;

/// Schemas whose relations are system catalogs rather than frames.
const SYSTEM_SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];

/// Table functions over no frame (`FROM unnest(…)` in a catalog query).
const TABLE_FUNCTIONS: [&str; 5] = [
    "unnest",
    "generate_series",
    "pg_get_keywords",
    "pg_show_all_settings",
    "pg_options_to_table",
];

/// Parses Postgres SQL into statements DataFusion can plan.
#[derive(Debug)]
pub struct SqlParser {
    /// The crate's parser with all of its rules: for catalog statements.
    catalog: PostgresCompatibilityParser,
    /// The crate's rules that keep a query's meaning: for frame statements.
    frame_rules: Vec<Arc<dyn SqlStatementRewriteRule>>,
}

impl Default for SqlParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SqlParser {
    pub fn new() -> Self {
        // The crate's list, in its order, without RemoveSubqueryFromProjection
        // and with Postgres's reading of array literals for its naive one.
        let frame_rules: Vec<Arc<dyn SqlStatementRewriteRule>> = vec![
            Arc::new(AliasDuplicatedProjectionRewrite),
            Arc::new(ResolveUnqualifiedIdentifier),
            Arc::new(RewriteArrayAnyAllOperation),
            Arc::new(PrependUnqualifiedPgTableName),
            Arc::new(StripCallableQualifier),
            Arc::new(ArrayLiterals),
            Arc::new(CurrentUserVariableToSessionUserFunctionCall),
            Arc::new(StripCollate),
            Arc::new(RewritePgCatalogOperator),
            Arc::new(RewriteRegCastToSubquery::new()),
            Arc::new(FixVersionColumnName),
        ];
        SqlParser {
            catalog: PostgresCompatibilityParser::new(),
            frame_rules,
        }
    }

    /// Parses `sql` (one or more statements) and rewrites each.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, ParserError> {
        let rewritten = rewrite_tokens(sql);
        let sql = rewritten.as_deref().unwrap_or(sql);
        let frame_rules = |statement| {
            self.frame_rules
                .iter()
                .fold(statement, |statement, rule| rule.rewrite(statement))
        };
        let mut statements = match Parser::parse_sql(&PostgreSqlDialect {}, sql) {
            // Queries over frames, the common case, are parsed once.
            Ok(plain) if plain.iter().all(reads_frames) => plain
                .into_iter()
                .map(|statement| frame_rules(any_subquery_as_in(statement)))
                .collect(),
            // The crate's swaps of known client queries never touch a
            // frame, so its statements line up with the plain ones.
            Ok(plain) => {
                let rewritten = self.catalog.parse(sql)?;
                if plain.len() == rewritten.len() {
                    rewritten
                        .into_iter()
                        .zip(plain)
                        .map(|(rewritten, plain)| {
                            if reads_frames(&plain) {
                                return frame_rules(any_subquery_as_in(plain));
                            }
                            // Unless the crate swapped the whole query, its
                            // rules but the one that drops subqueries.
                            let swapped = rewritten != self.catalog.rewrite(plain.clone());
                            let statement = match swapped {
                                true => rewritten,
                                false => frame_rules(plain),
                            };
                            name_subscripts_as_substr(vectors_as_arrays(
                                null_unplannable_subqueries(statement),
                            ))
                        })
                        .collect()
                } else {
                    rewritten
                }
            }
            Err(_) => self.catalog.parse(sql)?,
        };
        for statement in statements.iter_mut() {
            qualify_apiary_catalog_tables(statement);
            user_as_session_user(statement);
            rewrite_field_access(statement);
            rewrite_like_escape(statement);
            rewrite_at_time_zone(statement);
            rewrite_postgres_clauses(statement);
            name_columns_as_postgres(statement);
            computed_names_as_regclass(statement);
        }
        Ok(statements)
    }
}

/// `'{a,"b,c",NULL}'::text[]` as `ARRAY['a', 'b,c', NULL]::text[]`, its
/// elements read as Postgres reads an array literal: double quotes around
/// an element that holds commas, braces or quotes, backslash escapes, and
/// an unquoted NULL for a NULL element. (The crate's rule splits on commas
/// and keeps the quotes: pgJDBC's `getSQLKeywords` excludes `"null"`.) A
/// nested (multi-dimensional) literal is left alone.
#[derive(Debug)]
struct ArrayLiterals;

impl SqlStatementRewriteRule for ArrayLiterals {
    fn rewrite(&self, mut statement: Statement) -> Statement {
        struct Literals;
        impl VisitorMut for Literals {
            type Break = ();

            fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
                let Expr::Cast {
                    expr: literal,
                    data_type: DataType::Array(element_type),
                    ..
                } = expr
                else {
                    return ControlFlow::Continue(());
                };
                let text_elements = match element_type {
                    ArrayElemTypeDef::AngleBracket(t)
                    | ArrayElemTypeDef::SquareBracket(t, _)
                    | ArrayElemTypeDef::Parenthesis(t) => matches!(
                        t.as_ref(),
                        DataType::Text
                            | DataType::Varchar(_)
                            | DataType::Char(_)
                            | DataType::String(_)
                            | DataType::Custom(..)
                    ),
                    ArrayElemTypeDef::None => false,
                };
                let Expr::Value(ValueWithSpan {
                    value: Value::SingleQuotedString(text),
                    ..
                }) = literal.as_ref()
                else {
                    return ControlFlow::Continue(());
                };
                if let Some(elements) = array_literal_elements(text) {
                    let elements = elements
                        .into_iter()
                        .map(|element| match element {
                            Some(text) if !text_elements && is_number(&text) => {
                                Expr::value(Value::Number(text, false))
                            }
                            Some(text) => Expr::value(Value::SingleQuotedString(text)),
                            None => Expr::value(Value::Null),
                        })
                        .collect();
                    **literal = Expr::Array(datafusion::sql::sqlparser::ast::Array {
                        elem: elements,
                        named: true,
                    });
                }
                ControlFlow::Continue(())
            }
        }
        let _ = VisitMut::visit(&mut statement, &mut Literals);
        statement
    }
}

fn is_number(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
        && text.parse::<f64>().is_ok()
}

/// The elements of a one-dimensional Postgres array literal (`None` for
/// NULL), or None when `text` is not one.
fn array_literal_elements(text: &str) -> Option<Vec<Option<String>>> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut elements = Vec::new();
    let mut chars = inner.chars().peekable();
    if inner.trim().is_empty() {
        return Some(elements);
    }
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut element = String::new();
        let quoted = chars.next_if_eq(&'"').is_some();
        if quoted {
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => element.push(chars.next()?),
                    c => element.push(c),
                }
            }
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                match c {
                    '{' | '}' | '"' => return None,
                    '\\' => element.push(chars.next()?),
                    c => element.push(c),
                }
            }
            element.truncate(element.trim_end().len());
        }
        let null = !quoted && element.eq_ignore_ascii_case("null");
        elements.push((!null).then_some(element));
        match chars.next() {
            Some(',') => continue,
            None => return Some(elements),
            Some(_) => return None,
        }
    }
}

/// Whether `statement` names any relation outside the system catalogs: a
/// frame. A CTE's name is not one; what its body reads decides (asyncpg's
/// type introspection is a recursive CTE over `pg_type`).
fn reads_frames(statement: &Statement) -> bool {
    struct Ctes(HashSet<String>);
    impl Visitor for Ctes {
        type Break = ();

        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.0.insert(cte.alias.name.value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
    }
    struct Relations<'a> {
        ctes: &'a HashSet<String>,
        frames: bool,
    }
    impl Visitor for Relations<'_> {
        type Break = ();

        fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
            let is_cte = match relation.0.as_slice() {
                [part] => part
                    .as_ident()
                    .is_some_and(|i| self.ctes.contains(&i.value.to_ascii_lowercase())),
                _ => false,
            };
            if !is_cte && !is_system_relation(relation) {
                self.frames = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut ctes = Ctes(HashSet::new());
    let _ = statement.visit(&mut ctes);
    let mut relations = Relations {
        ctes: &ctes.0,
        frames: false,
    };
    let _ = statement.visit(&mut relations);
    relations.frames
}

fn is_system_relation(name: &ObjectName) -> bool {
    let parts: Vec<String> = name
        .0
        .iter()
        .filter_map(|part| part.as_ident().map(|i| i.value.to_ascii_lowercase()))
        .collect();
    match parts.as_slice() {
        [table] => {
            PG_CATALOG_TABLES.contains(&table.as_str())
                || APIARY_TABLES.contains(&table.as_str())
                || TABLE_FUNCTIONS.contains(&table.as_str())
        }
        [.., schema, _] => SYSTEM_SCHEMAS.contains(&schema.as_str()),
        [] => false,
    }
}

/// A bare `user` is `current_user` (Postgres reserves the word; a column
/// of that name is always quoted), which is `session_user()` here.
fn user_as_session_user(statement: &mut Statement) {
    struct User;
    impl VisitorMut for User {
        type Break = ();

        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let is_user = match expr {
                Expr::Identifier(ident) => {
                    ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("user")
                }
                Expr::Function(f) => {
                    matches!(f.args, FunctionArguments::None)
                        && f.name.to_string().eq_ignore_ascii_case("user")
                }
                _ => false,
            };
            if is_user {
                *expr = parse_expr("session_user()");
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut User);
}

/// `pg_stat_activity` becomes `pg_catalog.pg_stat_activity`, as the
/// crate's rule does for its own tables.
fn qualify_apiary_catalog_tables(statement: &mut Statement) {
    let _ = visit_relations_mut(statement, |name| {
        if let [part] = name.0.as_slice() {
            let is_ours = part.as_ident().is_some_and(|ident| {
                APIARY_TABLES.contains(&ident.value.to_ascii_lowercase().as_str())
            });
            if is_ours {
                name.0
                    .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

/// Correlated subqueries DataFusion cannot plan, in the select lists of
/// client catalog queries: `ARRAY(SELECT …)` (psql's `\d+` and `\du`),
/// and scalar subqueries that are `array_agg(…)` of the same, whose own
/// select list reads the outer row (SQLAlchemy's identity options) or
/// whose WHERE compares it by more than `=` (psql's collation of a
/// column; an EXISTS of that kind, Npgsql's `attnum = ANY (indkey)`, is
/// false). They read catalogs Apiary leaves empty
/// for frames (inheritance, role memberships, sequences), so NULL is their
/// answer. Other correlated scalar subqueries are planned as they are (see
/// the engine's `SingleRowSubqueries`).
fn null_unplannable_subqueries(mut statement: Statement) -> Statement {
    struct SelectLists;
    impl VisitorMut for SelectLists {
        type Break = ();

        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            if let SetExpr::Select(select) = query.body.as_mut() {
                null_in_select(select);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(&mut statement, &mut SelectLists);
    statement
}

fn null_in_select(select: &mut Select) {
    struct Subqueries;
    impl VisitorMut for Subqueries {
        type Break = ();

        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            match expr {
                Expr::Subquery(query)
                    if is_correlated(query)
                        && (projects_outer_row(query)
                            || correlates_beyond_equality(query)
                            || aggregates_an_array(query)) =>
                {
                    *expr = Expr::value(Value::Null);
                }
                // Never NULL: no row, as the catalog has none for frames.
                Expr::Exists { subquery, negated }
                    if is_correlated(subquery) && correlates_beyond_equality(subquery) =>
                {
                    *expr = Expr::value(Value::Boolean(*negated));
                }
                Expr::Function(function)
                    if function.name.to_string().eq_ignore_ascii_case("array") =>
                {
                    if let FunctionArguments::Subquery(query) = &function.args {
                        if is_correlated(query) {
                            // It stays an array for the function around it.
                            *expr = parse_expr("CAST(NULL AS TEXT[])");
                        }
                    }
                }
                _ => {}
            }
            ControlFlow::Continue(())
        }
    }
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(expr) | SelectItem::ExprWithAlias { expr, .. } = item {
            let _ = VisitMut::visit(expr, &mut Subqueries);
        }
    }
}

fn is_column(expr: &Expr) -> bool {
    matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
}

/// Whether a subquery's one column is `array_agg(…)`: `ARRAY(SELECT …)`
/// written the other way (asyncpg's composite attribute types).
fn aggregates_an_array(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    matches!(
        select.projection.as_slice(),
        [SelectItem::UnnamedExpr(Expr::Function(function))
            | SelectItem::ExprWithAlias { expr: Expr::Function(function), .. }]
            if function.name.to_string().eq_ignore_ascii_case("array_agg")
    )
}

/// Whether a correlated subquery's select list reads the outer row.
fn projects_outer_row(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return true;
    };
    let mut items = select.clone();
    items.selection = None;
    items.having = None;
    let mut only_items = query.clone();
    *only_items.body = SetExpr::Select(items);
    only_items.order_by = None;
    is_correlated(&only_items)
}

/// The relations a query reads and the qualifiers of the column names it
/// uses. Only qualified column names are judged; catalog clients qualify
/// them all.
#[derive(Default)]
struct Names {
    relations: HashSet<String>,
    qualifiers: Vec<String>,
    /// A table function over a column (`FROM unnest(evttags)`,
    /// `pg_options_to_table(fdwoptions)`) reads the outer row.
    lateral: bool,
}

impl Names {
    fn of(node: &impl Visit) -> Names {
        let mut names = Names::default();
        let _ = node.visit(&mut names);
        names
    }
}

impl Visitor for Names {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<()> {
        let arguments: Vec<&Expr> = match factor {
            TableFactor::Table {
                args: Some(args), ..
            } => args
                .args
                .iter()
                .filter_map(|arg| match arg {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(expr)) => Some(expr),
                    _ => None,
                })
                .collect(),
            TableFactor::UNNEST { array_exprs, .. } => array_exprs.iter().collect(),
            _ => vec![],
        };
        if arguments
            .iter()
            .any(|e| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)))
        {
            self.lateral = true;
        }
        if let TableFactor::Table { name, alias, .. } = factor {
            // An alias hides the relation's own name, as in Postgres.
            if let Some(alias) = alias {
                self.relations.insert(alias.name.value.to_ascii_lowercase());
                return ControlFlow::Continue(());
            }
            let parts: Vec<String> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident().map(|i| i.value.to_ascii_lowercase()))
                .collect();
            // `pg_catalog.pg_type.oid` and `pg_type.oid` both name it.
            for start in 0..parts.len() {
                self.relations.insert(parts[start..].join("."));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
        match expr {
            Expr::CompoundIdentifier(idents) => {
                if let Some((_, qualifier)) = idents.split_last() {
                    let qualifier: Vec<String> = qualifier
                        .iter()
                        .map(|i| i.value.to_ascii_lowercase())
                        .collect();
                    self.qualifiers.push(qualifier.join("."));
                }
            }
            // `ix.indkey[0]`: the root `ix`, then `.indkey`.
            Expr::CompoundFieldAccess { root, access_chain } => {
                if let (Expr::Identifier(qualifier), Some(AccessExpr::Dot(_))) =
                    (root.as_ref(), access_chain.first())
                {
                    self.qualifiers.push(qualifier.value.to_ascii_lowercase());
                }
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
/// Whether a subquery refers to a relation it does not read itself.
fn is_correlated(query: &Query) -> bool {
    let names = Names::of(query);
    names.lateral
        || names
            .qualifiers
            .iter()
            .any(|q| !names.relations.contains(q))
}

/// Whether a subquery's WHERE compares the outer row with its own rows by
/// anything but `=` between columns, which DataFusion cannot turn into a
/// join (psql's `a.attcollation <> t.typcollation`, Npgsql's `a.attnum =
/// ix.indkey[0]`).
fn correlates_beyond_equality(query: &Query) -> bool {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return false;
    };
    let relations = Names::of(query).relations;
    let mut conditions: Vec<&Expr> = select.selection.iter().collect();
    while let Some(condition) = conditions.pop() {
        match condition {
            Expr::BinaryOp {
                left,
                op: BinaryOperator::And,
                right,
            } => conditions.extend([left.as_ref(), right.as_ref()]),
            Expr::Nested(inner) => conditions.push(inner),
            // Column = column joins; an expression on either side does not.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::Eq,
                right,
            } if is_column(left) && is_column(right) => {}
            other => {
                let qualifiers = Names::of(other).qualifiers;
                let inner = qualifiers.iter().filter(|q| relations.contains(*q)).count();
                if inner > 0 && inner < qualifiers.len() {
                    return true;
                }
            }
        }
    }
    false
}

/// Columns the crate keeps as space-separated text where Postgres has an
/// `int2vector` or `oidvector`, with the array type they stand for.
const VECTOR_COLUMNS: [(&str, &str); 5] = [
    ("indkey", "SMALLINT[]"),
    ("indoption", "SMALLINT[]"),
    ("indclass", "INT[]"),
    ("indcollation", "INT[]"),
    ("proargtypes", "INT[]"),
];

/// SQLAlchemy's constraint and index reflection unnests `pg_index.indkey`
/// and numbers it with `generate_subscripts(indkey, 1)`. Inside `unnest`
/// and `generate_subscripts` a vector column becomes the array it encodes,
/// and `generate_subscripts(a, d)` becomes `unnest(generate_series(1,
/// array_length(a, d)))`, which DataFusion zips with the other unnests of
/// the select list as Postgres does. So does a vector under `= ANY (…)`
/// (Npgsql's primary-key columns) and under a subscript, which counts from
/// 0 as a vector's do (`indkey[0]`), also through a derived table's alias
/// (pgJDBC's `i.indoption AS I_INDOPTION`, then `I_INDOPTION[n - 1]`).
fn vectors_as_arrays(mut statement: Statement) -> Statement {
    let mut vectors = Vectors(
        VECTOR_COLUMNS
            .iter()
            .map(|(name, array_type)| (name.to_string(), *array_type))
            .collect(),
    );
    let _ = Visit::visit(&statement, &mut vectors);
    let _ = VisitMut::visit(&mut statement, &mut vectors);
    statement
}

/// Vector columns by name, the derived tables' aliases of them too
/// (pgJDBC's `i.indoption AS I_INDOPTION`), with their array types.
struct Vectors(HashMap<String, &'static str>);

impl Visitor for Vectors {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        if let SetExpr::Select(select) = query.body.as_ref() {
            for item in &select.projection {
                if let SelectItem::ExprWithAlias { expr, alias } = item {
                    if let Some(array_type) = self.array_type(expr) {
                        self.0.insert(alias.value.to_ascii_lowercase(), array_type);
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }
}

impl VisitorMut for Vectors {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        // `indkey[0]`: a vector's subscripts start at 0.
        if let Some(element) = self.element(expr) {
            *expr = element;
            return ControlFlow::Continue(());
        }
        let Expr::Function(function) = expr else {
            return ControlFlow::Continue(());
        };
        let name = function.name.to_string().to_ascii_lowercase();
        let name = name.strip_prefix("pg_catalog.").unwrap_or(&name);
        // The crate's rule makes `attnum = ANY (indkey)` array_contains.
        if !matches!(name, "unnest" | "generate_subscripts" | "array_contains") {
            return ControlFlow::Continue(());
        }
        let FunctionArguments::List(list) = &mut function.args else {
            return ControlFlow::Continue(());
        };
        let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = list.args.first_mut() else {
            return ControlFlow::Continue(());
        };
        if let Some(array_type) = self.array_type(first) {
            *first = parse_expr(&format!(
                "CAST(string_to_array({first}, ' ') AS {array_type})"
            ));
        }
        if name == "generate_subscripts" {
            // The dimension stays: it may be a parameter the client binds.
            let dimension = list
                .args
                .get(1)
                .map_or_else(|| "1".to_string(), |arg| arg.to_string());
            let first = &list.args[0];
            *expr = parse_expr(&format!(
                "unnest(generate_series(1, array_length({first}, {dimension})))"
            ));
        }
        ControlFlow::Continue(())
    }
}

impl Vectors {
    /// `ix.indkey[i]` (the root `ix`, then `.indkey`, then `[i]`) as an
    /// element of the array the vector encodes, counted from 0.
    fn element(&self, expr: &Expr) -> Option<Expr> {
        let Expr::CompoundFieldAccess { root, access_chain } = expr else {
            return None;
        };
        let (AccessExpr::Subscript(Subscript::Index { index }), path) =
            access_chain.split_last()?
        else {
            return None;
        };
        let mut column = vec![root.to_string()];
        for part in path {
            match part {
                AccessExpr::Dot(Expr::Identifier(ident)) => column.push(ident.to_string()),
                _ => return None,
            }
        }
        let column = parse_expr(&column.join("."));
        let array_type = self.array_type(&column)?;
        Some(parse_expr(&format!(
            "(CAST(string_to_array({column}, ' ') AS {array_type}))[({index}) + 1]"
        )))
    }

    /// The array type of a vector column (or an alias of one).
    fn array_type(&self, expr: &Expr) -> Option<&'static str> {
        let column = match expr {
            Expr::Nested(inner) => return self.array_type(inner),
            Expr::Identifier(ident) => ident,
            Expr::CompoundIdentifier(idents) => idents.last()?,
            _ => return None,
        };
        self.0.get(&column.value.to_ascii_lowercase()).copied()
    }
}

/// An expression built from SQL text made of already-parsed parts.
fn parse_expr(sql: &str) -> Expr {
    Parser::new(&PostgreSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_expr())
        .unwrap_or_else(|_| Expr::value(Value::Null))
}

/// `x = ANY (subquery)` is `x IN (subquery)` and `x <> ALL (subquery)` is
/// `x NOT IN (subquery)`, NULLs included. Written so before the crate's
/// rules, which read `= ANY` as array membership (`array_has`) and so
/// fail on a subquery.
fn any_subquery_as_in(mut statement: Statement) -> Statement {
    struct AnySubquery;
    impl VisitorMut for AnySubquery {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let (left, right, negated) = match expr {
                Expr::AnyOp {
                    left,
                    compare_op: BinaryOperator::Eq,
                    right,
                    ..
                } => (left, right, false),
                Expr::AllOp {
                    left,
                    compare_op: BinaryOperator::NotEq,
                    right,
                } => (left, right, true),
                _ => return ControlFlow::Continue(()),
            };
            let subquery = match right.as_ref() {
                Expr::Subquery(query) => query.clone(),
                Expr::Nested(inner) => match inner.as_ref() {
                    Expr::Subquery(query) => query.clone(),
                    _ => return ControlFlow::Continue(()),
                },
                _ => return ControlFlow::Continue(()),
            };
            *expr = Expr::InSubquery {
                expr: left.clone(),
                subquery,
                negated,
            };
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(&mut statement, &mut AnySubquery);
    statement
}

/// In `a FULL JOIN b USING (k)`, Postgres's `k` is `COALESCE(a.k, b.k)`
/// (in `a RIGHT JOIN b USING (k)`, `b.k`): a row only `b` has keeps its
/// key. DataFusion resolves `k` to `a.k`, NULL on such rows. For a select
/// whose FROM is one such join of two named relations, an unqualified `k`
/// in the select list (named `k`), `WHERE`, `GROUP BY`, `HAVING` and
/// `ORDER BY` becomes the merged key, and a plain `*` lists the merged
/// keys, then `a`'s other columns, then `b`'s, as Postgres does;
/// subqueries keep their own scope, and `a.k` stays `a.k`.
fn merge_full_join_keys(query: &mut Query) {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    let [from] = select.from.as_slice() else {
        return;
    };
    let [join] = from.joins.as_slice() else {
        return;
    };
    let (keys, full) = match &join.join_operator {
        JoinOperator::FullOuter(JoinConstraint::Using(keys)) => (keys, true),
        JoinOperator::Right(JoinConstraint::Using(keys))
        | JoinOperator::RightOuter(JoinConstraint::Using(keys)) => (keys, false),
        _ => return,
    };
    let (Some(left), Some(right)) = (relation_name(&from.relation), relation_name(&join.relation))
    else {
        return;
    };
    let merged: Vec<(Ident, Expr)> = keys
        .iter()
        .filter_map(|key| key.0.last().and_then(|part| part.as_ident()).cloned())
        .filter_map(|key| {
            let sql = match full {
                true => format!("COALESCE({left}.{key}, {right}.{key})"),
                false => format!("{right}.{key}"),
            };
            let expr = Parser::new(&PostgreSqlDialect {})
                .try_with_sql(&sql)
                .and_then(|mut parser| parser.parse_expr())
                .ok()?;
            Some((key, expr))
        })
        .collect();
    if merged.is_empty() {
        return;
    }
    let mut keys = MergedKeys {
        merged: &merged,
        depth: 0,
    };
    select.projection = std::mem::take(&mut select.projection)
        .into_iter()
        .flat_map(|item| match item {
            SelectItem::Wildcard(options) if is_plain(&options) => {
                star_with_merged_keys(&merged, &[&left, &right], options)
            }
            item => vec![item],
        })
        .collect();
    for item in select.projection.iter_mut() {
        if let SelectItem::UnnamedExpr(Expr::Identifier(name)) = item {
            if let Some(expr) = keys.merged_key(name) {
                *item = SelectItem::ExprWithAlias {
                    expr,
                    alias: name.clone(),
                };
                continue;
            }
        }
        let _ = VisitMut::visit(item, &mut keys);
    }
    let _ = VisitMut::visit(&mut select.selection, &mut keys);
    let _ = VisitMut::visit(&mut select.group_by, &mut keys);
    let _ = VisitMut::visit(&mut select.having, &mut keys);
    // `ORDER BY k` names the output column when the select list has one.
    let outputs_key = select.projection.iter().any(|item| match item {
        SelectItem::ExprWithAlias { alias, .. } => merged.iter().any(|(k, _)| same_name(k, alias)),
        _ => false,
    });
    if !outputs_key {
        let _ = VisitMut::visit(&mut query.order_by, &mut keys);
    }
}

/// A `*` without `EXCLUDE`, `REPLACE` or the like.
fn is_plain(options: &WildcardAdditionalOptions) -> bool {
    options.opt_ilike.is_none()
        && options.opt_exclude.is_none()
        && options.opt_except.is_none()
        && options.opt_replace.is_none()
        && options.opt_rename.is_none()
        && options.opt_alias.is_none()
}

/// `*` over a join with merged keys: the keys, then each relation's other
/// columns (`r.* EXCLUDE (keys)`).
fn star_with_merged_keys(
    merged: &[(Ident, Expr)],
    relations: &[&Ident],
    options: WildcardAdditionalOptions,
) -> Vec<SelectItem> {
    let keys: Vec<ObjectName> = merged
        .iter()
        .map(|(key, _)| ObjectName::from(vec![key.clone()]))
        .collect();
    let mut items: Vec<SelectItem> = merged
        .iter()
        .map(|(key, expr)| SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: key.clone(),
        })
        .collect();
    items.extend(relations.iter().map(|relation| {
        SelectItem::QualifiedWildcard(
            SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(
                vec![(*relation).clone()],
            )),
            WildcardAdditionalOptions {
                opt_exclude: Some(ExcludeSelectItem::Multiple(keys.clone())),
                ..options.clone()
            },
        )
    }));
    items
}

/// The name a relation in FROM is referred to by.
fn relation_name(relation: &TableFactor) -> Option<Ident> {
    match relation {
        TableFactor::Table {
            alias: Some(alias), ..
        }
        | TableFactor::Derived {
            alias: Some(alias), ..
        } => Some(alias.name.clone()),
        TableFactor::Table {
            name, alias: None, ..
        } => name.0.last().and_then(|part| part.as_ident()).cloned(),
        _ => None,
    }
}

/// Whether two identifiers name the same column (unquoted ones fold case).
fn same_name(a: &Ident, b: &Ident) -> bool {
    let folded = |i: &Ident| match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    };
    folded(a) == folded(b)
}

/// Replaces unqualified USING keys outside subqueries with their merge.
struct MergedKeys<'a> {
    merged: &'a [(Ident, Expr)],
    depth: usize,
}

impl MergedKeys<'_> {
    fn merged_key(&self, name: &Ident) -> Option<Expr> {
        self.merged
            .iter()
            .find(|(key, _)| same_name(key, name))
            .map(|(_, expr)| expr.clone())
    }
}

impl VisitorMut for MergedKeys<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let (0, Expr::Identifier(name)) = (self.depth, &*expr) {
            if let Some(merged) = self.merged_key(name) {
                *expr = merged;
            }
        }
        ControlFlow::Continue(())
    }
}

/// `t AT TIME ZONE z` is Postgres's `timezone(z, t)`: DataFusion reads it
/// as a cast to a `timestamptz` in `z`, which for a `timestamptz` is the
/// same instant where Postgres gives the wall-clock `timestamp` in `z`.
fn rewrite_at_time_zone(statement: &mut Statement) {
    struct AtTimeZone;
    impl VisitorMut for AtTimeZone {
        type Break = ();
        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::AtTimeZone {
                timestamp,
                time_zone,
            } = expr
            {
                let call = format!("timezone({time_zone}, {timestamp})");
                // Printed from parsed parts, it parses; if not, DataFusion
                // plans the original.
                if let Ok(call) = Parser::new(&PostgreSqlDialect {})
                    .try_with_sql(&call)
                    .and_then(|mut parser| parser.parse_expr())
                {
                    *expr = call;
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut AtTimeZone);
}

/// DataFusion's LIKE only knows the backslash escape; SQLAlchemy's
/// `startswith(…, autoescape=True)` writes `LIKE … ESCAPE '/'`. Postgres's
/// `like_escape(pattern, escape)` converts such a pattern to the backslash
/// form, so `x LIKE p ESCAPE 'c'` becomes `x LIKE like_escape(p, 'c')`.
fn rewrite_like_escape(statement: &mut Statement) {
    struct Escapes;
    impl VisitorMut for Escapes {
        type Break = ();

        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Like {
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                pattern,
                escape_char,
                ..
            } = expr
            {
                if let Some(escape) = escape_char.take() {
                    if escape.value == Value::SingleQuotedString("\\".into()) {
                        *escape_char = Some(escape);
                    } else {
                        **pattern = parse_expr(&format!("like_escape({pattern}, {escape})"));
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut Escapes);
}

/// Result columns named as Postgres names them: `SELECT count(*)` returns a
/// column `count`, `SELECT 1` one named `?column?`, where DataFusion would
/// say `count(*)` and `Int64(1)`. BI tools and pandas show these names. An
/// unaliased select item gets Postgres's name as its alias, unless another
/// item of the same select list already has that name or the list has a
/// wildcard (DataFusion needs the names of a select list to differ).
fn name_columns_as_postgres(statement: &mut Statement) {
    struct Names;
    impl VisitorMut for Names {
        type Break = ();

        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            name_set_expr(&mut query.body);
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut Names);
}

/// Every select of a set operation: the first one names the result, and
/// each must have names that differ.
fn name_set_expr(body: &mut SetExpr) {
    match body {
        SetExpr::Select(select) => name_select_items(select),
        SetExpr::SetOperation { left, right, .. } => {
            name_set_expr(left);
            name_set_expr(right);
        }
        _ => {}
    }
}

/// Postgres clauses DataFusion's planner lacks, as the clauses it has:
/// `FETCH FIRST n ROWS ONLY` is `LIMIT n`, and a set-returning function in
/// FROM with a table alias and no column list names its one column after
/// the alias (`generate_series(1, 3) AS g` has a column `g`).
fn rewrite_postgres_clauses(statement: &mut Statement) {
    struct Clauses;
    impl VisitorMut for Clauses {
        type Break = ();

        fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
            fetch_as_limit(query);
            merge_full_join_keys(query);
            unnest_set_returning_items(query);
            ControlFlow::Continue(())
        }

        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::Value(value) = expr {
                if let Value::Number(number, _) = &value.value {
                    if !fits_numeric(number) {
                        *expr = parse_expr(&format!("CAST('{number}' AS DOUBLE PRECISION)"));
                    }
                }
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_table_factor(&mut self, table: &mut TableFactor) -> ControlFlow<()> {
            if let Some(one_row) = scalar_function_as_table(table) {
                *table = one_row;
                return ControlFlow::Continue(());
            }
            if let TableFactor::Table {
                name,
                args: Some(_),
                alias: Some(alias),
                ..
            } = table
            {
                let function = name.0.last().and_then(|part| part.as_ident());
                let single_column = function.is_some_and(|f| {
                    SCALAR_SET_FUNCTIONS.contains(&f.value.to_lowercase().as_str())
                });
                if single_column && alias.columns.is_empty() {
                    alias.columns = vec![TableAliasColumnDef {
                        name: alias.name.clone(),
                        data_type: None,
                    }];
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut Clauses);
}

/// Scalar functions clients call in FROM (Grafana's
/// `string_to_array(current_setting('search_path'), ',') AS parts`).
const SCALAR_FUNCTIONS_IN_FROM: &[&str] = &[
    "string_to_array",
    "regexp_split_to_array",
    "regexp_match",
    "parse_ident",
    "current_schemas",
    "array_append",
    "array_prepend",
    "array_cat",
    "array_remove",
    "array_replace",
];

/// A scalar function in FROM is a one-row table whose column is named by
/// the alias, as in Postgres: `f(x) AS a` becomes `(SELECT f(x) AS a) AS a`.
fn scalar_function_as_table(table: &TableFactor) -> Option<TableFactor> {
    let TableFactor::Table {
        name,
        args: Some(args),
        alias,
        ..
    } = table
    else {
        return None;
    };
    let function = name.0.last()?.as_ident()?.value.to_lowercase();
    if !SCALAR_FUNCTIONS_IN_FROM.contains(&function.as_str()) {
        return None;
    }
    let arguments: Vec<String> = args.args.iter().map(ToString::to_string).collect();
    let (alias, column) = match alias {
        Some(alias) => {
            let column = alias.columns.first().map_or(&alias.name, |c| &c.name);
            let columns: Vec<String> = alias.columns.iter().map(|c| c.name.to_string()).collect();
            let list = match columns.is_empty() {
                true => String::new(),
                false => format!("({})", columns.join(", ")),
            };
            (format!("{}{list}", alias.name), column.to_string())
        }
        None => (function.clone(), function.clone()),
    };
    let sql = format!(
        "SELECT * FROM (SELECT {name}({}) AS {column}) AS {alias}",
        arguments.join(", ")
    );
    let mut parsed = Parser::parse_sql(&PostgreSqlDialect {}, &sql).ok()?;
    let Some(Statement::Query(query)) = parsed.pop() else {
        return None;
    };
    let SetExpr::Select(select) = *query.body else {
        return None;
    };
    select.from.into_iter().next().map(|from| from.relation)
}

/// Whether a numeric literal fits the 38 digits of a `numeric` here
/// (`1e100` and `5e-324` do not). Postgres's `numeric` holds them; the
/// nearest that fits is a `float8`, which is also what such a literal is
/// almost always cast to.
fn fits_numeric(number: &str) -> bool {
    let lower = number.to_ascii_lowercase();
    let (mantissa, exponent) = lower.split_once('e').unwrap_or((&lower, "0"));
    let Ok(exponent) = exponent.parse::<i64>() else {
        return true;
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let whole = whole.trim_start_matches(['+', '-', '0']);
    let scale = fraction.len() as i64 - exponent;
    let whole_digits = whole.len() as i64 + exponent.max(0);
    scale <= 38 && whole_digits <= 38 && whole.len() + fraction.len() <= 38
}

/// `SELECT generate_series(1, 3)` is three rows in Postgres; DataFusion's
/// scalar `generate_series` is one array. A select-list item that is such a
/// call becomes `unnest(…)` of it, under the function's name; several
/// are zipped, as in Postgres.
fn unnest_set_returning_items(query: &mut Query) {
    let SetExpr::Select(select) = query.body.as_mut() else {
        return;
    };
    for item in select.projection.iter_mut() {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(expr) => (expr.clone(), None),
            SelectItem::ExprWithAlias { expr, alias } => (expr.clone(), Some(alias.clone())),
            _ => continue,
        };
        let Expr::Function(function) = &expr else {
            continue;
        };
        let name = function.name.0.last().and_then(|part| part.as_ident());
        if function.over.is_some()
            || !name.is_some_and(|n| n.value.eq_ignore_ascii_case("generate_series"))
        {
            continue;
        }
        let unnest = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&format!("unnest({expr})"))
            .and_then(|mut parser| parser.parse_expr());
        if let Ok(unnest) = unnest {
            *item = SelectItem::ExprWithAlias {
                expr: unnest,
                alias: alias.unwrap_or_else(|| Ident::new("generate_series")),
            };
        }
    }
}

/// Set-returning functions whose rows are one scalar column.
const SCALAR_SET_FUNCTIONS: &[&str] = &["generate_series", "unnest"];

/// `[OFFSET m ROWS] FETCH FIRST n ROWS ONLY` as `LIMIT n [OFFSET m]`.
/// `WITH TIES` and `PERCENT` stay, and DataFusion refuses them.
fn fetch_as_limit(query: &mut Query) {
    let Some(fetch) = query
        .fetch
        .take_if(|fetch| !fetch.with_ties && !fetch.percent)
    else {
        return;
    };
    // `FETCH FIRST ROW ONLY` fetches one.
    let count = fetch
        .quantity
        .unwrap_or_else(|| Expr::value(Value::Number("1".into(), false)));
    match &mut query.limit_clause {
        Some(LimitClause::LimitOffset {
            limit: limit @ None,
            ..
        }) => *limit = Some(count),
        None => {
            query.limit_clause = Some(LimitClause::LimitOffset {
                limit: Some(count),
                offset: None,
                limit_by: vec![],
            })
        }
        // The parser refuses LIMIT together with FETCH.
        Some(_) => {}
    }
}

fn name_select_items(select: &mut Select) {
    // A wildcard's columns are unknown here, and one could share a name.
    if select.projection.iter().any(|item| {
        matches!(
            item,
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
        )
    }) {
        return;
    }
    // Names already given, as DataFusion compares them.
    let mut seen: Vec<String> = Vec::new();
    for (i, item) in select.projection.iter_mut().enumerate() {
        match item {
            SelectItem::ExprWithAlias { alias, .. } => {
                let name = alias.value.clone();
                if seen.contains(&name) {
                    *alias = Ident::with_quote('"', duplicate_name(&name, i));
                }
                seen.push(name);
            }
            SelectItem::UnnamedExpr(expr) => {
                let Some(name) = postgres_column_name(expr) else {
                    continue;
                };
                let column = matches!(expr, Expr::Identifier(_) | Expr::CompoundIdentifier(_));
                let alias = if seen.contains(&name) {
                    Some(duplicate_name(&name, i))
                } else {
                    (!column).then(|| name.clone())
                };
                if let Some(alias) = alias {
                    *item = SelectItem::ExprWithAlias {
                        expr: expr.clone(),
                        alias: Ident::with_quote('"', alias),
                    };
                }
                seen.push(name);
            }
            _ => {}
        }
    }
}

/// Marks where a result column's Postgres name ends and the suffix that
/// keeps it apart from an earlier column of the same name begins.
/// Postgres allows `SELECT count(*), count(*)`; DataFusion needs the names
/// of a select list to differ, so the second is planned as
/// `count<mark>1` and the gateway sends it as `count` again. The mark is
/// a private-use character no client writes.
pub const DUPLICATE_NAME_MARK: char = '\u{E000}';

fn duplicate_name(name: &str, position: usize) -> String {
    format!("{name}{DUPLICATE_NAME_MARK}{position}")
}

/// The name a result column is sent with: [`DUPLICATE_NAME_MARK`] and
/// what follows it removed.
pub fn sent_name(name: &str) -> &str {
    name.split(DUPLICATE_NAME_MARK).next().unwrap_or(name)
}

/// What Postgres calls a select item without an alias (its `FigureColname`).
fn postgres_column_name(expr: &Expr) -> Option<String> {
    // An unquoted name is folded to lower case, as DataFusion names it.
    let normalized = |ident: &Ident| match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    };
    match expr {
        Expr::Identifier(ident) => Some(normalized(ident)),
        Expr::CompoundIdentifier(idents) => idents.last().map(normalized),
        Expr::Function(function) => function
            .name
            .0
            .last()
            .and_then(|part| part.as_ident())
            .map(|ident| ident.value.to_ascii_lowercase()),
        // A cast is named by its operand, or by the type when the operand
        // has no name of its own (`1::int` is `int4`).
        Expr::Cast {
            expr, data_type, ..
        } => match postgres_column_name(expr) {
            Some(name) if name != "?column?" && name != "case" => Some(name),
            _ => Some(type_column_name(data_type)),
        },
        Expr::Nested(expr) => postgres_column_name(expr),
        Expr::Case { .. } => Some("case".into()),
        Expr::Exists { .. } => Some("exists".into()),
        // A scalar subquery is named by its one column.
        Expr::Subquery(query) => match query.body.as_ref() {
            SetExpr::Select(select) => match select.projection.as_slice() {
                [SelectItem::ExprWithAlias { alias, .. }] => Some(normalized(alias)),
                [SelectItem::UnnamedExpr(expr)] => postgres_column_name(expr),
                _ => Some("?column?".into()),
            },
            _ => Some("?column?".into()),
        },
        _ => Some("?column?".into()),
    }
}

/// The name Postgres gives a cast to `data_type`: its internal type name.
fn type_column_name(data_type: &DataType) -> String {
    match data_type {
        DataType::SmallInt(_) | DataType::Int2(_) => "int2".into(),
        DataType::Int(_) | DataType::Integer(_) | DataType::Int4(_) => "int4".into(),
        DataType::BigInt(_) | DataType::Int8(_) => "int8".into(),
        DataType::Real | DataType::Float4 => "float4".into(),
        DataType::Double(_) | DataType::DoublePrecision | DataType::Float8 => "float8".into(),
        DataType::Float(_) => "float8".into(),
        DataType::Numeric(_) | DataType::Decimal(_) | DataType::Dec(_) => "numeric".into(),
        DataType::Boolean | DataType::Bool => "bool".into(),
        DataType::Varchar(_) | DataType::CharacterVarying(_) => "varchar".into(),
        DataType::Char(_) | DataType::Character(_) => "bpchar".into(),
        DataType::Timestamp(_, TimezoneInfo::Tz | TimezoneInfo::WithTimeZone) => {
            "timestamptz".into()
        }
        DataType::Timestamp(..) => "timestamp".into(),
        other => {
            let text = other.to_string().to_lowercase();
            text.split('(').next().unwrap_or(&text).trim().to_string()
        }
    }
}

/// Rewrites that must happen before parsing, on the statement's tokens;
/// `None` when the text has nothing to rewrite.
///
/// - `'pg_class'::regclass` (or `'pg_catalog.pg_class'::pg_catalog.regclass`)
///   is the catalog's OID, as pg_dump compares `classid` with it, and
///   `'pg_catalog.array_in'::regproc` the function's (pgJDBC tells arrays
///   by `typinput`). The crate's rule looks names up unqualified; a numeric
///   string it takes as the OID itself, so the name becomes that.
/// - `OPERATOR(pg_catalog.=)` is the plain operator: the SQL parser cannot
///   read it before `ANY (…)` (pg_dump's and psql's pattern lookups).
fn rewrite_tokens(sql: &str) -> Option<String> {
    let lower = sql.to_ascii_lowercase();
    if !lower.contains("regclass") && !lower.contains("regproc") && !lower.contains("operator") {
        return None;
    }
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let is_word = |token: &Token, word: &str| matches!(token, Token::Word(w) if w.value.eq_ignore_ascii_case(word));
    let mut out = Vec::with_capacity(tokens.len());
    let mut changed = false;
    let mut i = 0;
    while i < tokens.len() {
        let rest = &tokens[i..];
        // OPERATOR ( pg_catalog . op )
        if let [op, Token::LParen, schema, Token::Period, operator, Token::RParen, ..] = rest {
            if is_word(op, "operator") && is_word(schema, "pg_catalog") {
                out.push(operator.clone());
                changed = true;
                i += 6;
                continue;
            }
        }
        if let Token::SingleQuotedString(name) = &rest[0] {
            let cast_to = match &rest[1..] {
                [Token::DoubleColon, schema, Token::Period, t, ..]
                    if is_word(schema, "pg_catalog") =>
                {
                    Some(t)
                }
                [Token::DoubleColon, t, ..] => Some(t),
                _ => None,
            };
            let lower = name.to_ascii_lowercase();
            let system_name = lower.strip_prefix("pg_catalog.").unwrap_or(&lower);
            let oid = match cast_to {
                Some(t) if is_word(t, "regclass") => catalog_oid(system_name),
                Some(t) if is_word(t, "regproc") => proc_oid(system_name),
                _ => None,
            };
            if let Some(oid) = oid {
                out.push(Token::SingleQuotedString(oid.to_string()));
                changed = true;
                i += 1;
                continue;
            }
        }
        out.push(rest[0].clone());
        i += 1;
    }
    changed.then(|| out.iter().map(ToString::to_string).collect())
}

/// Columns of Postgres's `name` type, which subscripts read as characters
/// from 0 (pg_dump's `typname[0] = '_'`).
const NAME_COLUMNS: [&str; 8] = [
    "typname", "relname", "nspname", "attname", "proname", "conname", "rolname", "datname",
];

/// `typname[0]` becomes `substr(typname, 1, 1)` in catalog statements.
fn name_subscripts_as_substr(mut statement: Statement) -> Statement {
    struct Subscripts;
    impl VisitorMut for Subscripts {
        type Break = ();

        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::CompoundFieldAccess { root, access_chain } = expr else {
                return ControlFlow::Continue(());
            };
            let column = match root.as_ref() {
                Expr::Identifier(ident) => Some(ident),
                Expr::CompoundIdentifier(parts) => parts.last(),
                _ => None,
            };
            let is_name = column
                .is_some_and(|c| NAME_COLUMNS.contains(&c.value.to_ascii_lowercase().as_str()));
            if let ([AccessExpr::Subscript(Subscript::Index { index })], true) =
                (access_chain.as_slice(), is_name)
            {
                *expr = parse_expr(&format!("substr({root}, ({index}) + 1, 1)"));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(&mut statement, &mut Subscripts);
    statement
}

/// Postgres reads a field of a composite value as `(expr).field`;
/// DataFusion plans the same access written `expr['field']`. This turns the
/// first form into the second in a parsed statement (pgJDBC's
/// `getPrimaryKeys` uses it). Only parenthesised roots are touched, so
/// qualified column names are left alone.
pub fn rewrite_field_access(statement: &mut Statement) {
    struct FieldAccess;
    impl VisitorMut for FieldAccess {
        type Break = ();

        fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            if let Expr::CompoundFieldAccess { root, access_chain } = expr {
                if matches!(**root, Expr::Nested(_)) {
                    for access in access_chain.iter_mut() {
                        if let AccessExpr::Dot(Expr::Identifier(field)) = access {
                            *access = AccessExpr::Subscript(Subscript::Index {
                                index: Expr::value(Value::SingleQuotedString(field.value.clone())),
                            });
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut FieldAccess);
}

/// `CAST(format('%I.%I', s, t) AS regclass)`: a name computed by the
/// query, cast to `regclass`, becomes `apiary_regclass(…)`, which looks it
/// up in `pg_class` (regclass.rs). A literal name is the crate's rule's; a
/// column is an OID already (`c.oid::regclass`) and stays a plain cast.
fn computed_names_as_regclass(statement: &mut Statement) {
    struct Casts;
    impl VisitorMut for Casts {
        type Break = ();

        fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
            let Expr::Cast {
                expr: name,
                data_type,
                ..
            } = expr
            else {
                return ControlFlow::Continue(());
            };
            let to_regclass = match data_type {
                DataType::Regclass => true,
                DataType::Custom(type_name, _) => type_name
                    .0
                    .last()
                    .and_then(ObjectNamePart::as_ident)
                    .is_some_and(|ident| ident.value.eq_ignore_ascii_case("regclass")),
                _ => false,
            };
            let computed = !matches!(
                name.as_ref(),
                Expr::Value(_) | Expr::Identifier(_) | Expr::CompoundIdentifier(_)
            );
            if to_regclass && computed {
                *expr = parse_expr(&format!("{REGCLASS_FUNCTION}({name})"));
            }
            ControlFlow::Continue(())
        }
    }
    let _ = VisitMut::visit(statement, &mut Casts);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_one(sql: &str) -> String {
        let mut statements = SqlParser::new().parse(sql).unwrap();
        assert_eq!(statements.len(), 1);
        statements.remove(0).to_string()
    }

    #[test]
    fn any_and_all_of_a_subquery_are_in_and_not_in() {
        let parsed = parse_one(
            "SELECT a FROM t WHERE a = ANY (SELECT b FROM u) AND a <> ALL (SELECT c FROM v)",
        );
        assert!(parsed.contains("a IN (SELECT b"), "{parsed}");
        assert!(parsed.contains("a NOT IN (SELECT c"), "{parsed}");
        // An array stays an array.
        let parsed = parse_one("SELECT a FROM t WHERE a = ANY (ARRAY[1, 2])");
        assert!(!parsed.contains(" IN "), "{parsed}");
    }

    #[test]
    fn full_join_using_keys_merge_outside_subqueries() {
        let mut statements = SqlParser::new()
            .parse(
                "SELECT k, a.k, (SELECT max(k) FROM t) FROM a FULL JOIN b USING (k) WHERE k > 1 ORDER BY k",
            )
            .unwrap();
        let parsed = statements.remove(0).to_string();
        assert!(
            parsed.starts_with("SELECT COALESCE(a.k, b.k) AS k, a.k AS")
                && parsed.contains("(SELECT max(k) AS"),
            "{parsed}"
        );
        assert!(
            parsed.contains("WHERE COALESCE(a.k, b.k) > 1 ORDER BY k"),
            "{parsed}"
        );
        // Inner joins keep DataFusion's reading, which is Postgres's.
        let parsed = parse_one("SELECT k FROM a JOIN b USING (k)");
        assert!(parsed.starts_with("SELECT k FROM a JOIN"), "{parsed}");
    }

    #[test]
    fn correlated_subqueries_over_frames_keep_their_meaning() {
        let sql = "SELECT c.city, (SELECT max(visits) FROM cities c2 WHERE c2.city = c.city) AS m FROM cities c";
        assert!(parse_one(sql).contains("SELECT max(visits)"));
    }

    #[test]
    fn catalog_queries_keep_scalar_subqueries_and_lose_correlated_arrays() {
        let sql = "SELECT a.attname, CASE WHEN a.atthasdef THEN (SELECT d.adbin FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid) ELSE NULL END AS def, \
                   (SELECT t.typname FROM pg_catalog.pg_type t WHERE t.oid = a.atttypid) AS type \
                   FROM pg_catalog.pg_attribute a";
        let parsed = parse_one(sql);
        assert!(parsed.contains("pg_attrdef"), "{parsed}");
        assert!(parsed.contains("pg_type"), "{parsed}");
        // Unless its select list reads the outer row.
        let parsed = parse_one(
            "SELECT a.attname, (SELECT json_build_object('always', a.attidentity = 'a') FROM pg_catalog.pg_sequence s WHERE s.seqrelid = a.attrelid) AS identity FROM pg_catalog.pg_attribute a",
        );
        assert!(parsed.contains("NULL AS identity"), "{parsed}");
        let parsed = parse_one(
            "SELECT r.rolname, ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid) AS memberof FROM pg_catalog.pg_roles r",
        );
        assert!(
            parsed.contains("CAST(NULL AS TEXT[]) AS memberof"),
            "{parsed}"
        );
    }

    #[test]
    fn vector_columns_unnest_as_arrays_with_their_subscripts() {
        let parsed = parse_one(
            "SELECT unnest(i.indkey) AS k, generate_subscripts(i.indkey, 1) AS o FROM pg_catalog.pg_index i",
        );
        assert!(
            parsed.contains("unnest(CAST(string_to_array(i.indkey, ' ') AS SMALLINT[])) AS k"),
            "{parsed}"
        );
        assert!(
            parsed.contains("unnest(generate_series(1, array_length(CAST(string_to_array(i.indkey, ' ') AS SMALLINT[]), 1))) AS o"),
            "{parsed}"
        );
        // A vector's subscripts count from 0; `= ANY` reads its elements.
        let parsed = parse_one(
            "SELECT i.indkey[0] AS first, 2 = ANY (i.indkey) AS has FROM pg_catalog.pg_index i",
        );
        assert!(
            parsed
                .contains("(CAST(string_to_array(i.indkey, ' ') AS SMALLINT[]))[(0) + 1] AS first"),
            "{parsed}"
        );
        assert!(
            parsed
                .contains("array_contains(CAST(string_to_array(i.indkey, ' ') AS SMALLINT[]), 2)"),
            "{parsed}"
        );
    }

    #[test]
    fn array_literals_read_as_postgres_reads_them() {
        assert_eq!(
            array_literal_elements(r#"{a, "b,c" ,NULL,"null", "q\"x", 1 }"#),
            Some(vec![
                Some("a".into()),
                Some("b,c".into()),
                None,
                Some("null".into()),
                Some("q\"x".into()),
                Some("1".into()),
            ])
        );
        assert_eq!(array_literal_elements("{}"), Some(vec![]));
        assert_eq!(array_literal_elements("{{1,2},{3,4}}"), None);
        let parsed = parse_one("SELECT '{007,\"null\"}'::text[], '{1, 2}'::int[]");
        assert!(parsed.contains("ARRAY['007', 'null']"), "{parsed}");
        assert!(parsed.contains("ARRAY[1, 2]"), "{parsed}");
    }

    #[test]
    fn like_with_another_escape_goes_through_like_escape() {
        let parsed = parse_one("SELECT 1 FROM t WHERE a NOT LIKE $1 || '%' ESCAPE '/'");
        assert!(
            parsed.contains("a NOT LIKE like_escape($1 || '%', '/')"),
            "{parsed}"
        );
        let parsed = parse_one(r"SELECT 1 FROM t WHERE a LIKE 'x\_%' ESCAPE '\'");
        assert!(parsed.contains("ESCAPE"), "{parsed}");
    }

    #[test]
    fn result_columns_get_postgres_names_unless_taken() {
        let parsed =
            parse_one("SELECT count(*), sum(x)::BIGINT, 1, a.b, (c), max(y) AS m FROM t a");
        assert!(parsed.contains(r#"count(*) AS "count""#), "{parsed}");
        assert!(parsed.contains(r#"sum(x)::BIGINT AS "sum""#), "{parsed}");
        assert!(parsed.contains(r#"1 AS "?column?""#), "{parsed}");
        assert!(
            parsed.contains("a.b,") && parsed.contains(r#"(c) AS "c""#),
            "{parsed}"
        );
        assert!(parsed.contains("max(y) AS m"), "{parsed}");
        // Later items of a shared name are told apart by a marked suffix.
        let parsed = parse_one("SELECT 1, 2, count(*), count(x), a, a AS a, 1::int FROM t");
        assert!(
            parsed.contains("1 AS \"?column?\", 2 AS \"?column?\u{E000}1\""),
            "{parsed}"
        );
        assert!(
            parsed.contains("count(x) AS \"count\u{E000}3\""),
            "{parsed}"
        );
        assert!(parsed.contains("a, a AS \"a\u{E000}5\""), "{parsed}");
        assert!(parsed.contains(r#"1::INT AS "int4""#), "{parsed}");
        assert_eq!(sent_name("count\u{E000}3"), "count");
        let parsed = parse_one("SELECT *, count(*) OVER () FROM t");
        assert!(!parsed.contains(" AS "), "{parsed}");
    }

    #[test]
    fn system_relations_are_told_from_frames() {
        let relation = |sql: &str| {
            let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
                .unwrap()
                .remove(0);
            reads_frames(&statement)
        };
        assert!(!relation("SELECT 1"));
        assert!(!relation("SELECT * FROM pg_class"));
        assert!(!relation(
            "SELECT * FROM pg_catalog.pg_class JOIN information_schema.columns ON true"
        ));
        assert!(relation("SELECT * FROM pg_compat_test"));
        assert!(relation("SELECT * FROM h.b.pg_class"));
        // A CTE's name is not a frame; its body tells.
        assert!(!relation(
            "WITH x AS (SELECT oid FROM pg_type) SELECT * FROM x"
        ));
        assert!(relation("WITH x AS (SELECT * FROM clicks) SELECT * FROM x"));
        assert!(relation("INSERT INTO t VALUES (1)"));
    }
}
