"""The Kubernetes manifests under deploy/kubernetes/ are valid against the
Kubernetes API schemas (kubernetes-validate bundles them; no cluster runs
in CI) and fit together and with what a node reads."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
# The Kubernetes version whose schemas the manifests are checked against.
KUBERNETES = "1.37.0"
# `apiary serve` waits this long for running tasks on SIGTERM (engine/src/node.rs).
DRAIN_SECONDS = 30


def documents() -> dict[str, dict]:
    found = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            found[doc["kind"]] = doc
    return found


def test_every_manifest_is_valid_kubernetes():
    docs = documents()
    assert set(docs) == {"Secret", "Deployment", "Service"}
    for kind, doc in docs.items():
        # strict: unknown fields are errors too.
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}


def test_the_manifests_fit_together_and_with_the_node():
    docs = documents()
    pod = docs["Deployment"]["spec"]["template"]
    container = pod["spec"]["containers"][0]
    # The Secret the pods read, the labels the Service selects, the port it targets.
    assert container["envFrom"][0]["secretRef"]["name"] == docs["Secret"]["metadata"]["name"]
    assert docs["Service"]["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    port = docs["Service"]["spec"]["ports"][0]["targetPort"]
    assert port in {p["name"] for p in container["ports"]}
    assert container["readinessProbe"]["tcpSocket"]["port"] == port
    # The drain fits in the grace period; limits bound the node.
    assert pod["spec"]["terminationGracePeriodSeconds"] > DRAIN_SECONDS
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    # Every setting the manifests give is one the node documents (and reads).
    documented = set(re.findall(r"`(APIARY_[A-Z_]+|AWS_[A-Z_]+)`", DOCS.read_text()))
    given = {e["name"] for e in container["env"]} | set(docs["Secret"]["stringData"])
    assert given <= documented, given - documented
    # Writable paths the node uses are volumes (the root filesystem is read-only).
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert {env["APIARY_SCRATCH_DIR"], env["APIARY_CACHE_DIR"], "/tmp"} <= mounts
