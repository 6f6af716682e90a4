//! Shared set-up for the engine's integration tests: the storage roots every
//! suite runs against (a local directory and the S3 test server) and small
//! data helpers.
//!
//! The S3 root needs the server that `tests/run.sh` starts (SeaweedFS) and
//! its settings in `AWS_ENDPOINT_URL` / `APIARY_TEST_S3_BUCKET`. Without
//! them the tests fail, unless `APIARY_TEST_SKIP_S3=1` says to run only the
//! local-directory half.

#![allow(dead_code)]

use std::sync::Arc;

use apiary_engine::{Node, NodeConfig, Session};
use arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};

/// A storage root for one test, removed (locally) when dropped.
pub struct TestRoot {
    pub label: &'static str,
    pub uri: String,
    _dir: Option<tempfile::TempDir>,
}

/// The roots each test runs against.
pub fn roots() -> Vec<TestRoot> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut roots = vec![TestRoot {
        label: "local",
        uri: dir.path().join("root").to_string_lossy().into_owned(),
        _dir: Some(dir),
    }];
    match (
        std::env::var("AWS_ENDPOINT_URL"),
        std::env::var("APIARY_TEST_S3_BUCKET"),
    ) {
        (Ok(_), Ok(bucket)) => roots.push(TestRoot {
            label: "s3",
            uri: format!("s3://{bucket}/{}", uuid::Uuid::new_v4().simple()),
            _dir: None,
        }),
        _ if std::env::var("APIARY_TEST_SKIP_S3").is_ok_and(|v| v == "1") => {}
        _ => panic!(
            "the S3 test server is not configured: run the tests with tests/run.sh \
             (or set APIARY_TEST_SKIP_S3=1 to test only local directories)"
        ),
    }
    roots
}

pub async fn start(root: &TestRoot) -> (Arc<Node>, Session) {
    let config = NodeConfig::new("test", Some(&root.uri)).expect("config");
    let node = Arc::new(Node::start(config).await.expect("node starts"));
    let session = node.session();
    (node, session)
}

pub const COUNTRIES: [&str; 8] = ["us", "uk", "de", "fr", "jp", "br", "au", "ca"];
pub const PAGES: [&str; 6] = ["/home", "/products", "/about", "/pricing", "/docs", "/blog"];

/// The tutorial's clicks schema, as `create_frame` columns.
pub fn clicks_columns() -> Vec<(String, String)> {
    [
        ("event_id", "int64"),
        ("user_id", "utf8"),
        ("page", "utf8"),
        ("duration_ms", "int64"),
        ("country", "utf8"),
    ]
    .iter()
    .map(|(n, t)| (n.to_string(), t.to_string()))
    .collect()
}

/// `n` deterministic tutorial-shaped rows starting at `first_id`.
pub fn clicks(first_id: i64, n: usize) -> RecordBatch {
    let ids: Vec<i64> = (first_id..first_id + n as i64).collect();
    let users: Vec<String> = ids.iter().map(|i| format!("user_{}", i % 500)).collect();
    let pages: Vec<&str> = ids
        .iter()
        .map(|i| PAGES[(*i as usize * 7) % PAGES.len()])
        .collect();
    let durations: Vec<i64> = ids.iter().map(|i| 100 + (i * 37) % 29_900).collect();
    let countries: Vec<&str> = ids
        .iter()
        .map(|i| COUNTRIES[(*i as usize) % COUNTRIES.len()])
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("page", DataType::Utf8, false),
        Field::new("duration_ms", DataType::Int64, false),
        Field::new("country", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(ids)),
        Arc::new(StringArray::from(users)),
        Arc::new(StringArray::from(pages)),
        Arc::new(Int64Array::from(durations)),
        Arc::new(StringArray::from(countries)),
    ];
    RecordBatch::try_new(schema, columns).expect("valid batch")
}

/// Runs a one-value query and returns that value as i64.
pub async fn scalar(session: &Session, sql: &str) -> i64 {
    let result = session
        .sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let batch = result
        .batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .expect("one row");
    let col = arrow::compute::cast(batch.column(0), &DataType::Int64).expect("integer");
    col.as_any()
        .downcast_ref::<Int64Array>()
        .expect("int64")
        .value(0)
}

/// All rows of a result rendered as strings, one `a|b|c` line per row, sorted.
pub fn rows(result: &apiary_engine::QueryResult) -> Vec<String> {
    let mut out = Vec::new();
    for batch in &result.batches {
        let columns: Vec<_> = batch
            .columns()
            .iter()
            .map(|c| arrow::compute::cast(c, &DataType::Utf8).expect("castable to text"))
            .collect();
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = columns
                .iter()
                .map(|c| {
                    let s = c.as_any().downcast_ref::<StringArray>().expect("utf8");
                    if s.is_null(row) {
                        "NULL".to_string()
                    } else {
                        s.value(row).to_string()
                    }
                })
                .collect();
            out.push(cells.join("|"));
        }
    }
    out.sort();
    out
}
