"""Reading large results out through the gateway, as drivers and tools do:
server-side cursors (psycopg 2 and 3 named cursors, SQLAlchemy
`stream_results`), portal suspension (asyncpg cursors), and `COPY … TO
STDOUT` in text, CSV and binary (psql's `\\copy`, psycopg, asyncpg, the ADBC
driver), against `apiary serve` on a local root and on S3."""

from __future__ import annotations

import asyncio
import csv
import decimal
import io
import shutil
import subprocess

import pytest

from test_gateway import dsn, server  # noqa: F401  (fixture)

ROWS = 5_000


def load(port: int) -> None:
    import psycopg

    with psycopg.connect(dsn(port), autocommit=True) as conn:
        conn.execute("CREATE TABLE readings (id BIGINT, site TEXT, value NUMERIC(10,2), note TEXT)")
        with conn.cursor().copy("COPY readings FROM STDIN") as copy:
            for i in range(ROWS):
                note = "\\N" if i % 7 == 0 else f"n{i}, with\\ttab"
                copy.write(f"{i}\tsite-{i % 3}\t{i}.25\t{note}\n")


def expected(i: int) -> tuple:
    return (i, f"site-{i % 3}", decimal.Decimal(f"{i}.25"), None if i % 7 == 0 else f"n{i}, with\ttab")


def test_psycopg2_named_cursors_stream_in_blocks(server):
    import psycopg2

    load(server)
    conn = psycopg2.connect(dsn(server))
    try:
        cur = conn.cursor(name="big")
        cur.itersize = 700
        cur.execute("SELECT id, site, value, note FROM readings WHERE id >= %s ORDER BY id", (10,))
        assert cur.fetchmany(3) == [expected(i) for i in (10, 11, 12)]
        rest = list(cur)
        assert rest == [expected(i) for i in range(13, ROWS)]
        cur.close()
        # A cursor without WITH HOLD ends with its block; one with it stays.
        held = conn.cursor(name="held", withhold=True)
        held.execute("SELECT id FROM readings ORDER BY id")
        conn.commit()
        assert [r[0] for r in held.fetchmany(4)] == [0, 1, 2, 3]
        held.close()
        conn.commit()
        plain = conn.cursor()
        plain.execute("DECLARE c CURSOR FOR SELECT id FROM readings ORDER BY id")
        plain.execute("MOVE FORWARD 100 IN c")
        assert plain.statusmessage == "MOVE 100"
        plain.execute("FETCH 2 FROM c")
        assert plain.fetchall() == [(100,), (101,)]
        plain.execute("FETCH ALL c")
        assert plain.rowcount == ROWS - 102
        plain.execute("FETCH NEXT FROM c")
        assert plain.fetchall() == []
        with pytest.raises(psycopg2.errors.ObjectNotInPrerequisiteState):
            plain.execute("FETCH PRIOR FROM c")
        conn.rollback()
        with pytest.raises(psycopg2.errors.InvalidCursorName):
            plain.execute("FETCH 1 FROM c")
        conn.rollback()
        plain.execute("DECLARE c CURSOR FOR SELECT 1")
        with pytest.raises(psycopg2.errors.DuplicateCursor):
            plain.execute("DECLARE c CURSOR FOR SELECT 2")
        conn.rollback()
        with pytest.raises(psycopg2.errors.SyntaxError):
            plain.execute("DECLARE w CURSOR FOR INSERT INTO readings VALUES (1, 'x', 1, 'y')")
        conn.rollback()
        plain.execute("SELECT count(*) FROM readings")
        assert plain.fetchone() == (ROWS,)
    finally:
        conn.close()
    auto = psycopg2.connect(dsn(server))
    auto.autocommit = True
    with pytest.raises(psycopg2.errors.NoActiveSqlTransaction):
        auto.cursor().execute("DECLARE c CURSOR FOR SELECT 1")
    auto.close()


def test_psycopg_server_cursors_with_parameters_text_and_binary(server):
    import psycopg

    load(server)
    with psycopg.connect(dsn(server)) as conn:
        for binary in (False, True):
            with conn.cursor(name=f"c{int(binary)}", binary=binary) as cur:
                cur.execute("SELECT id, site, value, note FROM readings WHERE site = %s ORDER BY id", ("site-1",))
                assert [d.name for d in cur.description] == ["id", "site", "value", "note"]
                assert cur.fetchone() == expected(1)
                assert cur.fetchmany(2) == [expected(4), expected(7)]
                rest = cur.fetchall()
                assert rest == [expected(i) for i in range(10, ROWS, 3)]
        conn.commit()
        with conn.cursor(name="scrolling", scrollable=True) as cur:
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                cur.execute("SELECT 1")
        conn.rollback()


def test_sqlalchemy_stream_results_with_both_psycopg_drivers(server):
    import sqlalchemy as sa

    load(server)
    for driver in ("psycopg", "psycopg2"):
        engine = sa.create_engine(f"postgresql+{driver}://analyst@127.0.0.1:{server}/default")
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=500).execute(
                sa.text("SELECT id FROM readings ORDER BY id"))
            seen = [row.id for part in result.partitions() for row in part]
        assert seen == list(range(ROWS)), driver
        engine.dispose()


def test_asyncpg_cursors_and_copy_from_query(server):
    import asyncpg

    load(server)

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=server, user="analyst", database="default")
        async with conn.transaction():
            ids = [r["id"] async for r in conn.cursor("SELECT id FROM readings WHERE id < $1 ORDER BY id", 1200,
                                                         prefetch=250)]
            assert ids == list(range(1200))
            cur = await conn.cursor("SELECT id, value FROM readings ORDER BY id")
            assert [tuple(r) for r in await cur.fetch(2)] == [(0, decimal.Decimal("0.25")), (1, decimal.Decimal("1.25"))]
            await cur.forward(10)
            assert (await cur.fetchrow())["id"] == 12
        out = io.BytesIO()
        status = await conn.copy_from_query("SELECT id, note FROM readings WHERE id < $1 ORDER BY id", 8,
                                            output=out, format="csv")
        assert status == "COPY 8"
        rows = list(csv.reader(io.StringIO(out.getvalue().decode())))
        assert rows[0] == ["0", ""] and rows[1] == ["1", "n1, with\ttab"]
        binary = io.BytesIO()
        await conn.copy_from_table("readings", output=binary, format="binary", columns=["id"])
        assert binary.getvalue().startswith(b"PGCOPY\n\xff\r\n\0") and binary.getvalue().endswith(b"\xff\xff")
        await conn.close()

    asyncio.run(run())


def copied(cur, statement: str) -> bytes:
    with cur.copy(statement) as copy:
        return b"".join(bytes(chunk) for chunk in copy)


def test_psycopg_copy_to_in_every_format(server):
    import psycopg

    load(server)
    with psycopg.connect(dsn(server), autocommit=True) as conn:
        with conn.cursor() as cur:
            text = copied(cur, "COPY (SELECT id, note FROM readings WHERE id < 3 ORDER BY id) TO STDOUT")
            assert text == b"0\t\\N\n1\tn1, with\\ttab\n2\tn2, with\\ttab\n"
            assert cur.rowcount == 3
            header = copied(cur, "COPY readings (id, site) TO STDOUT WITH (FORMAT csv, HEADER)")
            lines = header.decode().splitlines()
            assert lines[0] == "id,site" and len(lines) == ROWS + 1
            with cur.copy("COPY (SELECT id, site, value, note FROM readings ORDER BY id) TO STDOUT (FORMAT binary)") as copy:
                copy.set_types(["int8", "text", "numeric", "text"])
                assert list(copy.rows()) == [expected(i) for i in range(ROWS)]
            with pytest.raises(psycopg.errors.UndefinedTable):
                copied(cur, "COPY nowhere TO STDOUT")
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                cur.execute("COPY readings TO '/tmp/readings.txt'")
            # Bad requests get Postgres's errors and the connection goes on.
            with pytest.raises(psycopg.errors.DivisionByZero):
                copied(cur, "COPY (SELECT 1 / (id - 3) FROM readings ORDER BY id) TO STDOUT")
            with pytest.raises(psycopg.errors.FeatureNotSupported):
                copied(cur, "COPY (INSERT INTO readings VALUES (1, 'x', 1, 'y')) TO STDOUT")
            with pytest.raises(psycopg.errors.InvalidParameterValue):
                copied(cur, "COPY readings TO STDOUT (FORMAT xml)")
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (ROWS,)


def test_a_client_lost_mid_copy_or_cursor_leaves_the_node_serving(server):
    import psycopg

    load(server)
    for read in ("copy", "cursor"):
        lost = psycopg.connect(dsn(server))
        cur = lost.cursor(name="c") if read == "cursor" else lost.cursor()
        if read == "copy":
            copy_cm = cur.copy("COPY (SELECT r.id FROM readings r, readings s) TO STDOUT")
            copy = copy_cm.__enter__()
            assert next(iter(copy))
        else:
            cur.itersize = 10
            cur.execute("SELECT r.id FROM readings r, readings s")
            assert cur.fetchone() is not None
        lost.pgconn.finish()
        with psycopg.connect(dsn(server), autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM readings").fetchone() == (ROWS,)


def test_adbc_reads_a_frame_into_arrow(server):
    adbc = pytest.importorskip("adbc_driver_postgresql.dbapi")

    load(server)
    with adbc.connect(f"postgresql://analyst@127.0.0.1:{server}/default") as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT id, site, note FROM readings ORDER BY id")
            table = cur.fetch_arrow_table()
    assert table.num_rows == ROWS
    assert table.column("id").to_pylist() == list(range(ROWS))
    assert table.column("note").to_pylist()[:2] == [None, "n1, with\ttab"]


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is installed by .ci/run")
def test_psql_copy_out_both_ways(server, tmp_path):
    load(server)
    out_text, out_csv = tmp_path / "r.txt", tmp_path / "r.csv"
    script = f"""
\\copy readings TO '{out_text}'
\\copy (SELECT id, site FROM readings WHERE id < 4 ORDER BY id) TO '{out_csv}' WITH (FORMAT csv, HEADER)
CREATE TABLE copied (id BIGINT, site TEXT, value NUMERIC(10,2), note TEXT);
\\copy copied FROM '{out_text}'
SELECT count(*), count(note), sum(value) FROM copied;
BEGIN;
DECLARE c CURSOR FOR SELECT id FROM copied ORDER BY id;
FETCH 3 FROM c;
CLOSE c;
COMMIT;
"""
    out = subprocess.run(
        ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(server), "-U", "analyst",
         "-d", "default", "-f", "-"],
        input=script, capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out_csv.read_text() == "id,site\n0,site-0\n1,site-1\n2,site-2\n3,site-0\n"
    assert len(out_text.read_text().splitlines()) == ROWS
    total = sum(decimal.Decimal(f"{i}.25") for i in range(ROWS))
    assert f"{ROWS}|{ROWS - len(range(0, ROWS, 7))}|{total}" in out.stdout, out.stdout
    assert "0\n1\n2" in out.stdout
