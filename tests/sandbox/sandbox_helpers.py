"""Helpers shared by the sandbox tests (a plain module: conftest is for fixtures)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from typing import Any

import httpx

from backfill.sandbox import Sandbox

MakeSandbox = Callable[..., Sandbox]
"""The `make_sandbox` fixture: `make_sandbox(**SandboxConfig overrides)`."""


def auth0_token(
    http: httpx.Client, sandbox: Sandbox, client_id: str | None = None, secret: str | None = None
) -> str:
    credentials = sandbox.auth0_credentials.client
    response = http.post(
        f"{sandbox.auth0_url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id or credentials.client_id,
            "client_secret": secret or credentials.client_secret,
            "audience": f"{sandbox.auth0_url}/api/v2/",
        },
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def get_logs(http: httpx.Client, sandbox: Sandbox, token: str, **params: Any) -> httpx.Response:
    return http.get(f"{sandbox.auth0_url}/api/v2/logs", params=params, headers=bearer(token))


def append_events(
    http: httpx.Client,
    sandbox: Sandbox,
    envelopes: list[dict[str, Any]] | bytes,
    token: str | None = None,
    compress: bool = False,
    **params: Any,
) -> httpx.Response:
    body = (
        envelopes
        if isinstance(envelopes, bytes)
        else "\n".join(json.dumps(envelope) for envelope in envelopes).encode()
    )
    headers = bearer(token or sandbox.tinybird_credentials.admin)
    if compress:
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    query = {"name": sandbox.config.datasource, "wait": "true", **params}
    return http.post(
        f"{sandbox.tinybird_url}/v0/events", params=query, headers=headers, content=body
    )


def sql(http: httpx.Client, sandbox: Sandbox, query: str, token: str | None = None) -> Any:
    response = http.get(
        f"{sandbox.tinybird_url}/v0/sql",
        params={"q": query},
        headers=bearer(token or sandbox.tinybird_credentials.admin),
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def envelope(sandbox: Sandbox, index: int) -> dict[str, Any]:
    """What a Log Stream (or the backfill) sends for tenant record `index`."""
    record = sandbox.tenant.stream_record(index)
    return {"log_id": record["log_id"], "data": record}
