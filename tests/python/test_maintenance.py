"""A frame's upkeep in SQL: OPTIMIZE compacts cells, VACUUM deletes files no
version within the retention needs, DESCRIBE HISTORY lists commits, TRUNCATE
empties a frame. Each keeps every row it should (checked through Apiary,
the deltalake package and DuckDB's Delta reader) on a local and an S3
root."""

from __future__ import annotations

import datetime
import importlib
import os
import time
from pathlib import Path

import duckdb
import psycopg
import pytest
from deltalake import DeltaTable

import apiary
from apiary import Apiary
from test_gateway import free_port, start_server, stop_server
from test_sdk import ap, rows  # noqa: F401  (ap: fixture)

FRAME = "analytics.events.clicks"


def content(ap: Apiary) -> list[tuple]:
    return sorted(ap.query(f"SELECT event_id, user_id, duration_ms, country FROM {FRAME}").to_pylist(),
                  key=lambda r: r["event_id"])


def cells(ap: Apiary) -> int:
    return ap.query(f"DESCRIBE {FRAME}").column("cells")[0].as_py()


def duckdb_delta_rows(uri: str, options, columns: str) -> list[tuple]:
    """The rows of the Delta table at `uri` as DuckDB's own Delta reader
    reads them (its extensions come from pip: nothing is downloaded)."""
    con = duckdb.connect()
    for extension in ("delta", "httpfs"):
        package = importlib.import_module(f"duckdb_extension_{extension}")
        binary = Path(package.__file__).parent / "extensions" / f"v{duckdb.__version__}"
        con.execute(f"INSTALL '{binary / extension}.duckdb_extension'")
        con.execute(f"LOAD {extension}")
    if uri.startswith("s3://"):
        s3 = options(uri)
        con.execute(
            "CREATE SECRET (TYPE s3, KEY_ID ?, SECRET ?, REGION ?, ENDPOINT ?, URL_STYLE 'path', USE_SSL false)",
            [s3["AWS_ACCESS_KEY_ID"], s3["AWS_SECRET_ACCESS_KEY"], s3["AWS_REGION"],
             s3["AWS_ENDPOINT_URL"].split("://", 1)[1]],
        )
    return con.execute(f"SELECT {columns} FROM delta_scan('{uri}') ORDER BY 1").fetchall()


def delta_rows(storage: str, options) -> list[int]:
    """The frame's event ids as the deltalake package reads them, after
    checking that DuckDB's Delta reader reads the same."""
    uri = storage.rstrip("/") + "/analytics/events/clicks"
    ids = sorted(DeltaTable(uri, storage_options=options(uri)).to_pandas()["event_id"])
    assert [r[0] for r in duckdb_delta_rows(uri, options, "event_id")] == ids
    return ids


def test_optimize_compacts_small_cells_and_keeps_every_row(ap, storage, delta_storage_options):
    for i in range(12):
        ap.write_to_frame("analytics", "events", "clicks", rows(1, start=i))
    before = content(ap)
    assert cells(ap) == 12
    done = ap.query(f"OPTIMIZE {FRAME}").to_pylist()
    # One cell per partition (us, de, jp) replaces the twelve.
    assert done[0]["files_removed"] == 12 and done[0]["files_added"] == 3, done
    assert cells(ap) == 3
    assert content(ap) == before
    assert delta_rows(storage, delta_storage_options) == list(range(12))
    # Nothing left to compact: no new version.
    again = ap.query(f"OPTIMIZE {FRAME}").to_pylist()[0]
    assert (again["files_removed"], again["files_added"], again["version"]) == (0, 0, done[0]["version"])
    # Z-order rewrites the cells in the order of the named columns.
    ap.query(f"OPTIMIZE {FRAME} ZORDER BY (user_id, duration_ms)")
    assert content(ap) == before
    with pytest.raises(apiary.ApiaryError, match="not a column"):
        ap.query(f"OPTIMIZE {FRAME} ZORDER BY (nope)")
    with pytest.raises(apiary.ApiaryError, match="ZORDER BY"):
        ap.query(f"OPTIMIZE {FRAME} ZORDER user_id")


def test_history_lists_every_commit_newest_first(ap):
    ap.write_to_frame("analytics", "events", "clicks", rows(5))
    ap.write_to_frame("analytics", "events", "clicks", rows(5, start=5))
    ap.query(f"DELETE FROM {FRAME} WHERE event_id = 1")
    ap.query(f"OPTIMIZE {FRAME}")
    history = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()
    assert [h["version"] for h in history] == list(range(len(history) - 1, -1, -1))
    assert [h["operation"] for h in history[:4]] == ["OPTIMIZE", "DELETE", "WRITE", "WRITE"]
    assert history[-1]["operation"] == "CREATE TABLE"
    assert history[2]["writer"], "an Apiary write names its writer"
    assert all(h["timestamp"] is not None for h in history)


def test_vacuum_keeps_what_readers_need_and_deletes_the_rest(ap, storage, delta_storage_options, monkeypatch):
    for i in range(6):
        ap.write_to_frame("analytics", "events", "clicks", rows(1, start=i))
    ap.query(f"OPTIMIZE {FRAME}")
    before = content(ap)
    # Within the default retention (7 days) the compacted cells are kept.
    assert ap.query(f"VACUUM {FRAME}").num_rows == 0
    with pytest.raises(apiary.ApiaryError, match="APIARY_VACUUM_RETENTION_CHECK"):
        ap.query(f"VACUUM {FRAME} RETAIN 0 HOURS")
    monkeypatch.setenv("APIARY_VACUUM_RETENTION_CHECK", "off")
    orphan = None
    if not storage.startswith("s3://"):
        # A cell a failed write left behind: in the directory, in no version.
        orphan = Path(storage) / "analytics/events/clicks/country=us/part-orphan.parquet"
        orphan.write_bytes(b"not committed")
        os.utime(orphan, (0, 0))
    listed = ap.query(f"VACUUM {FRAME} RETAIN 0 HOURS DRY RUN").column(0).to_pylist()
    assert len(listed) == 6 + (orphan is not None), listed
    assert cells(ap) == 3 and content(ap) == before
    deleted = ap.query(f"VACUUM {FRAME} RETAIN 0 HOURS").column(0).to_pylist()
    assert sorted(deleted) == sorted(listed)
    assert content(ap) == before
    assert delta_rows(storage, delta_storage_options) == list(range(6))
    if orphan is not None:
        # Only the three live cells are left in the frame's directory.
        frame_dir = Path(storage) / "analytics/events/clicks"
        left = {str(p.relative_to(frame_dir)) for p in frame_dir.glob("country=*/*")}
        assert len(left) == 3 and not orphan.exists(), left
        assert not set(deleted) & left
    with pytest.raises(apiary.ApiaryError, match="RETAIN n HOURS"):
        ap.query(f"VACUUM {FRAME} RETAIN many HOURS")


def test_truncate_empties_the_frame(ap, storage, delta_storage_options):
    ap.write_to_frame("analytics", "events", "clicks", rows(30))
    ap.query(f"TRUNCATE {FRAME}")
    assert ap.query(f"SELECT count(*) AS n FROM {FRAME}").column("n")[0].as_py() == 0
    assert delta_rows(storage, delta_storage_options) == []
    ap.write_to_frame("analytics", "events", "clicks", rows(2))
    assert [r["event_id"] for r in content(ap)] == [0, 1]


def test_maintenance_over_the_wire(storage):
    port = free_port()
    proc = start_server(storage, f"127.0.0.1:{port}")
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=analyst dbname=default", autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id BIGINT, v TEXT)")
            for i in range(3):
                conn.execute("INSERT INTO t VALUES (%s, 'x')", (i,))
            cur = conn.execute("OPTIMIZE t")
            assert cur.fetchone()[:2] == (3, 1)
            assert [r[2] for r in conn.execute("DESCRIBE HISTORY t").fetchall()[:2]] == ["OPTIMIZE", "WRITE"]
            # TRUNCATE is transactional, as in PostgreSQL; VACUUM and OPTIMIZE are not.
            with conn.transaction():
                cur = conn.execute("TRUNCATE TABLE t")
                assert cur.statusmessage == "TRUNCATE TABLE"
                assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
                with pytest.raises(psycopg.errors.ActiveSqlTransaction):
                    conn.execute("VACUUM t")
                raise psycopg.Rollback()
            assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 3
            conn.execute("TRUNCATE t")
            assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    finally:
        stop_server(proc)


def test_every_version_reads_back_what_it_held(ap, storage, delta_storage_options, monkeypatch):
    """Ten commits (appends, an overwrite, a DELETE, an UPDATE, an OPTIMIZE);
    each version then reads back exactly what it held, through SQL
    (`"clicks@vN"`, `"clicks@yyyyMMddHHmmssSSS"`) and the SDK (`version=`)."""
    held: dict[int, list] = {}
    stamps: dict[int, int] = {}

    def commit(change) -> None:
        change()
        newest = ap.query(f"DESCRIBE HISTORY {FRAME}").to_pylist()[0]
        held[newest["version"]] = content(ap)
        stamps[newest["version"]] = newest["timestamp"]

    for i in range(5):
        commit(lambda: ap.write_to_frame("analytics", "events", "clicks", rows(3, start=3 * i)))
    # Time travel by instant goes by the commit files' time in storage, which
    # an S3 server may keep to the second: leave room around this commit.
    time.sleep(2)
    commit(lambda: ap.overwrite_frame("analytics", "events", "clicks", rows(4, start=100)))
    time.sleep(2)
    commit(lambda: ap.write_to_frame("analytics", "events", "clicks", rows(2, start=200)))
    commit(lambda: ap.query(f"DELETE FROM {FRAME} WHERE event_id = 101"))
    commit(lambda: ap.query(f"UPDATE {FRAME} SET duration_ms = 1 WHERE event_id = 200"))
    commit(lambda: ap.query(f"OPTIMIZE {FRAME}"))
    assert len(held) == 10
    for version, expected in held.items():
        sql = f'SELECT event_id, user_id, duration_ms, country FROM analytics.events."clicks@v{version}"'
        assert sorted(ap.query(sql).to_pylist(), key=lambda r: r["event_id"]) == expected, version
        table = ap.read_table("analytics", "events", "clicks", version=version)
        assert sorted(table.column("event_id").to_pylist()) == [r["event_id"] for r in expected], version
    # An instant names the version current then.
    version = sorted(held)[5]
    at = stamps[version] + datetime.timedelta(milliseconds=500)
    instant = at.strftime("%Y%m%d%H%M%S") + f"{at.microsecond // 1000:03d}"
    got = ap.query(f'SELECT event_id FROM analytics.events."clicks@{instant}"').column(0).to_pylist()
    assert sorted(got) == [r["event_id"] for r in held[version]]
    with pytest.raises(apiary.ApiaryError, match="as of"):
        ap.query('SELECT * FROM analytics.events."clicks@v999"')
    with pytest.raises(apiary.ApiaryError):
        ap.query("INSERT INTO analytics.events.\"clicks@v1\" SELECT * FROM analytics.events.clicks")
    # After a VACUUM with no retention the replaced versions are gone, and
    # reading one says why; the newest still reads.
    monkeypatch.setenv("APIARY_VACUUM_RETENTION_CHECK", "off")
    ap.query(f"VACUUM {FRAME} RETAIN 0 HOURS")
    with pytest.raises(apiary.ApiaryError, match="VACUUM deleted its cells"):
        ap.query(f'SELECT count(*) FROM analytics.events."clicks@v{sorted(held)[0]}"')
    newest = max(held)
    assert content(ap) == held[newest]
    assert sorted(ap.read_table("analytics", "events", "clicks", version=newest).column("event_id").to_pylist()) == \
        [r["event_id"] for r in held[newest]]
