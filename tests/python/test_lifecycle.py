"""The rest of a frame's Delta lifecycle in SQL and the SDK: MERGE, RESTORE,
ALTER TABLE … ADD COLUMN (and the SDK's evolve_schema), ALTER COLUMN … TYPE,
RENAME TO, and CREATE/DROP INDEX as clustering keys. Each is checked through
Apiary, through the deltalake package and through DuckDB's Delta reader, on
a local and an S3 root."""

from __future__ import annotations

import datetime
import json
import time

import psycopg
import pyarrow as pa
import pytest
from deltalake import DeltaTable

import apiary
from test_gateway import free_port, start_server, stop_server
from test_maintenance import FRAME, content, duckdb_delta_rows
from test_differential import postgres  # noqa: F401  (fixture)
from test_sdk import ap, rows  # noqa: F401  (ap: fixture)


def delta_table(storage: str, options, frame: str = "clicks") -> DeltaTable:
    uri = storage.rstrip("/") + f"/analytics/events/{frame}"
    return DeltaTable(uri, storage_options=options(uri))


def duckdb_rows(ap, options, columns: str, frame: str = "clicks") -> list[tuple]:
    """The frame's rows as DuckDB's Delta reader reads the table where
    get_frame says it is."""
    uri = ap.get_frame("analytics", "events", frame)["location"]
    return duckdb_delta_rows(uri, options, columns)


def newest_operation(ap) -> str:
    return ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["operation"]


def test_merge_inserts_updates_and_deletes_in_one_commit(ap, storage, delta_storage_options):
    ap.write_to_frame("analytics", "events", "clicks", rows(6))
    ap.query(
        "CREATE TABLE analytics.events.changes (event_id BIGINT, op TEXT, duration_ms BIGINT, country TEXT)"
    )
    ap.query(
        "INSERT INTO analytics.events.changes VALUES "
        "(1, 'update', 999, 'de'), (2, 'delete', NULL, 'jp'), (100, 'insert', 5, 'us')"
    )
    before = {r["event_id"]: r for r in content(ap)}
    version = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["version"]
    merged = ap.query(
        f"""MERGE INTO {FRAME} AS t USING analytics.events.changes AS s ON t.event_id = s.event_id
            WHEN MATCHED AND s.op = 'delete' THEN DELETE
            WHEN MATCHED THEN UPDATE SET duration_ms = s.duration_ms
            WHEN NOT MATCHED THEN INSERT (event_id, user_id, page, duration_ms, country)
                 VALUES (s.event_id, 'user_new', '/new', s.duration_ms, s.country)"""
    ).to_pylist()
    assert merged == [{"count": 3}]
    after = {r["event_id"]: r for r in content(ap)}
    expected = dict(before)
    expected[1] = {**before[1], "duration_ms": 999}
    del expected[2]
    expected[100] = {"event_id": 100, "user_id": "user_new", "duration_ms": 5, "country": "us"}
    assert after == expected
    # One commit, which deltalake reads back the same.
    history = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()
    assert history[0]["operation"] == "MERGE" and history[0]["version"] == version + 1
    assert sorted(delta_table(storage, delta_storage_options).to_pandas()["event_id"]) == sorted(expected)
    assert [r[0] for r in duckdb_rows(ap, delta_storage_options, "event_id")] == sorted(expected)

    # VALUES as the source, with column aliases; NOT MATCHED BY SOURCE.
    ap.query(
        f"""MERGE INTO {FRAME} t USING (VALUES (0, 7), (3, 8)) AS s(ID, Ms) ON t.event_id = s.id
            WHEN MATCHED THEN UPDATE SET duration_ms = s.ms
            WHEN NOT MATCHED BY SOURCE AND t.event_id >= 100 THEN DELETE"""
    )
    now = {r["event_id"]: r["duration_ms"] for r in content(ap)}
    assert now[0] == 7 and now[3] == 8 and 100 not in now


def test_a_failed_merge_changes_nothing(ap):
    ap.write_to_frame("analytics", "events", "clicks", rows(3))
    before = content(ap)
    version = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["version"]
    failing = {
        # A NULL into the partition column.
        f"MERGE INTO {FRAME} t USING (SELECT 50 AS id) s ON t.event_id = s.id "
        "WHEN NOT MATCHED THEN INSERT (event_id, user_id) VALUES (s.id, 'u')": "not-null",
        # Two source rows for one target row.
        f"MERGE INTO {FRAME} t USING (SELECT 1 AS id UNION ALL SELECT 1) s ON t.event_id = s.id "
        "WHEN MATCHED THEN UPDATE SET duration_ms = 0": "second time",
        f"MERGE INTO {FRAME} t USING (SELECT 1 AS id) s ON t.event_id = s.nope "
        "WHEN MATCHED THEN DELETE": "nope",
        f"MERGE INTO {FRAME} t USING (SELECT 1 AS id) s ON t.event_id = s.id "
        "WHEN MATCHED THEN UPDATE SET country = 'fr'": "partition column",
        f"MERGE INTO {FRAME} t USING (SELECT 1 AS id) s ON t.event_id = s.id "
        "WHEN MATCHED THEN UPDATE SET nope = 1": "does not exist",
        f"MERGE INTO {FRAME} t USING (SELECT 1 AS id) ON true WHEN MATCHED THEN DELETE": "alias",
        f"MERGE INTO {FRAME} t USING (SELECT 'x' AS id) s ON t.event_id = s.id "
        "WHEN NOT MATCHED THEN INSERT (event_id, country) VALUES (s.id, 'us')": "cast",
    }
    for sql, message in failing.items():
        with pytest.raises(apiary.ApiaryError, match=message):
            ap.query(sql)
    assert content(ap) == before
    assert ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["version"] == version


def test_restore_makes_an_earlier_version_current(ap, storage, delta_storage_options):
    ap.write_to_frame("analytics", "events", "clicks", rows(3))
    # Restoring by instant goes by the commit files' time in storage, which
    # an S3 server may keep to the second: leave room around this commit.
    time.sleep(2)
    ap.write_to_frame("analytics", "events", "clicks", rows(3, start=3))
    time.sleep(2)
    kept = content(ap)
    version = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["version"]
    stamp = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["timestamp"]
    ap.query(f"DELETE FROM {FRAME} WHERE event_id < 4")
    ap.overwrite_frame("analytics", "events", "clicks", rows(1, start=50))
    done = ap.query(f"RESTORE TABLE {FRAME} TO VERSION AS OF {version}").to_pylist()[0]
    assert done["version"] == version + 3 and done["files_restored"] >= 1
    assert content(ap) == kept
    assert newest_operation(ap) == "RESTORE"
    assert sorted(delta_table(storage, delta_storage_options).to_pandas()["event_id"]) == list(range(6))
    assert [r[0] for r in duckdb_rows(ap, delta_storage_options, "event_id")] == list(range(6))
    # The versions in between are still there to read or restore.
    assert [r["event_id"] for r in ap.query(f'SELECT event_id FROM analytics.events."clicks@v{version + 2}"').to_pylist()] == [50]
    ap.query(f"RESTORE {FRAME} TO VERSION {version + 2}")
    assert [r["event_id"] for r in content(ap)] == [50]
    # By instant: the version current then.
    at = (stamp + datetime.timedelta(milliseconds=500)).strftime("%Y-%m-%d %H:%M:%S.%f")
    ap.query(f"RESTORE {FRAME} TO TIMESTAMP AS OF '{at}+00'")
    assert content(ap) == kept
    with pytest.raises(apiary.ApiaryError, match="as of"):
        ap.query(f"RESTORE {FRAME} TO VERSION 999")
    with pytest.raises(apiary.ApiaryError, match="RESTORE"):
        ap.query(f"RESTORE {FRAME} TO VERSION latest")
    # A version with other columns cannot be restored over the current ones.
    ap.query(f"ALTER TABLE {FRAME} ADD COLUMN score DOUBLE PRECISION")
    with pytest.raises(apiary.ApiaryError, match="other columns"):
        ap.query(f"RESTORE {FRAME} TO VERSION {version}")


def test_add_column_keeps_old_rows_as_null(ap, storage, delta_storage_options):
    ap.write_to_frame("analytics", "events", "clicks", rows(2))
    ap.query(f"ALTER TABLE {FRAME} ADD COLUMN score DOUBLE PRECISION, ADD COLUMN note TEXT")
    ap.query(f"ALTER TABLE {FRAME} ADD COLUMN IF NOT EXISTS score BIGINT")
    assert [c["name"] for c in ap.get_frame("analytics", "events", "clicks")["schema"]][-2:] == ["score", "note"]
    ap.query(f"INSERT INTO {FRAME} VALUES (10, 'u', '/p', 1, 'us', 2.5, 'hi')")
    # A write without the new columns leaves them NULL.
    ap.write_to_frame("analytics", "events", "clicks", rows(1, start=20))
    got = ap.query(f"SELECT event_id, score, note FROM {FRAME} ORDER BY event_id").to_pylist()
    assert got == [
        {"event_id": 0, "score": None, "note": None},
        {"event_id": 1, "score": None, "note": None},
        {"event_id": 10, "score": 2.5, "note": "hi"},
        {"event_id": 20, "score": None, "note": None},
    ]
    ap.query(f"UPDATE {FRAME} SET score = 1.0 WHERE event_id = 0")
    assert ap.query(f"SELECT count(*) AS n FROM {FRAME} WHERE score IS NOT NULL").to_pylist() == [{"n": 2}]
    table = delta_table(storage, delta_storage_options).to_pandas().sort_values("event_id")
    assert list(table.columns)[-2:] == ["score", "note"]
    assert table["note"].tolist()[2] == "hi"
    assert duckdb_rows(ap, delta_storage_options, "event_id, score") == [
        (0, 1.0), (1, None), (10, 2.5), (20, None)
    ]
    # An earlier version reads the new columns as NULL.
    first = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[-2]["version"]
    old = ap.query(f'SELECT event_id, score FROM analytics.events."clicks@v{first}" ORDER BY 1').to_pylist()
    assert old == [{"event_id": 0, "score": None}, {"event_id": 1, "score": None}]
    refused = {
        f"ALTER TABLE {FRAME} ADD COLUMN score INT": "already exists",
        f"ALTER TABLE {FRAME} ADD COLUMN w INT NOT NULL": "NOT NULL",
        f"ALTER TABLE {FRAME} ADD COLUMN w INT DEFAULT 1": "default",
        f"ALTER TABLE {FRAME} DROP COLUMN note": "column mapping",
        f"ALTER TABLE {FRAME} RENAME COLUMN note TO memo": "column mapping",
        f"ALTER TABLE {FRAME} ALTER COLUMN duration_ms TYPE DOUBLE PRECISION": "only widen",
        f'ALTER TABLE {FRAME} ADD COLUMN "../x" INT': "name",
    }
    for sql, message in refused.items():
        with pytest.raises(apiary.ApiaryError, match=message):
            ap.query(sql)
    assert len(ap.get_frame("analytics", "events", "clicks")["schema"]) == 7


def located_table(ap, frame: str, options) -> DeltaTable:
    """The frame's Delta table where get_frame says it is."""
    uri = ap.get_frame("analytics", "events", frame)["location"]
    return DeltaTable(uri, storage_options=options(uri))


def test_rename_keeps_the_frame_its_history_and_indexes(ap, storage, delta_storage_options):
    ap.write_to_frame("analytics", "events", "clicks", rows(3))
    ap.query(f"CREATE INDEX clicks_user ON {FRAME} (user_id)")
    history = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()
    ap.query(f"ALTER TABLE {FRAME} RENAME TO visits")
    assert ap.list_frames("analytics", "events") == ["visits"]
    with pytest.raises(apiary.ApiaryError, match="not found"):
        ap.query(f"SELECT * FROM {FRAME}")
    visits = "analytics.events.visits"
    # Same Delta table: its history, versions and index come along.
    assert ap.query(f"DESCRIBE HISTORY {visits}").to_pylist() == history
    assert ap.get_frame("analytics", "events", "visits")["indexes"] == [{"name": "clicks_user", "columns": ["user_id"]}]
    ap.write_to_frame("analytics", "events", "visits", rows(1, start=10))
    ap.query(f"INSERT INTO {visits} VALUES (11, 'u', '/p', 1, 'us')")
    ids = lambda sql: [r["event_id"] for r in ap.query(sql).to_pylist()]  # noqa: E731
    assert ids(f"SELECT event_id FROM {visits} ORDER BY 1") == [0, 1, 2, 10, 11]
    first = history[-1]["version"]
    assert ids(f'SELECT event_id FROM analytics.events."visits@v{first + 1}" ORDER BY 1') == [0, 1, 2]
    # The cells stayed where they were; other Delta readers find them there.
    location = ap.get_frame("analytics", "events", "visits")["location"]
    assert location.rstrip("/").endswith("analytics/events/clicks")
    assert sorted(located_table(ap, "visits", delta_storage_options).to_pandas()["event_id"]) == [0, 1, 2, 10, 11]
    assert duckdb_rows(ap, delta_storage_options, "event_id", "visits") == [(0,), (1,), (2,), (10,), (11,)]
    # A new frame under the old name gets a directory of its own, and
    # dropping the renamed frame leaves it alone.
    ap.query(f"CREATE TABLE {FRAME} (event_id BIGINT NOT NULL, note TEXT)")
    ap.query(f"INSERT INTO {FRAME} VALUES (7, 'new')")
    assert ap.get_frame("analytics", "events", "clicks")["location"] != location
    assert ids(f"SELECT event_id FROM {visits} ORDER BY 1") == [0, 1, 2, 10, 11]
    for sql, message in {
        f"ALTER TABLE {visits} RENAME TO clicks": "already exists",
        f"ALTER TABLE {visits} RENAME TO visits": "already exists",
        f"ALTER TABLE {visits} RENAME TO other.visits2": "within its box",
        f'ALTER TABLE {visits} RENAME TO "../x"': "name",
        f"ALTER TABLE {visits} RENAME TO v2, ADD COLUMN z INT": "on its own",
        "ALTER TABLE analytics.events.nope RENAME TO v3": "does not exist",
    }.items():
        with pytest.raises(apiary.ApiaryError, match=message):
            ap.query(sql)
    ap.query("ALTER TABLE IF EXISTS analytics.events.nope RENAME TO v3")
    ap.query(f"DROP TABLE {visits}")
    assert ap.query(f"SELECT event_id, note FROM {FRAME}").to_pylist() == [{"event_id": 7, "note": "new"}]
    assert located_table(ap, "clicks", delta_storage_options).to_pandas()["note"].tolist() == ["new"]
    assert duckdb_rows(ap, delta_storage_options, "event_id, note") == [(7, "new")]
    # A frame renamed back to its first name is where it always was.
    ap.query(f"ALTER TABLE {FRAME} RENAME TO notes")
    ap.query("ALTER TABLE analytics.events.notes RENAME TO clicks")
    assert ap.query(f"SELECT note FROM {FRAME}").to_pylist() == [{"note": "new"}]


def test_widening_a_column_keeps_every_value(ap, storage, delta_storage_options):
    ap.query(
        "CREATE TABLE analytics.events.w (id INTEGER NOT NULL, x REAL, d NUMERIC(5,2), "
        "s VARCHAR(3), p SMALLINT) PARTITIONED BY (p)"
    )
    ap.query(
        "INSERT INTO analytics.events.w VALUES (2147483647, 1.5, 123.45, 'abc', 1), "
        "(-2147483648, NULL, -0.01, NULL, 2), (0, -2.25, NULL, 'x', 1)"
    )
    before = ap.query("SELECT * FROM analytics.events.w ORDER BY id").to_pylist()
    version = ap.get_frame("analytics", "events", "w")["version"]
    with pytest.raises(apiary.ApiaryError):
        ap.query("INSERT INTO analytics.events.w VALUES (3000000000, 0, 0, 'toolong', 1)")
    ap.query(
        "ALTER TABLE analytics.events.w ALTER COLUMN id TYPE BIGINT, "
        "ALTER COLUMN x SET DATA TYPE DOUBLE PRECISION, ALTER COLUMN d TYPE NUMERIC(9,3)"
    )
    # A longer varchar changes only the declaration: no commit.
    at = ap.get_frame("analytics", "events", "w")["version"]
    ap.query("ALTER TABLE analytics.events.w ALTER COLUMN s TYPE VARCHAR(10)")
    assert ap.get_frame("analytics", "events", "w")["version"] == at > version
    types = {c["name"]: c["type"] for c in ap.get_frame("analytics", "events", "w")["schema"]}
    assert types == {"id": "int64", "x": "float64", "d": "decimal(9,3)", "s": "varchar(10)", "p": "int16"}
    after = ap.query("SELECT * FROM analytics.events.w ORDER BY id").to_pylist()
    assert after == before
    assert ap.query("SELECT arrow_typeof(id) AS t FROM analytics.events.w LIMIT 1").to_pylist() == [{"t": "Int64"}]
    ap.query("INSERT INTO analytics.events.w VALUES (3000000000, 0.1, 123456.789, 'longer', 1)")
    assert ap.query("SELECT max(id) AS m FROM analytics.events.w").to_pylist() == [{"m": 3000000000}]
    # Other Delta readers see the wider types and the same values.
    table = located_table(ap, "w", delta_storage_options)
    schema = pa.schema(table.schema().to_arrow())
    assert (schema.field("id").type, schema.field("x").type) == (pa.int64(), pa.float64())
    assert schema.field("d").type == pa.decimal128(9, 3)
    assert sorted(table.to_pandas()["id"].tolist()) == [-2147483648, 0, 2147483647, 3000000000]
    assert duckdb_rows(ap, delta_storage_options, "id, typeof(id), x", "w") == [
        (-2147483648, "BIGINT", None), (0, "BIGINT", -2.25), (2147483647, "BIGINT", 1.5),
        (3000000000, "BIGINT", 0.1),
    ]
    # The versions before the change still read, in the wider types.
    old = ap.query(f'SELECT id FROM analytics.events."w@v{version}" ORDER BY id').to_pylist()
    assert [r["id"] for r in old] == [-2147483648, 0, 2147483647]
    for sql, message in {
        "ALTER TABLE analytics.events.w ALTER COLUMN id TYPE INTEGER": "only widen",
        "ALTER TABLE analytics.events.w ALTER COLUMN s TYPE INTEGER": "only widen",
        "ALTER TABLE analytics.events.w ALTER COLUMN s TYPE VARCHAR(2)": "only widen",
        "ALTER TABLE analytics.events.w ALTER COLUMN p TYPE INTEGER": "partition",
        "ALTER TABLE analytics.events.w ALTER COLUMN id TYPE NUMERIC(30,0) USING id": "USING",
        "ALTER TABLE analytics.events.w ALTER COLUMN nope TYPE BIGINT": "nope",
    }.items():
        with pytest.raises(apiary.ApiaryError, match=message):
            ap.query(sql)
    assert ap.query("SELECT count(*) AS n FROM analytics.events.w").to_pylist() == [{"n": 4}]


def test_sdk_writes_evolve_the_schema_only_when_asked(ap, storage, delta_storage_options):
    ap.write_to_frame("analytics", "events", "clicks", rows(1))
    wider = rows(2, start=5).append_column("referrer", pa.array(["a", None]))
    with pytest.raises(apiary.SchemaError, match="referrer"):
        ap.write_to_frame("analytics", "events", "clicks", wider)
    ap.write_to_frame("analytics", "events", "clicks", wider, evolve_schema=True)
    got = ap.query(f"SELECT event_id, referrer FROM {FRAME} ORDER BY event_id").to_pylist()
    assert got == [
        {"event_id": 0, "referrer": None},
        {"event_id": 5, "referrer": "a"},
        {"event_id": 6, "referrer": None},
    ]
    assert "referrer" in delta_table(storage, delta_storage_options).schema().to_arrow().names


def test_indexes_are_clustering_keys(ap, storage, delta_storage_options):
    for i in range(4):
        ap.write_to_frame("analytics", "events", "clicks", rows(3, start=3 * i))
    before = content(ap)
    ap.query(f"CREATE INDEX clicks_user ON {FRAME} (user_id, duration_ms)")
    with pytest.raises(apiary.ApiaryError, match="already exists"):
        ap.query(f"CREATE INDEX clicks_user ON {FRAME} (page)")
    ap.query(f"CREATE INDEX IF NOT EXISTS clicks_user ON {FRAME} (page)")
    for sql, message in {
        f"CREATE UNIQUE INDEX u ON {FRAME} (event_id)": "uniqueness",
        f"CREATE INDEX e ON {FRAME} ((event_id + 1))": "expression",
        f"CREATE INDEX p ON {FRAME} (event_id) WHERE event_id > 1": "partial",
        f"CREATE INDEX n ON {FRAME} (nope)": "nope",
        f"CREATE INDEX c ON {FRAME} (country)": "partitions",
    }.items():
        with pytest.raises(apiary.ApiaryError, match=message):
            ap.query(sql)
    assert ap.get_frame("analytics", "events", "clicks")["indexes"] == [
        {"name": "clicks_user", "columns": ["user_id", "duration_ms"]}
    ]
    # OPTIMIZE compacts the twelve cells into one per partition; with an
    # index it Z-orders them, which rewrites them again on the next OPTIMIZE
    # (plain compaction would find nothing to do).
    first = ap.query(f"OPTIMIZE {FRAME}").to_pylist()[0]
    assert (first["files_removed"], first["files_added"]) == (12, 3)
    second = ap.query(f"OPTIMIZE {FRAME}").to_pylist()[0]
    assert (second["files_removed"], second["files_added"]) == (3, 3)
    assert content(ap) == before
    assert sorted(delta_table(storage, delta_storage_options).to_pandas()["event_id"]) == list(range(12))
    assert [r[0] for r in duckdb_rows(ap, delta_storage_options, "event_id")] == list(range(12))
    ap.query("DROP INDEX analytics.events.clicks_user")
    with pytest.raises(apiary.ApiaryError, match="does not exist"):
        ap.query("DROP INDEX analytics.events.clicks_user")
    ap.query("DROP INDEX IF EXISTS analytics.events.clicks_user")
    assert ap.get_frame("analytics", "events", "clicks")["indexes"] == []
    third = ap.query(f"OPTIMIZE {FRAME}").to_pylist()[0]
    assert (third["files_removed"], third["files_added"]) == (0, 0)


def test_lifecycle_over_the_wire(storage):
    port = free_port()
    proc = start_server(storage, f"127.0.0.1:{port}")
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=analyst dbname=default", autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id BIGINT NOT NULL, v TEXT)")
            conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
            cur = conn.execute(
                "MERGE INTO t USING (VALUES (2, 'B'), (3, 'c')) AS s(id, v) ON t.id = s.id "
                "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)"
            )
            assert cur.statusmessage == "MERGE 2"
            assert conn.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "B"), (3, "c")]
            assert conn.execute("RESTORE t TO VERSION 1").fetchone()[2] == 3
            assert conn.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "a"), (2, "b")]
            assert conn.execute("ALTER TABLE t ADD COLUMN n INT").statusmessage == "ALTER TABLE"
            assert conn.execute("CREATE INDEX t_v ON t (v)").statusmessage == "CREATE INDEX"
            assert conn.execute(
                "SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes WHERE tablename = 't'"
            ).fetchall() == [("default", "t", "t_v", "CREATE INDEX t_v ON default.t USING zorder (v)")]
            # psql's `\d t` and pgJDBC read indexes from pg_index and pg_class.
            assert conn.execute(
                "SELECT ci.relname, ci.relkind, i.indkey, i.indisunique, pg_get_indexdef(i.indexrelid), ct.relhasindex "
                "FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_class ct ON ct.oid = i.indrelid "
                "WHERE ct.relname = 't'"
            ).fetchall() == [("t_v", "i", "2", False, "CREATE INDEX t_v ON default.t USING zorder (v)", True)]
            assert conn.execute("DROP INDEX t_v").statusmessage == "DROP INDEX"
            assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 't'").fetchone() == (0,)
            assert conn.execute("SELECT * FROM t ORDER BY id").fetchall() == [(1, "a", None), (2, "b", None)]
            errors = {
                "MERGE INTO t USING (SELECT NULL::bigint AS id) s ON t.id = s.id "
                "WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)": psycopg.errors.NotNullViolation,
                "MERGE INTO t USING (SELECT 1 AS id UNION ALL SELECT 1) s ON t.id = s.id "
                "WHEN MATCHED THEN UPDATE SET v = 'x'": psycopg.errors.CardinalityViolation,
                "ALTER TABLE t DROP COLUMN v": psycopg.errors.FeatureNotSupported,
                "CREATE UNIQUE INDEX u ON t (id)": psycopg.errors.FeatureNotSupported,
                "DROP INDEX nope": psycopg.errors.UndefinedObject,
            }
            for sql, error in errors.items():
                with pytest.raises(error):
                    conn.execute(sql)
            # MERGE and RESTORE commit on their own: not inside a block.
            with conn.transaction():
                with pytest.raises(psycopg.errors.ActiveSqlTransaction):
                    conn.execute("MERGE INTO t USING t AS s ON t.id = s.id WHEN MATCHED THEN DELETE")
                raise psycopg.Rollback()
            with conn.transaction():
                with pytest.raises(psycopg.errors.ActiveSqlTransaction):
                    conn.execute("RESTORE t TO VERSION 1")
                raise psycopg.Rollback()
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (2,)
    finally:
        stop_server(proc)


WRITER = """
import json, sys, time
from apiary import Apiary
from test_sdk import rows
storage, index, commits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Apiary(f"writer{index}", storage=storage) as ap:
    for k in range(commits):
        start = index * 100_000 + k * 5
        ap.write_to_frame("analytics", "events", "clicks", rows(5, start=start))
        print(json.dumps(list(range(start, start + 5))), flush=True)
        time.sleep(0.5)
"""

READER = """
import sys, time
from apiary import Apiary
storage, until = sys.argv[1], float(sys.argv[2])
with Apiary("reader", storage=storage) as ap:
    reads = 0
    while time.time() < until:
        ap.query("SELECT count(*) FROM analytics.events.clicks").to_pylist()
        ap.query("SELECT country, count(*), avg(duration_ms) FROM analytics.events.clicks GROUP BY country").to_pylist()
        reads += 1
    print(reads, flush=True)
"""


def test_maintenance_while_four_write_and_two_read(s3_env, tmp_path, monkeypatch, delta_storage_options):
    """OPTIMIZE and VACUUM (with a retention of a few seconds) run again and
    again, and automatic maintenance every second, while four processes
    append and two query one S3 frame: every acknowledged row is there
    exactly once, no reader fails, and every cell the newest version
    references exists."""
    import os
    import subprocess
    import sys

    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{tmp_path.name}"
    monkeypatch.setenv("APIARY_AUTO_MAINTENANCE", "on")
    monkeypatch.setenv("APIARY_MAINTENANCE_INTERVAL", "1s")
    # Low, so that the maintainer finds work between the OPTIMIZEs below.
    monkeypatch.setenv("APIARY_MAINTENANCE_SMALL_CELLS", "2")
    with apiary.Apiary("maintainer", storage=storage) as ap:
        ap.create_hive("analytics")
        ap.create_box("analytics", "events")
        from test_sdk import SCHEMA

        ap.create_frame("analytics", "events", "clicks", SCHEMA, partition_by=["country"])
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
        writers = [
            subprocess.Popen([sys.executable, "-c", WRITER, storage, str(i), "12"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(4)
        ]
        until = time.time() + 60
        readers = [
            subprocess.Popen([sys.executable, "-c", READER, storage, str(until)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        monkeypatch.setenv("APIARY_VACUUM_RETENTION_CHECK", "off")
        # Rounds go on for 12 s after the last append, so that VACUUM
        # deletes what earlier OPTIMIZEs replaced while the readers read.
        rounds = deleted = 0
        last_append = time.time()
        while time.time() < last_append + 12:
            if any(w.poll() is None for w in writers):
                last_append = time.time()
            # Waits while automatic maintenance holds the frame's rewrite lease.
            ap.query("OPTIMIZE analytics.events.clicks")
            deleted += ap.query("VACUUM analytics.events.clicks RETAIN 0.002 HOURS").num_rows  # 7.2 s
            rounds += 1
            time.sleep(0.5)
        acknowledged = []
        for w in writers:
            out, err = w.communicate(timeout=120)
            assert w.returncode == 0, err
            acknowledged += [i for line in out.splitlines() for i in json.loads(line)]
        for r in readers:
            out, err = r.communicate(timeout=120)
            assert r.returncode == 0, err
            assert int(out) > 0
        assert len(acknowledged) == 4 * 12 * 5
        got = ap.query("SELECT event_id FROM analytics.events.clicks").column(0).to_pylist()
        assert sorted(got) == sorted(acknowledged)
        # deltalake reads every cell of the newest version: none was deleted.
        uri = storage + "/analytics/events/clicks"
        table = DeltaTable(uri, storage_options=delta_storage_options(uri))
        assert sorted(table.to_pandas()["event_id"]) == sorted(acknowledged)
        assert [r[0] for r in duckdb_delta_rows(uri, delta_storage_options, "event_id")] == sorted(acknowledged)
        assert rounds >= 2 and deleted > 0, (rounds, deleted)
        writers = {r["writer"] or "" for r in ap.query("DESCRIBE HISTORY analytics.events.clicks").to_pylist()}
        assert any(w.startswith("auto-maintenance@") for w in writers), writers


INSERTER = """
import json, sys, time
import apiary
from apiary import Apiary
storage, index, commits = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
frame = "w"
with Apiary(f"inserter{index}", storage=storage) as ap:
    for k in range(commits):
        i = index * 1000 + k
        for attempt in range(20):
            try:
                ap.query(f"INSERT INTO analytics.events.{frame} VALUES ({i}, 'x')")
                break
            except apiary.ApiaryError as e:
                # The frame was renamed, or a change of its schema won the
                # race to commit: neither wrote the row, so write it again.
                if "not found" in str(e) or "does not exist" in str(e):
                    frame = "w2"
                time.sleep(0.05)
        else:
            raise SystemExit(f"row {i} never committed")
        print(json.dumps(i), flush=True)
        time.sleep(0.05)
"""


def test_appends_racing_a_widening_and_a_rename_lose_nothing(s3_env, tmp_path):
    """Three processes insert while the frame's column is widened (a rewrite
    of every cell) and then the frame is renamed: every acknowledged row is
    there exactly once, in the wider type, under the new name."""
    import os
    import subprocess
    import sys

    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{tmp_path.name}"
    with apiary.Apiary("changer", storage=storage) as ap:
        ap.create_hive("analytics")
        ap.create_box("analytics", "events")
        ap.query("CREATE TABLE analytics.events.w (id INTEGER NOT NULL, k TEXT)")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")]))
        inserters = [
            subprocess.Popen([sys.executable, "-c", INSERTER, storage, str(i), "40"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(3)
        ]
        while ap.query("SELECT count(*) AS n FROM analytics.events.w").to_pylist()[0]["n"] < 10:
            time.sleep(0.1)
        ap.query("ALTER TABLE analytics.events.w ALTER COLUMN id TYPE BIGINT")
        ap.query("ALTER TABLE analytics.events.w RENAME TO w2")
        # Both changes ran while rows were still being appended.
        assert any(w.poll() is None for w in inserters)
        acknowledged = []
        for w in inserters:
            out, err = w.communicate(timeout=300)
            assert w.returncode == 0, err
            acknowledged += [json.loads(line) for line in out.splitlines()]
        assert len(acknowledged) == 3 * 40
        got = ap.query("SELECT id FROM analytics.events.w2").column(0).to_pylist()
        assert sorted(got) == sorted(acknowledged)
        assert ap.query("SELECT arrow_typeof(id) AS t FROM analytics.events.w2 LIMIT 1").to_pylist() == [{"t": "Int64"}]


def test_optimize_where_compacts_the_selected_partitions(ap, storage, delta_storage_options):
    for i in range(12):
        ap.write_to_frame("analytics", "events", "clicks", rows(1, start=i))
    before = content(ap)
    done = ap.query(f"OPTIMIZE {FRAME} WHERE country = 'us'").to_pylist()[0]
    # Four of the twelve single-row cells are in country=us.
    assert (done["files_removed"], done["files_added"]) == (4, 1)
    assert ap.get_frame("analytics", "events", "clicks")["cells"] == 9
    done = ap.query(f"OPTIMIZE {FRAME} WHERE country != 'us' AND country >= 'a'").to_pylist()[0]
    assert (done["files_removed"], done["files_added"]) == (8, 2)
    assert content(ap) == before
    assert sorted(delta_table(storage, delta_storage_options).to_pandas()["event_id"]) == list(range(12))
    with pytest.raises(apiary.ApiaryError, match="not a partition column"):
        ap.query(f"OPTIMIZE {FRAME} WHERE user_id = 'user_1'")
    with pytest.raises(apiary.ApiaryError, match="WHERE column = 'value'"):
        ap.query(f"OPTIMIZE {FRAME} WHERE country IN ('us')")


def test_automatic_maintenance_compacts_frames_of_small_cells(storage, monkeypatch):
    monkeypatch.setenv("APIARY_MAINTENANCE_INTERVAL", "1s")
    monkeypatch.setenv("APIARY_MAINTENANCE_SMALL_CELLS", "6")
    from test_sdk import SCHEMA

    def frame_of_small_cells(ap) -> list:
        ap.create_hive("analytics")
        ap.create_box("analytics", "events")
        ap.create_frame("analytics", "events", "clicks", SCHEMA)
        ap.query("CREATE INDEX clicks_user ON analytics.events.clicks (user_id)")
        for i in range(8):
            ap.write_to_frame("analytics", "events", "clicks", rows(1, start=i))
        return content(ap)

    monkeypatch.setenv("APIARY_AUTO_MAINTENANCE", "off")
    with apiary.Apiary("idle", storage=storage + "/off") as ap:
        frame_of_small_cells(ap)
        time.sleep(3)
        assert ap.get_frame("analytics", "events", "clicks")["cells"] == 8
    monkeypatch.setenv("APIARY_AUTO_MAINTENANCE", "on")
    with apiary.Apiary("tidy", storage=storage + "/on") as ap:
        before = frame_of_small_cells(ap)
        deadline = time.time() + 30
        while ap.get_frame("analytics", "events", "clicks")["cells"] > 1 and time.time() < deadline:
            time.sleep(0.5)
        assert ap.get_frame("analytics", "events", "clicks")["cells"] == 1
        assert content(ap) == before
        newest = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]
        assert newest["operation"] == "OPTIMIZE"
        assert newest["writer"].startswith("auto-maintenance@")
    monkeypatch.setenv("APIARY_AUTO_MAINTENANCE", "sometimes")
    with pytest.raises(apiary.ApiaryError, match="APIARY_AUTO_MAINTENANCE"):
        apiary.Apiary("bad", storage=storage + "/bad").start()


def test_rewrites_at_once_do_not_duplicate_rows(ap, storage):
    """UPDATEs, DELETEs and an overwrite from one node while another node
    compacts the same frame again and again: a compaction and a rewrite of
    the same cells never both commit (delta-rs alone lets them, and the
    rows of those cells would be there twice)."""
    import threading

    for i in range(6):
        ap.write_to_frame("analytics", "events", "clicks", rows(4, start=4 * i))
    errors: list = []
    done = threading.Event()

    def compact() -> None:
        with apiary.Apiary("compactor", storage=storage) as other:
            while not done.is_set():
                try:
                    other.query(f"OPTIMIZE {FRAME}")
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(e)
                    return

    thread = threading.Thread(target=compact)
    thread.start()
    try:
        for round in range(5):
            ap.query(f"UPDATE {FRAME} SET duration_ms = duration_ms + 1 WHERE event_id % 2 = 0")
            ap.write_to_frame("analytics", "events", "clicks", rows(1, start=100 + round))
            ap.query(f"DELETE FROM {FRAME} WHERE event_id = {100 + round}")
    finally:
        done.set()
        thread.join(timeout=120)
    assert not errors, errors
    got = {r["event_id"]: r["duration_ms"] for r in content(ap)}
    assert len(content(ap)) == 24
    assert got == {i: 100 + i + (5 if i % 2 == 0 else 0) for i in range(24)}


DIFFERENTIAL = [
    "CREATE TABLE lifecycle_t (id BIGINT NOT NULL, v TEXT)",
    "INSERT INTO lifecycle_t VALUES (1, 'a'), (2, 'b')",
    "MERGE INTO lifecycle_t t USING (VALUES (2, 'B'), (3, 'c')) AS s(id, v) ON t.id = s.id "
    "WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.v)",
    "MERGE INTO lifecycle_t t USING (VALUES (1)) AS s(id) ON t.id = s.id WHEN MATCHED AND t.v = 'a' THEN DELETE",
    # A NULL into a NOT NULL column, a value of another type, an unknown
    # column, two source rows for one target row, a subquery without an alias.
    "MERGE INTO lifecycle_t t USING (SELECT NULL::bigint AS id) s ON t.id = s.id "
    "WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)",
    "MERGE INTO lifecycle_t t USING (SELECT 'x'::text AS id) s ON t.id::text = s.id "
    "WHEN NOT MATCHED THEN INSERT (id) VALUES (s.id)",
    "MERGE INTO lifecycle_t t USING (SELECT 1 AS id) s ON t.id = s.nope WHEN MATCHED THEN DELETE",
    "MERGE INTO lifecycle_t t USING (SELECT 2 AS id UNION ALL SELECT 2) s ON t.id = s.id "
    "WHEN MATCHED THEN UPDATE SET v = 'x'",
    "MERGE INTO lifecycle_t t USING (SELECT 2 AS id UNION ALL SELECT 2) s ON t.id = s.id "
    "WHEN MATCHED THEN DELETE",
    "MERGE INTO lifecycle_t t USING (SELECT 1 AS id) ON true WHEN MATCHED THEN DELETE",
    "ALTER TABLE lifecycle_t ADD COLUMN n INTEGER",
    "ALTER TABLE lifecycle_t ADD COLUMN IF NOT EXISTS n BIGINT",
    "ALTER TABLE lifecycle_t ADD COLUMN n INTEGER",
    "UPDATE lifecycle_t SET n = id + 1",
    "CREATE INDEX lifecycle_v ON lifecycle_t (v)",
    "CREATE INDEX lifecycle_v ON lifecycle_t (n)",
    "CREATE INDEX IF NOT EXISTS lifecycle_v ON lifecycle_t (n)",
    "DROP INDEX lifecycle_v",
    "DROP INDEX lifecycle_v",
    "DROP INDEX IF EXISTS lifecycle_v",
    "SELECT id, v, n FROM lifecycle_t ORDER BY id",
    "ALTER TABLE lifecycle_t ALTER COLUMN n TYPE BIGINT",
    "ALTER TABLE lifecycle_t ALTER COLUMN n SET DATA TYPE BIGINT",
    "ALTER TABLE lifecycle_t ALTER COLUMN nope TYPE BIGINT",
    "INSERT INTO lifecycle_t VALUES (9, 'z', 5000000000)",
    "ALTER TABLE lifecycle_t RENAME TO lifecycle_r",
    "SELECT count(*) FROM lifecycle_t",
    "SELECT id, v, n FROM lifecycle_r ORDER BY id",
    "ALTER TABLE lifecycle_r RENAME TO lifecycle_r",
    "ALTER TABLE lifecycle_nope RENAME TO lifecycle_x",
    "ALTER TABLE IF EXISTS lifecycle_nope RENAME TO lifecycle_x",
    "ALTER TABLE lifecycle_r RENAME TO lifecycle_t",
    "SELECT id, v, n FROM lifecycle_t ORDER BY id",
]


def test_lifecycle_statements_answer_as_postgresql_does(storage, postgres):
    """The statements both systems have give the same command tags, the same
    SQLSTATEs for the same mistakes, and the same rows, on PostgreSQL and
    over Apiary's wire."""
    def run(conninfo: str) -> list:
        outcomes = []
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS lifecycle_t")
            for sql in DIFFERENTIAL:
                try:
                    cur = conn.execute(sql)
                    rows = cur.fetchall() if cur.description else None
                    outcomes.append((sql, cur.statusmessage, rows))
                except psycopg.Error as e:
                    outcomes.append((sql, e.sqlstate, None))
        return outcomes

    expected = run(postgres)
    port = free_port()
    proc = start_server(storage, f"127.0.0.1:{port}")
    try:
        got = run(f"host=127.0.0.1 port={port} user=analyst dbname=default")
    finally:
        stop_server(proc)
    assert got == expected


def test_a_node_reads_what_others_committed_since_its_last_read(ap, storage):
    """A node keeps the newest state of each frame it read between queries.
    Another node's commits, and a frame dropped and created again under the
    same name up to the same version, show at the next read."""
    from test_sdk import SCHEMA

    def event_ids(node) -> list[int]:
        return [r["event_id"] for r in node.query(f"SELECT event_id FROM {FRAME} ORDER BY 1").to_pylist()]

    with apiary.Apiary("other", storage=storage) as other:
        ap.write_to_frame("analytics", "events", "clicks", rows(3))
        ap.write_to_frame("analytics", "events", "clicks", rows(1, start=3))
        assert event_ids(ap) == [0, 1, 2, 3]
        other.write_to_frame("analytics", "events", "clicks", rows(2, start=10))
        assert event_ids(ap) == [0, 1, 2, 3, 10, 11]
        assert event_ids(ap) == [0, 1, 2, 3, 10, 11]

        version = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["version"]
        other.drop_frame("analytics", "events", "clicks")
        other.create_frame("analytics", "events", "clicks", SCHEMA, partition_by=["country"])
        for i in range(version):
            other.write_to_frame("analytics", "events", "clicks", rows(1, start=100 + i))
        assert other.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]["version"] == version
        assert event_ids(ap) == [100 + i for i in range(version)]
