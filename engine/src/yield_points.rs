//! Yield points above joins, so that a cancel or `statement_timeout` stops
//! a join within a moment.
//!
//! DataFusion's operators yield to the runtime when their input does: its
//! scans spend a unit of the task's Tokio budget per batch
//! ([`datafusion::physical_plan::coop`]). A join can make a great many
//! batches out of one input batch — a cross join makes one per row of its
//! other side — so a plan with a join over a cheap input (a generated
//! series, a cached cell) could run for many seconds without yielding:
//! its cancel and timeout waited, and so did every other task on that
//! runtime thread. [`CooperativeJoins`] puts DataFusion's
//! [`CooperativeExec`] above every join, which spends budget per output
//! batch instead.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{
    CrossJoinExec, HashJoinExec, NestedLoopJoinExec, SortMergeJoinExec, SymmetricHashJoinExec,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::distributed::ExchangeExec;

/// The physical optimizer rule; see the module docs.
#[derive(Debug, Default)]
pub struct CooperativeJoins;

impl PhysicalOptimizerRule for CooperativeJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if node.downcast_ref::<ExchangeExec>().is_some() {
                return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
            }
            Ok(match is_join(node.as_ref()) {
                true => Transformed::yes(Arc::new(CooperativeExec::new(node)) as _),
                false => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "apiary_cooperative_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn is_join(plan: &dyn ExecutionPlan) -> bool {
    plan.downcast_ref::<CrossJoinExec>().is_some()
        || plan.downcast_ref::<NestedLoopJoinExec>().is_some()
        || plan.downcast_ref::<HashJoinExec>().is_some()
        || plan.downcast_ref::<SortMergeJoinExec>().is_some()
        || plan.downcast_ref::<SymmetricHashJoinExec>().is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    #[tokio::test]
    async fn every_join_gets_a_yield_point_above_it() {
        let ctx = SessionContext::new();
        let plan = ctx
            .sql("SELECT count(*) FROM generate_series(1, 10) a CROSS JOIN generate_series(1, 10) b JOIN generate_series(1, 5) c ON a.value = c.value")
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let plan = CooperativeJoins
            .optimize(plan, &ConfigOptions::default())
            .unwrap();
        let text = displayable(plan.as_ref()).indent(false).to_string();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if line.contains("JoinExec") {
                assert_eq!(lines[i - 1], "CooperativeExec", "{text}");
            }
        }
        assert_eq!(text.matches("JoinExec").count(), 2, "{text}");
    }
}
