"""The tutorial's containers, for real: apiary:latest built from the
Dockerfile, the tutorial's docker-compose.yml run verbatim under podman with
only its S3 side replaced (compose.s3-standin.yml), the tutorial's Python
from the host through localhost:9000, then nodes added, killed, cut off the
network, stopped and restarted; psql and psycopg into the swarm with SCRAM;
a node honouring the cgroup limits of its container.

Run by tests/containers/run.sh, after setup.sh has built the images.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "tests"))

from test_swarm import QUERIES, alive, task_rows, wait_for  # noqa: E402
from test_tutorial import TUTORIAL, check_against_pandas, run_script  # noqa: E402

from apiary import Apiary  # noqa: E402

PROJECT = os.environ.setdefault("APIARY_COMPOSE_PROJECT", "apiary")
NETWORK = f"{PROJECT}_default"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "apiary",
    "AWS_SECRET_ACCESS_KEY": "apiary123",
    "AWS_ENDPOINT_URL": "http://localhost:9000",
    "AWS_REGION": "us-east-1",
}
PSQL_OVERRIDE = REPO / "deploy" / "compose.postgres.yml"
# The user and password deploy/compose.postgres.yml gives the nodes.
PG_USER, PG_PASSWORD = "analyst", "change-me"
# APIARY_DEAD_AFTER's default, and how long a node's first heartbeat may take.
DEAD_AFTER_S = 10
JOIN_S = 20


# podman's container monitor writes an `oom` file into its working directory
# when the kernel kills a container: keep that out of the checkout.
SCRATCH = tempfile.mkdtemp(prefix="apiary-containers-")


def sh(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=SCRATCH)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def node_containers() -> list[str]:
    names = sh("podman", "ps", "--filter", f"label=io.podman.compose.project={PROJECT}",
               "--format", "{{.Names}}").stdout.split()
    return sorted(n for n in names if "apiary-node" in n)


def node_id_prefix(container: str) -> str:
    """Node ids start with the host name, which is the container's id."""
    return sh("podman", "inspect", "--format", "{{.Config.Hostname}}", container).stdout.strip()


def state_of(ap: Apiary, container: str) -> str | None:
    """The state of the newest node that ran in `container`, None if none."""
    prefix = node_id_prefix(container) + "-"
    nodes = [n for n in ap.swarm_status()["nodes"] if n["node_id"].startswith(prefix)]
    if not nodes:
        return None
    return min(nodes, key=lambda n: n["last_seen_s"])["state"]


def nothing_left() -> bool:
    running = sh("podman", "ps", "-a", "--filter", f"label=io.podman.compose.project={PROJECT}",
                 "--format", "{{.Names}}").stdout.split()
    volumes = [v for v in sh("podman", "volume", "ls", "--format", "{{.Name}}").stdout.split()
               if v.startswith(f"{PROJECT}_")]
    networks = [n for n in sh("podman", "network", "ls", "--format", "{{.Name}}").stdout.split() if n == NETWORK]
    return not running and not volumes and not networks


@pytest.fixture(scope="module")
def stack():
    """The tutorial's stack, up; down -v afterwards whatever happened."""
    for key, value in S3_ENV.items():
        os.environ[key] = value
    sh(str(HERE / "down.sh"))
    sh(str(HERE / "up.sh"), timeout=600)
    yield
    sh(str(HERE / "down.sh"))
    shutil.rmtree(SCRATCH, ignore_errors=True)


@pytest.fixture(scope="module")
def client(stack):
    """The tutorial's client: a node in this process, on the swarm's bucket."""
    ap = Apiary("host-client", storage="s3://apiary-data/swarm")
    ap.start()
    yield ap
    ap.shutdown()


def tutorial_blocks() -> dict[str, list[str]]:
    """The code blocks of each step, by step title ("Step 3"), unmodified."""
    blocks = {}
    for section in re.split(r"^## ", TUTORIAL.read_text(), flags=re.M):
        match = re.match(r"(Step \d+)", section)
        if match:
            blocks[match.group(1)] = re.findall(r"```(?:python|bash)\n(.*?)```", section, flags=re.S)
    return blocks


def test_the_tutorial_from_the_host(stack, tmp_path):
    """Steps 3 to 9 as one Python script on the host. Step 7's command, the
    one shell line in the middle, runs through podman-compose."""
    blocks = tutorial_blocks()
    scale = blocks["Step 7"][0].strip()
    assert scale == "docker compose up -d --scale apiary-node-1=2", scale
    # podman 4.3 cannot start a service with its dependency chain: scale the
    # nodes' service alone (--no-deps), as up.sh starts them.
    podman_scale = [str(HERE / "compose.sh"), "up", "-d", "--no-deps", "--scale", "apiary-node-1=2", "apiary-node-1"]
    python = {step: [b for b in blocks[step] if not b.lstrip().startswith("docker")] for step in blocks}
    script = "\n".join(
        python["Step 3"] + python["Step 4"] + python["Step 5"] + python["Step 6"]
        + ["import subprocess", f"subprocess.run({podman_scale!r}, check=True)"]
        + python["Step 7"] + python["Step 8"] + python["Step 9"]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    output = run_script(script, tmp_path, env)

    # Step 4 saw the three containers and the script's own node; Step 7 the
    # fourth container too.
    alive_counts = [int(n) for n in re.findall(r"Nodes alive: (\d+)", output)]
    assert alive_counts == [4, 5], output
    assert len(node_containers()) == 4
    assert re.search(r"Temperature: \d\.\d\d", output) and "Abandoned tasks: 0" in output, output
    options = {**S3_ENV, "AWS_ALLOW_HTTP": "true"}
    check_against_pandas(output, "s3://apiary-data/swarm/analytics/events/clicks", options)


def test_explain_analyze_shows_the_containers_scanning(client):
    wait_for(lambda: alive(client) == 5, JOIN_S, "the four containers and this client")
    tasks = task_rows(client, "SELECT country, COUNT(*) FROM analytics.events.clicks GROUP BY country")
    containers = {node_id_prefix(c) for c in node_containers()}
    scanned_by = {node.rsplit("-", 2)[0] for node in tasks.node}
    assert len(scanned_by & containers) >= 2, tasks
    assert tasks.cells.sum() >= 8


def test_nodes_run_as_a_user_with_a_health_check(stack):
    """The image runs `apiary serve` as the non-root user `apiary`, and its
    HEALTHCHECK is the binary's own `apiary health`."""
    image = json.loads(sh("podman", "image", "inspect", "localhost/apiary:latest").stdout)[0]
    assert image["Config"]["User"] == "apiary"
    assert image["Healthcheck"]["Test"] == ["CMD", "apiary", "health"]
    node = node_containers()[0]
    assert sh("podman", "exec", node, "id", "-un").stdout.strip() == "apiary"
    assert sh("podman", "healthcheck", "run", node, check=False).returncode == 0


def expected_answers(ap: Apiary) -> list:
    """The answers of the undisturbed swarm (the tutorial's test checked
    them against pandas)."""
    return [ap.query(q).to_pylist() for q in QUERIES[:3]]


def same(got: list, want: list) -> bool:
    """Equal rows, floats to 1e-9 (AVG's sum order depends on arrival)."""
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        for column, value in w.items():
            if isinstance(value, float):
                if abs(g[column] - value) > 1e-9 * max(1.0, abs(value)):
                    return False
            elif g[column] != value:
                return False
    return True


def answers_while(client: Apiary, action, queries: int = 12) -> None:
    """Runs the tutorial's queries over and over, doing `action` after the
    second round; every answer must equal the undisturbed swarm's."""
    want = expected_answers(client)
    wrong = []
    for round_ in range(queries):
        if round_ == 2:
            threading.Thread(target=action, daemon=True).start()
        for query, expected in zip(QUERIES[:3], want):
            got = client.query(query).to_pylist()
            if not same(got, expected):
                wrong.append((query, got))
    assert not wrong, wrong


def test_a_node_killed_during_queries(client):
    """`podman kill` (SIGKILL) of a node while distributed queries run: every
    answer is still right, and the node is dead within APIARY_DEAD_AFTER."""
    victim = node_containers()[1]
    wait_for(lambda: state_of(client, victim) == "alive", JOIN_S, f"{victim} to be alive")
    killed_at = []

    def kill():
        killed_at.append(time.monotonic())
        sh("podman", "kill", victim)

    answers_while(client, kill)
    wait_for(lambda: state_of(client, victim) == "dead", DEAD_AFTER_S + 5, f"{victim} to be dead")
    assert time.monotonic() - killed_at[0] <= DEAD_AFTER_S + 5

    # Started again, it rejoins as a new node.
    sh("podman", "start", victim)
    wait_for(lambda: state_of(client, victim) == "alive", JOIN_S, f"{victim} to rejoin")


def test_a_node_cut_off_the_network(client):
    """`podman network disconnect`: the node cannot reach S3, the others
    answer without it; connected again, it is alive again."""
    victim = node_containers()[2]
    wait_for(lambda: state_of(client, victim) == "alive", JOIN_S, f"{victim} to be alive")
    answers_while(client, lambda: sh("podman", "network", "disconnect", NETWORK, victim))
    wait_for(lambda: state_of(client, victim) == "dead", DEAD_AFTER_S + 10, f"{victim} to be dead")
    answers_while(client, lambda: None, queries=3)
    sh("podman", "network", "connect", NETWORK, victim)
    wait_for(lambda: state_of(client, victim) == "alive", JOIN_S + DEAD_AFTER_S, f"{victim} to come back")
    answers_while(client, lambda: None, queries=3)


def test_a_stopped_node_leaves_at_once_and_rejoins(client):
    """`podman stop` sends SIGTERM: the node drains, removes its heartbeat
    and exits 0; started again, it rejoins."""
    victim = node_containers()[0]
    wait_for(lambda: state_of(client, victim) == "alive", JOIN_S, f"{victim} to be alive")
    sh("podman", "stop", "--time", "40", victim, timeout=60)
    exit_code = sh("podman", "inspect", "--format", "{{.State.ExitCode}}", victim).stdout.strip()
    assert exit_code == "0", sh("podman", "logs", "--tail", "30", victim).stderr
    # Gone from the swarm at once: well before a silent node would be dead.
    wait_for(lambda: state_of(client, victim) is None, 4, f"{victim}'s heartbeat to be removed")
    sh("podman", "start", victim)
    wait_for(lambda: state_of(client, victim) == "alive", JOIN_S, f"{victim} to rejoin")


def test_down_leaves_nothing(client):
    client.shutdown()
    sh(str(HERE / "down.sh"))
    assert nothing_left()


@pytest.fixture(scope="module")
def postgres_stack(stack):
    """The tutorial's stack again, with deploy/compose.postgres.yml: a login
    on every node and ports 5432-5434 on the host."""
    os.environ["APIARY_COMPOSE_EXTRA"] = str(PSQL_OVERRIDE)
    try:
        sh(str(HERE / "down.sh"))
        sh(str(HERE / "up.sh"), timeout=600)
        yield
        sh(str(HERE / "down.sh"))
    finally:
        del os.environ["APIARY_COMPOSE_EXTRA"]


def psql(port: int, sql: str, password: str = PG_PASSWORD) -> subprocess.CompletedProcess:
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}
    return subprocess.run(
        ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-At", "-h", "localhost", "-p", str(port), "-U", PG_USER,
         "-d", "default", "-c", sql],
        capture_output=True, text=True, env=env, timeout=120,
    )


def test_psql_and_psycopg_into_the_swarm_with_scram(postgres_stack):
    """The recipe of docs/deployment.md: psql on node 1 writes, psycopg on
    nodes 2 and 3 reads; a wrong password is refused with 28P01."""
    created = psql(5432, "CREATE TABLE visits (id BIGINT, page TEXT)")
    assert created.returncode == 0, created.stderr
    inserted = psql(5432, "INSERT INTO visits SELECT g, '/p' || (g % 7) FROM generate_series(1, 5000) AS t(g)")
    assert inserted.returncode == 0 and inserted.stdout.strip() == "INSERT 0 5000", inserted
    for port in (5433, 5434):
        with psycopg.connect(host="localhost", port=port, user=PG_USER, password=PG_PASSWORD,
                             dbname="default", connect_timeout=10) as conn:
            assert conn.info.parameter_status("server_version")
            count, pages = conn.execute(
                "SELECT count(*), count(DISTINCT page) FROM visits").fetchone()
            assert (count, pages) == (5000, 7)
    refused = psql(5433, "SELECT 1", password="wrong")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr, refused.stderr
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(host="localhost", port=5434, user=PG_USER, password="wrong", dbname="default",
                        connect_timeout=10)


GROUP_BY = ("SELECT count(*), sum(n) FROM (SELECT repeat('x', 100) || g AS k, count(*) AS n "
            "FROM generate_series(1, 6000000) AS t(g) GROUP BY 1) AS groups")


def test_a_node_honours_its_containers_limits(postgres_stack):
    """A node started with --cpus 1 --memory 512m reports 1 core and about
    0.5 GB, and a GROUP BY larger than 512 MB spills to disk instead of the
    container being killed."""
    name = f"{PROJECT}-small"
    sh("podman", "rm", "-f", name)
    sh("podman", "run", "-d", "--name", name, "--cpus", "1", "--memory", "512m", "--network", NETWORK,
       "-p", "127.0.0.1:5435:5432",
       "-e", "AWS_ACCESS_KEY_ID=apiary", "-e", "AWS_SECRET_ACCESS_KEY=apiary123",
       "-e", "AWS_ENDPOINT_URL=http://minio:9000", "-e", "APIARY_STORAGE=s3://apiary-data/swarm",
       "-e", f"APIARY_USER={PG_USER}", "-e", f"APIARY_PASSWORD={PG_PASSWORD}",
       "localhost/apiary:latest")
    try:
        wait_for(lambda: sh("podman", "healthcheck", "run", name, check=False).returncode == 0, JOIN_S,
                 f"{name} to answer")
        with psycopg.connect(host="127.0.0.1", port=5435, user=PG_USER, password=PG_PASSWORD,
                             dbname="default", connect_timeout=10, autocommit=True) as conn:
            shown = conn.execute("SHOW SWARM")
            columns = [c.name for c in shown.description]
            nodes = [dict(zip(columns, row)) for row in shown.fetchall()]
            this = next(n for n in nodes if n["this_node"])
            assert this["cores"] == 1, this
            assert 0.45 <= float(this["memory_gb"]) <= 0.55, this
            # 6 M distinct keys of about 110 bytes: some 700 MB as a hash
            # table, more than the container may hold. The node's memory
            # pool, sized from the cgroup limit, makes the aggregation spill.
            groups = conn.execute(GROUP_BY).fetchone()
            assert groups == (6000000, 6000000)
            assert conn.execute("SELECT 1").fetchone() == (1,)
        state = json.loads(sh("podman", "inspect", "--format", "{{json .State}}", name).stdout)
        assert state["Running"] and not state["OOMKilled"], state

        # The limit is real: the same node told its memory is 4 GiB holds
        # the whole hash table, and the kernel kills the container.
        sh("podman", "rm", "-f", name)
        sh("podman", "run", "-d", "--name", name, "--cpus", "1", "--memory", "512m", "-p", "127.0.0.1:5435:5432",
           "-e", f"APIARY_USER={PG_USER}", "-e", f"APIARY_PASSWORD={PG_PASSWORD}", "-e", "APIARY_BEE_MEMORY=4GiB",
           "localhost/apiary:latest")
        wait_for(lambda: sh("podman", "healthcheck", "run", name, check=False).returncode == 0, JOIN_S,
                 f"{name} to answer")
        with pytest.raises(psycopg.OperationalError):
            with psycopg.connect(host="127.0.0.1", port=5435, user=PG_USER, password=PG_PASSWORD,
                                 dbname="default", connect_timeout=10) as conn:
                conn.execute(GROUP_BY).fetchone()
        sh("podman", "wait", name, timeout=60)
        state = json.loads(sh("podman", "inspect", "--format", "{{json .State}}", name).stdout)
        assert state["ExitCode"] == 137 or state["OOMKilled"], state
    finally:
        sh("podman", "rm", "-f", name, check=False)
