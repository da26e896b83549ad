"""Issue 28: ``import s3://...`` against a local S3 (moto's server mode on 127.0.0.1): objects
without a suffix as Firehose writes them, listed under a prefix in name order; and the
message when the object store has no credentials."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Harness, stream_envelope
from tests.e2e.test_import import TENANT, expect, ndjson, records

pytestmark = pytest.mark.e2e

moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")


@pytest.fixture
def s3() -> Iterator[dict[str, str]]:
    """A local S3 on 127.0.0.1, and the environment that points the job at it."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    try:
        yield env
    finally:
        server.stop()


def put(env: dict[str, str], key: str, body: bytes) -> None:
    client: Any = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket="auth0-archive")
    client.put_object(Bucket="auth0-archive", Key=key, Body=body)


def test_import_from_s3_prefix(harness, s3) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    logs = records(h, 0, 900)
    for part, first in enumerate(range(0, 900, 300)):
        key = f"firehose/2026/11/0{part}/auth0-stream-1-2026-11-0{part}-{part:04d}"
        put(
            s3,
            key,
            gzip.compress(b"".join(json.dumps(r).encode() for r in logs[first : first + 300])),
        )
    put(s3, "firehose/2026/11/03/overlap", gzip.compress(ndjson(logs[:100])))
    result = h.run(
        "import", "s3://auth0-archive/firehose/", "--json",
        "--state", str(h.workdir / "import.json"), env=s3,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = result.summary()
    assert summary["sources"] == 4 and summary["duplicates"] == 100
    expect(h.received(), {r["log_id"]: stream_envelope(r) for r in logs})
    recorded = json.loads((h.workdir / "import.json.sources").read_text())
    assert all(item["etag"] for item in recorded), "objects are fingerprinted by ETag"


def test_an_object_store_without_credentials_is_named(harness, s3) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    put(s3, "firehose/one", gzip.compress(ndjson(records(h, 0, 10))))
    anonymous = {**s3, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "HOME": str(h.workdir)}
    result = h.run("import", "s3://auth0-archive/firehose/", env=anonymous)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "no credentials" in result.stderr and "AWS_" in result.stderr
    assert "Traceback" not in result.stderr
