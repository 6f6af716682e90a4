//! The solo lakehouse end to end through the Session API, on a local
//! directory and on the S3 test server.

mod common;

use apiary_engine::catalog::{Error as CatalogError, WriteMode, WriteOptions};
use apiary_engine::EngineError;
use arrow::array::{Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use common::*;
use std::collections::BTreeMap;
use std::sync::Arc;

async fn create_clicks(session: &apiary_engine::Session) {
    let catalog = session.catalog();
    catalog.create_hive("analytics").await.unwrap();
    catalog.create_box("analytics", "events").await.unwrap();
    catalog
        .create_frame(
            "analytics",
            "events",
            "clicks",
            &clicks_columns(),
            &["country".to_string()],
        )
        .await
        .unwrap();
}

/// Appends `batch` to analytics.events.clicks, which must accept it.
async fn append_clicks(
    session: &apiary_engine::Session,
    batch: RecordBatch,
) -> apiary_engine::catalog::WriteResult {
    session
        .catalog()
        .write(
            "analytics",
            "events",
            "clicks",
            &[batch],
            WriteMode::Append,
            WriteOptions::default(),
        )
        .await
        .expect("a valid append")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_write_reports_cells_and_rows_and_queries_match() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        let batch = clicks(0, 10_000);
        let result = append_clicks(&session, batch.clone()).await;
        assert_eq!(
            result.cells_written, 8,
            "{}: one cell per country",
            root.label
        );
        assert_eq!(result.rows_written, 10_000, "{}", root.label);
        assert!(result.bytes_written > 0);
        assert_eq!(result.version, 1, "{}: create is version 0", root.label);

        // Expected answers computed directly from the data.
        let pages = batch
            .column(2)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let mut expected: BTreeMap<String, i64> = BTreeMap::new();
        for i in 0..pages.len() {
            *expected.entry(pages.value(i).to_string()).or_default() += 1;
        }
        let got = session
            .sql("SELECT page, COUNT(*) AS visits, AVG(duration_ms) AS avg_duration FROM analytics.events.clicks GROUP BY page ORDER BY visits DESC")
            .await
            .unwrap();
        let got: BTreeMap<String, i64> = rows(&got)
            .iter()
            .map(|r| {
                let parts: Vec<&str> = r.split('|').collect();
                (parts[0].to_string(), parts[1].parse().unwrap())
            })
            .collect();
        assert_eq!(got, expected, "{}", root.label);

        // An OR predicate (the prototype's classic failure) counts correctly.
        let n = scalar(
            &session,
            "SELECT COUNT(*) FROM analytics.events.clicks WHERE country = 'us' OR country = 'de'",
        )
        .await;
        assert_eq!(n, 2_500, "{}", root.label);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_sees_every_earlier_commit() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        let catalog = session.catalog().clone();
        for i in 0..3 {
            append_clicks(&session, clicks(i * 100, 100)).await;
            let n = scalar(&session, "SELECT COUNT(*) FROM analytics.events.clicks").await;
            assert_eq!(n, (i + 1) * 100, "{}", root.label);
        }
        catalog
            .write(
                "analytics",
                "events",
                "clicks",
                &[clicks(0, 42)],
                WriteMode::Overwrite,
                WriteOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(
            scalar(&session, "SELECT COUNT(*) FROM analytics.events.clicks").await,
            42
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_retried_with_its_idempotency_key_commits_once() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        let keyed = |key: &str| WriteOptions {
            idempotency_key: Some(key.to_string()),
            ..Default::default()
        };
        let write = |key: &str, mode| {
            let catalog = session.catalog().clone();
            let opts = keyed(key);
            async move {
                catalog
                    .write(
                        "analytics",
                        "events",
                        "clicks",
                        &[clicks(0, 10)],
                        mode,
                        opts,
                    )
                    .await
            }
        };
        let first = write("load-1", WriteMode::Append).await.unwrap();
        assert!(!first.already_committed, "{}", root.label);
        assert_eq!(first.rows_written, 10);
        let again = write("load-1", WriteMode::Append).await.unwrap();
        assert!(again.already_committed, "{}: {again:?}", root.label);
        assert_eq!((again.rows_written, again.cells_written), (0, 0));
        let count = "SELECT COUNT(*) FROM analytics.events.clicks";
        assert_eq!(scalar(&session, count).await, 10, "{}", root.label);
        // Another key is another write; an overwrite honours keys too.
        write("load-2", WriteMode::Append).await.unwrap();
        assert_eq!(scalar(&session, count).await, 20, "{}", root.label);
        write("load-1", WriteMode::Overwrite).await.unwrap();
        assert_eq!(scalar(&session, count).await, 20, "{}", root.label);
        let bad = write("", WriteMode::Append).await.unwrap_err();
        assert!(
            bad.to_string().contains("idempotency key"),
            "{}: {bad}",
            root.label
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_filters_prune_cells() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        append_clicks(&session, clicks(0, 8_000)).await;
        let plan = session
            .sql(
                "EXPLAIN SELECT SUM(duration_ms) FROM analytics.events.clicks WHERE country = 'jp'",
            )
            .await
            .unwrap();
        let text = rows(&plan).join("\n");
        let files_in_plan = text.matches(".parquet").count();
        assert_eq!(
            files_in_plan, 1,
            "{}: only the jp cell is scanned:\n{text}",
            root.label
        );
        let n = scalar(
            &session,
            "SELECT COUNT(*) FROM analytics.events.clicks WHERE country = 'jp'",
        )
        .await;
        assert_eq!(n, 1_000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_statistics_skip_cells_outside_a_range() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        let catalog = session.catalog().clone();
        catalog
            .create_frame("default", "default", "log", &clicks_columns(), &[])
            .await
            .unwrap();
        for first in [0, 1_000, 2_000] {
            catalog
                .write(
                    "default",
                    "default",
                    "log",
                    &[clicks(first, 1_000)],
                    WriteMode::Append,
                    WriteOptions::default(),
                )
                .await
                .unwrap();
        }
        let sql = "SELECT SUM(duration_ms) FROM log WHERE event_id >= 1200 AND event_id < 1300";
        let plan = rows(&session.sql(&format!("EXPLAIN {sql}")).await.unwrap()).join("\n");
        assert_eq!(
            plan.matches(".parquet").count(),
            1,
            "{}: min/max stats skip two cells:\n{plan}",
            root.label
        );
        let expected: i64 = (1200..1300).map(|i: i64| 100 + (i * 37) % 29_900).sum();
        assert_eq!(scalar(&session, sql).await, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creators_of_one_hive_get_one_winner() {
    for root in roots() {
        let mut tasks = Vec::new();
        for _ in 0..4 {
            let uri = root.uri.clone();
            tasks.push(tokio::spawn(async move {
                let catalog = apiary_engine::catalog::Catalog::open(&uri).await.unwrap();
                catalog.create_hive("shared").await
            }));
        }
        let mut wins = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(()) => wins += 1,
                Err(CatalogError::AlreadyExists { .. }) => {}
                Err(other) => panic!("{}: unexpected {other}", root.label),
            }
        }
        assert_eq!(wins, 1, "{}", root.label);
        let (_node, session) = start(&root).await;
        assert_eq!(
            rows(&session.sql("SHOW HIVES").await.unwrap()),
            ["default", "shared"]
        );
    }
}

fn batch_of(fields: Vec<Field>, columns: Vec<Arc<dyn Array>>) -> RecordBatch {
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_writes_are_rejected_and_change_nothing() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        let catalog = session.catalog().clone();
        append_clicks(&session, clicks(0, 500)).await;
        let count = || scalar(&session, "SELECT COUNT(*) FROM analytics.events.clicks");
        let before = count().await;

        let good = clicks(0, 3);
        let col = |name: &str| good.column(good.schema().index_of(name).unwrap()).clone();
        let field = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
        let cases: Vec<(&str, RecordBatch, &str)> = vec![
            (
                "wrong type",
                batch_of(
                    vec![
                        field("event_id", DataType::Utf8, false),
                        field("country", DataType::Utf8, false),
                    ],
                    vec![
                        Arc::new(StringArray::from(vec!["a", "b", "c"])),
                        col("country"),
                    ],
                ),
                "event_id",
            ),
            (
                "narrowing cast",
                batch_of(
                    vec![
                        field("event_id", DataType::Int64, false),
                        field("duration_ms", DataType::Utf8, false),
                        field("country", DataType::Utf8, false),
                    ],
                    vec![
                        col("event_id"),
                        Arc::new(StringArray::from(vec!["1", "2", "3"])),
                        col("country"),
                    ],
                ),
                "duration_ms",
            ),
            (
                "null partition value",
                batch_of(
                    vec![
                        field("event_id", DataType::Int64, false),
                        field("country", DataType::Utf8, true),
                    ],
                    vec![
                        col("event_id"),
                        Arc::new(StringArray::from(vec![Some("us"), None, Some("de")])),
                    ],
                ),
                "country",
            ),
            (
                "missing partition column",
                batch_of(
                    vec![field("event_id", DataType::Int64, false)],
                    vec![col("event_id")],
                ),
                "country",
            ),
            (
                "extra column",
                batch_of(
                    vec![
                        field("event_id", DataType::Int64, false),
                        field("country", DataType::Utf8, false),
                        field("surprise", DataType::Int64, false),
                    ],
                    vec![
                        col("event_id"),
                        col("country"),
                        Arc::new(Int64Array::from(vec![1, 2, 3])),
                    ],
                ),
                "surprise",
            ),
        ];
        for (what, batch, column) in cases {
            let err = catalog
                .write(
                    "analytics",
                    "events",
                    "clicks",
                    &[clicks(10_000, 5), batch],
                    WriteMode::Append,
                    WriteOptions::default(),
                )
                .await
                .unwrap_err();
            match &err {
                CatalogError::SchemaMismatch { column: c, .. } => {
                    assert_eq!(c, column, "{what}: {err}")
                }
                other => panic!("{what}: expected a schema mismatch, got {other}"),
            }
            assert_eq!(
                count().await,
                before,
                "{}: {what} changed the frame",
                root.label
            );
        }

        // A widening cast is accepted, and extra columns can be dropped on request.
        let widened = batch_of(
            vec![
                field("event_id", DataType::Int32, false),
                field("country", DataType::Utf8, false),
                field("surprise", DataType::Int64, false),
            ],
            vec![
                Arc::new(Int32Array::from(vec![1, 2, 3])),
                col("country"),
                Arc::new(Int64Array::from(vec![1, 2, 3])),
            ],
        );
        let opts = WriteOptions {
            drop_extra_columns: true,
            ..Default::default()
        };
        catalog
            .write(
                "analytics",
                "events",
                "clicks",
                &[widened],
                WriteMode::Append,
                opts,
            )
            .await
            .unwrap();
        assert_eq!(count().await, before + 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_never_reach_storage() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        let catalog = session.catalog();
        let long = "x".repeat(10_000);
        for bad in ["../evil", "a/b", "", "it's", "\"q\"", "naïve", &long] {
            let err = catalog.create_hive(bad).await.unwrap_err();
            assert!(
                matches!(err, CatalogError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
            let err = catalog
                .create_frame("default", "default", bad, &clicks_columns(), &[])
                .await
                .unwrap_err();
            assert!(
                matches!(err, CatalogError::InvalidName { .. }),
                "{bad:?}: {err}"
            );
        }
        let err = catalog
            .create_frame(
                "default",
                "default",
                "t",
                &[("a/b".into(), "int64".into())],
                &[],
            )
            .await
            .unwrap_err();
        assert!(matches!(err, CatalogError::InvalidName { .. }), "{err}");
        assert_eq!(
            catalog.list_hives().await.unwrap(),
            vec!["default".to_string()]
        );
        assert!(catalog
            .list_frames("default", "default")
            .await
            .unwrap()
            .is_empty());
        if root.label == "local" {
            let parent = std::path::Path::new(&root.uri).parent().unwrap();
            assert!(!parent.join("evil").exists());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apiary_commands_browse_the_catalog() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        append_clicks(&session, clicks(0, 80)).await;
        assert_eq!(
            rows(&session.sql("SHOW HIVES").await.unwrap()),
            ["analytics", "default"]
        );
        assert_eq!(
            rows(&session.sql("SHOW BOXES IN analytics").await.unwrap()),
            ["default", "events"]
        );
        assert_eq!(
            rows(
                &session
                    .sql("SHOW FRAMES IN analytics.events")
                    .await
                    .unwrap()
            ),
            ["clicks"]
        );
        let described = rows(
            &session
                .sql("DESCRIBE analytics.events.clicks")
                .await
                .unwrap(),
        );
        assert!(
            described
                .iter()
                .any(|r| r.starts_with("country|utf8|false|true|8|80|")),
            "{described:?}"
        );
        assert!(
            described
                .iter()
                .any(|r| r.starts_with("duration_ms|int64|true|false|8|80|")),
            "{described:?}"
        );

        session.sql("USE HIVE analytics").await.unwrap();
        session.sql("USE BOX events").await.unwrap();
        assert_eq!(
            session.current(),
            ("analytics".to_string(), "events".to_string())
        );
        assert_eq!(scalar(&session, "SELECT COUNT(*) FROM clicks").await, 80);
        assert_eq!(rows(&session.sql("SHOW FRAMES").await.unwrap()), ["clicks"]);

        let err = session.sql("USE HIVE nope").await.unwrap_err();
        assert!(
            err.to_string()
                .contains("existing hives: analytics, default"),
            "{err}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_writes_go_through_the_validated_path() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        session
            .sql("CREATE TABLE t (id BIGINT NOT NULL, country TEXT) PARTITIONED BY (country)")
            .await
            .expect("create table");
        let inserted = scalar(&session, "INSERT INTO t VALUES (1, 'DE'), (2, 'FR')").await;
        assert_eq!(inserted, 2);
        // A NULL partition value fails the whole statement.
        assert!(session
            .sql("INSERT INTO t VALUES (3, 'DE'), (4, NULL)")
            .await
            .is_err());
        assert_eq!(
            scalar(&session, "DELETE FROM t WHERE country = 'FR'").await,
            1
        );
        assert_eq!(scalar(&session, "SELECT count(*) FROM t").await, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_statements_say_what_to_use() {
    for root in roots().into_iter().take(1) {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        for (sql, hint) in [("CREATE VIEW v AS SELECT 1", "CREATE TABLE")] {
            let err = session.sql(sql).await.unwrap_err();
            assert!(
                matches!(err, EngineError::Unsupported { .. }),
                "{sql}: {err}"
            );
            assert!(err.to_string().contains(hint), "{sql}: {err}");
        }
        let err = session.sql("SELEC 1").await.unwrap_err();
        assert!(
            matches!(err, EngineError::Sql(_) | EngineError::DataFusion(_)),
            "{err}"
        );
        let err = session
            .sql("SELECT * FROM analytics.events.nope")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        // The node still serves after errors.
        assert_eq!(scalar(&session, "SELECT 41 + 1").await, 42);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_a_clear_error() {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        return; // needs the S3 test server; covered when tests/run.sh runs the suite
    }
    let config = apiary_engine::NodeConfig::new("t", Some("s3://no-such-bucket-apiary/x")).unwrap();
    let err = apiary_engine::Node::start(config)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("s3://no-such-bucket-apiary/x/"), "{err}");
    assert!(err.contains("not usable"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_transaction_blocks_commit_or_roll_back_whole() {
    for root in roots() {
        let (_node, session) = start(&root).await;
        create_clicks(&session).await;
        let frame = "analytics.events.clicks";
        let insert =
            format!("INSERT INTO {frame} VALUES (1, 'u', '/', 5, 'de'), (2, 'v', '/', 7, 'fr')");
        let count = format!("SELECT count(*) FROM {frame}");
        session
            .sql(&format!("BEGIN; {insert}; ROLLBACK"))
            .await
            .unwrap();
        assert_eq!(scalar(&session, &count).await, 0);
        session.sql(&format!("BEGIN; {insert}")).await.unwrap();
        assert_eq!(scalar(&session, &count).await, 2, "read-your-writes");
        session
            .sql(&format!("DELETE FROM {frame} WHERE event_id = 1; COMMIT"))
            .await
            .unwrap();
        assert_eq!(scalar(&session, &count).await, 1);
        // An error inside a block rolls it back.
        let failed = session
            .sql(&format!("BEGIN; {insert}; SELECT * FROM nowhere"))
            .await;
        assert!(failed.is_err());
        assert!(!session.in_transaction());
        assert_eq!(scalar(&session, &count).await, 1);
    }
}
