"""What BI tools and drivers send on connect and while browsing (Npgsql's
type loading, pgAdmin, Metabase, Grafana, DBeaver, Superset, Power BI),
replayed through psql against `apiary serve` on a local root and on S3,
and against a real PostgreSQL to prove every expectation is PostgreSQL's.

The queries (tool_queries.py) were written for this suite from what each
tool sends: the same catalog relations, columns, functions and constructs,
not the tools' own text. A step Apiary cannot answer yet is listed in
KNOWN_GAPS with the reason; the test fails on any other failing step and
on a listed one that passes (then delete its line)."""

from __future__ import annotations

import csv
import io
import subprocess

import pytest

from test_differential import postgres  # noqa: F401  (fixture)
from test_gateway import server  # noqa: F401  (fixture)
from tool_queries import TOOLS

# (tool, step index) -> why Apiary fails it today.
KNOWN_GAPS: dict[tuple[str, int], str] = {}

CLICKS = "CREATE TABLE {schema}.clicks (id BIGINT, country TEXT, amount DOUBLE PRECISION)"


def substitute(value, schema: str):
    if isinstance(value, str):
        return value.replace("{schema}", schema)
    if isinstance(value, list):
        return [substitute(v, schema) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, schema) for k, v in value.items()}
    return value


def run_psql(conninfo: list[str], sql: str) -> tuple[int, list[str], list[list[str]], str]:
    run = subprocess.run(["psql", "-X", "-q", "--csv", "-v", "ON_ERROR_STOP=1", *conninfo, "-c", sql],
                         capture_output=True, text=True, timeout=120)
    rows = list(csv.reader(io.StringIO(run.stdout))) if run.stdout.strip() else []
    return run.returncode, (rows[0] if rows else []), rows[1:], run.stderr.strip()


def problems(expect: dict, rc: int, header: list[str], rows: list[list[str]], stderr: str) -> list[str]:
    if rc != 0:
        return [f"failed: {stderr[:300]}"]
    found = []
    if len(rows) < expect.get("min_rows", 0):
        found.append(f"expected at least {expect['min_rows']} rows, got {len(rows)}")
    if "max_rows" in expect and len(rows) > expect["max_rows"]:
        found.append(f"expected at most {expect['max_rows']} rows, got {len(rows)}")
    found += [f"no column {c!r} in {header}" for c in expect.get("columns", []) if c not in header]

    def values(column: str) -> list[str] | None:
        return [r[header.index(column)] for r in rows] if column in header else None

    contains = expect.get("contains", [])
    for want in [contains] if isinstance(contains, dict) else contains:
        got = values(want["column"])
        if got is None or want["value"] not in got:
            found.append(f"no row with {want['column']} = {want['value']!r} (got {(got or [])[:8]})")
    if "absent" in expect:
        absent = expect["absent"]
        if absent["value"] in (values(absent["column"]) or []):
            found.append(f"a row with {absent['column']} = {absent['value']!r}")
    if "nonnull_where" in expect:
        rule = expect["nonnull_where"]
        where, column = rule["where"], rule["column"]
        if where["column"] not in header or column not in header:
            found.append(f"no column {where['column']!r} or {column!r}")
        else:
            hits = [r for r in rows if r[header.index(where["column"])] == where["value"]]
            if not hits or all(r[header.index(column)] == "" for r in hits):
                found.append(f"{column} is empty where {where['column']} = {where['value']!r}")
    return found


def replay(conninfo: list[str], schema: str) -> dict[tuple[str, int], list[str]]:
    failures = {}
    for tool, steps in TOOLS.items():
        for index, step in enumerate(steps):
            rc, header, rows, stderr = run_psql(conninfo, substitute(step["sql"], schema))
            found = problems(substitute(step["expect"], schema), rc, header, rows, stderr)
            if found:
                failures[(tool, index)] = found
    return failures


def test_every_tool_step_answers_as_postgresql_does(server):
    conninfo = ["-h", "127.0.0.1", "-p", str(server), "-U", "analyst", "-d", "default"]
    assert run_psql(conninfo, CLICKS.format(schema='"default"'))[0] == 0
    failures = replay(conninfo, "default")
    unexpected = {k: v for k, v in failures.items() if k not in KNOWN_GAPS}
    fixed = [k for k in KNOWN_GAPS if k not in failures]
    report = "\n".join(f"{tool}[{i}] {TOOLS[tool][i]['step']}: {found}" for (tool, i), found in unexpected.items())
    assert not unexpected, "steps that fail on Apiary:\n" + report
    assert not fixed, f"listed in KNOWN_GAPS but passing now: {fixed}"


def test_the_expectations_hold_on_postgresql(postgres):
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS tools")
        conn.execute("CREATE DATABASE tools")
    conninfo = [postgres.replace("dbname=postgres", "dbname=tools")]
    assert run_psql(conninfo, CLICKS.format(schema="public"))[0] == 0
    assert replay(conninfo, "public") == {}
