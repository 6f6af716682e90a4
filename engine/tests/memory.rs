//! Bounded memory: queries larger than a node's memory budget spill to its
//! scratch directory instead of failing.

use apiary_engine::{Node, NodeConfig};
use arrow::array::{Array, Int64Array};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_by_larger_than_the_bee_budget_spills_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::new("memory", Some(dir.path().to_str().unwrap())).unwrap();
    config.bee_memory_bytes = 64 << 20;
    config.scratch_dir = dir.path().join("scratch");
    let node = Node::start(config).await.unwrap();
    let session = node.session();
    session
        .sql("CREATE TABLE t AS SELECT i AS k, i % 7 AS v FROM generate_series(1, 5000000) AS s(i)")
        .await
        .unwrap();
    // 5 M distinct keys need far more than the node's 2 × 64 MiB for their
    // hash table; the aggregation has to spill.
    let result = session
        .sql("SELECT count(*) AS groups, sum(c)::bigint AS total, max(c) AS most FROM (SELECT k, count(*) AS c FROM t GROUP BY k)")
        .await
        .unwrap();
    let batch = &result.batches[0];
    let column = |i: usize| {
        batch
            .column(i)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .value(0)
    };
    assert_eq!((column(0), column(1), column(2)), (5_000_000, 5_000_000, 1));

    // The same query under a budget too small for even a sort's first batch
    // fails with a clear error rather than taking memory it was not given.
    let mut tiny = NodeConfig::new("memory", Some(dir.path().to_str().unwrap())).unwrap();
    tiny.bee_memory_bytes = 1 << 20;
    tiny.scratch_dir = dir.path().join("scratch-tiny");
    tiny.distribute.min_cells = usize::MAX;
    let tiny = Node::open(tiny).await.unwrap();
    let err = tiny
        .session()
        .sql("SELECT k, count(*) AS c FROM t GROUP BY k ORDER BY c DESC, k LIMIT 3")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Resources exhausted"), "{err}");
    node.shutdown().await;
    assert!(!dir.path().join("scratch").exists());
}
