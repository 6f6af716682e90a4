"""The Postgres gateway with real clients: psql, psycopg 3, asyncpg and
SQLAlchemy + pandas, against `apiary serve` on a local root and on S3."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

APIARY = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/apiary/target")) / "debug" / "apiary"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(storage: str, listen: str, **extra_env: str) -> subprocess.Popen:
    """`apiary serve` on `listen`, once it accepts connections."""
    env = dict(os.environ, APIARY_STORAGE=storage, APIARY_LISTEN=listen, **extra_env)
    if "APIARY_USER" not in extra_env:
        env.pop("APIARY_USER", None)
        env.pop("APIARY_PASSWORD", None)
    proc = subprocess.Popen([str(APIARY), "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    port = int(listen.rsplit(":", 1)[1])
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode())
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("apiary serve did not start listening")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    assert proc.wait(timeout=20) == 0


@pytest.fixture
def server(storage):
    """`apiary serve` on a fresh root; yields its port."""
    port = free_port()
    proc = start_server(storage, f"127.0.0.1:{port}")
    yield port
    stop_server(proc)


def dsn(port: int, db: str = "default") -> str:
    return f"host=127.0.0.1 port={port} user=analyst dbname={db}"


def test_psycopg_parameters_prepared_and_binary(server):
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE t (i BIGINT, s TEXT, f DOUBLE PRECISION, b BOOLEAN, d DATE, ts TIMESTAMP, n NUMERIC(12,3), raw BYTEA)"
        )
        row = (7, "héllo", 2.5, True, dt.date(2024, 2, 29), dt.datetime(2024, 1, 2, 3, 4, 5, 678000),
               decimal.Decimal("123.456"), b"\x00\x01")
        conn.execute("INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", row)
        for binary in (False, True):
            with conn.cursor(binary=binary) as cur:
                for _ in range(7):  # past the prepare threshold
                    cur.execute("SELECT i, s, f, b, d, ts, n, raw FROM t WHERE i = %s", (7,), prepare=True)
                    got = cur.fetchone()
                    assert got[:7] == (7, "héllo", 2.5, True, dt.date(2024, 2, 29),
                                       dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=got[5].tzinfo),
                                       decimal.Decimal("123.456"))
                    assert bytes(got[7]) == b"\x00\x01"
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM nowhere")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)


def test_asyncpg_prepared_statements_and_pool_reset(server):
    import asyncpg

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=server, user="analyst", database="default")
        await conn.execute("CREATE TABLE m (k BIGINT, v TEXT)")
        await conn.executemany("INSERT INTO m VALUES ($1, $2)", [(i, f"v{i}") for i in range(5)])
        stmt = await conn.prepare("SELECT v FROM m WHERE k = $1")
        for i in range(7):
            assert await stmt.fetchval(i % 5) == f"v{i % 5}"
        await conn.close()
        pool = await asyncpg.create_pool(host="127.0.0.1", port=server, user="analyst",
                                         database="default", min_size=1, max_size=2)
        for _ in range(3):
            async with pool.acquire() as c:
                assert await c.fetchval("SELECT count(*) FROM m") == 5
        await pool.close()

    asyncio.run(run())


def test_sqlalchemy_reflection_read_sql_and_to_sql(server):
    import sqlalchemy as sa

    engine = sa.create_engine(f"postgresql+psycopg://analyst@127.0.0.1:{server}/default")
    frame = pd.DataFrame({"city": ["Berlin", "Paris", "Rome"], "visits": [3, 5, 8]})
    frame.to_sql("cities", engine, index=False)
    inspector = sa.inspect(engine)
    assert "cities" in inspector.get_table_names()
    assert "default" in inspector.get_schema_names()
    columns = {c["name"]: c for c in inspector.get_columns("cities")}
    assert list(columns) == ["city", "visits"]
    assert isinstance(columns["city"]["type"], sa.TEXT)
    assert isinstance(columns["visits"]["type"], sa.BIGINT)
    assert columns["visits"]["nullable"] and columns["visits"]["default"] is None
    assert inspector.get_pk_constraint("cities")["constrained_columns"] == []
    assert inspector.get_indexes("cities") == [] and inspector.get_unique_constraints("cities") == []
    assert inspector.get_foreign_keys("cities") == []
    table = sa.Table("cities", sa.MetaData(), autoload_with=engine)
    assert table.c.keys() == ["city", "visits"]
    back = pd.read_sql("SELECT city, visits FROM cities ORDER BY city", engine)
    assert back.to_dict("list") == frame.to_dict("list")
    # Result columns are named as Postgres names them.
    counted = pd.read_sql("SELECT count(*), max(visits), 1 FROM cities", engine)
    assert list(counted.columns) == ["count", "max", "?column?"]
    assert counted.iloc[0].tolist() == [3, 8, 1]
    # Replacing reflects the table, drops it and creates it again.
    smaller = frame.head(2)
    smaller.to_sql("cities", engine, index=False, if_exists="replace")
    frame.tail(1).to_sql("cities", engine, index=False, if_exists="append")
    back = pd.read_sql("SELECT city, visits FROM cities ORDER BY city", engine)
    assert back.to_dict("list") == frame.to_dict("list")
    with engine.connect() as conn:
        # A correlated subquery over frames is answered, not blanked.
        rows = conn.execute(sa.text(
            "SELECT c.city, (SELECT max(o.visits) FROM cities o WHERE o.city = c.city) AS most "
            "FROM cities c ORDER BY c.city")).all()
        assert [tuple(r) for r in rows] == [("Berlin", 3), ("Paris", 5), ("Rome", 8)]


def test_copy_streams_and_a_bad_row_or_a_lost_client_commits_nothing(server):
    import psycopg

    rows = "".join(f"{i}\t{'DE' if i % 2 else 'FR'}\n" for i in range(150_000))
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE TABLE loads (id BIGINT, country TEXT) PARTITIONED BY (country)")
        with conn.cursor() as cur:
            with cur.copy("COPY loads FROM STDIN") as copy:
                for start in range(0, len(rows), 8191):
                    copy.write(rows[start:start + 8191])
        # Bad rows after more than one batch already went to the writer.
        for bad, code in (("7\t\\N\n", "23502"), ("x\tDE\n", "22P02")):
            with pytest.raises(psycopg.Error) as failed:
                with conn.cursor() as cur:
                    with cur.copy("COPY loads FROM STDIN") as copy:
                        copy.write(rows)
                        copy.write(bad)
            assert failed.value.sqlstate == code, failed.value
        # A client that disappears in the middle of a COPY.
        lost = psycopg.connect(dsn(server), autocommit=True)
        copy_cm = lost.cursor().copy("COPY loads FROM STDIN")
        copy = copy_cm.__enter__()
        copy.write(rows[: len(rows) // 2])
        lost.pgconn.finish()
        with pytest.raises(psycopg.Error):
            copy_cm.__exit__(None, None, None)
        time.sleep(0.5)
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM loads").fetchone() == (150_000, 150_000)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is installed by .ci/run")
def test_psql_meta_commands_copy_and_query(server, tmp_path):
    data = tmp_path / "clicks.csv"
    data.write_text("id,page\n1,/home\n2,/pricing\n3,/home\n")
    script = f"""
CREATE SCHEMA events;
CREATE TABLE events.clicks (id BIGINT, page TEXT);
\\copy events.clicks FROM '{data}' WITH (FORMAT csv, HEADER true)
\\l
\\dn
\\dt events.*
\\d events.clicks
\\d default.events.clicks
\\d+ events.clicks
\\dt+ events.*
\\l+
\\du
\\dn+
\\dp events.*
\\z
\\di
\\dv
\\dm
\\ds
\\dE
\\dD
\\dy
\\dx
\\dc
\\dC
\\do
\\da
\\df
\\df+ version
\\dF
\\db
\\dg
\\dl
\\des
\\dRp
\\drds
\\dconfig work_mem
\\dT
\\dT+
\\dO
\\dL
\\dA
\\dAc
\\dd
\\ddp
\\dew
\\det
\\deu
\\des+
\\dFd
\\dFp
\\dFt
\\dRs
\\dX
\\dP
\\dAf
\\dAo
\\dAp
\\dx+
\\db+
\\dP+
\\dF+
\\dFp+
\\dO+
\\dD+
\\sf pg_catalog.lower
\\lo_list
SHOW ALL;
SELECT page, count(*) AS n FROM events.clicks GROUP BY page ORDER BY n DESC;
"""
    out = subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(server), "-U", "analyst",
         "-d", "default", "-f", "-"],
        input=script, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "COPY 3" in out.stdout
    assert out.stdout.count('Table "events.clicks"') == 3, out.stdout
    assert "List of roles" in out.stdout and "Stats target" in out.stdout
    for title in ("List of schemas", "Access privileges", "List of casts", "List of operators",
                  "List of functions", "List of tablespaces", "List of text search configurations",
                  "List of configuration parameters", "List of data types", "List of collations",
                  "List of user mappings", "Default access privileges", "List of foreign servers",
                  "List of extended statistics", "Large objects"):
        assert title in out.stdout, title
    assert re.search(r"^\s*server_version\s*\|\s*15\.0\s*\|", out.stdout, re.M), out.stdout
    assert "events" in out.stdout
    assert "/home" in out.stdout and "2" in out.stdout


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is installed by .ci/run")
def test_psql_cancel_of_a_long_query(server):
    proc = subprocess.Popen(
        ["psql", "-X", "-h", "127.0.0.1", "-p", str(server), "-U", "analyst", "-d", "default", "-c",
         "SELECT count(*) FROM generate_series(1, 800000000) a WHERE a % 7 = 3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    time.sleep(1.0)
    proc.send_signal(2)  # Ctrl-C: psql sends a CancelRequest
    _, err = proc.communicate(timeout=20)
    assert "canceling statement" in err or "cancel" in err.lower(), err


def non_loopback_address() -> str | None:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_remote_clients_without_configured_users_are_refused_with_advice(tmp_path):
    import psycopg

    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    port = free_port()
    proc = start_server(str(tmp_path / "root"), f"0.0.0.0:{port}")
    try:
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(f"host={address} port={port} user=analyst dbname=default connect_timeout=5")
        assert "APIARY_USER" in str(refused.value), refused.value
        # Loopback clients are still welcome, and the server kept serving.
        with psycopg.connect(dsn(port)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        stop_server(proc)


def test_tls_with_sslmode_require_and_scram_passwords(tmp_path):
    import psycopg

    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    port = free_port()
    proc = start_server(str(tmp_path / "root"), f"127.0.0.1:{port}", APIARY_TLS_CERT=str(cert),
                        APIARY_TLS_KEY=str(key), APIARY_USER="ana", APIARY_PASSWORD="s3cret pass")
    try:
        base = f"host=127.0.0.1 port={port} user=ana dbname=default sslmode=require"
        with psycopg.connect(f"{base} password='s3cret pass'") as conn:
            assert conn.info.pgconn.ssl_in_use
            assert conn.execute("SELECT 40 + 2").fetchone() == (42,)
        with pytest.raises(psycopg.OperationalError) as wrong:
            psycopg.connect(f"{base} password=nope")
        # PostgreSQL's words, naming the user (libpq leaves SCRAM's own user name empty).
        assert 'password authentication failed for user "ana"' in str(wrong.value), wrong.value
        out = subprocess.run(["psql", "-X", f"{base} password='s3cret pass'", "-c", "\\conninfo"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert "SSL" in out.stdout, out.stdout
    finally:
        stop_server(proc)


def test_untyped_null_parameters_keep_their_places(server):
    import psycopg

    # psycopg, node-postgres and postgres.js send a NULL parameter with no
    # type; it must neither vanish nor shift the parameters after it.
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        assert conn.execute("SELECT %s IS NULL, %s::int + 1", (None, 41)).fetchone() == (True, 42)
        assert conn.execute("SELECT %s, %s", (None, "b")).fetchone() == (None, "b")
        assert conn.execute("SELECT coalesce(%s, 'x')", (None,)).fetchone() == ("x",)


def test_health_says_whether_the_node_answers(tmp_path):
    """`apiary health` (the image's HEALTHCHECK) exits 0 while a node serves
    the Postgres protocol on APIARY_LISTEN, 1 once it stopped."""
    port = free_port()
    env = dict(os.environ, APIARY_LISTEN=f"0.0.0.0:{port}")
    proc = start_server(str(tmp_path / "root"), f"127.0.0.1:{port}")
    try:
        ok = subprocess.run([str(APIARY), "health"], env=env, capture_output=True, text=True, timeout=30)
        assert ok.returncode == 0, ok.stderr
        assert f"127.0.0.1:{port} answers" in ok.stdout
    finally:
        stop_server(proc)
    down = subprocess.run([str(APIARY), "health"], env=env, capture_output=True, text=True, timeout=30)
    assert down.returncode == 1
    assert "unhealthy" in down.stderr
