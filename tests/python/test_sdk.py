"""The Python SDK contract (DESIGN §5) on a local directory and on S3."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

import apiary
from apiary import Apiary

SCHEMA = {"event_id": "int64", "user_id": "utf8", "page": "utf8", "duration_ms": "int64", "country": "utf8"}


def rows(n: int, start: int = 0) -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table(
        {
            "event_id": ids,
            "user_id": [f"user_{i % 7}" for i in ids],
            "page": [["/home", "/docs"][i % 2] for i in ids],
            "duration_ms": [100 + i for i in ids],
            "country": [["us", "de", "jp"][i % 3] for i in ids],
        }
    )


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def count(ap: Apiary, frame: str = "analytics.events.clicks") -> int:
    return ap.query(f"SELECT COUNT(*) AS n FROM {frame}").column("n")[0].as_py()


@pytest.fixture
def ap(storage):
    with Apiary("test", storage=storage) as node:
        node.create_hive("analytics")
        node.create_box("analytics", "events")
        node.create_frame("analytics", "events", "clicks", SCHEMA, partition_by=["country"])
        yield node


def test_status_dicts_have_the_documented_keys(ap, storage):
    status = ap.status()
    assert status["state"] == "running"
    assert status["storage"].rstrip("/").endswith(storage.rstrip("/").split("/")[-1])
    swarm = ap.swarm_status()
    assert swarm["alive"] == 1 and swarm["total_bees"] >= 1
    node = swarm["nodes"][0]
    assert {"node_id", "state", "cores", "memory_gb"} <= set(node)
    assert node["state"] == "alive" and node["cores"] >= 1 and node["memory_gb"] > 0
    colony = ap.colony_status()
    assert 0.0 <= colony["temperature"] <= 1.0
    assert colony["regulation"] in {"cold", "ideal", "warm", "hot", "critical"}
    assert colony["abandoned_tasks"] == 0


def test_catalog_listing_and_aliases(ap):
    assert ap.list_hives() == ["analytics", "default"]
    assert ap.list_boxes("analytics") == ["default", "events"]
    assert ap.list_frames("analytics", "events") == ["clicks"]
    ap.create_database("shop")
    ap.create_schema("shop", "sales")
    ap.create_table("shop", "sales", "orders", {"id": "int64", "amount": "decimal(10,2)"})
    assert ap.list_tables("shop", "sales") == ["orders"]
    frame = ap.get_frame("analytics", "events", "clicks")
    assert frame["partition_by"] == ["country"]
    assert [c["name"] for c in frame["schema"]] == list(SCHEMA)
    assert frame["rows"] == 0 and frame["cells"] == 0
    with pytest.raises(apiary.AlreadyExistsError, match="hive analytics already exists"):
        ap.create_hive("analytics")
    with pytest.raises(apiary.NotFoundError, match="existing hives"):
        ap.list_boxes("nope")
    with pytest.raises(apiary.NotFoundError):
        ap.get_frame("analytics", "events", "nope")


@pytest.mark.parametrize(
    "convert",
    [
        ipc,
        lambda t: t,
        lambda t: t.to_batches()[0],
        lambda t: t.to_pandas(),
        lambda t: pa.RecordBatchReader.from_batches(t.schema, t.to_batches()),
    ],
    ids=["ipc-bytes", "pyarrow-table", "record-batch", "pandas", "batch-reader"],
)
def test_every_input_kind_writes_the_same_rows(ap, convert):
    data = rows(30)
    result = ap.write_to_frame("analytics", "events", "clicks", convert(data))
    assert result["rows_written"] == 30
    assert result["cells_written"] == 3
    assert {"bytes_written", "version", "duration_ms"} <= set(result)
    back = pa.ipc.open_stream(ap.read_from_frame("analytics", "events", "clicks")).read_all()
    assert sorted(back.column("event_id").to_pylist()) == list(range(30))
    table = ap.read_table("analytics", "events", "clicks")
    assert table.num_rows == 30


def test_overwrite_replaces_everything(ap):
    ap.write_to_frame("analytics", "events", "clicks", rows(50))
    result = ap.overwrite_frame("analytics", "events", "clicks", rows(5, start=1000))
    assert result["rows_written"] == 5
    ids = ap.query("SELECT event_id FROM analytics.events.clicks ORDER BY event_id").column(0).to_pylist()
    assert ids == list(range(1000, 1005))


def test_a_write_retried_with_its_idempotency_key_commits_once(ap):
    first = ap.write_to_frame("analytics", "events", "clicks", rows(10), idempotency_key="batch-7")
    assert first["rows_written"] == 10 and not first["already_committed"]
    # The caller could not tell whether the first call committed and
    # retries it: nothing is written twice.
    again = ap.write_to_frame("analytics", "events", "clicks", rows(10), idempotency_key="batch-7")
    assert again["already_committed"] and again["rows_written"] == 0
    assert count(ap) == 10
    ap.write_to_frame("analytics", "events", "clicks", rows(5, start=100), idempotency_key="batch-8")
    assert count(ap) == 15
    with pytest.raises(apiary.ApiaryError, match="idempotency key"):
        ap.write_to_frame("analytics", "events", "clicks", rows(1), idempotency_key="x" * 300)
    assert count(ap) == 15
    assert issubclass(apiary.CommitUnknownError, apiary.StorageError)


def test_bad_writes_raise_schema_error_and_change_nothing(ap):
    ap.write_to_frame("analytics", "events", "clicks", rows(20))
    before = count(ap)
    good = rows(3)
    bad_inputs = {
        "wrong type": good.set_column(0, "event_id", pa.array(["a", "b", "c"])),
        "null partition value": good.set_column(4, "country", pa.array(["us", None, "de"])),
        "missing partition column": good.drop_columns(["country"]),
        "extra column": good.append_column("surprise", pa.array([1, 2, 3])),
        "narrowing": good.set_column(3, "duration_ms", pa.array([1.5, 2.5, 3.5])),
    }
    for what, table in bad_inputs.items():
        with pytest.raises(apiary.SchemaError) as err:
            ap.write_to_frame("analytics", "events", "clicks", table)
        assert "column" in str(err.value), what
        assert count(ap) == before, what
    with pytest.raises(apiary.SchemaError, match="not a valid Arrow IPC"):
        ap.write_to_frame("analytics", "events", "clicks", b"definitely not arrow")
    with pytest.raises(apiary.SchemaError, match="cannot write data of type dict"):
        ap.write_to_frame("analytics", "events", "clicks", {"event_id": [1]})
    assert count(ap) == before
    # Extra columns can be dropped on request; widening casts are automatic.
    widened = good.set_column(0, "event_id", pa.array([1, 2, 3], pa.int32())).append_column("x", pa.array([0, 0, 0]))
    ap.write_to_frame("analytics", "events", "clicks", widened, drop_extra_columns=True)
    assert count(ap) == before + 3


@pytest.mark.parametrize("bad", ["../evil", "a/b", "", "x'y", 'q"', "naïve", "x" * 10_000])
def test_hostile_names_are_rejected(ap, bad):
    with pytest.raises(apiary.InvalidNameError, match="names must start with a letter"):
        ap.create_hive(bad)
    with pytest.raises(apiary.InvalidNameError):
        ap.create_frame("analytics", "events", bad, SCHEMA)
    with pytest.raises(apiary.InvalidNameError):
        ap.read_from_frame("analytics", bad, "clicks")
    assert ap.list_hives() == ["analytics", "default"]


def test_sql_errors_are_typed_and_the_node_keeps_serving(ap):
    with pytest.raises(apiary.SqlError):
        ap.sql("SELEC 1")
    with pytest.raises(apiary.SqlError, match="nope"):
        ap.sql("SELECT * FROM analytics.events.nope")
    with pytest.raises(apiary.UnsupportedError, match="CREATE TABLE"):
        ap.sql("CREATE VIEW v AS SELECT 1")
    with pytest.raises(apiary.SchemaError, match="unknown type"):
        ap.create_frame("analytics", "events", "t", {"a": "varchar2"})
    assert ap.query("SELECT 1 + 1 AS two").column("two")[0].as_py() == 2


def test_frames_are_readable_by_the_deltalake_package(ap, storage, delta_storage_options):
    ap.write_to_frame("analytics", "events", "clicks", rows(100))
    ap.write_to_frame("analytics", "events", "clicks", rows(50, start=100))
    uri = storage.rstrip("/") + "/analytics/events/clicks"
    table = DeltaTable(uri, storage_options=delta_storage_options(uri))
    df = table.to_pandas()
    assert sorted(df["event_id"]) == list(range(150))
    assert table.metadata().partition_columns == ["country"]
    expected = ap.query("SELECT country, SUM(duration_ms) AS s FROM analytics.events.clicks GROUP BY country").to_pandas()
    got = df.groupby("country")["duration_ms"].sum()
    for _, row in expected.iterrows():
        assert got[row["country"]] == row["s"]


def test_sql_commands_and_explain_analyze(ap):
    ap.write_to_frame("analytics", "events", "clicks", rows(60))
    hives = pa.ipc.open_stream(ap.sql("SHOW HIVES")).read_all().column(0).to_pylist()
    assert hives == ["analytics", "default"]
    described = ap.query("DESCRIBE analytics.events.clicks").to_pylist()
    country = next(r for r in described if r["column_name"] == "country")
    assert country["partition_key"] is True and country["cells"] == 3 and country["rows"] == 60
    plan = ap.query("EXPLAIN ANALYZE SELECT country, COUNT(*) FROM analytics.events.clicks GROUP BY country")
    by_task = {row["task"]: row for row in plan.to_pylist()}
    # A solo node scans every cell itself.
    assert by_task["local scan"]["cells"] == 3 and by_task["local scan"]["rows"] == 60
    assert by_task["local scan"]["node"] == ap.status()["node_id"]
    assert by_task["total"]["rows"] == 3 and by_task["total"]["node"] == "1 node(s)"
    assert by_task["coordination overhead"]["time_ms"] >= 0


def test_solo_mode_uses_apiary_home(tmp_path, monkeypatch):
    monkeypatch.setenv("APIARY_HOME", str(tmp_path))
    with Apiary("solo") as ap:
        assert ap.status()["storage"].startswith("file://")
        ap.create_hive("h")
    assert (tmp_path / "solo" / "_apiary" / "registry").is_dir()
    with Apiary("solo") as ap:
        assert "h" in ap.list_hives()


def test_calls_before_start_raise_not_started(tmp_path):
    ap = Apiary("idle", storage=str(tmp_path))
    with pytest.raises(apiary.NotStartedError, match="start"):
        ap.sql("SELECT 1")
    assert ap.status()["state"] == "stopped"
    ap.shutdown()


def test_unreachable_storage_is_a_clear_error(s3_env):
    with pytest.raises(apiary.StorageError, match="not usable"):
        Apiary("x", storage="s3://no-such-bucket-apiary/p").start()


def test_wrong_credentials_are_a_clear_error(s3_env, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/creds"
    with pytest.raises(apiary.StorageError, match="access denied; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        Apiary("x", storage=storage).start()


def test_partition_columns_keep_their_place_and_values(storage):
    with Apiary("order", storage=storage) as ap:
        ap.create_frame("default", "default", "t", {"k": "utf8", "n": "int64", "d": "int32", "s": "utf8"}, partition_by=["k", "d"])
        data = pa.table({"k": ["a", "b", "a"], "n": [1, 2, 3], "d": pa.array([7, 8, 7], pa.int32()), "s": ["x", "y", "z"]})
        assert ap.write_to_frame("default", "default", "t", data)["cells_written"] == 2
        table = ap.query("SELECT * FROM t ORDER BY n")
        assert table.column_names == ["k", "n", "d", "s"]
        assert table.to_pylist() == data.to_pylist()
        assert ap.query("SELECT s, k FROM t WHERE d = 8").to_pylist() == [{"s": "y", "k": "b"}]
        sums = ap.query("SELECT d, SUM(n) AS total FROM t GROUP BY d ORDER BY d").to_pylist()
        assert sums == [{"d": 7, "total": 4}, {"d": 8, "total": 2}]
