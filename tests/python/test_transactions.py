"""Transaction blocks over the Postgres gateway, as drivers use them:
psycopg with autocommit off, psql, asyncpg and concurrent writers, on a
local root and on S3. ROLLBACK, an error or a lost client leaves a frame
exactly as it was; COMMIT makes a block's writes one Delta commit."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading

import pytest

from test_gateway import dsn, server  # noqa: F401  (fixture)


def rows(conn, sql="SELECT k, v FROM t ORDER BY k"):
    return conn.execute(sql).fetchall()


@pytest.fixture
def frame(server):  # noqa: F811
    """A frame `t` with rows (1,'a'), (2,'b'), (3,'c'); yields the port."""
    import psycopg

    with psycopg.connect(dsn(server), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (k BIGINT NOT NULL, v TEXT)")
        conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    return server


ORIGINAL = [(1, "a"), (2, "b"), (3, "c")]


def test_rollback_undoes_delete_insert_and_update(frame):
    import psycopg

    with psycopg.connect(dsn(frame)) as conn:  # autocommit off: psycopg sends BEGIN
        conn.execute("DELETE FROM t")
        assert rows(conn) == []
        conn.rollback()
        assert rows(conn) == ORIGINAL
        conn.rollback()

        conn.execute("INSERT INTO t VALUES (4, 'd')")
        conn.execute("UPDATE t SET v = 'z' WHERE k <= 2")
        assert rows(conn) == [(1, "z"), (2, "z"), (3, "c"), (4, "d")]
        conn.rollback()
        assert rows(conn) == ORIGINAL
        conn.rollback()


def test_commit_makes_the_block_visible_at_once_and_only_then(frame, storage, delta_storage_options):
    import deltalake
    import psycopg

    with psycopg.connect(dsn(frame)) as writer, psycopg.connect(dsn(frame), autocommit=True) as reader:
        writer.execute("INSERT INTO t VALUES (4, 'd'), (5, NULL)")
        writer.execute("DELETE FROM t WHERE k = 1")
        writer.execute("UPDATE t SET v = upper(v) WHERE v IS NOT NULL")
        # Read-your-writes inside the block, nothing outside it.
        assert rows(writer) == [(2, "B"), (3, "C"), (4, "D"), (5, None)]
        assert writer.execute("SELECT count(*) FROM t WHERE v IS NULL").fetchone() == (1,)
        assert rows(reader) == ORIGINAL
        writer.commit()
        assert rows(reader) == [(2, "B"), (3, "C"), (4, "D"), (5, None)]

    table = deltalake.DeltaTable(f"{storage}/default/default/t", storage_options=delta_storage_options(storage))
    got = sorted(zip(*table.to_pyarrow_table().select(["k", "v"]).to_pydict().values()))
    assert got == [(2, "B"), (3, "C"), (4, "D"), (5, None)]
    # Setup, the insert, and one commit for the whole block.
    assert table.version() == 2


def test_an_error_aborts_the_block_until_rollback(frame):
    import psycopg

    with psycopg.connect(dsn(frame)) as conn:
        conn.execute("INSERT INTO t VALUES (4, 'd')")
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO t VALUES (NULL, 'x')")
        for statement in ("SELECT 1", "INSERT INTO t VALUES (5, 'e')"):
            with pytest.raises(psycopg.errors.InFailedSqlTransaction):
                conn.execute(statement)
        conn.rollback()
        assert rows(conn) == ORIGINAL
        conn.rollback()

        # COMMIT of a failed block is a ROLLBACK.
        conn.execute("DELETE FROM t WHERE k = 1")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM nowhere")
        conn.commit()
        assert rows(conn) == ORIGINAL


def test_savepoints_undo_to_where_they_were_set(frame):
    import psycopg

    with psycopg.connect(dsn(frame)) as conn:
        conn.execute("INSERT INTO t VALUES (4, 'd')")
        with pytest.raises(psycopg.errors.NotNullViolation):
            with conn.transaction():  # a nested transaction is a savepoint
                conn.execute("INSERT INTO t VALUES (5, 'e')")
                conn.execute("INSERT INTO t VALUES (NULL, 'x')")
        conn.execute("INSERT INTO t VALUES (6, 'f')")
        conn.commit()
        assert [k for k, _ in rows(conn)] == [1, 2, 3, 4, 6]

        # An unknown savepoint is an error that aborts the block, as in Postgres.
        conn.execute("DELETE FROM t")
        with pytest.raises(psycopg.errors.InvalidSavepointSpecification):
            conn.execute("ROLLBACK TO SAVEPOINT nope")
        conn.commit()  # answered with ROLLBACK
        assert [k for k, _ in rows(conn)] == [1, 2, 3, 4, 6]


def test_a_block_writes_one_frame(frame):
    import psycopg

    with psycopg.connect(dsn(frame)) as conn:
        conn.execute("CREATE TABLE other (k BIGINT)")
        conn.execute("INSERT INTO t VALUES (4, 'd')")
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="one frame"):
            conn.execute("INSERT INTO other VALUES (1)")
        conn.rollback()
        assert rows(conn) == ORIGINAL
        assert conn.execute("SELECT count(*) FROM other").fetchone() == (0,)


def test_a_client_lost_mid_block_leaves_nothing(frame):
    import psycopg

    conn = psycopg.connect(dsn(frame))
    conn.execute("DELETE FROM t WHERE k = 1")
    conn.execute("INSERT INTO t SELECT k + 10, v FROM t")
    conn.pgconn.finish()  # the socket closes with the block open
    with psycopg.connect(dsn(frame), autocommit=True) as other:
        assert rows(other) == ORIGINAL


def test_copy_inside_a_block_commits_with_it(frame):
    import psycopg

    with psycopg.connect(dsn(frame)) as conn:
        with conn.cursor().copy("COPY t FROM STDIN") as copy:
            copy.write("7\tg\n8\th\n")
        assert len(rows(conn)) == 5
        conn.rollback()
        assert rows(conn) == ORIGINAL
        conn.rollback()
        with conn.cursor().copy("COPY t FROM STDIN") as copy:
            copy.write("7\tg\n")
        conn.commit()
        assert rows(conn)[-1] == (7, "g")


def test_concurrent_blocks_append_together_and_conflicting_deletes_get_40001(frame):
    import psycopg

    a = psycopg.connect(dsn(frame))
    b = psycopg.connect(dsn(frame))
    try:
        a.execute("INSERT INTO t VALUES (10, 'x')")
        b.execute("INSERT INTO t VALUES (20, 'y')")
        a.commit()
        b.commit()
        assert [k for k, _ in rows(a)] == [1, 2, 3, 10, 20]
        a.rollback()

        a.execute("DELETE FROM t WHERE k = 1")
        b.execute("UPDATE t SET v = 'q' WHERE k = 1")
        a.commit()
        with pytest.raises(psycopg.errors.SerializationFailure):
            b.commit()
        assert [k for k, _ in rows(b)] == [2, 3, 10, 20]
        b.rollback()
    finally:
        a.close()
        b.close()


def test_transactional_writers_lose_nothing(frame):
    import psycopg

    writers, blocks, per_block = 4, 5, 3
    errors = []

    def write(w):
        try:
            with psycopg.connect(dsn(frame)) as conn:
                for block in range(blocks):
                    for i in range(per_block):
                        key = 1000 * (w + 1) + 10 * block + i
                        conn.execute("INSERT INTO t VALUES (%s, %s)", (key, f"w{w}"))
                    conn.commit()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with psycopg.connect(dsn(frame), autocommit=True) as conn:
        keys = [k for k, _ in rows(conn)]
    assert len(keys) == 3 + writers * blocks * per_block
    assert len(set(keys)) == len(keys)


@pytest.mark.skipif(shutil.which("psql") is None, reason="psql is installed by .ci/run")
def test_psql_rollback_in_one_string_and_across_commands(frame):
    def psql(*commands):
        args = ["psql", dsn(frame), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for c in commands:
            args += ["-c", c]
        return subprocess.run(args, capture_output=True, text=True, timeout=60)

    out = psql("BEGIN; DELETE FROM t; ROLLBACK", "SELECT count(*) FROM t")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["3"]
    out = psql("BEGIN", "INSERT INTO t VALUES (9, 'i')", "SELECT count(*) FROM t", "ROLLBACK",
               "SELECT count(*) FROM t")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["4", "3"]


def test_asyncpg_transaction_context_rolls_back_on_exception(frame):
    import asyncpg

    async def run():
        conn = await asyncpg.connect(host="127.0.0.1", port=frame, user="analyst", database="default")
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await conn.execute("DELETE FROM t WHERE k = $1", 2)
                assert await conn.fetchval("SELECT count(*) FROM t") == 2
                raise RuntimeError("give up")
        assert await conn.fetchval("SELECT count(*) FROM t") == 3
        async with conn.transaction():
            await conn.execute("DELETE FROM t WHERE k = $1", 2)
        assert await conn.fetchval("SELECT count(*) FROM t") == 2
        await conn.close()

    asyncio.run(run())
