"""The multi-node swarm tutorial, for real: three `apiary serve` processes
and this Python client share one S3 root (SeaweedFS) and nothing else."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

import apiary
from apiary import Apiary

APIARY = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/apiary/target")) / "debug" / "apiary"

QUERIES = [
    "SELECT page, COUNT(*) AS visits, AVG(duration_ms) AS avg_duration FROM analytics.events.clicks GROUP BY page ORDER BY visits DESC, page",
    "SELECT country, COUNT(*) AS events, AVG(duration_ms) AS avg_duration FROM analytics.events.clicks GROUP BY country ORDER BY events DESC, country",
    "SELECT COUNT(*) AS n, SUM(duration_ms) AS total FROM analytics.events.clicks WHERE country IN ('us', 'de') OR page = '/docs'",
    "SELECT event_id, user_id FROM analytics.events.clicks WHERE duration_ms > 29900 ORDER BY event_id",
    "SELECT user_id, MAX(duration_ms) AS longest FROM analytics.events.clicks GROUP BY user_id ORDER BY longest DESC, user_id LIMIT 5",
    "SELECT a.country, COUNT(*) AS pairs FROM analytics.events.clicks a JOIN analytics.events.clicks b ON a.event_id = b.event_id AND a.country = b.country GROUP BY a.country ORDER BY a.country",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Swarm:
    """`apiary serve` processes on one root."""

    def __init__(self, root: str):
        self.root = root
        self.procs: list[subprocess.Popen] = []

    def start_node(self, **extra_env: str) -> subprocess.Popen:
        listen = f"127.0.0.1:{free_port()}"
        env = dict(os.environ, APIARY_STORAGE=self.root, APIARY_LISTEN=listen, **extra_env)
        proc = subprocess.Popen([str(APIARY), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        proc.listen = listen  # what its heartbeat announces
        self.procs.append(proc)
        return proc

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def fresh_root(s3_env, label: str) -> str:
    return f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{label}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def running_swarm(root: str, *servers: dict):
    """One `apiary serve` per entry of `servers` (its extra environment),
    then this process's client, all on `root`; everything stops after."""
    nodes = Swarm(root)
    for env in servers:
        nodes.start_node(**env)
    ap = Apiary("swarm", storage=root)
    try:
        ap.start()
        yield nodes, ap
    finally:
        ap.shutdown()
        nodes.stop()


@pytest.fixture
def swarm(s3_env):
    with running_swarm(fresh_root(s3_env, "swarm"), {}, {}, {}) as running:
        yield running


def wait_for(predicate, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def alive(ap: Apiary) -> int:
    return ap.swarm_status()["alive"]


def write_clicks(ap: Apiary) -> pa.Table:
    ap.create_hive("analytics")
    ap.create_box("analytics", "events")
    ap.create_frame("analytics", "events", "clicks", {
        "event_id": "int64", "user_id": "utf8", "page": "utf8", "duration_ms": "int64", "country": "utf8",
    }, partition_by=["country"])
    rng = random.Random(7)
    countries = ["us", "uk", "de", "fr", "jp", "br", "au", "ca"]
    pages = ["/home", "/products", "/about", "/pricing", "/docs", "/blog"]
    table = pa.table({
        "event_id": list(range(10000)),
        "user_id": [f"user_{rng.randint(1, 500)}" for _ in range(10000)],
        "page": [rng.choice(pages) for _ in range(10000)],
        "duration_ms": [rng.randint(100, 30000) for _ in range(10000)],
        "country": [rng.choice(countries) for _ in range(10000)],
    })
    result = ap.write_to_frame("analytics", "events", "clicks", table)
    assert result["rows_written"] == 10000
    assert result["cells_written"] >= 8
    return table


def task_rows(ap: Apiary, query: str):
    df = ap.query(f"EXPLAIN ANALYZE {query}").to_pandas()
    return df[df.task.str.startswith("s")]


def test_tutorial_steps_4_to_9_across_four_nodes(swarm):
    nodes, ap = swarm
    wait_for(lambda: alive(ap) == 4, 10, "3 servers and the client to be alive")
    status = ap.swarm_status()
    assert status["total_bees"] == sum(n["bees"] for n in status["nodes"])
    assert all(n["state"] == "alive" and n["cores"] >= 1 and n["memory_gb"] > 0 for n in status["nodes"])
    assert sum(n["this_node"] for n in status["nodes"]) == 1

    table = write_clicks(ap)
    df = table.to_pandas()

    by_page = ap.query(QUERIES[0]).to_pandas()
    expected = df.groupby("page").agg(visits=("event_id", "count"), avg_duration=("duration_ms", "mean"))
    for row in by_page.itertuples():
        assert row.visits == expected.loc[row.page, "visits"]
        assert float(row.avg_duration) == pytest.approx(expected.loc[row.page, "avg_duration"])
    by_country = ap.query(QUERIES[1]).to_pandas()
    assert dict(zip(by_country.country, by_country.events)) == df.country.value_counts().to_dict()

    tasks = task_rows(ap, "SELECT country, COUNT(*) FROM analytics.events.clicks GROUP BY country")
    assert tasks.node.nunique() >= 3, tasks
    assert tasks.cells.sum() >= 8

    # Nodes cache the cells they read and announce them; the next run of
    # the query goes back to them and reads from local disk.
    wait_for(lambda: sum(n["cached_cells"] for n in ap.swarm_status()["nodes"]) >= 8, 10,
             "the nodes to announce the cells they cached")
    again = task_rows(ap, "SELECT country, COUNT(*) FROM analytics.events.clicks GROUP BY country")
    assert again.cached_cells.sum() == again.cells.sum(), again
    assert (again.cached_cells + again.fetched_cells == again.cells).all()

    # Step 7: a fourth server joins with no configuration and gets work.
    newcomer = nodes.start_node()
    wait_for(lambda: alive(ap) == 5, 15, "the new server to be alive")
    new_id = next(n["node_id"] for n in ap.swarm_status()["nodes"]
                  if n["node_id"] not in set(tasks.node) and not n["this_node"])
    tasks = task_rows(ap, "SELECT country, COUNT(*) FROM analytics.events.clicks GROUP BY country")
    assert new_id in set(tasks.node), (new_id, tasks)
    assert newcomer.poll() is None

    shown = ap.query("SHOW SWARM").to_pylist()
    assert len(shown) == 5 and all(row["state"] == "alive" for row in shown)
    assert {row["node_id"] for row in shown} == {n["node_id"] for n in ap.swarm_status()["nodes"]}
    assert ap.query("SHOW COLONY").to_pylist()[0]["regulation"] in {"cold", "ideal", "warm", "hot", "critical"}

    colony = ap.colony_status()
    assert 0.0 <= colony["temperature"] <= 1.0
    assert colony["regulation"] in {"cold", "ideal", "warm", "hot", "critical"}
    assert colony["abandoned_tasks"] == 0


def test_distributed_answers_equal_local_answers(swarm, monkeypatch):
    nodes, ap = swarm
    wait_for(lambda: alive(ap) == 4, 10, "the swarm")
    write_clicks(ap)
    monkeypatch.setenv("APIARY_DISTRIBUTE_MIN_CELLS", "1000000")
    local = Apiary("local", storage=nodes.root)
    local.start()
    try:
        for query in QUERIES:
            distributed, alone = ap.query(query), local.query(query)
            assert distributed.column_names == alone.column_names, query
            assert distributed.num_rows == alone.num_rows, query
            for got, want in zip(distributed.to_pylist(), alone.to_pylist()):
                for column, value in want.items():
                    # AVG sums floats, so the order partial results arrive
                    # in may change the last bits.
                    if isinstance(value, float):
                        assert got[column] == pytest.approx(value, rel=1e-12), query
                    else:
                        assert got[column] == value, query
        assert task_rows(ap, QUERIES[1]).node.nunique() >= 3
        assert task_rows(local, QUERIES[1]).empty
        # Cached cells are never served for data that changed: an overwrite
        # writes new cells, and every node answers from them.
        ap.overwrite_frame("analytics", "events", "clicks", pa.table({
            "event_id": [1, 2, 3], "user_id": ["u", "u", "v"], "page": ["/", "/", "/"],
            "duration_ms": [5, 6, 7], "country": ["us", "de", "us"],
        }))
        for node in (ap, local):
            got = node.query("SELECT country, SUM(duration_ms) AS s FROM analytics.events.clicks GROUP BY country ORDER BY country")
            assert got.to_pydict() == {"country": ["de", "us"], "s": [6, 12]}
    finally:
        local.shutdown()


def test_a_killed_worker_does_not_break_queries_and_is_reported_dead(swarm):
    nodes, ap = swarm
    wait_for(lambda: alive(ap) == 4, 10, "the swarm")
    table = write_clicks(ap)
    expected = dict(zip(*table.group_by("country").aggregate([("event_id", "count")]).to_pydict().values()))
    nodes.procs[0].send_signal(signal.SIGKILL)
    nodes.procs[0].wait()
    killed_at = time.time()
    # The victim still looks alive for a few seconds: it gets tasks, and the
    # coordinator must notice and reassign them.
    got = ap.query("SELECT country, COUNT(*) AS n FROM analytics.events.clicks GROUP BY country").to_pydict()
    assert dict(zip(got["country"], got["n"])) == expected
    wait_for(lambda: ap.swarm_status()["dead"] == 1, 15 - (time.time() - killed_at), "the killed node to be dead")
    assert ap.swarm_status()["alive"] == 3


def test_a_stopped_server_deletes_its_heartbeat(swarm):
    nodes, ap = swarm
    wait_for(lambda: alive(ap) == 4, 10, "the swarm")
    nodes.procs[1].send_signal(signal.SIGTERM)
    assert nodes.procs[1].wait(timeout=30) == 0
    wait_for(lambda: ap.swarm_status()["alive"] == 3 and ap.swarm_status()["dead"] == 0, 6, "the node to leave")


# A full sort: each task sorts its cells, which needs the sort's memory
# reservation (10 MB by default) — more than a 1 MiB bee has.
SORTED = "SELECT k, v FROM analytics.events.numbers ORDER BY v DESC, k"


def write_numbers(ap: Apiary) -> None:
    ap.query("CREATE SCHEMA IF NOT EXISTS analytics.events")
    ap.query("CREATE TABLE analytics.events.numbers (k BIGINT, v BIGINT, part INT) PARTITIONED BY (part)")
    ap.query("INSERT INTO analytics.events.numbers SELECT i, (i * 7919) % 1000003, CAST(i % 8 AS INT) "
             "FROM generate_series(1, 2000000) AS s(i)")


STARVED = {"APIARY_BEE_MEMORY": "1MiB"}


@pytest.fixture
def starved_swarm(s3_env):
    """The client plus two servers with room to work and one whose bees have
    1 MiB each: too little for the sorts below, so its tasks fail."""
    with running_swarm(fresh_root(s3_env, "starved"), STARVED, {}, {}) as running:
        yield running


def test_tasks_that_fail_on_one_node_are_reassigned_and_the_answer_is_right(starved_swarm):
    nodes, ap = starved_swarm
    wait_for(lambda: alive(ap) == 4, 10, "the swarm")
    ap.create_hive("analytics")
    write_numbers(ap)
    expected = sorted(((i, (i * 7919) % 1000003) for i in range(1, 2000001)), key=lambda kv: (-kv[1], kv[0]))[:5]
    got = ap.query(SORTED)
    assert got.num_rows == 2000000
    top = got.slice(0, 5).to_pydict()
    assert list(zip(top["k"], top["v"])) == expected
    tasks = task_rows(ap, SORTED)
    retried = tasks[tasks.attempts > 1]
    assert not retried.empty, tasks
    assert tasks.node.nunique() >= 2
    assert ap.colony_status()["abandoned_tasks"] == 0


def test_a_task_failing_everywhere_fails_the_query_with_every_attempt(s3_env):
    with running_swarm(fresh_root(s3_env, "starved"), STARVED, STARVED, STARVED) as (nodes, ap):
        wait_for(lambda: alive(ap) == 4, 10, "the swarm")
        ap.create_hive("analytics")
        write_numbers(ap)
        with pytest.raises(apiary.ApiaryError) as failure:
            ap.query(SORTED)
        message = str(failure.value)
        assert "abandoned after 3 attempts" in message, message
        assert all(f"attempt {n} on " in message for n in (1, 2, 3)), message
        assert "Resources exhausted" in message
        assert ap.colony_status()["abandoned_tasks"] >= 1
        # The node keeps serving.
        assert ap.query("SELECT COUNT(*) AS n FROM analytics.events.numbers").to_pydict() == {"n": [2000000]}


def test_a_worker_that_cannot_read_cells_never_gives_a_wrong_answer(tmp_path, monkeypatch):
    """A server whose credentials may use `_apiary/` (heartbeats, inbox,
    results) but not the frames joins the swarm and is handed tasks; every
    read of a cell is refused (AccessDenied), so its tasks are reassigned."""
    import s3server  # tests/, on the path through conftest.py

    prefix = "limited"
    worker = {
        "name": "worker",
        "credentials": [{"accessKey": "worker", "secretKey": "worker-secret"}],
        "actions": [f"Read:{s3server.BUCKET}/{prefix}/_apiary/*", f"Write:{s3server.BUCKET}/{prefix}/_apiary/*",
                    f"List:{s3server.BUCKET}"],
    }
    with s3server.running(str(tmp_path / "s3"), identities=[worker]) as env:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        root = f"s3://{env['APIARY_TEST_S3_BUCKET']}/{prefix}"
        limited_env = {"AWS_ACCESS_KEY_ID": "worker", "AWS_SECRET_ACCESS_KEY": "worker-secret"}
        with running_swarm(root, limited_env, {}, {}) as (nodes, ap):
            limited = nodes.procs[0]
            table = write_clicks(ap)
            wait_for(lambda: alive(ap) == 4, 15, "the swarm, the limited server included")
            assert limited.poll() is None
            expected = dict(zip(*table.group_by("country").aggregate([("event_id", "count")]).to_pydict().values()))
            for _ in range(2):
                got = ap.query("SELECT country, COUNT(*) AS n FROM analytics.events.clicks GROUP BY country").to_pydict()
                assert dict(zip(got["country"], got["n"])) == expected
            tasks = task_rows(ap, "SELECT country, COUNT(*) FROM analytics.events.clicks GROUP BY country")
            # The limited server was given tasks (they needed a second
            # attempt) and finished none of them.
            limited_id = next(n["node_id"] for n in ap.swarm_status()["nodes"] if n["listen"] == limited.listen)
            assert (tasks.attempts > 1).any(), tasks
            assert limited_id not in set(tasks.node), tasks
