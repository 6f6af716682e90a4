//! Partial aggregation for group keys that are constant within a batch.
//!
//! A frame's partition values are one constant per cell: the scan hands them
//! out as one-value dictionaries (`apiary_catalog::scan`). DataFusion's hash
//! aggregate groups a dictionary column through its row format, converting
//! and hashing every row, which made `GROUP BY <partition column>` several
//! times slower than the scan under it. [`ConstantKeyAggregates`] replaces a
//! partial `AggregateExec` that groups only by dictionary columns with a
//! [`ConstantKeyAggregateExec`], which looks each batch's key up once and
//! gives the accumulators the whole batch as one group. A batch whose keys
//! are not constant is grouped row by row, so the answer never depends on
//! where the keys came from.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{internal_err, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{
    aggregate_expressions, evaluate_many, AggregateExec, AggregateMode,
};
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, InputOrderMode,
    PhysicalExpr, PlanProperties,
};
use futures::StreamExt;

use crate::distributed::ExchangeExec;

/// The physical optimizer rule; it runs after the stages are distributed.
#[derive(Debug, Default)]
pub struct ConstantKeyAggregates;

impl PhysicalOptimizerRule for ConstantKeyAggregates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite(plan)
    }

    fn name(&self) -> &str {
        "apiary_constant_key_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with every suitable partial aggregate replaced. A distributed
/// stage is left as it is: its fragments travel as DataFusion's own
/// operators and are rewritten where they run.
pub fn rewrite(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_down(|node| {
        if node.downcast_ref::<ExchangeExec>().is_some() {
            return Ok(Transformed::new(node, false, TreeNodeRecursion::Jump));
        }
        match node.downcast_ref::<AggregateExec>() {
            Some(aggregate) if is_suitable(aggregate) => Ok(Transformed::yes(Arc::new(
                ConstantKeyAggregateExec::new(node.clone()),
            ))),
            _ => Ok(Transformed::no(node)),
        }
    })
    .map(|t| t.data)
}

/// A plain partial aggregate (no grouping sets, limit, ordering or dynamic
/// filter) grouping only by dictionary columns, with accumulators that work
/// on group indices.
fn is_suitable(aggregate: &AggregateExec) -> bool {
    let group_by = aggregate.group_expr();
    let input = aggregate.input_schema();
    *aggregate.mode() == AggregateMode::Partial
        && !group_by.is_empty()
        && !group_by.has_grouping_set()
        && aggregate.limit_options().is_none()
        && aggregate.dynamic_expressions_produced().is_empty()
        && *aggregate.input_order_mode() == InputOrderMode::Linear
        && group_by.expr().iter().all(|(expr, _)| {
            expr.downcast_ref::<Column>().is_some()
                && matches!(expr.data_type(&input), Ok(DataType::Dictionary(..)))
        })
        && aggregate
            .aggr_expr()
            .iter()
            .all(|a| a.groups_accumulator_supported())
}

/// A partial `AggregateExec` that groups batch by batch; see the module
/// documentation.
#[derive(Debug)]
pub struct ConstantKeyAggregateExec {
    /// The `AggregateExec` this stands for: its expressions, schema and
    /// properties are this operator's.
    aggregate: Arc<dyn ExecutionPlan>,
    metrics: ExecutionPlanMetricsSet,
}

impl ConstantKeyAggregateExec {
    fn new(aggregate: Arc<dyn ExecutionPlan>) -> Self {
        ConstantKeyAggregateExec {
            aggregate,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    fn aggregate(&self) -> Result<&AggregateExec> {
        match self.aggregate.downcast_ref::<AggregateExec>() {
            Some(aggregate) => Ok(aggregate),
            None => internal_err!("ConstantKeyAggregateExec wraps an AggregateExec"),
        }
    }
}

impl DisplayAs for ConstantKeyAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let Ok(aggregate) = self.aggregate() else {
            return write!(f, "ConstantKeyAggregateExec");
        };
        let keys: Vec<&str> = aggregate
            .group_expr()
            .expr()
            .iter()
            .map(|(_, name)| name.as_str())
            .collect();
        let aggregates: Vec<&str> = aggregate.aggr_expr().iter().map(|a| a.name()).collect();
        write!(
            f,
            "ConstantKeyAggregateExec: mode=Partial, gby=[{}], aggr=[{}]",
            keys.join(", "),
            aggregates.join(", ")
        )
    }
}

impl ExecutionPlan for ConstantKeyAggregateExec {
    fn name(&self) -> &str {
        "ConstantKeyAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.aggregate.input_distribution_requirements()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.aggregate.maintains_input_order()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.aggregate.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = replace_children_if_necessary(self.aggregate.clone(), children)?;
        Ok(Arc::new(ConstantKeyAggregateExec::new(aggregate)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let aggregate = self.aggregate()?;
        let mut groups = Groups::new(aggregate)?;
        let mut input = aggregate.input().execute(partition, context.clone())?;
        let reservation = MemoryConsumer::new(format!("ConstantKeyAggregateExec[{partition}]"))
            .register(context.memory_pool());
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let schema = self.schema();
        let output = futures::stream::once({
            let schema = schema.clone();
            async move {
                while let Some(batch) = input.next().await {
                    let batch = batch?;
                    let _timer = metrics.elapsed_compute().timer();
                    groups.add(&batch)?;
                    reservation.try_resize(groups.size())?;
                }
                let batch = groups.finish(&schema)?;
                metrics.record_output(batch.num_rows());
                Ok(batch)
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, output)))
    }
}

/// The groups seen so far and their accumulators.
struct Groups {
    keys: Vec<Arc<dyn PhysicalExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    converter: RowConverter,
    /// Each group's key in the row format, and its index.
    index: HashMap<Vec<u8>, usize>,
    /// Each group's key values, in group order.
    values: Vec<Vec<ScalarValue>>,
    /// The current batch's group index per row.
    rows: Vec<usize>,
}

impl Groups {
    fn new(aggregate: &AggregateExec) -> Result<Self> {
        let input = aggregate.input_schema();
        let keys: Vec<Arc<dyn PhysicalExpr>> = aggregate
            .group_expr()
            .expr()
            .iter()
            .map(|(expr, _)| expr.clone())
            .collect();
        let fields = keys
            .iter()
            .map(|key| key.data_type(&input).map(SortField::new))
            .collect::<Result<Vec<_>>>()?;
        Ok(Groups {
            keys,
            arguments: aggregate_expressions(aggregate.aggr_expr(), &AggregateMode::Partial, 0)?,
            filters: aggregate.filter_expr().to_vec(),
            accumulators: aggregate
                .aggr_expr()
                .iter()
                .map(|a| a.create_groups_accumulator())
                .collect::<Result<_>>()?,
            converter: RowConverter::new(fields)?,
            index: HashMap::new(),
            values: Vec::new(),
            rows: Vec::new(),
        })
    }

    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let keys = self
            .keys
            .iter()
            .map(|key| key.evaluate(batch)?.into_array(n))
            .collect::<Result<Vec<ArrayRef>>>()?;
        self.rows.clear();
        if keys.iter().all(is_constant) {
            let first: Vec<ArrayRef> = keys.iter().map(|k| k.slice(0, 1)).collect();
            let encoded = self.converter.convert_columns(&first)?;
            let group = self.group_of(encoded.row(0).as_ref(), &first, 0)?;
            self.rows.resize(n, group);
        } else {
            let encoded = self.converter.convert_columns(&keys)?;
            for row in 0..n {
                let group = self.group_of(encoded.row(row).as_ref(), &keys, row)?;
                self.rows.push(group);
            }
        }
        let arguments = evaluate_many(&self.arguments, batch)?;
        let groups = self.values.len();
        for ((accumulator, values), filter) in self
            .accumulators
            .iter_mut()
            .zip(&arguments)
            .zip(&self.filters)
        {
            let filter = match filter {
                Some(filter) => Some(filter.evaluate(batch)?.into_array(n)?),
                None => None,
            };
            let filter = filter.as_ref().map(|f| f.as_boolean());
            accumulator.update_batch(values, &self.rows, filter, groups)?;
        }
        Ok(())
    }

    /// The group of row `row` of `keys` (`encoded` in the row format),
    /// created when new.
    fn group_of(&mut self, encoded: &[u8], keys: &[ArrayRef], row: usize) -> Result<usize> {
        if let Some(&group) = self.index.get(encoded) {
            return Ok(group);
        }
        let group = self.values.len();
        self.values.push(
            keys.iter()
                .map(|k| ScalarValue::try_from_array(k, row))
                .collect::<Result<_>>()?,
        );
        self.index.insert(encoded.to_vec(), group);
        Ok(group)
    }

    /// The partial aggregate's output: the keys, then each accumulator's
    /// state, one row per group.
    fn finish(mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        if self.values.is_empty() {
            return Ok(RecordBatch::new_empty(schema.clone()));
        }
        let mut columns = Vec::with_capacity(schema.fields().len());
        for (k, field) in schema.fields().iter().take(self.keys.len()).enumerate() {
            let column = ScalarValue::iter_to_array(self.values.iter().map(|v| v[k].clone()))?;
            columns.push(cast(&column, field.data_type())?);
        }
        for accumulator in &mut self.accumulators {
            columns.extend(accumulator.state(EmitTo::All)?);
        }
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    }

    fn size(&self) -> usize {
        let accumulators: usize = self.accumulators.iter().map(|a| a.size()).sum();
        let encoded: usize = self.index.keys().map(|row| row.len()).sum();
        let per_group =
            std::mem::size_of::<Vec<u8>>() + self.keys.len() * std::mem::size_of::<ScalarValue>();
        accumulators
            + encoded
            + self.values.len() * per_group
            + self.rows.capacity() * std::mem::size_of::<usize>()
    }
}

/// A dictionary with one value and no null keys: the same key on every row.
fn is_constant(array: &ArrayRef) -> bool {
    array
        .as_any_dictionary_opt()
        .is_some_and(|d| d.values().len() == 1 && d.keys().null_count() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{DictionaryArray, Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema, UInt16Type};
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// `k` a dictionary, `v` an integer; `keys` per batch, `None` a null key.
    fn batch(
        schema: &SchemaRef,
        dictionary: &[Option<&str>],
        keys: &[u16],
        v: &[i64],
    ) -> RecordBatch {
        let values = StringArray::from(dictionary.to_vec());
        let keys = arrow::array::UInt16Array::from(keys.to_vec());
        let k = DictionaryArray::<UInt16Type>::try_new(keys, Arc::new(values)).unwrap();
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(k), Arc::new(Int64Array::from(v.to_vec()))],
        )
        .unwrap()
    }

    fn context(with_rule: bool) -> SessionContext {
        let mut state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(2))
            .with_default_features();
        if with_rule {
            state = state.with_physical_optimizer_rule(Arc::new(ConstantKeyAggregates));
        }
        let ctx = SessionContext::new_with_state(state.build());
        let dict = DataType::Dictionary(Box::new(DataType::UInt16), Box::new(DataType::Utf8));
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", dict, true),
            Field::new("v", DataType::Int64, true),
        ]));
        // Constant batches (one-value dictionaries, as the cell scan makes
        // them, a null partition value among them) and one mixed batch.
        let first = vec![
            batch(&schema, &[Some("us")], &[0, 0, 0], &[1, 2, 3]),
            batch(&schema, &[None], &[0, 0], &[10, 20]),
            batch(
                &schema,
                &[Some("de"), Some("us"), None],
                &[0, 1, 2, 1],
                &[5, 6, 7, 8],
            ),
        ];
        let second = vec![
            batch(&schema, &[Some("de")], &[0, 0], &[100, 200]),
            batch(&schema, &[Some("fr")], &[], &[]),
        ];
        let table = MemTable::try_new(schema, vec![first, second]).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
        ctx
    }

    async fn answer(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn groups_like_the_hash_aggregate() {
        let sql = "SELECT k, count(*), sum(v), avg(v), min(v), count(v) FILTER (WHERE v > 5), \
                   count(DISTINCT v) FROM t GROUP BY k ORDER BY k NULLS FIRST";
        let rewritten = context(true);
        let plan = rewritten
            .sql(&format!("EXPLAIN {sql}"))
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let plan = arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string();
        assert!(plan.contains("ConstantKeyAggregateExec"), "{plan}");
        let expected = answer(&context(false), sql).await;
        assert_eq!(answer(&rewritten, sql).await, expected);
        assert!(expected.contains("| us | 5 "), "{expected}");
    }

    #[tokio::test]
    async fn leaves_other_aggregates_alone() {
        let ctx = context(true);
        for sql in [
            "EXPLAIN SELECT v, count(*) FROM t GROUP BY v",
            "EXPLAIN SELECT k, count(*) FROM t GROUP BY ROLLUP (k)",
        ] {
            let plan = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let plan = arrow::util::pretty::pretty_format_batches(&plan)
                .unwrap()
                .to_string();
            assert!(!plan.contains("ConstantKeyAggregateExec"), "{sql}: {plan}");
        }
    }
}
