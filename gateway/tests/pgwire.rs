//! The Postgres gateway end to end: a real `apiary serve` process and the
//! tokio-postgres driver (simple and extended protocol, binary results).

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::{sqlstate, Server};

#[tokio::test]
async fn ddl_and_dml_round_trip_over_simple_and_extended_protocol() {
    let server = Server::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE SCHEMA web;
             CREATE TABLE web.visits (id BIGINT NOT NULL, page TEXT, country TEXT, ms DOUBLE PRECISION) PARTITIONED BY (country);
             INSERT INTO web.visits VALUES (1, '/a', 'DE', 1.5), (2, '/b', 'FR', 2.5), (3, '/a', 'DE', 3.0);",
        )
        .await
        .expect("ddl + insert");

    let rows = client
        .query(
            "SELECT country, count(*) AS n FROM web.visits GROUP BY country ORDER BY country",
            &[],
        )
        .await
        .expect("group by");
    let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(got, vec![("DE".into(), 2), ("FR".into(), 1)]);

    // A prepared statement run more than five times (pgJDBC switches to
    // binary transfer after five) with parameters, binary results.
    let stmt = client
        .prepare("SELECT id, ms FROM web.visits WHERE id = $1")
        .await
        .expect("prepare");
    for _ in 0..7 {
        let row = client.query_one(&stmt, &[&3i64]).await.expect("execute");
        assert_eq!(row.get::<_, i64>(0), 3);
        assert_eq!(row.get::<_, f64>(1), 3.0);
    }

    let inserted = client
        .execute(
            "INSERT INTO web.visits (id, page, country, ms) VALUES ($1, $2, $3, $4)",
            &[&4i64, &"/c", &"FR", &4.5f64],
        )
        .await
        .expect("parameterized insert");
    assert_eq!(inserted, 1);

    let updated = client
        .execute("UPDATE web.visits SET ms = 10 WHERE page = '/a'", &[])
        .await
        .expect("update");
    assert_eq!(updated, 2);
    let deleted = client
        .execute("DELETE FROM web.visits WHERE country = 'FR'", &[])
        .await
        .expect("delete");
    assert_eq!(deleted, 2);
    let row = client
        .query_one("SELECT count(*), sum(ms) FROM web.visits", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    assert_eq!(row.get::<_, f64>(1), 20.0);

    client
        .batch_execute(
            "CREATE TABLE web.top AS SELECT page, count(*) AS n FROM web.visits GROUP BY page",
        )
        .await
        .expect("ctas");
    let row = client
        .query_one("SELECT page, n FROM web.top", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "/a");
    assert_eq!(row.get::<_, i64>(1), 2);

    client
        .batch_execute("DROP TABLE web.top")
        .await
        .expect("drop");
    let err = client
        .query("SELECT * FROM web.top", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42P01", "{err}");
}

#[tokio::test]
async fn errors_carry_sqlstates_and_the_connection_keeps_serving() {
    let server = Server::start();
    let client = server.connect().await;
    let cases = [
        ("SELECT * FROM nowhere", "42P01"),
        ("SELECT nope FROM (SELECT 1 AS a) t", "42703"),
        ("SELEC 1", "42601"),
        (
            "CREATE TABLE bad (a INT, b INT) PARTITIONED BY (a); INSERT INTO bad VALUES (NULL, 1)",
            "23502",
        ),
        ("CREATE VIEW v AS SELECT 1", "0A000"),
        ("CREATE TABLE \"../evil\" (a INT)", "42602"),
    ];
    for (sql, code) in cases {
        let err = client.batch_execute(sql).await.unwrap_err();
        assert_eq!(sqlstate(&err), code, "{sql}: {err}");
    }
    // Nothing was written by the failed insert.
    let row = client
        .query_one("SELECT count(*) FROM bad", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0);
    let row = client.query_one("SELECT 1::BIGINT", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn session_statements_drivers_send_are_accepted() {
    let server = Server::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "BEGIN; SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; COMMIT;
             ROLLBACK; DISCARD ALL; RESET ALL; DEALLOCATE ALL; CLOSE ALL; UNLISTEN *;
             SET application_name = 'tests'; SET search_path = public;",
        )
        .await
        .expect("session statements");
    let rows = client
        .simple_query("SHOW TRANSACTION ISOLATION LEVEL")
        .await
        .unwrap();
    let value = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(value.as_deref(), Some("read committed"));
    let version: String = client
        .query_one("SELECT version()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        version.starts_with("PostgreSQL 15.") && version.contains("Apiary"),
        "{version}"
    );
    let db: String = client
        .query_one("SELECT current_database()", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(db, "default");
    // Empty query.
    let messages = client.simple_query("").await.unwrap();
    assert!(messages
        .iter()
        .all(|m| !matches!(m, tokio_postgres::SimpleQueryMessage::Row(_))));
}

#[tokio::test]
async fn database_is_the_hive_and_unknown_databases_list_the_hives() {
    let server = Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE DATABASE analytics; CREATE SCHEMA analytics.events")
        .await
        .unwrap();
    let analytics = server.connect_with("dbname=analytics").await.unwrap();
    analytics
        .batch_execute("SET search_path = events; CREATE TABLE clicks (id INT)")
        .await
        .unwrap();
    analytics
        .batch_execute("INSERT INTO clicks VALUES (1), (2)")
        .await
        .unwrap();
    // Three-part names work from anywhere.
    let row = client
        .query_one("SELECT count(*) FROM analytics.events.clicks", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 2);
    let err = server.connect_with("dbname=nosuch").await.unwrap_err();
    assert_eq!(sqlstate(&err), "3D000");
    let message = err
        .as_db_error()
        .map(|e| e.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("analytics"), "{message}");
    // The catalog browsing clients do on connect sees the frames.
    let rows = client
        .query(
            "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname = 'clicks'",
            &[],
        )
        .await
        .expect("pg_class");
    assert!(!rows.is_empty());
}

#[tokio::test]
async fn declared_sql_types_are_kept_checked_and_reported() {
    let server = Server::start();
    let client = server.connect().await;
    client
        .batch_execute(
            "CREATE TABLE typed (code CHAR(3), name VARCHAR(5), note VARCHAR, at TIMESTAMP, \
             seen TIMESTAMPTZ)",
        )
        .await
        .unwrap();
    client
        .batch_execute(
            "INSERT INTO typed VALUES ('ab', 'ann  ', 'x', TIMESTAMP '2024-01-02 03:04:05', \
             TIMESTAMPTZ '2024-01-02 03:04:05+02')",
        )
        .await
        .unwrap();
    // Too long for varchar(5): nothing is written.
    let err = client
        .batch_execute("INSERT INTO typed (name) VALUES ('abcdef')")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22001", "{err}");
    let statement = client
        .prepare("SELECT code, name, note, at, seen FROM typed")
        .await
        .unwrap();
    let types: Vec<_> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    use tokio_postgres::types::Type;
    assert_eq!(
        types,
        [
            Type::BPCHAR,
            Type::VARCHAR,
            Type::VARCHAR,
            Type::TIMESTAMP,
            Type::TIMESTAMPTZ
        ]
    );
    let rows = client.query(&statement, &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    // char(3) is padded; varchar(5) keeps its own trailing spaces.
    assert_eq!(rows[0].get::<_, String>(0), "ab ");
    assert_eq!(rows[0].get::<_, String>(1), "ann  ");
    // A timestamp is a wall-clock time; a timestamptz an instant.
    let text = client
        .simple_query("SELECT at, seen FROM typed")
        .await
        .unwrap();
    let row = text
        .iter()
        .find_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .expect("a row");
    assert_eq!(row.get(0), Some("2024-01-02 03:04:05"));
    assert_eq!(row.get(1), Some("2024-01-02 01:04:05+00"));
}

#[tokio::test]
async fn copy_from_stdin_loads_text_and_csv_in_one_commit() {
    use futures::SinkExt;
    let server = Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE t (id BIGINT, name TEXT, at TIMESTAMP, price NUMERIC(10,2))")
        .await
        .unwrap();
    let sink = client.copy_in("COPY t FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"1\tann\t2024-01-02 03:04:05\t1.50\n2\t\\N\t2024-01-03 00:00:00\t2.25\n",
    ))
    .await
    .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 2);

    let sink = client
        .copy_in("COPY t (id, name) FROM STDIN WITH (FORMAT csv, HEADER true)")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"id,name\n3,\"b,c\"\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 1);

    // A bad value fails the whole COPY and writes nothing.
    let sink = client.copy_in("COPY t (id) FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"4\nnot-a-number\n"))
        .await
        .unwrap();
    let err = sink.finish().await.unwrap_err();
    assert_eq!(sqlstate(&err), "22P02", "{err}");

    let row = client
        .query_one("SELECT count(*), count(name), sum(id)::bigint FROM t", &[])
        .await
        .unwrap();
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2)
        ),
        (3, 2, 6)
    );
}

#[tokio::test]
async fn a_large_copy_streams_and_a_late_bad_row_or_a_lost_client_writes_nothing() {
    use futures::SinkExt;
    let server = Server::start();
    let client = server.connect().await;
    client
        .batch_execute("CREATE TABLE big (id BIGINT, country TEXT) PARTITIONED BY (country)")
        .await
        .unwrap();
    let rows: String = (0..200_000)
        .map(|i| format!("{i}\t{}\n", ["DE", "FR"][i % 2]))
        .collect();
    // Chunks of an odd size split records, as clients' buffers do.
    let send_all = |text: String| async {
        let sink = client.copy_in("COPY big FROM STDIN").await.unwrap();
        futures::pin_mut!(sink);
        for chunk in text.into_bytes().chunks(7919) {
            sink.send(bytes::Bytes::copy_from_slice(chunk)).await?;
        }
        sink.finish().await
    };
    assert_eq!(send_all(rows.clone()).await.unwrap(), 200_000);
    // A NULL partition value after several batches already went to the writer.
    let late_null = format!("{rows}7\t\\N\n");
    let err = send_all(late_null).await.unwrap_err();
    assert_eq!(sqlstate(&err), "23502", "{err}");
    let late_garbage = format!("{rows}x\tDE\n");
    let err = send_all(late_garbage).await.unwrap_err();
    assert_eq!(sqlstate(&err), "22P02", "{err}");

    // A client whose connection drops in the middle of a COPY.
    let (lost, connection) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=lost", server.port),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let connection = tokio::spawn(connection);
    let sink = lost.copy_in("COPY big FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    for chunk in rows.as_bytes()[..rows.len() / 2].chunks(7919) {
        sink.send(bytes::Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    connection.abort();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let row = client
        .query_one("SELECT count(*), count(DISTINCT id) FROM big", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (200_000, 200_000)
    );
}

#[tokio::test]
async fn cancel_stops_a_running_query() {
    let server = Server::start();
    let client = server.connect().await;
    let token = client.cancel_token();
    let slow = tokio::spawn(async move {
        client
            .simple_query("SELECT count(*) FROM generate_series(1, 400000000) a WHERE a % 7 = 3")
            .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    token.cancel_query(tokio_postgres::NoTls).await.unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the cancelled query returns promptly")
        .unwrap();
    let err = result.unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err}");
}

#[tokio::test]
async fn cancel_and_timeout_stop_a_result_that_is_already_streaming() {
    use futures::StreamExt;

    let server = Server::start();
    let client = server.connect().await;
    // Rows arrive at once and keep coming: the query is past its first batch.
    let long = "SELECT a FROM generate_series(1, 2000000000) a";
    let rows = client
        .query_raw(long, std::iter::empty::<i32>())
        .await
        .unwrap();
    let mut rows = Box::pin(rows);
    for _ in 0..10 {
        rows.next().await.unwrap().unwrap();
    }
    client
        .cancel_token()
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(row) = rows.next().await {
            if let Err(e) = row {
                return e;
            }
        }
        panic!("the stream ended without an error");
    })
    .await
    .expect("the cancel stops the stream promptly");
    assert_eq!(sqlstate(&stopped), "57014", "{stopped}");

    client
        .batch_execute("SET statement_timeout = '300ms'")
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), client.simple_query(long))
        .await
        .expect("the timeout stops the stream")
        .unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err}");
    let message = err.as_db_error().map(|e| e.message().to_string());
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("statement timeout")),
        "{message:?}"
    );
    // The connection keeps serving.
    client
        .batch_execute("SET statement_timeout = 0")
        .await
        .unwrap();
    let one = client.query_one("SELECT 1::BIGINT", &[]).await.unwrap();
    assert_eq!(one.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn statement_timeout_cancels_with_57014() {
    let server = Server::start();
    let client = server.connect().await;
    client
        .batch_execute("SET statement_timeout = '200ms'")
        .await
        .unwrap();
    let err = client
        .simple_query("SELECT count(*) FROM generate_series(1, 400000000) a WHERE a % 7 = 3")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "57014", "{err}");
}

#[tokio::test]
async fn hostile_clients_leave_the_server_serving() {
    let server = Server::start();
    // A malformed startup packet.
    let mut raw = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    raw.write_all(&[0, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 0])
        .unwrap();
    let mut buf = [0u8; 64];
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = raw.read(&mut buf);
    drop(raw);

    // A client that disconnects mid-query.
    let quitter = server.connect().await;
    let pending = tokio::spawn(async move {
        quitter
            .simple_query("SELECT count(*) FROM generate_series(1, 200000000) a WHERE a % 7 = 3")
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    pending.abort();

    // A 100 MB query string is rejected or answered, not fatal to others.
    let big = server.connect().await;
    let huge = format!("SELECT 1 -- {}", "x".repeat(100 * 1024 * 1024));
    let _ = big.simple_query(&huge).await;

    let client = server.connect().await;
    let row = client.query_one("SELECT 41 + 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}

#[tokio::test]
async fn password_auth_and_the_loopback_rule() {
    let server = Server::start_with(&[("APIARY_USER", "ana"), ("APIARY_PASSWORD", "s3cret")]);
    let ok = server
        .connect_with("user=ana password=s3cret")
        .await
        .expect("right password");
    ok.simple_query("SELECT 1").await.unwrap();
    let err = server
        .connect_with("user=ana password=wrong")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), "28P01", "{err}");
}

#[test]
fn sigterm_drains_and_exits_cleanly() {
    let server = Server::start();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
}
