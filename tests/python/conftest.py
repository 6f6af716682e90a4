"""Fixtures shared by the Python suites: storage roots on a local directory
and on the S3 test server (SeaweedFS, started here unless tests/run.sh
already started one)."""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import s3server  # noqa: E402

S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION")


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory):
    """Settings of a running S3 test server, put into os.environ."""
    if os.environ.get("AWS_ENDPOINT_URL") and os.environ.get("APIARY_TEST_S3_BUCKET"):
        yield {k: os.environ[k] for k in (*S3_KEYS, "APIARY_TEST_S3_BUCKET")}
        return
    work = tmp_path_factory.mktemp("s3")
    with s3server.running(str(work)) as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            yield env
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(params=["local", "s3"])
def storage(request, tmp_path):
    """A fresh, empty storage root URI: a local directory, then an S3 prefix."""
    if request.param == "local":
        return str(tmp_path / "root")
    env = request.getfixturevalue("s3_env")
    return f"s3://{env['APIARY_TEST_S3_BUCKET']}/{uuid.uuid4().hex}"


@pytest.fixture
def delta_storage_options():
    """Options for the deltalake package to read frames on the S3 test server."""

    def options(uri: str) -> dict:
        if not uri.startswith("s3://"):
            return {}
        return {
            "AWS_ACCESS_KEY_ID": os.environ["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": os.environ["AWS_SECRET_ACCESS_KEY"],
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
            "AWS_REGION": os.environ.get("AWS_REGION", "us-east-1"),
            "AWS_ALLOW_HTTP": "true",
        }

    return options
