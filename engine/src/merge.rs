//! `MERGE INTO frame [AS t] USING source [AS s] ON … WHEN …`, PostgreSQL's
//! syntax (plus `WHEN NOT MATCHED BY SOURCE`, as Delta's engines have it),
//! run by delta-rs's merge in one commit. The source is planned here like
//! any query, so it may be a frame, an earlier version of one, a subquery
//! or `VALUES`.
//!
//! Expressions reach delta-rs as SQL text. Their identifiers are folded as
//! PostgreSQL folds them (unquoted ones to lower case) and then quoted, so
//! delta-rs resolves exactly the columns PostgreSQL would.

use std::ops::ControlFlow;

use apiary_catalog::merge::{MergeAction, MergeClause, MergeSpec, MergeWhen};
use datafusion::prelude::DataFrame;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    visit_expressions_mut, AssignmentTarget, Expr, Merge, MergeAction as SqlAction,
    MergeClauseKind, MergeInsertKind, ObjectName, Statement, TableFactor,
};
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;

use crate::ddl::{parts, resolve};
use crate::error::{EngineError, Result};
use crate::maintenance::outside_a_block;
use crate::session::{Outcome, Session};

/// Runs the merge; its tag is `MERGE n`, n the rows inserted, updated or
/// deleted.
pub(crate) async fn run(session: &Session, merge: &Merge) -> Result<Outcome> {
    outside_a_block(session, "MERGE")?;
    let TableFactor::Table {
        name: target,
        alias: target_alias,
        args: None,
        ..
    } = &merge.table
    else {
        return Err(invalid(format!(
            "MERGE INTO {}: the target must be a frame",
            merge.table
        )));
    };
    let (cur_hive, cur_box) = session.current();
    let (hive, boxname, frame) = resolve(target, &cur_hive, &cur_box)?;
    let (name, def) = session.catalog().frame(&hive, &boxname, &frame).await?;
    let target_alias = match target_alias {
        Some(alias) => folded(&alias.name),
        None => name.frame.clone(),
    };
    let (source, source_alias) = source(session, &merge.source).await?;

    let column_of = |target: &ObjectName| -> Result<String> {
        let column = parts(target)?
            .pop()
            .map(|c| c.to_ascii_lowercase())
            .unwrap_or_default();
        match def.columns.iter().any(|c| c.name == column) {
            true => Ok(column),
            false => Err(invalid(format!(
                "column {column:?} of {name} does not exist; its columns are {}",
                def.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    };
    let mut clauses = Vec::with_capacity(merge.clauses.len());
    for clause in &merge.clauses {
        let when = match clause.clause_kind {
            MergeClauseKind::Matched => MergeWhen::Matched,
            MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget => {
                MergeWhen::NotMatched
            }
            MergeClauseKind::NotMatchedBySource => MergeWhen::NotMatchedBySource,
        };
        let action = match &clause.action {
            SqlAction::Delete { .. } => MergeAction::Delete,
            SqlAction::Update(update) => {
                if update.update_predicate.is_some() || update.delete_predicate.is_some() {
                    return Err(invalid(
                        "UPDATE … WHERE in a MERGE clause is Oracle's syntax; write the \
                         condition as WHEN MATCHED AND condition THEN UPDATE"
                            .into(),
                    ));
                }
                let mut set = Vec::with_capacity(update.assignments.len());
                for assignment in &update.assignments {
                    let AssignmentTarget::ColumnName(column) = &assignment.target else {
                        return Err(invalid(
                            "UPDATE SET (a, b) = … is not supported in MERGE; set each column"
                                .into(),
                        ));
                    };
                    let column = column_of(column)?;
                    if def.partition_by.contains(&column) {
                        return Err(invalid(format!(
                            "{column} is a partition column and cannot be updated; DELETE the \
                             rows and INSERT them with the new value"
                        )));
                    }
                    set.push((column, sql(&assignment.value)));
                }
                MergeAction::Update(set)
            }
            SqlAction::Insert(insert) => {
                if insert.insert_predicate.is_some() {
                    return Err(invalid(
                        "INSERT … WHERE in a MERGE clause is Oracle's syntax; write the \
                         condition as WHEN NOT MATCHED AND condition THEN INSERT"
                            .into(),
                    ));
                }
                let columns = match insert.columns.is_empty() {
                    true => def.columns.iter().map(|c| c.name.clone()).collect(),
                    false => insert
                        .columns
                        .iter()
                        .map(&column_of)
                        .collect::<Result<Vec<_>>>()?,
                };
                let values: Vec<String> = match &insert.kind {
                    MergeInsertKind::Values(values) => match values.rows.as_slice() {
                        [row] => row.content.iter().map(sql).collect(),
                        _ => {
                            return Err(invalid(
                                "INSERT in a MERGE clause takes one row of VALUES".into(),
                            ))
                        }
                    },
                    MergeInsertKind::Row => {
                        return Err(invalid(
                            "INSERT ROW is not supported in MERGE; list the VALUES".into(),
                        ))
                    }
                };
                if values.len() != columns.len() {
                    return Err(invalid(format!(
                        "INSERT in a MERGE clause has {} values for {} columns",
                        values.len(),
                        columns.len()
                    )));
                }
                MergeAction::Insert(columns.into_iter().zip(values).collect())
            }
        };
        clauses.push(MergeClause {
            when,
            condition: clause.predicate.as_ref().map(sql),
            action,
        });
    }
    let spec = MergeSpec {
        on: sql(&merge.on),
        target_alias,
        source_alias,
        clauses,
    };
    let merged = session
        .catalog()
        .frames()
        .merge(&name, source, &spec)
        .await?;
    Ok(Outcome::Done {
        command: "MERGE".into(),
        rows: Some(merged.total()),
    })
}

/// The source's rows and the name its columns are qualified with.
async fn source(session: &Session, source: &TableFactor) -> Result<(DataFrame, String)> {
    let (query, alias) = match source {
        TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } => {
            let query = Parser::parse_sql(&PostgreSqlDialect {}, &format!("SELECT * FROM {name}"))
                .map_err(|e| EngineError::Sql(e.to_string()))?
                .remove(0);
            let implied = parts(name)?
                .pop()
                .map(|last| last.to_ascii_lowercase())
                .unwrap_or_default();
            (
                query,
                alias
                    .clone()
                    .map(|a| (folded(&a.name), a.columns))
                    .unwrap_or((implied, vec![])),
            )
        }
        TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias),
            ..
        } => (
            Statement::Query(subquery.clone()),
            (folded(&alias.name), alias.columns.clone()),
        ),
        TableFactor::Derived { alias: None, .. } => {
            return Err(EngineError::DataFusion(Box::new(
                crate::postgres::sql_error(
                    "42601",
                    "a subquery in MERGE … USING must have an alias: USING (…) AS s",
                ),
            )))
        }
        other => {
            return Err(invalid(format!(
                "MERGE … USING {other}: the source must be a frame, a subquery or VALUES"
            )))
        }
    };
    let plan = session
        .context()
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(query)))
        .await?;
    let mut frame = session.context().execute_logical_plan(plan).await?;
    let (alias, columns) = alias;
    if !columns.is_empty() {
        let existing: Vec<String> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        if columns.len() > existing.len() {
            return Err(invalid(format!(
                "{alias} has {} columns but {} names were given",
                existing.len(),
                columns.len()
            )));
        }
        for (old, new) in existing.iter().zip(&columns) {
            frame = frame.with_column_renamed(old, &folded(&new.name))?;
        }
    }
    Ok((frame, alias))
}

/// An expression as SQL text with every identifier folded and quoted.
fn sql(expr: &Expr) -> String {
    let mut expr = expr.clone();
    let _ = visit_expressions_mut(&mut expr, |e| {
        match e {
            Expr::Identifier(ident) => quote(ident),
            Expr::CompoundIdentifier(idents) => idents.iter_mut().for_each(quote),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    expr.to_string()
}

fn quote(ident: &mut datafusion::sql::sqlparser::ast::Ident) {
    ident.value = folded(ident);
    ident.quote_style = Some('"');
}

/// An identifier as PostgreSQL reads it: unquoted ones fold to lower case.
fn folded(ident: &datafusion::sql::sqlparser::ast::Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn invalid(message: String) -> EngineError {
    EngineError::InvalidArgument(message)
}
