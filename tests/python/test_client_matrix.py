"""Clients beyond Python's drivers, run as a user would run them against
`apiary serve` on a local root and on S3: node-postgres and postgres.js
(tests/node/clients.mjs), and pgbench in each of its query modes."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

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
