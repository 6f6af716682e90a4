//! `MERGE INTO frame USING source ON …`: delta-rs's merge, which joins the
//! source with the frame, rewrites the cells that hold matched rows and
//! commits inserts, updates and deletes as one Delta version. The engine
//! turns the SQL statement into a [`MergeSpec`]; expressions travel as SQL
//! text over the two aliases, which delta-rs plans against the joined schema.

use datafusion::common::Column;
use datafusion::prelude::DataFrame;
use deltalake::operations::merge::MergeBuilder;
use deltalake::DeltaTableError;

use crate::error::{Error, Result};
use crate::frame::{FrameName, Frames};
use crate::table::Tag;

/// A merge: the join condition, the aliases its expressions use, and the
/// clauses in the order they are tried (the first whose condition holds acts).
#[derive(Debug, Clone, PartialEq)]
pub struct MergeSpec {
    pub on: String,
    pub target_alias: String,
    pub source_alias: String,
    pub clauses: Vec<MergeClause>,
}

/// `WHEN [NOT] MATCHED [BY SOURCE] [AND condition] THEN action`.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeClause {
    pub when: MergeWhen,
    pub condition: Option<String>,
    pub action: MergeAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MergeWhen {
    /// A frame row the source matched.
    Matched,
    /// A source row no frame row matched.
    NotMatched,
    /// A frame row no source row matched.
    NotMatchedBySource,
}

/// What a clause does: `(column, expression)` pairs for an update or insert.
#[derive(Debug, Clone, PartialEq)]
pub enum MergeAction {
    Update(Vec<(String, String)>),
    Insert(Vec<(String, String)>),
    Delete,
}

/// Rows a merge changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Merged {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
}

impl Merged {
    /// PostgreSQL's `MERGE n`: every row inserted, updated or deleted.
    pub fn total(&self) -> u64 {
        self.inserted + self.updated + self.deleted
    }
}

impl Frames {
    /// Merges `source` into the frame in one commit. A clause that does not
    /// fit its `WHEN` (an insert for matched rows, …) is refused before
    /// anything is read.
    pub async fn merge(
        &self,
        name: &FrameName,
        source: DataFrame,
        spec: &MergeSpec,
    ) -> Result<Merged> {
        self.rewriting(name, self.merge_now(name, source, spec))
            .await?
    }

    async fn merge_now(
        &self,
        name: &FrameName,
        source: DataFrame,
        spec: &MergeSpec,
    ) -> Result<Merged> {
        let table = self.open(name).await?;
        let tag = Tag::new(&table);
        let mut op = table
            .merge(source, spec.on.as_str())
            .with_target_alias(&spec.target_alias)
            .with_source_alias(&spec.source_alias)
            .with_commit_properties(tag.properties());
        for clause in &spec.clauses {
            op = add_clause(op, clause).map_err(|e| Error::delta(name.to_string(), e))?;
        }
        match op.await {
            Ok((_, metrics)) => Ok(Merged {
                inserted: metrics.num_target_rows_inserted as u64,
                updated: metrics.num_target_rows_updated as u64,
                deleted: metrics.num_target_rows_deleted as u64,
            }),
            Err(e) => {
                let counts = tag
                    .confirm_counts(
                        name,
                        e,
                        &[
                            "num_target_rows_inserted",
                            "num_target_rows_updated",
                            "num_target_rows_deleted",
                        ],
                    )
                    .await
                    .map_err(|e| classify(name, e))?;
                Ok(Merged {
                    inserted: counts[0],
                    updated: counts[1],
                    deleted: counts[2],
                })
            }
        }
    }
}

/// delta-rs's error for a merge that committed nothing, as the error
/// PostgreSQL gives for the same mistake (so the wire carries its SQLSTATE).
fn classify(name: &FrameName, e: Error) -> Error {
    let Error::Delta { source, .. } = &e else {
        return e;
    };
    let text = source.to_string();
    let detail = text
        .rsplit_once("error: ")
        .map_or(text.as_str(), |(_, last)| last)
        .trim();
    if text.contains("failed validation check") {
        Error::mismatch(
            "a NOT NULL or partition column",
            format!(
                "null value violates the not-null constraint: the merge would write NULL into a \
                 column of {name} that is declared NOT NULL or partitions the frame; nothing was \
                 changed"
            ),
        )
    } else if text.contains("Cast error") {
        Error::mismatch(
            "a merged value",
            format!("{detail}; cast the source expression to the column's type"),
        )
    } else if let Some((_, field)) = text.split_once("No field named ") {
        let field = field.split_whitespace().next().unwrap_or("");
        Error::NotFound {
            kind: crate::error::ObjectKind::Column,
            name: field.trim_end_matches('.').to_string(),
            hint: "; qualify columns with the target's or the source's name or alias".into(),
        }
    } else if text.contains("multiple source rows") {
        Error::Query(Box::new(datafusion::error::DataFusionError::Execution(
            format!(
                "MERGE command cannot affect row a second time: {detail}; ensure that not more \
                 than one source row matches any one target row"
            ),
        )))
    } else {
        e
    }
}

fn add_clause(
    op: MergeBuilder,
    clause: &MergeClause,
) -> std::result::Result<MergeBuilder, DeltaTableError> {
    let condition = clause.condition.clone();
    let column = |name: &String| Column::new_unqualified(name);
    match (clause.when, &clause.action) {
        (MergeWhen::Matched, MergeAction::Update(set)) => op.when_matched_update(|mut b| {
            if let Some(c) = condition {
                b = b.predicate(c);
            }
            set.iter()
                .fold(b, |b, (col, value)| b.update(column(col), value.as_str()))
        }),
        (MergeWhen::NotMatchedBySource, MergeAction::Update(set)) => op
            .when_not_matched_by_source_update(|mut b| {
                if let Some(c) = condition {
                    b = b.predicate(c);
                }
                set.iter()
                    .fold(b, |b, (col, value)| b.update(column(col), value.as_str()))
            }),
        // PostgreSQL refuses a frame row that several source rows match,
        // for DELETE too (21000). delta-rs exempts an unconditional DELETE,
        // as Delta does, and checks one with a condition: give it `true`.
        (MergeWhen::Matched, MergeAction::Delete) => {
            op.when_matched_delete(|b| b.predicate(condition.unwrap_or_else(|| "true".into())))
        }
        (MergeWhen::NotMatchedBySource, MergeAction::Delete) => op
            .when_not_matched_by_source_delete(|b| match condition {
                Some(c) => b.predicate(c),
                None => b,
            }),
        (MergeWhen::NotMatched, MergeAction::Insert(values)) => {
            op.when_not_matched_insert(|mut b| {
                if let Some(c) = condition {
                    b = b.predicate(c);
                }
                values
                    .iter()
                    .fold(b, |b, (col, value)| b.set(column(col), value.as_str()))
            })
        }
        (when, action) => Err(DeltaTableError::Generic(format!(
            "a WHEN {} clause cannot {}",
            match when {
                MergeWhen::Matched => "MATCHED",
                MergeWhen::NotMatched => "NOT MATCHED",
                MergeWhen::NotMatchedBySource => "NOT MATCHED BY SOURCE",
            },
            match action {
                MergeAction::Update(_) => "UPDATE",
                MergeAction::Insert(_) => "INSERT",
                MergeAction::Delete => "DELETE",
            }
        ))),
    }
}
