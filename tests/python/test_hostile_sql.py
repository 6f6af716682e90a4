"""Statements that used to take a node down: each gets Postgres's SQLSTATE,
and the node keeps serving another connection while it runs."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg
import pytest

from test_gateway import dsn, start_server, stop_server, free_port

KILLERS = [
    # A deep expression tree overflowed a thread's stack and aborted the node.
    ("or_chain", "SELECT count(*) FROM (VALUES (1)) v(a) WHERE "
     + " OR ".join(f"a = {i}" for i in range(5000)), "54001"),
    ("megabyte_expression", "SELECT " + " + ".join(["a"] * 200_000) + " FROM (VALUES (1)) v(a)", "54001"),
    ("nested_calls", "SELECT " + "abs(" * 3000 + "1" + ")" * 3000, "54001"),
    # An 2 GB value was allocated, whatever the node's memory.
    ("huge_repeat", "SELECT length(repeat('x', 2100000000))", "54000"),
    ("huge_lpad", "SELECT length(lpad('x', 1000000000))", "54000"),
    # Silent wrap-around and DataFusion's codes.
    ("bigint_overflow", "SELECT 9223372036854775807::bigint + 1", "22003"),
    ("division_by_zero", "SELECT 1 / 0", "22012"),
]


def rss_mb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    port = free_port()
    proc = start_server(str(tmp_path_factory.mktemp("root")), f"127.0.0.1:{port}")
    yield proc, port
    stop_server(proc)


class Bystander(threading.Thread):
    """Another client, querying all along."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.answers = 0
        self.failures: list[str] = []
        self.answered = threading.Event()

    def answers_after(self, seen: int, timeout: float = 10) -> bool:
        """Whether it answers again after its `seen`-th answer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.failures:
            if self.answers > seen:
                return True
            time.sleep(0.01)
        return False

    def run(self) -> None:
        with psycopg.connect(dsn(self.port), autocommit=True) as conn:
            while not self.stop.is_set():
                try:
                    assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
                    self.answers += 1
                    self.answered.set()
                except Exception as e:  # noqa: BLE001 - recorded, asserted below
                    self.failures.append(repr(e))
                    return
                time.sleep(0.01)


@contextlib.contextmanager
def bystander_on(proc, port: int):
    """Another connection querying while the block runs; afterwards the
    node must be alive and the bystander never refused."""
    bystander = Bystander(port)
    bystander.start()
    assert bystander.answered.wait(10), "the other connection never answered"
    try:
        yield bystander
    finally:
        bystander.stop.set()
        bystander.join(timeout=30)
    assert proc.poll() is None, "the node died"
    assert not bystander.failures, bystander.failures


@pytest.mark.parametrize("name,sql,sqlstate", KILLERS, ids=[k[0] for k in KILLERS])
def test_killer_statement_fails_alone(node, name, sql, sqlstate):
    proc, port = node
    with bystander_on(proc, port) as bystander, psycopg.connect(dsn(port), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '20s'")
        with pytest.raises(psycopg.Error) as refused:
            conn.execute(sql).fetchall()
        assert refused.value.sqlstate == sqlstate, refused.value
        # The same connection goes on, and so does the other one.
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert bystander.answers_after(bystander.answers)
    assert rss_mb(proc.pid) < 1024, f"{name} left the node at {rss_mb(proc.pid)} MB"


RUNAWAYS = [
    # A cross join makes one batch per row of its other side without
    # yielding: its cancel waited 10 s and more.
    ("cross_join_count", "SELECT count(*) FROM generate_series(1, 1000000) a CROSS JOIN generate_series(1, 1000000) b"),
    ("cross_join_sort", "SELECT * FROM generate_series(1, 100000) a CROSS JOIN generate_series(1, 100000) b ORDER BY 1 DESC LIMIT 1"),
]


@pytest.mark.parametrize("name,sql", RUNAWAYS, ids=[r[0] for r in RUNAWAYS])
def test_a_runaway_statement_stops_at_its_timeout_and_on_cancel(node, name, sql):
    proc, port = node
    with bystander_on(proc, port) as bystander, psycopg.connect(dsn(port), autocommit=True) as conn:
        conn.execute("SET statement_timeout = '2s'")
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(sql).fetchall()
        assert time.monotonic() - started < 3.5, f"{name} ran {time.monotonic() - started:.1f}s past a 2 s timeout"
        conn.execute("SET statement_timeout = 0")
        # A cancel request (psql's Ctrl-C) stops it as soon.
        timer = threading.Timer(1.0, conn.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute(sql).fetchall()
        assert time.monotonic() - started < 2.5, f"{name} ran {time.monotonic() - started:.1f}s after its cancel"
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert bystander.answers_after(bystander.answers)


BEE_MEMORY_MB = 128
MEMORY_HOGS = [
    ("string_agg", "SELECT length(string_agg(repeat('x', 1000), ',')) FROM generate_series(1, 2000000)"),
    ("count_distinct", "SELECT count(DISTINCT repeat('x', 100) || value) FROM generate_series(1, 5000000)"),
]


def test_statements_past_the_memory_budget_fail_alone(tmp_path):
    port = free_port()
    proc = start_server(str(tmp_path / "root"), f"127.0.0.1:{port}", APIARY_BEE_MEMORY=f"{BEE_MEMORY_MB}MiB")
    try:
        with psycopg.connect(dsn(port), autocommit=True) as conn:
            bees = sum(row[4] for row in conn.execute("SHOW SWARM").fetchall() if row[-1])
            idle = rss_mb(proc.pid)
            for name, sql in MEMORY_HOGS:
                with pytest.raises(psycopg.errors.OutOfMemory, match="Resources exhausted"):
                    conn.execute(sql).fetchall()
                assert conn.execute("SELECT 1").fetchone() == (1,)
            budget = bees * BEE_MEMORY_MB
            assert rss_mb(proc.pid) < idle + budget * 1.25, f"{rss_mb(proc.pid)} MB resident, budget {budget} MB"
    finally:
        stop_server(proc)


def test_the_sdk_refuses_a_deep_expression(tmp_path):
    from apiary import Apiary, ApiaryError

    with Apiary("deep", storage=str(tmp_path / "root")) as ap:
        chain = " OR ".join(f"a = {i}" for i in range(5000))
        with pytest.raises(ApiaryError, match="too complex"):
            ap.query(f"SELECT count(*) FROM (VALUES (1)) v(a) WHERE {chain}")
        assert ap.query("SELECT 1 AS one").to_pydict() == {"one": [1]}
