//! The table and column a result column comes straight from.
//!
//! Postgres's RowDescription names, for each result column that is a
//! plain column of a table, that table's OID and the column's attribute
//! number; DBeaver ties a result set to its table by them (to edit rows,
//! to show keys). [`origins`] follows each output column of a logical plan
//! down through projections, filters, sorts, limits, aliases and joins to
//! the table scan it reads; anything computed has no origin, as in
//! Postgres.

use datafusion::common::TableReference;
use datafusion::logical_expr::{Distinct, Expr, JoinType, LogicalPlan};

/// Field metadata with the table OID a result column comes from.
pub const TABLE_OID_KEY: &str = "apiary.table_oid";
/// Field metadata with the column's attribute number in that table.
pub const ATTNUM_KEY: &str = "apiary.attnum";

/// A scanned table and the attribute number (from 1) of one of its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Origin {
    pub table: TableReference,
    pub attnum: i16,
}

/// The origin of each of `plan`'s output columns, if it has one.
pub fn origins(plan: &LogicalPlan) -> Vec<Option<Origin>> {
    (0..plan.schema().fields().len())
        .map(|index| origin(plan, index))
        .collect()
}

fn origin(plan: &LogicalPlan, index: usize) -> Option<Origin> {
    match plan {
        LogicalPlan::Projection(projection) => {
            let Expr::Column(column) = unaliased(projection.expr.get(index)?) else {
                return None;
            };
            let input = projection.input.schema().index_of_column(column).ok()?;
            origin(&projection.input, input)
        }
        LogicalPlan::TableScan(scan) => {
            let column = match &scan.projection {
                Some(projection) => *projection.get(index)?,
                None => index,
            };
            Some(Origin {
                table: scan.table_name.clone(),
                attnum: i16::try_from(column + 1).ok()?,
            })
        }
        LogicalPlan::Filter(filter) => origin(&filter.input, index),
        LogicalPlan::Sort(sort) => origin(&sort.input, index),
        LogicalPlan::Limit(limit) => origin(&limit.input, index),
        LogicalPlan::SubqueryAlias(alias) => origin(&alias.input, index),
        LogicalPlan::Distinct(Distinct::All(input)) => origin(input, index),
        LogicalPlan::Join(join) => match join.join_type {
            JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => {
                origin(&join.left, index)
            }
            JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => {
                origin(&join.right, index)
            }
            _ => {
                let left = join.left.schema().fields().len();
                match index < left {
                    true => origin(&join.left, index),
                    false => origin(&join.right, index - left),
                }
            }
        },
        _ => None,
    }
}

fn unaliased(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => unaliased(&alias.expr),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        for (name, columns) in [("cities", ["id", "name"]), ("people", ["city", "who"])] {
            let schema = Arc::new(Schema::new(
                columns
                    .iter()
                    .map(|c| Field::new(*c, DataType::Utf8, true))
                    .collect::<Vec<_>>(),
            ));
            let table = MemTable::try_new(schema, vec![vec![]]).unwrap();
            ctx.register_table(name, Arc::new(table)).unwrap();
        }
        ctx.state().create_logical_plan(sql).await.unwrap()
    }

    fn described(plan: &LogicalPlan) -> Vec<Option<(String, i16)>> {
        origins(plan)
            .into_iter()
            .map(|o| o.map(|o| (o.table.table().to_string(), o.attnum)))
            .collect()
    }

    #[tokio::test]
    async fn plain_columns_name_their_table_and_computed_ones_do_not() {
        let p = plan(
            "SELECT name AS n, id, upper(name), 1 FROM cities WHERE id > '1' ORDER BY 1 LIMIT 5",
        )
        .await;
        assert_eq!(
            described(&p),
            vec![
                Some(("cities".into(), 2)),
                Some(("cities".into(), 1)),
                None,
                None
            ]
        );
        let p = plan("SELECT p.who, c.name FROM cities c JOIN people p ON p.city = c.id").await;
        assert_eq!(
            described(&p),
            vec![Some(("people".into(), 2)), Some(("cities".into(), 2))]
        );
        let p = plan("SELECT * FROM (SELECT name FROM cities) s").await;
        assert_eq!(described(&p), vec![Some(("cities".into(), 2))]);
        let p = plan("SELECT count(*) FROM cities").await;
        assert_eq!(described(&p), vec![None]);
    }
}
