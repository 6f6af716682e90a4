//! Cutting scan stages out of a physical plan and assigning their cells.
//!
//! [`Distribute`] is a DataFusion physical optimizer rule that runs last. It
//! looks for *scan stages* — maximal chains of partition-local operators
//! (filter, projection, partial aggregate, partition-preserving sort, local
//! limit) over one Parquet cell scan — and, when more than one node is alive
//! and the stage has enough cells, regroups the cells into one file group per
//! task, assigns each task to a node, and puts an [`ExchangeExec`] in the
//! stage's place. Partition `i` of the exchange is exactly partition `i` of
//! the regrouped stage, so everything above it plans and runs unchanged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileScanConfigBuilder};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result as DfResult;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::LocalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::ExecutionPlan;

use apiary_catalog::scan::balance;

use super::exchange::{ExchangeExec, PlannedTask};
use super::Distributor;
use crate::cache::cell_hash;

/// The physical optimizer rule that distributes scan stages.
#[derive(Debug)]
pub struct Distribute {
    distributor: Arc<Distributor>,
}

impl Distribute {
    pub fn new(distributor: Arc<Distributor>) -> Self {
        Distribute { distributor }
    }
}

impl PhysicalOptimizerRule for Distribute {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let query_id = uuid::Uuid::new_v4().simple().to_string();
        let mut stages = 0;
        rewrite(&self.distributor, plan, &query_id, &mut stages)
    }

    fn name(&self) -> &str {
        "apiary_distribute"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

fn rewrite(
    distributor: &Arc<Distributor>,
    plan: Arc<dyn ExecutionPlan>,
    query_id: &str,
    stages: &mut usize,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    if let Some(scan) = stage_scan(&plan) {
        if let Some(exchange) = plan_stage(distributor, &plan, &scan, query_id, *stages)? {
            *stages += 1;
            return Ok(exchange);
        }
        return Ok(plan);
    }
    let children: Vec<Arc<dyn ExecutionPlan>> = plan.children().into_iter().cloned().collect();
    if children.is_empty() {
        return Ok(plan);
    }
    let children = children
        .into_iter()
        .map(|child| rewrite(distributor, child, query_id, stages))
        .collect::<DfResult<Vec<_>>>()?;
    replace_children_if_necessary(plan, children)
}

/// Operators that compute each output partition from the same input
/// partition alone.
fn is_partition_local(plan: &dyn ExecutionPlan) -> bool {
    if let Some(aggregate) = plan.downcast_ref::<AggregateExec>() {
        return *aggregate.mode() == AggregateMode::Partial;
    }
    if let Some(sort) = plan.downcast_ref::<SortExec>() {
        return sort.preserve_partitioning();
    }
    plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<ProjectionExec>().is_some()
        || plan.downcast_ref::<LocalLimitExec>().is_some()
        || plan.downcast_ref::<CooperativeExec>().is_some()
}

/// The Parquet cell scan at the bottom of `plan` when `plan` is a scan
/// stage: a chain of partition-local operators ending in that scan.
fn stage_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<FileScanConfig> {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        let config = scan.data_source().downcast_ref::<FileScanConfig>()?;
        return (config.file_source().file_type() == "parquet").then(|| config.clone());
    }
    if !is_partition_local(plan.as_ref()) {
        return None;
    }
    match plan.children().as_slice() {
        [child] => stage_scan(child),
        _ => None,
    }
}

/// `stage` with its scan reading `groups` (one output partition per group).
fn with_groups(
    stage: &Arc<dyn ExecutionPlan>,
    scan: &FileScanConfig,
    groups: Vec<FileGroup>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    if stage.downcast_ref::<DataSourceExec>().is_some() {
        let config = FileScanConfigBuilder::from(scan.clone())
            .with_file_groups(groups)
            .build();
        return Ok(DataSourceExec::from_data_source(config));
    }
    let child = stage.children()[0].clone();
    let child = with_groups(&child, scan, groups)?;
    replace_children_if_necessary(stage.clone(), vec![child])
}

/// The scan's files, each once and whole: DataFusion may have split large
/// files into byte ranges across its partitions, but a task's unit is a cell.
fn whole_cells(scan: &FileScanConfig) -> Vec<PartitionedFile> {
    let mut seen = std::collections::HashSet::new();
    scan.file_groups
        .iter()
        .flat_map(|g| g.iter())
        .filter(|f| seen.insert(f.object_meta.location.clone()))
        .map(|f| {
            let mut file = f.clone();
            file.range = None;
            file
        })
        .collect()
}

fn files_bytes(files: &[PartitionedFile]) -> Vec<u64> {
    files.iter().map(|f| f.object_meta.size).collect()
}

/// How many tasks a stage becomes: at least one per slot (bee) of the
/// swarm, and more when that would give a task more than half a bee's
/// memory budget of Parquet bytes to read (decoded data is larger), so every
/// task fits the bee that runs it ("leafcutter" sizing). Never more tasks
/// than cells.
fn task_count(cell_bytes: &[u64], slots: usize, bee_budget: u64) -> usize {
    let total: u64 = cell_bytes.iter().sum();
    let by_budget = total.div_ceil((bee_budget / 2).max(1)) as usize;
    slots.max(by_budget).min(cell_bytes.len()).max(1)
}

/// Gives each group a node. Slots are taken in order (coolest node first,
/// one slot per node per round), so every node gets work before any gets
/// more; each slot takes the unassigned group it caches the most bytes of,
/// and among groups it caches nothing of, the one other nodes cache least
/// (leaving those for them).
fn assign(
    groups: &[FileGroup],
    slots: &[String],
    cached: &HashMap<String, HashSet<u64>>,
) -> Vec<String> {
    let cached_bytes = |node: &str, group: &FileGroup| -> u64 {
        cached.get(node).map_or(0, |set| {
            group
                .iter()
                .filter(|f| set.contains(&cell_hash(f.object_meta.location.as_ref())))
                .map(|f| f.object_meta.size)
                .sum()
        })
    };
    let mut assignees: Vec<Option<String>> = vec![None; groups.len()];
    for round in 0..groups.len() {
        let node = &slots[round % slots.len().max(1)];
        let best = (0..groups.len())
            .filter(|g| assignees[*g].is_none())
            .max_by_key(|g| {
                let here = cached_bytes(node, &groups[*g]);
                let elsewhere = cached
                    .keys()
                    .filter(|other| *other != node)
                    .map(|other| cached_bytes(other, &groups[*g]))
                    .max()
                    .unwrap_or(0);
                // Ties go to the lowest group index.
                (here, std::cmp::Reverse(elsewhere), std::cmp::Reverse(*g))
            });
        if let Some(g) = best {
            assignees[g] = Some(node.clone());
        }
    }
    assignees.into_iter().flatten().collect()
}

/// Decides whether and how to distribute one stage; `None` runs it locally.
fn plan_stage(
    distributor: &Arc<Distributor>,
    stage: &Arc<dyn ExecutionPlan>,
    scan: &FileScanConfig,
    query_id: &str,
    stage_index: usize,
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    let files = whole_cells(scan);
    if files.len() < distributor.settings.min_cells {
        return Ok(None);
    }
    let slots = distributor.slots(Instant::now());
    let nodes: std::collections::BTreeSet<&str> = slots.iter().map(|s| s.as_str()).collect();
    if nodes.len() < 2 {
        return Ok(None);
    }
    let tasks = task_count(
        &files_bytes(&files),
        slots.len(),
        distributor.smallest_bee_budget(Instant::now()),
    );
    let groups = balance(files, tasks);
    let regrouped = with_groups(stage, scan, groups.clone())?;
    let assignees = assign(&groups, &slots, &distributor.cached_cells(Instant::now()));
    let mut tasks = Vec::with_capacity(groups.len());
    for ((index, group), node_id) in groups.into_iter().enumerate().zip(assignees) {
        let cells = group.len();
        let paths: Vec<String> = group
            .iter()
            .map(|f| f.object_meta.location.to_string())
            .collect();
        tracing::debug!(
            task = index,
            files = ?group.iter().map(|f| (f.object_meta.location.as_ref(), f.range.as_ref().map(|r| (r.start, r.end)))).collect::<Vec<_>>(),
            "planned task"
        );
        let bytes = group.iter().map(|f| f.object_meta.size).sum();
        let fragment = with_groups(stage, scan, vec![group])?;
        let Some(encoded) = distributor.encode(fragment.clone()) else {
            return Ok(None);
        };
        tasks.push(PlannedTask {
            index,
            node_id,
            files: paths,
            // Run here, the fragment gets the same rewrite a worker gives it.
            plan: crate::constant_keys::rewrite(fragment)?,
            fragment: base64::engine::general_purpose::STANDARD.encode(encoded),
            cells,
            bytes,
        });
    }
    Ok(Some(Arc::new(ExchangeExec::new(
        regrouped,
        tasks,
        query_id.to_string(),
        stage_index,
        distributor.clone(),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_cut_to_fit_the_smallest_bee() {
        let cells = vec![40 << 20; 16]; // 16 cells of 40 MiB
                                        // Plenty of memory: one task per slot.
        assert_eq!(task_count(&cells, 4, 8 << 30), 4);
        // 64 MiB bees read at most 32 MiB each: one cell per task.
        assert_eq!(task_count(&cells, 4, 64 << 20), 16);
        // Never more tasks than cells.
        assert_eq!(task_count(&cells[..3], 8, 64 << 20), 3);
    }

    #[test]
    fn groups_go_to_the_nodes_that_cache_their_cells() {
        let group = |name: &str| FileGroup::new(vec![PartitionedFile::new(name.to_string(), 10)]);
        let groups = [group("a"), group("b"), group("c"), group("d")];
        let slots: Vec<String> = ["n1", "n2", "n1", "n2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cached = HashMap::from([
            (
                "n2".to_string(),
                HashSet::from([cell_hash("a"), cell_hash("c")]),
            ),
            ("n1".to_string(), HashSet::from([cell_hash("b")])),
        ]);
        assert_eq!(assign(&groups, &slots, &cached), ["n2", "n1", "n2", "n1"]);
        // Nothing cached: slot order.
        assert_eq!(
            assign(&groups, &slots, &HashMap::new()),
            ["n1", "n2", "n1", "n2"]
        );
    }
}
