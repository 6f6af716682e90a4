"""Clients beyond Python's drivers, run as a user would run them against
`apiary serve` on a local root and on S3: node-postgres and postgres.js
(tests/node/clients.mjs), pgbench in each of its query modes, and what
monitoring tools read (`pg_stat_activity`, `pg_settings`) and call
(`pg_cancel_backend`, `pg_terminate_backend`)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import threading
import time

import pytest

from test_gateway import dsn, server  # noqa: F401  (fixture)

NODE_DIR = pathlib.Path(__file__).resolve().parents[1] / "node"


def psql(port: int, *commands: str) -> str:
    args = ["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(port), "-U", "analyst", "default"]
    for command in commands:
        args += ["-c", command]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout


def test_node_postgres_and_postgres_js(server):
    if not (NODE_DIR / "node_modules").is_dir():
        pytest.fail("the Node.js drivers are not installed: run `npm ci --prefix tests/node` (.ci/run does)")
    run = subprocess.run(["node", str(NODE_DIR / "clients.mjs"), str(server)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr + run.stdout
    assert "all checks passed" in run.stdout


READ_WRITE_SCRIPT = """\
\\set id random(1, 500)
SELECT id AS picked, amount FROM clicks WHERE id = :id \\gset
INSERT INTO bench_log VALUES (:client_id, :picked, :amount);
SELECT country, count(*) FROM clicks GROUP BY country ORDER BY country;
"""


@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_custom_script_in_every_query_mode(server, mode, tmp_path):
    psql(
        server,
        "CREATE TABLE clicks (id BIGINT, country TEXT, amount DOUBLE PRECISION)",
        "INSERT INTO clicks SELECT x, 'c' || (x % 5), x * 1.5 FROM generate_series(1, 500) t(x)",
        "CREATE TABLE bench_log (client INT, id BIGINT, amount DOUBLE PRECISION)",
    )
    script = tmp_path / "read_write.sql"
    script.write_text(READ_WRITE_SCRIPT)
    clients, per_client = 3, 15
    run = subprocess.run(
        ["pgbench", "-n", "-M", mode, "-f", str(script), "-c", str(clients), "-t", str(per_client),
         "-h", "127.0.0.1", "-p", str(server), "-U", "analyst", "default"],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    total = clients * per_client
    assert re.search(rf"actually processed: {total}/{total}", run.stdout), run.stdout
    assert "number of failed transactions: 0 " in run.stdout
    # Every transaction logged the row it read, from the value it read.
    rows = psql(server, "SELECT client, count(*), count(*) FILTER (WHERE amount = id * 1.5) FROM bench_log GROUP BY client ORDER BY client")
    assert rows.split() == [f"{c}|{per_client}|{per_client}" for c in range(clients)]


def test_pgbench_reports_a_failing_script(server, tmp_path):
    script = tmp_path / "bad.sql"
    script.write_text("SELECT * FROM no_such_frame;\n")
    run = subprocess.run(
        ["pgbench", "-n", "-f", str(script), "-t", "1", "-h", "127.0.0.1", "-p", str(server), "-U", "analyst", "default"],
        capture_output=True, text=True, timeout=60,
    )
    assert run.returncode != 0
    assert "no_such_frame" in run.stderr
    assert psql(server, "SELECT 1").strip() == "1"


def wait_for(predicate, timeout: float = 10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_pg_stat_activity_lists_connections_and_cancels_or_terminates_one(server):
    """What pgAdmin's dashboard and `psql` users do: list the running
    queries, cancel one, terminate a connection."""
    import psycopg

    watcher = psycopg.connect(dsn(server), autocommit=True, application_name="watcher")
    worker = psycopg.connect(dsn(server), autocommit=True, application_name="worker")
    worker_pid = worker.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert worker_pid != watcher.execute("SELECT pg_backend_pid()").fetchone()[0]
    assert worker.info.backend_pid == worker_pid

    rows = watcher.execute(
        "SELECT pid, usename, datname, application_name, client_addr, state, query, backend_type "
        "FROM pg_stat_activity ORDER BY application_name").fetchall()
    assert [r[3] for r in rows] == ["watcher", "worker"]
    me, other = rows
    assert me[1:3] == ("analyst", "default") and me[4] == "127.0.0.1"
    assert me[5] == "active" and "pg_stat_activity" in me[6] and me[7] == "client backend"
    assert other[0] == worker_pid and other[5] == "idle" and other[6] == "SELECT pg_backend_pid()"

    # A long query shows as active with its text, and pg_cancel_backend
    # stops it with 57014; the connection keeps serving.
    long_query = "SELECT count(*) FROM generate_series(1, 2000000000) t(x) WHERE x % 7 = 3"
    failure: list[Exception] = []

    def run_long_query():
        try:
            worker.execute(long_query)
        except Exception as e:  # noqa: BLE001 (the test inspects it)
            failure.append(e)

    thread = threading.Thread(target=run_long_query)
    thread.start()
    wait_for(lambda: watcher.execute(
        "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active' AND query = %s",
        (worker_pid, long_query)).fetchall())
    assert watcher.execute("SELECT pg_cancel_backend(%s)", (worker_pid,)).fetchone() == (True,)
    thread.join(20)
    assert not thread.is_alive()
    assert isinstance(failure[0], psycopg.errors.QueryCanceled)
    assert worker.execute("SELECT 41 + 1").fetchone() == (42,)
    assert watcher.execute("SELECT pg_cancel_backend(0)").fetchone() == (False,)

    # Inside a block the connection is "idle in transaction".
    worker.execute("BEGIN")
    worker.execute("SELECT 1")
    state = watcher.execute(
        "SELECT state, xact_start IS NOT NULL FROM pg_stat_activity WHERE pid = %s", (worker_pid,)).fetchone()
    assert state == ("idle in transaction", True)
    worker.execute("ROLLBACK")

    # pg_terminate_backend ends the connection: its next statement gets
    # 57P01 and the connection is gone from the list.
    assert watcher.execute("SELECT pg_terminate_backend(%s)", (worker_pid,)).fetchone() == (True,)
    with pytest.raises(psycopg.errors.AdminShutdown):
        worker.execute("SELECT 1")
    assert watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (worker_pid,)).fetchone() == (0,)
    assert watcher.execute("SELECT 1").fetchone() == (1,)
    watcher.close()


def test_pg_settings_lists_every_parameter_with_the_session_values(server):
    """pgAdmin reads `pg_show_all_settings()`, pgJDBC `max_index_keys`,
    monitoring tools `pg_settings`; values are the connection's."""
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True, application_name="settings-test") as conn:
        count = conn.execute("SELECT count(*) FROM pg_settings").fetchone()[0]
        assert count >= 340  # PostgreSQL 15 has about 350
        assert conn.execute("SELECT count(*) FROM pg_show_all_settings()").fetchone()[0] == count
        conn.execute("SET work_mem = '64MB'")
        conn.execute("SET myapp.flag = 'on'")
        rows = dict((r[0], r[1:]) for r in conn.execute(
            "SELECT name, setting, unit, vartype, source, context FROM pg_settings "
            "WHERE name IN ('max_index_keys', 'application_name', 'work_mem', 'server_version_num', "
            "'DateStyle', 'max_connections', 'myapp.flag')").fetchall())
        assert rows["max_index_keys"] == ("32", None, "integer", "default", "internal")
        assert rows["application_name"][:2] == ("settings-test", None) and rows["application_name"][3] == "client"
        assert rows["work_mem"][0] == "64MB" and rows["work_mem"][3] == "session"
        assert rows["server_version_num"][0] == conn.execute("SHOW server_version_num").fetchone()[0]
        assert rows["DateStyle"][0] == "ISO, MDY"
        assert rows["max_connections"][1:3] == (None, "integer")
        assert rows["myapp.flag"][0] == "on"
        enum = conn.execute("SELECT enumvals FROM pg_settings WHERE name = 'IntervalStyle'").fetchone()[0]
        assert "postgres" in enum and "iso_8601" in enum
        assert conn.execute("SELECT current_setting('max_index_keys')").fetchone() == ("32",)
        shown = conn.execute("SHOW ALL").fetchall()
        assert len(shown) == count + 1 and ("work_mem", "64MB") in [r[:2] for r in shown]
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
