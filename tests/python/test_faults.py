"""Storage faults as clients meet them: a node whose S3 server stops
answering keeps accepting connections, fails statements with 58030 instead
of hanging, and serves them again once storage answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid

import psycopg
import pytest
from apiary import Apiary
from faultproxy import FaultProxy

from test_gateway import dsn, free_port, start_server, stop_server

# The share of S3 requests that fail, in the writers' tests: every kind of
# fault, including replies lost after the request took effect.
FAULT_RATE = 0.2
WRITERS = 4
WRITES = 50


class CuttableProxy(threading.Thread):
    """A TCP proxy to `target`; once `cut`, it resets every connection, as
    an unreachable or failing S3 endpoint does."""

    def __init__(self, target: tuple[str, int]):
        super().__init__(daemon=True)
        self.target = target
        self.cut = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def run(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.cut.is_set():
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    def pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self.cut.is_set():
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def proxied_node(s3_env):
    host, port = s3_env["AWS_ENDPOINT_URL"].removeprefix("http://").rsplit(":", 1)
    proxy = CuttableProxy((host, int(port)))
    proxy.start()
    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{uuid.uuid4().hex}"
    node_port = free_port()
    proc = start_server(
        storage,
        f"127.0.0.1:{node_port}",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}",
    )
    yield proxy, node_port
    proxy.cut.clear()
    proc.kill()
    proc.wait()
    proxy.listener.close()


def test_connections_survive_storage_that_stops_answering(proxied_node):
    proxy, port = proxied_node
    with psycopg.connect(dsn(port), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (x BIGINT)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
    proxy.cut.set()
    # A new connection goes on with the registry the node read last; a
    # statement, which reads the newest registry, fails cleanly and soon.
    started = time.monotonic()
    with psycopg.connect(dsn(port), autocommit=True, connect_timeout=20) as conn:
        with pytest.raises(psycopg.Error) as failed:
            conn.execute("SELECT count(*) FROM t")
        assert failed.value.sqlstate == "58030", failed.value
        assert "storage" in str(failed.value)
        # A database the node has never seen cannot be checked: 58030.
        with pytest.raises(psycopg.OperationalError, match="registry|storage"):
            psycopg.connect(dsn(port, "nosuchhive"), connect_timeout=20)
        assert time.monotonic() - started < 20
        proxy.cut.clear()
        # The same connection goes on once storage answers again.
        assert conn.execute("SELECT sum(x) FROM t").fetchone()[0] == 3


def s3_target(s3_env) -> tuple[str, int]:
    host, port = s3_env["AWS_ENDPOINT_URL"].removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def create_log_frame(storage: str) -> None:
    with Apiary("setup", storage=storage) as ap:
        ap.create_hive("load")
        ap.create_frame("load", "default", "log", {"writer": "int64", "seq": "int64", "how": "string"})


def assert_each_write_once(storage: str, expected: set) -> None:
    """Reads the frame directly (no faults): every write exactly once."""
    with Apiary("check", storage=storage) as ap:
        rows = ap.query("SELECT writer, seq, how, COUNT(*) AS n FROM load.default.log GROUP BY writer, seq, how").to_pylist()
    duplicated = [r for r in rows if r["n"] != 1]
    assert not duplicated, f"duplicated writes: {duplicated[:10]}"
    got = {(r["writer"], r["seq"], r["how"]) for r in rows}
    assert got == expected, f"lost: {sorted(expected - got)[:10]}; unexpected: {sorted(got - expected)[:10]}"


SDK_WRITER = """
import json, sys, time
import pyarrow as pa
from apiary import Apiary, ApiaryError

storage, writer, writes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raised = []
for attempt in range(50):
    try:
        ap = Apiary(f"writer{writer}", storage=storage)
        ap.start()
        break
    except ApiaryError as e:
        raised.append(f"start: {e}")
        time.sleep(0.1)
for seq in range(writes):
    table = pa.table({"writer": [writer], "seq": [seq], "how": ["sdk"]})
    for attempt in range(50):
        # What a user does: retry a write that raised, with no key.
        try:
            ap.write_to_frame("load", "default", "log", table)
            break
        except ApiaryError as e:
            raised.append(f"{type(e).__name__}: {e}")
            time.sleep(0.05)
    else:
        sys.exit(f"write {seq} kept failing: {raised[-3:]}")
ap.shutdown()
print(json.dumps(raised))
"""


def test_sdk_writers_retrying_through_faults_write_each_row_once(s3_env, tmp_path):
    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{uuid.uuid4().hex}"
    create_log_frame(storage)
    script = tmp_path / "writer.py"
    script.write_text(SDK_WRITER)
    with FaultProxy(s3_target(s3_env), rate=FAULT_RATE, seed=15) as proxy:
        env = dict(os.environ, AWS_ENDPOINT_URL=proxy.endpoint)
        procs = [
            subprocess.Popen(
                [sys.executable, str(script), storage, str(w), str(WRITES)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for w in range(WRITERS)
        ]
        raised = []
        for p in procs:
            out, err = p.communicate(timeout=900)
            assert p.returncode == 0, f"writer failed:\n{out}\n{err[-3000:]}"
            raised += json.loads(out.strip().splitlines()[-1])
        injected = sum(proxy.injected.values())
    print(f"faults injected: {dict(proxy.injected)}; errors the writers saw: {len(raised)}")
    assert injected > WRITERS * WRITES, "the proxy injected too few faults to mean anything"
    expected = {(w, s, "sdk") for w in range(WRITERS) for s in range(WRITES)}
    assert_each_write_once(storage, expected)


def sql_writer(port: int, writer: int, raised: list) -> None:
    """INSERTs and COPYs over psycopg, each retried on error, on a fresh
    connection when the old one broke."""
    conn = None
    for seq in range(WRITES):
        how = "insert" if seq % 2 == 0 else "copy"
        for attempt in range(50):
            try:
                if conn is None or conn.closed:
                    conn = psycopg.connect(dsn(port), autocommit=True, connect_timeout=30)
                if how == "insert":
                    conn.execute("INSERT INTO load.default.log VALUES (%s, %s, 'insert')", (writer, seq))
                else:
                    with conn.cursor().copy("COPY load.default.log (writer, seq, how) FROM STDIN") as copy:
                        copy.write_row((writer, seq, "copy"))
                break
            except psycopg.Error as e:
                raised.append(f"{e.sqlstate}: {e}")
                time.sleep(0.05)
        else:
            raise AssertionError(f"writer {writer}: write {seq} kept failing: {raised[-3:]}")
    conn.close()


def test_sql_writers_retrying_through_faults_write_each_row_once(s3_env):
    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{uuid.uuid4().hex}"
    create_log_frame(storage)
    with FaultProxy(s3_target(s3_env), rate=0.0, seed=16) as proxy:
        port = free_port()
        proc = start_server(storage, f"127.0.0.1:{port}", AWS_ENDPOINT_URL=proxy.endpoint, APIARY_LOG="error")
        try:
            proxy.rate = FAULT_RATE
            raised: list = []
            failures: list = []

            def run(w: int) -> None:
                try:
                    sql_writer(port, w, raised)
                except BaseException as e:  # reported below
                    failures.append(e)

            threads = [threading.Thread(target=run, args=(w,)) for w in range(WRITERS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=900)
            assert not failures, failures
            proxy.rate = 0.0
            # The node survived it all and still answers.
            with psycopg.connect(dsn(port), autocommit=True) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
            print(f"faults injected: {dict(proxy.injected)}; errors the writers saw: {len(raised)}")
            # Storage failed (58030), a conflict or an unknown outcome (40001,
            # 40003), a broken connection (08), or the node too busy with
            # slowed-down writes to admit another in time (53000).
            unexpected = [r for r in raised if not r.startswith(("58030", "40001", "40003", "08", "53000"))]
            assert not unexpected, f"errors with an unexpected SQLSTATE: {unexpected[:5]}"
        finally:
            stop_server(proc)
    expected = {(w, s, "insert" if s % 2 == 0 else "copy") for w in range(WRITERS) for s in range(WRITES)}
    assert_each_write_once(storage, expected)


SWARM_QUERY = "SELECT country, COUNT(*) AS n, SUM(x) AS total FROM load.default.points GROUP BY country ORDER BY country"
# A node that stops heartbeating is dead (and its tasks go elsewhere) after:
DEAD_AFTER_S = 4


def start_swarm_node(storage: str, endpoint: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = start_server(
        storage,
        f"127.0.0.1:{port}",
        AWS_ENDPOINT_URL=endpoint,
        APIARY_LOG="error",
        APIARY_HEARTBEAT_INTERVAL="1s",
        APIARY_DEAD_AFTER=f"{DEAD_AFTER_S}s",
        APIARY_DISTRIBUTE_MIN_CELLS="2",
    )
    return proc, port


def swarm_of_three(s3_env, proxy: FaultProxy):
    """Three `apiary serve` nodes on a frame of 8 cells, all talking to S3
    through `proxy`; returns the nodes, the expected answer and a query
    function (through the first node)."""
    storage = f"s3://{s3_env['APIARY_TEST_S3_BUCKET']}/{uuid.uuid4().hex}"
    with Apiary("setup", storage=storage) as ap:
        ap.create_hive("load")
        ap.create_frame("load", "default", "points", {"x": "int64", "country": "utf8"}, partition_by=["country"])
        import pyarrow as pa

        xs = list(range(8000))
        countries = [f"c{i % 8}" for i in xs]
        ap.write_to_frame("load", "default", "points", pa.table({"x": xs, "country": countries}))
        expected = ap.query(SWARM_QUERY).to_pylist()
    nodes = [start_swarm_node(storage, proxy.endpoint) for _ in range(3)]

    def alive() -> int:
        with psycopg.connect(dsn(nodes[0][1]), autocommit=True) as conn:
            return sum(1 for row in conn.execute("SHOW SWARM").fetchall() if row[1] == "alive")

    deadline = time.time() + 30
    while alive() < 3:
        assert time.time() < deadline, "the three nodes did not see each other"
        time.sleep(0.5)
    return nodes, expected


def timed_query(port: int) -> tuple[float, object]:
    started = time.monotonic()
    try:
        with psycopg.connect(dsn(port), autocommit=True, connect_timeout=30) as conn:
            cur = conn.execute(SWARM_QUERY)
            names = [c.name for c in cur.description]
            result = [dict(zip(names, row)) for row in cur.fetchall()]
    except psycopg.Error as e:
        result = e
    return time.monotonic() - started, result


def test_lost_replies_of_the_task_hand_over_cost_seconds_not_the_lease(s3_env):
    """Replies lost after the request took effect, in the task hand-over:
    first every claim of a task (the worker's delete of its inbox entry),
    then every second call of any step (inbox puts, claims, results,
    statuses). Without care, a lost claim leaves the task unrun until its
    lease (5 minutes) runs out."""
    claims = r"^DELETE .*/_apiary/inbox/"
    hand_over = r"/_apiary/(inbox|queries)/"
    with FaultProxy(s3_target(s3_env), seed=17, kinds=("reset_after", "error_after")) as proxy:
        nodes, expected = swarm_of_three(s3_env, proxy)
        try:
            port = nodes[0][1]
            healthy = max(timed_query(port)[0] for _ in range(3))
            for only, rate in (((claims,), 1.0), ((hand_over,), 0.5)):
                proxy.only, proxy.rate = only, rate
                for _ in range(4):
                    took, result = timed_query(port)
                    assert result == expected, result
                    assert took < healthy + 10, f"a query took {took:.1f}s (healthy: {healthy:.1f}s)"
                proxy.rate = 0.0
            assert proxy.injected["reset_after"] + proxy.injected["error_after"] > 10
        finally:
            proxy.rate = 0.0
            for proc, _ in nodes:
                proc.kill()
                proc.wait()


def test_a_swarm_under_faults_and_a_kill_answers_right_or_fails_cleanly(s3_env):
    """3 nodes at 5 % faults of every kind, one of them killed half-way
    through 50 queries: no wrong answer, no hung query."""
    with FaultProxy(s3_target(s3_env), seed=18) as proxy:
        nodes, expected = swarm_of_three(s3_env, proxy)
        try:
            port = nodes[0][1]
            healthy = max(timed_query(port)[0] for _ in range(3))
            # Twice the healthy time, plus the storage client's retries (15 s)
            # and the time to find a killed node dead.
            budget = 2 * healthy + 15 + DEAD_AFTER_S
            proxy.rate = 0.05
            outcomes = []
            for i in range(50):
                if i == 25:
                    nodes[2][0].kill()
                    nodes[2][0].wait()
                took, result = timed_query(port)
                outcomes.append((took, result))
                assert took < budget, f"query {i} took {took:.1f}s (budget {budget:.1f}s): {result}"
                if isinstance(result, psycopg.Error):
                    assert result.sqlstate in ("58030", "40003"), f"query {i}: {result.sqlstate} {result}"
                else:
                    assert result == expected, f"query {i}: wrong answer {result}"
            answered = sum(1 for _, r in outcomes if not isinstance(r, Exception))
            print(f"{answered}/50 answered; faults: {dict(proxy.injected)}; slowest {max(t for t, _ in outcomes):.1f}s, healthy {healthy:.2f}s")
            assert answered >= 40
        finally:
            proxy.rate = 0.0
            for proc, _ in nodes:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
