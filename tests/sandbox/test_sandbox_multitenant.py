"""Several Auth0 tenants in one process, each its own, and one Tinybird with a data source each."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backfill.config.tenants import resolve_tenants
from backfill.sandbox import MultiTenantSandbox, SandboxConfig
from backfill.sandbox.multitenant import TenantEndpoint


@pytest.fixture
def three() -> Iterator[MultiTenantSandbox]:
    config = SandboxConfig(profile="free", logs=400, days=0.5, seed=21, shape="uneven")
    with MultiTenantSandbox(config, tenants=3) as sandbox:
        yield sandbox


def token(
    http: httpx.Client, endpoint: TenantEndpoint, client_id: str, secret: str
) -> httpx.Response:
    return http.post(
        f"{endpoint.auth0_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "audience": f"{endpoint.auth0_url}/api/v2/",
        },
    )


def logs_page(http: httpx.Client, endpoint: TenantEndpoint, access_token: str) -> httpx.Response:
    return http.get(
        f"{endpoint.auth0_url}/api/v2/logs",
        params={"sort": "date:1", "per_page": 5},
        headers={"Authorization": f"Bearer {access_token}"},
    )


def test_each_tenant_has_its_own_logs_credentials_and_shape(three: MultiTenantSandbox) -> None:
    first, second, third = three.tenants
    assert len({endpoint.auth0_url for endpoint in three.tenants}) == 3
    assert all(len(endpoint.tenant) == 400 for endpoint in three.tenants)
    assert all(endpoint.tenant.shape == "uneven" for endpoint in three.tenants)
    assert first.tenant.log_id(0) != second.tenant.log_id(0) != third.tenant.log_id(0)
    with httpx.Client(timeout=10) as http:
        mine = first.credentials.client
        assert token(http, first, mine.client_id, mine.client_secret).status_code == 200
        # Another tenant's application is unknown here.
        theirs = second.credentials.client
        assert token(http, first, theirs.client_id, theirs.client_secret).status_code == 401


def test_each_tenant_has_its_own_token_bucket(three: MultiTenantSandbox) -> None:
    first, second, _ = three.tenants
    with httpx.Client(timeout=10) as http:
        tokens = {}
        for endpoint in (first, second):
            client = endpoint.credentials.client
            answer = token(http, endpoint, client.client_id, client.client_secret)
            tokens[endpoint.name] = answer.json()["access_token"]
        # The free plan's burst is 2: the first tenant's third request at once is refused ...
        statuses = [logs_page(http, first, tokens[first.name]).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        # ... and the second tenant's bucket is still full.
        answer = logs_page(http, second, tokens[second.name])
        assert answer.status_code == 200
        assert answer.headers["x-ratelimit-remaining"] == "1"
        assert answer.json()[0]["log_id"] == second.tenant.log_id(0)


def test_one_tinybird_holds_a_data_source_per_tenant(three: MultiTenantSandbox) -> None:
    first, second, _ = three.tenants
    record = first.tenant.stream_record(0)
    body = gzip.compress(json.dumps({"log_id": record["log_id"], "data": record}).encode())
    with httpx.Client(timeout=10) as http:
        answer = http.post(
            f"{three.tinybird_url}/v0/events",
            params={"name": first.datasource, "wait": "true"},
            content=body,
            headers={
                "Authorization": f"Bearer {three.env()['TINYBIRD_TOKEN']}",
                "Content-Encoding": "gzip",
            },
        )
    assert answer.status_code == 200, answer.text
    assert three.store.names() == [endpoint.datasource for endpoint in three.tenants]
    assert (
        three.store.row_count(first.datasource)
        + three.store.row_count(f"{first.datasource}_quarantine")
        == 1
    )
    assert three.store.row_count(second.datasource) == 0


def test_the_settings_file_is_what_the_job_reads(three: MultiTenantSandbox, tmp_path: Path) -> None:
    settings = three.write_settings(tmp_path / "tenants.toml", tmp_path / "state", concurrency=3)
    text = settings.read_text()
    environment = three.env()
    assert not any(
        endpoint.credentials.client.client_secret in text for endpoint in three.tenants
    )  # secrets only in the environment
    resolved = resolve_tenants({}, environment, settings)
    assert [item.tenant_name for item in resolved] == [e.name for e in three.tenants]
    for item, endpoint in zip(resolved, three.tenants, strict=True):
        assert item.auth0_base_url == endpoint.auth0_url
        assert item.auth0_client_id == endpoint.credentials.client.client_id
        assert item.auth0_client_secret == endpoint.credentials.client.client_secret
        assert item.tinybird_host == three.tinybird_url
        assert item.datasource == endpoint.datasource
        assert item.state == tmp_path / "state" / f"{endpoint.name}.json"
        assert item.concurrency == 3


@pytest.mark.e2e
def test_the_job_backfills_every_tenant_into_its_data_source(tmp_path: Path) -> None:
    config = SandboxConfig(profile="unlimited", logs=700, days=2.0, seed=22, shape="quiet")
    with MultiTenantSandbox(config, tenants=4) as sandbox:
        settings = sandbox.write_settings(tmp_path / "tenants.toml", tmp_path)
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AUTH0_", "TINYBIRD_"))
        }
        env.update(sandbox.env())
        finished = subprocess.run(
            [sys.executable, "-m", "backfill", "run", "--config", str(settings), "--json", "-q"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert finished.returncode == 0, finished.stderr
        reports = json.loads(finished.stdout)
        assert sorted(report["tenant"] for report in reports) == [
            endpoint.name for endpoint in sandbox.tenants
        ]
        for endpoint in sandbox.tenants:
            landed = sandbox.store.query(
                f"SELECT count(), uniqExact(log_id) FROM (SELECT log_id FROM {endpoint.datasource}"
                f" UNION ALL SELECT log_id FROM {endpoint.datasource}_quarantine)",
                "CSV",
            )
            assert landed.decode().split() == ["700,700"], endpoint.name
