"""pgJDBC (Debian's libpostgresql-jdbc-java, installed by .ci/run) against
`apiary serve`: tests/java/JdbcCheck.java runs DatabaseMetaData
getTables/getColumns/getPrimaryKeys and a PreparedStatement with timestamps
and decimals past the driver's switch to server-prepared binary mode."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_gateway import free_port, start_server, stop_server

JAR = Path("/usr/share/java/postgresql.jar")
SOURCE = Path(__file__).resolve().parents[1] / "java" / "JdbcCheck.java"


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
