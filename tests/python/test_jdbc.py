"""pgJDBC (Debian's libpostgresql-jdbc-java, installed by .ci/run) against
`apiary serve`: tests/java/JdbcCheck.java runs DatabaseMetaData
getTables/getColumns/getPrimaryKeys and a PreparedStatement with timestamps
and decimals past the driver's switch to server-prepared binary mode;
tests/java/JdbcMetadata.java prints every DatabaseMetaData method DBeaver
and Metabase call, and its answers are compared with PostgreSQL's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_client_matrix import INSPECTED
from test_differential import postgres  # noqa: F401  (fixture)
from test_gateway import free_port, start_server, stop_server

JAR = Path("/usr/share/java/postgresql.jar")
SOURCE = Path(__file__).resolve().parents[1] / "java" / "JdbcCheck.java"
METADATA_SOURCE = SOURCE.with_name("JdbcMetadata.java")

# DatabaseMetaData methods whose answer differs from PostgreSQL's, and why.
# The comparison fails on any other difference and on a listed method that
# answers as PostgreSQL does (then delete its line).
METADATA_GAPS: dict[str, str] = {}
# Methods whose query has no ORDER BY (getTypeInfo lists pg_type as stored):
# compared as sets of rows.
UNORDERED = {"getTypeInfo"}
# Answers that differ by design: the database, schema and user are others.
DIFFERENT_BY_DESIGN = {"getCatalogs", "getCatalog", "getSchema", "getUserName"}


@pytest.mark.skipif(os.environ.get("APIARY_TEST_SKIP_JDBC") == "1", reason="APIARY_TEST_SKIP_JDBC=1")
def test_pgjdbc_metadata_and_prepared_statements(tmp_path, storage):
    assert shutil.which("javac") and JAR.exists(), "install a JDK and libpostgresql-jdbc-java (see .ci/run)"
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(classes), "-cp", str(JAR), str(SOURCE)], check=True, timeout=120)
    port = free_port()
    proc = start_server(storage, f"127.0.0.1:{port}")
    try:
        out = subprocess.run(
            ["java", "-cp", f"{JAR}:{classes}", "JdbcCheck", f"jdbc:postgresql://127.0.0.1:{port}/default?user=analyst"],
            capture_output=True, text=True, timeout=120,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        assert "tables [default.payments]" in out.stdout
        assert "columns [id:int8, paid_at:timestamp, amount:numeric, note:text]" in out.stdout
        assert "transactions ok" in out.stdout
        assert "fetch size ok" in out.stdout
        assert out.stdout.rstrip().endswith("ok")
    finally:
        stop_server(proc)


def metadata_answers(classes: Path, url: str) -> dict[str, list[str]]:
    out = subprocess.run(["java", "-cp", f"{JAR}:{classes}", "JdbcMetadata", url, "inspected"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    answers: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        if line.startswith("## "):
            method = answers.setdefault(line[3:], [])
        else:
            method.append(line)
    return answers


@pytest.mark.skipif(os.environ.get("APIARY_TEST_SKIP_JDBC") == "1", reason="APIARY_TEST_SKIP_JDBC=1")
def test_pgjdbc_database_metadata_answers_as_postgresql_does(tmp_path, storage, postgres):
    import psycopg

    assert shutil.which("javac") and JAR.exists(), "install a JDK and libpostgresql-jdbc-java (see .ci/run)"
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(classes), "-cp", str(JAR), str(METADATA_SOURCE)], check=True, timeout=120)
    with psycopg.connect(postgres, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'inspected'").fetchone():
            for statement in INSPECTED:
                conn.execute(statement)
        # getTypeInfo lists every schema's types: leave out those of other tests' tables.
        others = {row[0] for row in conn.execute(
            "SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'inspected', 'pg_toast')")}
    pg = dict(part.split("=", 1) for part in postgres.split())
    expected = metadata_answers(classes, f"jdbc:postgresql://{pg['host']}:{pg['port']}/{pg['dbname']}?user={pg['user']}")
    port = free_port()
    proc = start_server(storage, f"127.0.0.1:{port}")
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} user=analyst dbname=default", autocommit=True) as conn:
            for statement in INSPECTED:
                conn.execute(statement)
        got = metadata_answers(classes, f"jdbc:postgresql://127.0.0.1:{port}/default?user=analyst")
    finally:
        stop_server(proc)
    assert list(got) == list(expected)
    # Privileges name the connected user, who owns everything on both.
    same_user = {k: [line.replace("analyst", pg["user"]) for line in v] for k, v in got.items()}
    for method in UNORDERED:
        same_user[method] = same_user[method][:1] + sorted(same_user[method][1:])
        rows = [line for line in expected[method][1:] if line.split("\t")[0] not in others]
        expected[method] = expected[method][:1] + sorted(rows)
    differing = {k for k in expected if same_user[k] != expected[k]} - DIFFERENT_BY_DESIGN
    assert differing - set(METADATA_GAPS) == set(), {
        k: (sorted(set(same_user[k]) - set(expected[k]))[:5], sorted(set(expected[k]) - set(same_user[k]))[:5])
        for k in differing - set(METADATA_GAPS)
    }
    assert set(METADATA_GAPS) - differing == set(), "listed in METADATA_GAPS but answering as PostgreSQL does"
    # The methods DBeaver and Metabase need answer, and with the frames.
    failing = {k for k in got if got[k][0].startswith("error") and not expected[k][0].startswith("error")}
    assert failing <= set(METADATA_GAPS), failing
    assert [line.split("\t")[2] for line in got["getTables"][1:]] == ["cities", "empty"]
    assert got["getCrossReference"] == expected["getCrossReference"]
    assert got["getClientInfoProperties"] == expected["getClientInfoProperties"]


@pytest.mark.skipif(os.environ.get("APIARY_TEST_SKIP_JDBC") == "1", reason="APIARY_TEST_SKIP_JDBC=1")
def test_pgjdbc_fetch_size_streams_a_million_rows_in_bounded_memory(tmp_path):
    """setFetchSize with autocommit off reads a million 200-byte rows through
    a suspended portal; the server's resident memory stays far below the
    result's size (about 200 MB)."""
    import time

    from test_hostile_sql import rss_mb

    assert shutil.which("javac") and JAR.exists(), "install a JDK and libpostgresql-jdbc-java (see .ci/run)"
    classes = tmp_path / "classes"
    subprocess.run(["javac", "-d", str(classes), "-cp", str(JAR), str(SOURCE.with_name("JdbcStream.java"))],
                   check=True, timeout=120)
    port = free_port()
    proc = start_server(str(tmp_path / "root"), f"127.0.0.1:{port}")
    try:
        java = subprocess.Popen(
            ["java", "-cp", f"{JAR}:{classes}", "JdbcStream", f"jdbc:postgresql://127.0.0.1:{port}/default?user=analyst",
             "1000000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert java.stdout.readline().strip() == "created", java.stderr.read()
        before, peak = rss_mb(proc.pid), 0
        while java.poll() is None:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.05)
        out, err = java.communicate(timeout=600)
        assert java.returncode == 0 and "streamed 1000000" in out, out + err
        assert peak - before < 120, f"resident memory grew from {before} MB to {peak} MB"
    finally:
        stop_server(proc)
