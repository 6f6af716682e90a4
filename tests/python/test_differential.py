"""Differential test: Apiary answers like PostgreSQL.

Protects the promise that a Postgres client gets Postgres's answers from
`apiary serve`. The same tables are loaded into a throw-away PostgreSQL
cluster (the oracle, started from the server binaries under
/usr/lib/postgresql/*/bin) and into Apiary, on a local root and on S3. Every
query of tests/differential/corpus.sql then runs on both over four client
paths -- the simple query protocol (text), the extended protocol with text
and with binary results (libpq through psycopg), and asyncpg (binary,
prepared) -- and the answers are compared: error or not (and the SQLSTATE
class when both fail), column count, column type OIDs, and every cell (text
exactly as sent; binary values decoded by the client as the announced type,
floats compared exactly). Apiary's payloads must also decode as the types
its RowDescription announces, and the same cell must mean the same value in
text and in binary. A `numeric` cell holding the same number with another
count of decimals (`1.0` where PostgreSQL, which keeps each value's own
scale, writes `1`) is reported as a "numeric scale" difference, not as a
wrong answer; a `float8`/`float4` cell one unit in the last place from
PostgreSQL's (whose math functions come from the C library, not correctly
rounded on every platform: glibc's `cbrt(27)` is `3.0000000000000004`) as
a "float last digit" difference.

Differences that are known are listed in
tests/differential/known_differences.txt as `id<TAB>protocol-or-*<TAB>reason`.
The test fails on any difference not listed there, and on a listed one that
no longer differs, so the list only shrinks. A report of every difference
(and a draft list) is written under the test's tmp dir.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime as dt
import decimal
import math
import os
import re
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test_gateway import dsn, free_port, start_server, stop_server

DIFFERENTIAL = Path(__file__).resolve().parent.parent / "differential"
CORPUS = DIFFERENTIAL / "corpus.sql"
KNOWN = DIFFERENTIAL / "known_differences.txt"

PROTOCOLS = ("simple", "extended", "binary", "asyncpg")
CATEGORIES = {
    "answer": "wrong answer",
    "type": "type OID mismatch",
    "error": "error vs answer",
    "payload": "payload mismatch",
    "scale": "numeric scale",
    "ulp": "float last digit",
}
STATEMENT_TIMEOUT_MS = 30_000
FLOAT4_OID = 700
FLOAT8_OID = 701
NUMERIC_OID = 1700


# ---------------------------------------------------------------- the corpus


def load_corpus() -> list[tuple[str, str]]:
    """(id, sql) for each entry of corpus.sql."""
    entries: list[tuple[str, list[str]]] = []
    for line in CORPUS.read_text().splitlines():
        head = re.match(r"--\s*id:\s*(\S+)\s*$", line)
        if head:
            entries.append((head.group(1), []))
        elif entries and not line.lstrip().startswith("--"):
            entries[-1][1].append(line)
    corpus = [(qid, "\n".join(lines).strip().rstrip(";").strip()) for qid, lines in entries]
    ids = [qid for qid, _ in corpus]
    assert len(ids) == len(set(ids)), [i for i, n in collections.Counter(ids).items() if n > 1]
    assert all(sql for _, sql in corpus), [qid for qid, sql in corpus if not sql]
    return corpus


def load_known() -> dict[tuple[str, str], str]:
    """(id, protocol or '*') -> reason, from known_differences.txt."""
    known = {}
    for number, line in enumerate(KNOWN.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        assert len(parts) == 3 and all(p.strip() for p in parts), f"{KNOWN.name}:{number}: want id<TAB>protocol<TAB>reason"
        qid, protocol, reason = (p.strip() for p in parts)
        assert protocol in (*PROTOCOLS, "*"), f"{KNOWN.name}:{number}: unknown protocol {protocol!r}"
        assert (qid, protocol) not in known, f"{KNOWN.name}:{number}: listed twice"
        known[(qid, protocol)] = reason
    return known


# ------------------------------------------------------------------ the data


def sql_literal(value) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, decimal.Decimal)):
        return str(value)
    if isinstance(value, float):
        return f"'{value!r}'"  # quoted, so that -0.0 and 1e16 reach the column as written
    if isinstance(value, bytes):
        return f"decode('{value.hex()}', 'hex')"
    return "'" + str(value).replace("'", "''") + "'"


def insert_statements(table: str, rows: list[tuple], batch: int = 500) -> list[str]:
    """Multi-row INSERTs; one per table here, so each frame is one file and
    float aggregates never depend on how partial results are merged."""
    return [
        f"INSERT INTO {table} VALUES " + ", ".join("(" + ", ".join(map(sql_literal, row)) + ")" for row in rows[i:i + batch])
        for i in range(0, len(rows), batch)
    ]


D = decimal.Decimal
KINDS = [  # id, big, small, num, dbl, rl, txt, vc, flag, d, ts, tstz, raw
    (1, 9223372036854775807, 32767, D("9999999999999.99"), 1e16, 1.5, "hello", "abc", True,
     "2024-02-29", "2024-02-29 12:34:56.789", "2024-02-29 12:34:56.789+00", b"\x00\xff"),
    (2, -9223372036854775808, -32768, D("-9999999999999.99"), 0.1, -0.25, "", "", False,
     "1970-01-01", "1970-01-01 00:00:00", "1970-01-01 00:00:00+00", b""),
    (3, 0, 0, D("0.00"), 0.0, 0.0, "Ünïcødé ✓ 日本", "ß", True,
     "2000-01-01", "2000-01-01 00:00:00.000001", "2000-01-01 05:30:00+05:30", b"\xde\xad\xbe\xef"),
    (4, None, None, None, None, None, None, None, None, None, None, None, None),
    (5, 42, 7, D("123.45"), -2.5, 3.25, "Hello World", "hello world", False,
     "1999-12-31", "1999-12-31 23:59:59", "1999-12-31 23:59:59.5+00", b"A"),
    (6, -1, -1, D("0.01"), 1e-10, 0.5, "a%b_c", "A%B_C", None,
     "2023-06-15", "2023-06-15 08:00:00", "2023-06-15 08:00:00-07", None),
    (7, 100, 100, D("100.50"), 3.141592653589793, -1024.0, "tab\there", "quote's", True,
     "1900-03-01", "1900-03-01 01:02:03", "1900-03-01 01:02:03+00", b"\x00"),
    (8, 1000000, 12, D("-0.99"), -0.0, 2.5, "hello", "HELLO", False,
     "2024-12-31", "2024-12-31 23:59:59.999999", "2024-12-31 23:59:59.999999+00", b""),
]
BAG_A = [(1, "a"), (1, "a"), (2, "b"), (3, None), (None, None), (4, "d"), (4, "d"), (4, "d")]
BAG_B = [(1, "a"), (3, None), (None, None), (4, "d"), (4, "d"), (5, "e")]
EMP = [(1, None, "root"), (2, 1, "ann"), (3, 1, "bob"), (4, 2, "cid"), (5, 2, "dee"), (6, 4, "eve"),
       (7, None, "solo"), (8, 6, "fay")]


def customers() -> list[tuple]:
    regions = ["EU", "US", "ASIA", None]
    rows = [(i, f"Customer#{i}", regions[i % 4]) for i in range(1, 9)]
    return rows + [(10, "Customer#10", "EU")]  # no orders


def orders() -> list[tuple]:
    rows = []
    for o in range(1, 61):
        cust = None if o % 17 == 0 else (o * 5) % 9 + 1  # 9 is nobody; 10 orders nothing
        day = dt.date(2023, 1, 1) + dt.timedelta(days=(o * 11) % 400)
        rows.append((o, cust, day.isoformat(), "OFP"[o % 3], D(o * 1234 % 100000) / 100, o % 5 + 1))
    return rows


def lineitems() -> list[tuple]:
    rows = []
    for o in range(1, 61):
        if o % 10 == 0:
            continue  # orders without lines
        for line in range(1, 2 + (o * 3) % 4):
            ship = dt.datetime(2023, 1, 1) + dt.timedelta(days=(o * 13 + line) % 380, hours=(o + line) % 24,
                                                          minutes=(o * line) % 60)
            qty = None if (o * line) % 23 == 0 else (o * line * 7) % 50 + 1
            rows.append((o, line, "part-" + "ABCDEF"[(o * line) % 6], qty, D((o * 131 + line * 17) % 10000) / 100,
                         ((o + line) % 9) / 8, ship.isoformat(" "), (o + line) % 5 == 0))
    return rows


TABLES = {
    "kinds": ("id INT, big BIGINT, small SMALLINT, num NUMERIC(15,2), dbl DOUBLE PRECISION, rl REAL, txt TEXT, "
              "vc VARCHAR, flag BOOLEAN, d DATE, ts TIMESTAMP, tstz TIMESTAMPTZ, raw BYTEA", KINDS),
    "customers": ("c_id INT, c_name TEXT, c_region TEXT", customers()),
    "orders": ("o_id BIGINT, o_cust INT, o_date DATE, o_status TEXT, o_total NUMERIC(12,2), o_priority SMALLINT",
               orders()),
    "lineitem": ("l_order BIGINT, l_line INT, l_part VARCHAR, l_qty INT, l_price NUMERIC(10,2), "
                 "l_discount DOUBLE PRECISION, l_ship TIMESTAMP, l_returned BOOLEAN", lineitems()),
    "bag_a": ("x INT, y TEXT", BAG_A),
    "bag_b": ("x INT, y TEXT", BAG_B),
    "emp": ("id INT, boss INT, name TEXT", EMP),
}


def load_tables(conn) -> None:
    """The same DDL and INSERTs, through the simple protocol, on either system."""
    for name, (columns, rows) in TABLES.items():
        conn.execute(f"CREATE TABLE {name} ({columns})")
        for statement in insert_statements(name, rows):
            conn.execute(statement)


# ------------------------------------------------------- the PostgreSQL oracle


def postgres_bindir() -> Path | None:
    found = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists() and p.parent.name.isdigit()]
    if found:
        return max(found, key=lambda p: int(p.parent.name))
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl and (Path(pg_ctl).parent / "initdb").exists() else None


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL cluster on a free port (UTC, UTF-8, trust auth), loaded with
    the tables; yields its libpq connection string."""
    import psycopg

    bindir = postgres_bindir()
    if bindir is None:
        missing = "PostgreSQL server binaries are not installed (Debian package `postgresql`)"
        if os.environ.get("CI"):
            pytest.fail(missing + "; .ci/run installs them")
        pytest.skip(missing)
    work = Path(tempfile.mkdtemp(prefix="apiary-pg-"))
    as_user = {}
    if os.geteuid() == 0:  # initdb refuses to run as root
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(work, nobody.pw_uid, nobody.pw_gid)
        as_user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    data, port = work / "data", free_port()

    def run(*args):
        return subprocess.run([str(bindir / args[0]), *args[1:]], capture_output=True, text=True, cwd=work,
                              timeout=120, **as_user)

    try:
        for locale in (["--locale=C.UTF-8"], ["--locale=C"]):
            out = run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", *locale)
            if out.returncode == 0:
                break
            shutil.rmtree(data, ignore_errors=True)
        assert out.returncode == 0, out.stderr
        options = (f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={work} "
                   "-c TimeZone=UTC -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        log = work / "log"
        out = run("pg_ctl", "-D", str(data), "-l", str(log), "-w", "-t", "60", "-o", options, "start")
        assert out.returncode == 0, out.stdout + out.stderr + (log.read_text() if log.exists() else "")
        conninfo = f"host=127.0.0.1 port={port} user=postgres dbname=postgres"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            load_tables(conn)
        yield conninfo
    finally:
        if (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(work, ignore_errors=True)


# ------------------------------------------------------------- running queries


@dataclasses.dataclass
class Outcome:
    """What one system answered to one query over one client path."""

    sqlstate: str | None = None  # set when it failed; 'client:...' when the client library failed
    message: str = ""
    oids: tuple[int, ...] = ()
    rows: list[tuple] = dataclasses.field(default_factory=list)  # cells as compared
    values: list[tuple] = dataclasses.field(default_factory=list)  # cells decoded as their announced type
    problems: list[str] = dataclasses.field(default_factory=list)  # payloads that do not fit their type


def canon(value):
    """A comparable form of a decoded cell that keeps what equality would hide:
    the scale of a numeric, the sign of a zero, the class of a number."""
    if value is None:
        return None
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, decimal.Decimal):
        return ("numeric", str(value))
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ("bytes", bytes(value).hex())
    if isinstance(value, (list, tuple)):
        return ("array", tuple(canon(v) for v in value))
    if isinstance(value, (dt.datetime, dt.date, dt.time, dt.timedelta)):
        return (type(value).__name__, value.isoformat() if hasattr(value, "isoformat") else str(value),
                str(value.utcoffset()) if isinstance(value, (dt.datetime, dt.time)) else None)
    return (type(value).__name__, str(value))


@dataclasses.dataclass(frozen=True)
class Undecodable:
    """A payload the client could not decode as its announced type."""

    raw: bytes


def same_value(a, b) -> bool:
    """Whether two decoded cells of differently typed columns still mean the same
    value (1 and 1.0, a timestamp and the same UTC timestamptz): then the type
    OID mismatch is the whole finding, not a wrong answer too."""
    if a is None or b is None or isinstance(a, Undecodable) or isinstance(b, Undecodable):
        return a == b
    numbers = (int, float, decimal.Decimal)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        if isinstance(a, float) or isinstance(b, float):
            return float(a) == float(b)
        return decimal.Decimal(a) == decimal.Decimal(b)
    if isinstance(a, dt.date) and isinstance(b, dt.date):
        def utc(v):
            if not isinstance(v, dt.datetime):
                return dt.datetime(v.year, v.month, v.day)
            return v.astimezone(dt.timezone.utc).replace(tzinfo=None) if v.tzinfo else v
        return utc(a) == utc(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return canon(a) == canon(b)


def short(value, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


class Libpq:
    """One psycopg connection, used at the libpq level so that every cell's
    wire bytes can be seen and decoded one by one."""

    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self.conn = self._connect()

    def _connect(self):
        import psycopg

        conn = psycopg.connect(self.conninfo, autocommit=True)
        conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        return conn

    def close(self):
        self.conn.close()

    def run(self, sql: str, mode: str) -> Outcome:
        from psycopg import pq

        if self.conn.closed or self.conn.pgconn.status != pq.ConnStatus.OK:
            self.conn = self._connect()  # the server dropped the last one
        pgconn = self.conn.pgconn
        binary = mode == "binary"
        if mode == "simple":
            res = pgconn.exec_(sql.encode())
        else:
            res = pgconn.exec_params(sql.encode(), [], result_format=pq.Format.BINARY if binary else pq.Format.TEXT)
        if res.status == pq.ExecStatus.FATAL_ERROR:
            state = res.error_field(pq.DiagnosticField.SQLSTATE)
            return Outcome(sqlstate=state.decode() if state else "connection",
                           message=(res.error_message or b"").decode(errors="replace").strip())
        if res.status != pq.ExecStatus.TUPLES_OK:
            return Outcome(sqlstate=f"client:{res.status.name}", message="no result rows")
        want = pq.Format.BINARY if binary else pq.Format.TEXT
        oids = tuple(res.ftype(c) for c in range(res.nfields))
        out = Outcome(oids=oids, values=[])
        loaders = []
        for c, oid in enumerate(oids):
            if res.fformat(c) != want:
                out.problems.append(f"column {c + 1} came in format {res.fformat(c)}, asked {want.value}")
            cls = self.conn.adapters.get_loader(oid, want) or self.conn.adapters.get_loader(0, want)
            loaders.append(cls(oid, self.conn))
        for r in range(res.ntuples):
            cells, values = [], []
            for c, loader in enumerate(loaders):
                raw = res.get_value(r, c)
                if raw is None:
                    cells.append(None)
                    values.append(None)
                    continue
                try:
                    value = loader.load(raw)
                except Exception as e:  # noqa: BLE001 -- any failure to decode is the finding
                    value = Undecodable(bytes(raw))
                    if len(out.problems) < 5:
                        out.problems.append(f"row {r + 1} column {c + 1}: {short(bytes(raw))} does not decode as "
                                            f"{type_name(oids[c])}: {type(e).__name__}: {e}")
                values.append(value)
                cells.append(canon(value) if binary else bytes(raw).decode("utf-8", errors="replace"))
            out.rows.append(tuple(cells))
            out.values.append(tuple(values))
        return out


class Asyncpg:
    """One asyncpg connection; each query is prepared, described and fetched."""

    def __init__(self, loop, **connect):
        self.loop, self.connect = loop, connect
        self.conn = None

    def run(self, sql: str) -> Outcome:
        return self.loop.run_until_complete(self._run(sql))

    async def _run(self, sql: str) -> Outcome:
        import asyncpg

        if self.conn is None or self.conn.is_closed():
            self.conn = await asyncpg.connect(**self.connect, statement_cache_size=0,
                                              command_timeout=STATEMENT_TIMEOUT_MS / 1000 + 10)
        try:
            stmt = await self.conn.prepare(sql)
            oids = tuple(a.type.oid for a in stmt.get_attributes())
            records = await stmt.fetch()
        except asyncpg.PostgresError as e:
            return Outcome(sqlstate=e.sqlstate or "client:noSQLSTATE", message=str(e))
        except Exception as e:  # noqa: BLE001 -- decoding or protocol failure in the client
            return Outcome(sqlstate=f"client:{type(e).__name__}", message=str(e))
        values = [tuple(rec) for rec in records]
        return Outcome(oids=oids, rows=[tuple(canon(v) for v in row) for row in values], values=values)

    def close(self):
        if self.conn is not None and not self.conn.is_closed():
            try:
                self.loop.run_until_complete(self.conn.close(timeout=5))
            except Exception:  # noqa: BLE001 -- the server may be gone already
                self.conn.terminate()


def type_name(oid: int) -> str:
    from psycopg.postgres import types

    info = types.get(oid)
    return info.name if info else f"oid {oid}"


class System:
    """Clients for every protocol on one server."""

    def __init__(self, conninfo: str, loop):
        from psycopg.conninfo import conninfo_to_dict

        params = conninfo_to_dict(conninfo)
        self.libpq = Libpq(conninfo)
        self.asyncpg = Asyncpg(loop, host=params["host"], port=int(params["port"]), user=params["user"],
                               database=params["dbname"])

    def run(self, sql: str) -> dict[str, Outcome]:
        out = {mode: self.libpq.run(sql, mode) for mode in ("simple", "extended", "binary")}
        out["asyncpg"] = self.asyncpg.run(sql)
        return out

    def close(self):
        self.libpq.close()
        self.asyncpg.close()


# ---------------------------------------------------------------- comparing


@dataclasses.dataclass(frozen=True)
class Difference:
    qid: str
    protocol: str
    category: str
    detail: str


def compare(pg: Outcome, ap: Outcome) -> list[tuple[str, str]]:
    """(category, detail) for each way Apiary's answer differs from PostgreSQL's."""
    if pg.sqlstate or ap.sqlstate:
        if pg.sqlstate and ap.sqlstate:
            if pg.sqlstate[:2] == ap.sqlstate[:2]:
                return []
            return [("error", f"fails with {ap.sqlstate} (PG {pg.sqlstate}): {short(ap.message)}")]
        if ap.sqlstate:
            category = "payload" if ap.sqlstate.startswith("client:") else "error"
            return [(category, f"fails with {ap.sqlstate}: {short(ap.message)}")]
        return [("error", f"answers, PG fails with {pg.sqlstate}: {short(pg.message)}")]
    # A payload PostgreSQL's own client cannot decode either (a date of
    # 'infinity') is no finding; its cells are still compared byte for byte.
    found = [] if pg.problems else [("payload", p) for p in ap.problems]
    if len(pg.oids) != len(ap.oids):
        return found + [("answer", f"{len(ap.oids)} columns (PG {len(pg.oids)})")]
    for c, (want, got) in enumerate(zip(pg.oids, ap.oids)):
        if want != got:
            found.append(("type", f"column {c + 1} is {type_name(got)} (PG {type_name(want)})"))
    if len(pg.rows) != len(ap.rows):
        found.append(("answer", f"{len(ap.rows)} rows (PG {len(pg.rows)}); first rows {short(ap.rows[:3])} "
                                f"(PG {short(pg.rows[:3])})"))
        return found
    retyped = {c for c, (want, got) in enumerate(zip(pg.oids, ap.oids)) if want != got}
    scale_noted = False
    for r, (want, got) in enumerate(zip(pg.rows, ap.rows)):
        for c, (w, g) in enumerate(zip(want, got)):
            if w == g or (c in retyped and same_value(pg.values[r][c], ap.values[r][c])):
                continue
            detail = f"row {r + 1} column {c + 1}: {short(g, 80)} (PG {short(w, 80)})"
            if pg.oids[c] == ap.oids[c] == NUMERIC_OID and same_number(w, g):
                # The same number written with another count of decimals
                # (PostgreSQL keeps each value's own scale): not a wrong answer.
                if not scale_noted:
                    found.append(("scale", detail))
                    scale_noted = True
                continue
            if pg.oids[c] == ap.oids[c] and pg.oids[c] in (FLOAT4_OID, FLOAT8_OID) and next_float(w, g):
                found.append(("ulp", detail))
                continue
            found.append(("answer", detail))
            return found
    return found


def next_float(want, got) -> bool:
    """Whether two float cells (text, or canon's ('float', text)) are adjacent
    doubles: the same result but for the C library's last-digit rounding."""
    def number(cell):
        text = cell[1] if isinstance(cell, tuple) else cell
        try:
            return float(str(text))
        except ValueError:
            return None
    a, b = number(want), number(got)
    return a is not None and b is not None and a != b and math.isfinite(a) and math.nextafter(a, b) == b


def same_number(want, got) -> bool:
    """Whether two numeric cells (text, or canon's ('numeric', text)) hold the
    same number."""
    def number(cell):
        text = cell[1] if isinstance(cell, tuple) else cell
        try:
            return decimal.Decimal(str(text))
        except (decimal.InvalidOperation, ValueError):
            return None
    a, b = number(want), number(got)
    return a is not None and b is not None and a == b


def text_binary_agreement(pg: dict[str, Outcome], ap: dict[str, Outcome]) -> list[str]:
    """Apiary's text and binary payloads of the same cell must decode to the same
    value (checked where PostgreSQL's do, so client quirks do not count)."""
    text, binary = ap["extended"], ap["binary"]
    if text.sqlstate or binary.sqlstate or text.oids != binary.oids or len(text.values) != len(binary.values):
        return []
    pg_text, pg_binary = pg["extended"], pg["binary"]
    pg_ok = not pg_text.sqlstate and not pg_binary.sqlstate and pg_text.oids == text.oids

    def agree(oid, t, b):
        if isinstance(t, Undecodable) or isinstance(b, Undecodable):
            return True  # reported as such
        if oid == FLOAT4_OID and isinstance(t, float) and isinstance(b, float):
            return struct.pack("<f", t) == struct.pack("<f", b)  # text holds the shortest float4 digits
        return canon(t) == canon(b)

    for r, (tv, bv) in enumerate(zip(text.values, binary.values)):
        for c, (t, b) in enumerate(zip(tv, bv)):
            if agree(text.oids[c], t, b):
                continue
            if pg_ok and r < len(pg_text.values) and not agree(text.oids[c], pg_text.values[r][c],
                                                                  pg_binary.values[r][c]):
                continue
            t, b = canon(t), canon(b)
            return [f"row {r + 1} column {c + 1} ({type_name(text.oids[c])}) is {short(t, 60)} in text "
                    f"but {short(b, 60)} in binary"]
    return []


def differences(qid: str, pg: dict[str, Outcome], ap: dict[str, Outcome]) -> list[Difference]:
    found = []
    for protocol in PROTOCOLS:
        for category, detail in compare(pg[protocol], ap[protocol]):
            found.append(Difference(qid, protocol, category, detail))
    for detail in text_binary_agreement(pg, ap):
        found.append(Difference(qid, "binary", "payload", detail))
    return found


def summarize(found: list[Difference], unexpected: list[Difference], stale: list[tuple[str, str]],
              corpus_size: int, known: dict) -> str:
    per_category = collections.Counter(d.category for d in found)
    queries = {d.qid for d in found}
    lines = [f"{corpus_size} queries x {len(PROTOCOLS)} protocols; {len(queries)} queries differ somewhere "
             f"({len(found)} differences):"]
    for key, title in CATEGORIES.items():
        ids = {d.qid for d in found if d.category == key}
        lines.append(f"  {title:<20} {per_category[key]:4} differences in {len(ids):3} queries")
    lines.append(f"  unexpected (not in {KNOWN.name}): {len(unexpected)}; listed but no longer differing: {len(stale)}")
    if unexpected:
        lines.append("UNEXPECTED differences (fix Apiary, or list them with a reason):")
        lines += [f"  {d.qid}\t{d.protocol}\t[{CATEGORIES[d.category]}] {d.detail}" for d in unexpected]
    if stale:
        lines.append(f"FIXED since listed (remove these lines from {KNOWN.name}):")
        lines += [f"  {qid}\t{protocol}\t{known[(qid, protocol)]}" for qid, protocol in stale]
    return "\n".join(lines)


# ----------------------------------------------------------------- the test


def test_apiary_answers_like_postgres(storage, postgres, tmp_path):
    import psycopg

    corpus = load_corpus()
    known = load_known()
    unknown_ids = {qid for qid, _ in known} - {qid for qid, _ in corpus}
    assert not unknown_ids, f"{KNOWN.name} lists ids not in the corpus: {sorted(unknown_ids)}"

    port = free_port()
    proc = start_server(storage, f"127.0.0.1:{port}")
    loop = asyncio.new_event_loop()
    pg = apiary = None
    found: list[Difference] = []
    try:
        with psycopg.connect(dsn(port), autocommit=True) as conn:
            load_tables(conn)
        pg = System(postgres, loop)
        apiary = System(dsn(port), loop)
        started = time.monotonic()
        for qid, sql in corpus:
            want, got = pg.run(sql), apiary.run(sql)
            assert proc.poll() is None, f"apiary serve died on query {qid}: {sql}\n{proc.stderr.read().decode()}"
            simple = want["simple"]
            assert simple.sqlstate or len(simple.rows) <= 1 or re.search(r"\bORDER\s+BY\b", sql, re.I), \
                f"corpus query {qid} returns {len(simple.rows)} rows without ORDER BY"
            found += differences(qid, want, got)
        elapsed = time.monotonic() - started
    finally:
        for system in (pg, apiary):
            if system is not None:
                system.close()
        loop.close()
        if proc.poll() is None:
            stop_server(proc)

    def listed(d: Difference) -> bool:
        return (d.qid, d.protocol) in known or (d.qid, "*") in known

    unexpected = [d for d in found if not listed(d)]
    stale = [(qid, protocol) for qid, protocol in known
             if not any(d.qid == qid and protocol in ("*", d.protocol) for d in found)]
    summary = summarize(found, unexpected, stale, len(corpus), known)
    report = tmp_path / "differential-report.txt"
    report.write_text(summary + f"\n\nqueries ran in {elapsed:.1f}s\n\nALL differences:\n" + "\n".join(
        f"{d.qid}\t{d.protocol}\t[{CATEGORIES[d.category]}] {d.detail}" for d in found) + "\n")
    draft = sorted({(d.qid, d.protocol, d.category, d.detail) for d in found})
    (tmp_path / "known_differences.draft.txt").write_text(
        "".join(f"{qid}\t{protocol}\t{category}: {detail}\n" for qid, protocol, category, detail in draft))
    print(summary)
    print(f"report: {report}")
    if unexpected or stale:
        pytest.fail(summary + f"\nfull report: {report}", pytrace=False)


def test_a_wrong_password_is_refused_as_postgresql_refuses_it(postgres, tmp_path):
    """The same role and password on a real PostgreSQL (SCRAM for that role)
    and on a node: a wrong password fails the connection with the same
    words, and the right one connects."""
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS ana")
        conn.execute("CREATE ROLE ana LOGIN PASSWORD 's3cret pass'")
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        hba.write_text("host all ana 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    reference = re.sub(r"user=\S+", "user=ana", postgres)

    def refusal(conninfo: str) -> str:
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(f"{conninfo} password=nope", connect_timeout=10)
        return str(refused.value).split("FATAL:", 1)[1].strip()

    deadline = time.time() + 10
    while True:  # the reload takes effect asynchronously
        try:
            expected = refusal(reference)
            break
        except BaseException:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    port = free_port()
    proc = start_server(str(tmp_path / "root"), f"127.0.0.1:{port}", APIARY_USER="ana",
                        APIARY_PASSWORD="s3cret pass")
    try:
        node = f"host=127.0.0.1 port={port} user=ana dbname=default"
        assert refusal(node) == expected == 'password authentication failed for user "ana"'
        for conninfo in (reference, node):
            with psycopg.connect(f"{conninfo} password='s3cret pass'") as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        stop_server(proc)
