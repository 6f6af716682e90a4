"""Clients beyond Python's drivers, run as a user would run them against
`apiary serve` on a local root and on S3: node-postgres and postgres.js
(tests/node/clients.mjs), pgbench in each of its query modes, pg_dump
(its dumps restored into a real PostgreSQL), SQLAlchemy's inspector
(every method's answer compared with PostgreSQL's), and what
monitoring tools read (`pg_stat_activity`, `pg_settings`) and call
(`pg_cancel_backend`, `pg_terminate_backend`)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import threading

import pytest

from test_differential import postgres  # noqa: F401  (fixture)
from test_gateway import dsn, server  # noqa: F401  (fixture)
from test_swarm import wait_for

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
        (worker_pid, long_query)).fetchall(), 10, "the long query to show as active")
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


def pg_dump(port: int, *args: str) -> str:
    run = subprocess.run(["pg_dump", "-h", "127.0.0.1", "-p", str(port), "-U", "analyst", *args, "default"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_pg_dump_schema_and_data_restore_into_postgresql(server, postgres):
    """`pg_dump --schema-only` and `pg_dump -t frame --data-only` from
    Debian's client, and the dumps load into a real PostgreSQL."""
    import psycopg

    psql(
        server,
        "CREATE SCHEMA sales",
        "CREATE TABLE sales.orders (id BIGINT NOT NULL, item VARCHAR(20), price NUMERIC(10,2), at TIMESTAMP, "
        "ok BOOLEAN, n SMALLINT, d DATE, raw BYTEA, score DOUBLE PRECISION)",
        "INSERT INTO sales.orders VALUES (1, 'tea', 2.5, '2024-01-02 03:04:05', true, 1, '2024-01-01', '\\x0102', 0.1), "
        "(2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
        "(3, E'tab\\there, \"quoted\"', -0.25, '2024-02-29 00:00:00', false, -3, '1999-12-31', '\\x', -1e300)",
        "CREATE TABLE notes (body TEXT)",
    )
    # Owners are the connected user (role 10, who owns everything here).
    assert "ALTER TABLE sales.orders OWNER TO analyst;" in pg_dump(server, "--schema-only")
    # Restored elsewhere, where that role need not exist.
    schema = pg_dump(server, "--schema-only", "--no-owner")
    assert "CREATE SCHEMA sales;" in schema
    assert ("CREATE TABLE sales.orders (\n    id bigint NOT NULL,\n    item character varying(20),\n"
            "    price numeric(10,2),\n    at timestamp without time zone,\n    ok boolean,\n    n smallint,\n"
            "    d date,\n    raw bytea,\n    score double precision\n);") in schema
    assert 'CREATE TABLE "default".notes' in schema
    assert "COPY" not in schema
    data = pg_dump(server, "-t", "sales.orders", "--data-only")
    assert "COPY sales.orders (id, item, price, at, ok, n, d, raw, score) FROM stdin;" in data
    assert "notes" not in data

    # Both load into PostgreSQL and give back the same rows.
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS restored")
        conn.execute("CREATE DATABASE restored")
    restored = postgres.replace("dbname=postgres", "dbname=restored")
    for dump in (schema, data):
        load = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", restored], input=dump,
                              capture_output=True, text=True, timeout=60)
        assert load.returncode == 0, load.stderr
    query = "SELECT id, item, price, at, ok, n, d, raw, score FROM sales.orders ORDER BY id"
    with psycopg.connect(restored) as pg, psycopg.connect(dsn(server)) as apiary:
        assert pg.execute(query).fetchall() == apiary.execute(query).fetchall()


INSPECTED = [
    "CREATE SCHEMA inspected",
    "CREATE TABLE inspected.cities (id BIGINT NOT NULL, name VARCHAR(20), pop NUMERIC(10,2), code CHAR(3), "
    "at TIMESTAMP, tz TIMESTAMPTZ, ok BOOLEAN, d DATE, f DOUBLE PRECISION, i INTEGER, s SMALLINT, r REAL, "
    "t TEXT, b BYTEA)",
    "CREATE TABLE inspected.empty (x INT)",
]


def inspection(inspector) -> dict[str, str]:
    """Every `Inspector` method over schema `inspected`, each answer (or the
    exception's class) as text."""
    import sqlalchemy as sa

    answers = {}

    def ask(method: str, *args, **kwargs):
        try:
            answer = repr(getattr(inspector, method)(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 (compared, not hidden)
            answer = f"raises {type(e).__name__}"
        answers[f"{method}{args}{kwargs}"] = answer

    schema = {"schema": "inspected"}
    for method in ["get_table_names", "get_view_names", "get_materialized_view_names", "get_sequence_names",
                   "get_foreign_table_names", "get_enums", "get_domains", "get_sorted_table_and_fkc_names"]:
        ask(method, **schema)
    ask("get_temp_table_names")
    ask("get_temp_view_names")
    ask("has_schema", "inspected")
    ask("has_schema", "absent")
    ask("has_type", "int4", schema="pg_catalog")
    ask("has_type", "absent", **schema)
    ask("has_sequence", "absent", **schema)
    for table in ["cities", "empty", "absent"]:
        for method in ["get_columns", "get_pk_constraint", "get_foreign_keys", "get_indexes", "get_unique_constraints",
                       "get_check_constraints", "get_table_comment", "get_table_options", "get_view_definition",
                       "has_table"]:
            ask(method, table, **schema)
        ask("has_index", table, "absent", **schema)
    for method in ["get_multi_columns", "get_multi_pk_constraint", "get_multi_foreign_keys", "get_multi_indexes",
                   "get_multi_unique_constraints", "get_multi_check_constraints", "get_multi_table_comment",
                   "get_multi_table_options"]:
        ask(method, **schema)
        ask(method, filter_names=["cities", "absent"], **schema)
        ask(method, kind=sa.engine.ObjectKind.ANY, scope=sa.engine.ObjectScope.ANY, **schema)
    return answers


@pytest.mark.parametrize("driver", ["psycopg2", "psycopg"])
def test_sqlalchemy_inspector_answers_as_postgresql_does(server, postgres, driver):
    """Every `get_*`, `get_multi_*` and `has_*` method of SQLAlchemy's
    inspector, through both psycopg drivers, gives PostgreSQL's answer for
    the same tables."""
    import sqlalchemy as sa

    pg = dict(part.split("=", 1) for part in postgres.split())
    answers = []
    for url in [f"postgresql+{driver}://{pg['user']}@{pg['host']}:{pg['port']}/{pg['dbname']}",
                f"postgresql+{driver}://analyst@127.0.0.1:{server}/default"]:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if not conn.exec_driver_sql("SELECT 1 FROM pg_namespace WHERE nspname = 'inspected'").first():
                for statement in INSPECTED:
                    conn.exec_driver_sql(statement)
        answers.append(inspection(sa.inspect(engine)))
        engine.dispose()
    expected, got = answers
    assert "VARCHAR(length=20)" in expected["get_columns('cities',){'schema': 'inspected'}"]
    assert {k: v for k, v in got.items() if expected[k] != v} == {}
    # The box appears among the schemas, next to `default`.
    with sa.create_engine(f"postgresql+{driver}://analyst@127.0.0.1:{server}/default").connect() as conn:
        assert {"default", "inspected"} <= set(sa.inspect(conn).get_schema_names())


def test_result_columns_name_their_table_and_column_as_postgresql_does(server, postgres):
    """RowDescription gives the table OID and attribute number of a column
    read straight from a table (DBeaver ties result sets to tables by them),
    through the extended and the simple protocol, and 0 for computed ones."""
    import psycopg

    query = ("SELECT c.name AS n, c.id, upper(c.name), 1, e.x, s.pop FROM inspected.cities c "
             "LEFT JOIN inspected.empty e ON e.x = c.i "
             "JOIN (SELECT id, pop FROM inspected.cities) s ON s.id = c.id WHERE c.id > 0 ORDER BY 1")
    described = []
    for conninfo in [postgres, f"host=127.0.0.1 port={server} user=analyst dbname=default"]:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'inspected'").fetchone():
                for statement in INSPECTED:
                    conn.execute(statement)
            tables = dict(conn.execute(
                "SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'inspected'").fetchall())
            for result in [conn.execute(query).pgresult, conn.pgconn.exec_(query.encode())]:
                described.append([(tables.get(result.ftable(i), result.ftable(i)), result.ftablecol(i))
                                  for i in range(result.nfields)])
    expected = [("cities", 2), ("cities", 1), (0, 0), (0, 0), ("empty", 1), ("cities", 3)]
    assert described[:2] == [expected, expected]
    assert described[2:] == [expected, expected]
