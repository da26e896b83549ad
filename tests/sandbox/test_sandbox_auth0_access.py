"""Auth0 emulator: client-credentials grants, bearer errors, and the plans' rate limits."""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sandbox_helpers import MakeSandbox, auth0_token, bearer, get_logs

from backfill.sandbox import Sandbox

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "auth0"


def grant(http: httpx.Client, sandbox: Sandbox, **overrides: str) -> httpx.Response:
    client = sandbox.auth0_credentials.client
    form = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.client_secret,
        "audience": f"{sandbox.auth0_url}/api/v2/",
        **overrides,
    }
    return http.post(f"{sandbox.auth0_url}/oauth/token", data=form)


def test_client_credentials_grant_answers_a_bearer_token(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    body = grant(http, sandbox).json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 86_400
    assert body["scope"] == "read:logs read:log_streams"
    assert get_logs(http, sandbox, body["access_token"], take=1, **{"from": "9" * 56}).is_success


def test_the_token_endpoint_also_takes_json(http: httpx.Client, sandbox: Sandbox) -> None:
    client = sandbox.auth0_credentials.client
    response = http.post(
        f"{sandbox.auth0_url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "audience": f"{sandbox.auth0_url}/api/v2/",
        },
    )
    assert response.status_code == 200


def test_the_audience_is_taken_in_the_https_form_auth0s_clients_send(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    netloc = urlsplit(sandbox.auth0_url).netloc
    assert sandbox.auth0_url.startswith("http://")
    for audience in (f"https://{netloc}/api/v2/", f"http://{netloc}/api/v2/"):
        response = grant(http, sandbox, audience=audience)
        assert response.status_code == 200, (audience, response.text)
    for audience in (f"https://{netloc}/api/v2", f"ftp://{netloc}/api/v2/"):
        assert grant(http, sandbox, audience=audience).status_code == 403


def test_a_wrong_secret_is_401_and_a_wrong_audience_403(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    wrong_secret = grant(http, sandbox, client_secret="nope")
    assert wrong_secret.status_code == 401
    assert wrong_secret.json() == {"error": "access_denied", "error_description": "Unauthorized"}
    wrong_audience = grant(http, sandbox, audience="https://example.auth0.com/api/v2/")
    assert wrong_audience.status_code == 403
    assert wrong_audience.json()["error"] == "access_denied"
    assert grant(http, sandbox, grant_type="password").status_code == 400


def test_missing_or_invalid_tokens_are_401(http: httpx.Client, sandbox: Sandbox) -> None:
    url = f"{sandbox.auth0_url}/api/v2/logs"
    missing = http.get(url)
    assert missing.status_code == 401 and missing.json()["error"] == "Unauthorized"
    token = auth0_token(http, sandbox)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert http.get(url, headers=bearer(forged)).status_code == 401
    assert http.get(url, headers=bearer("garbage")).status_code == 401


def test_an_expired_token_gets_auth0s_401(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(token_ttl=1)
    body = grant(http, sandbox).json()
    assert body["expires_in"] == 1
    time.sleep(1.2)
    response = get_logs(http, sandbox, body["access_token"], **{"from": "9" * 56})
    assert response.status_code == 401
    assert response.json()["message"] == "Expired token received for JSON Web Token validation"
    assert response.json()["statusCode"] == 401


def test_a_token_without_read_logs_is_403_insufficient_scope(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    limited = sandbox.auth0_credentials.limited_client
    token = auth0_token(http, sandbox, limited.client_id, limited.client_secret)
    response = get_logs(http, sandbox, token, **{"from": "9" * 56})
    assert response.status_code == 403
    assert response.json() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "Insufficient scope, expected any of: read:logs",
        "errorCode": "insufficient_scope",
    }
    streams = http.get(f"{sandbox.auth0_url}/api/v2/log-streams", headers=bearer(token))
    assert streams.status_code == 200  # it does have read:log_streams


def burst(http: httpx.Client, sandbox: Sandbox, token: str, count: int) -> list[httpx.Response]:
    def one(_: int) -> httpx.Response:
        return get_logs(http, sandbox, token, take=1, **{"from": "9" * 56})

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize(
    ("profile", "bucket", "per_second"),
    [
        ("free", 2, 2.0),
        ("professional", 10, 100 / 60),
        ("enterprise", 50, 16.0),
        ("enterprise-nonprod", 10, 2.0),
    ],
)
def test_each_profile_has_its_bucket_size_and_429_body(
    http: httpx.Client, make_sandbox: MakeSandbox, profile: str, bucket: int, per_second: float
) -> None:
    sandbox = make_sandbox(profile=profile, logs=100)
    token = auth0_token(http, sandbox)
    started = time.monotonic()
    responses = burst(http, sandbox, token, bucket + 10)
    refilled = math.ceil((time.monotonic() - started) * per_second)
    statuses = [response.status_code for response in responses]
    assert bucket <= statuses.count(200) <= bucket + refilled
    assert statuses.count(429) >= 1
    fixture = FIXTURES / "_mgmt_api_429_body__issue_auth0-reset-tenant_31.json"
    expected = json.loads(fixture.read_text())
    now = time.time()
    for response in responses:
        assert response.headers["x-ratelimit-limit"] == str(bucket)
        remaining = int(response.headers["x-ratelimit-remaining"])
        assert 0 <= remaining < bucket
        assert now - 1 <= int(response.headers["x-ratelimit-reset"]) <= now + 60
        if response.status_code == 429:
            assert response.json() == expected
            assert remaining == 0
            assert "retry-after" not in response.headers


def test_tokens_refill_at_the_plans_rate(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(profile="free", logs=100)
    token = auth0_token(http, sandbox)
    assert [r.status_code for r in burst(http, sandbox, token, 3)].count(429) >= 1
    time.sleep(0.6)  # 2 tokens a second: one is back
    assert get_logs(http, sandbox, token, **{"from": "9" * 56}).status_code == 200


def test_unlimited_profile_has_no_bucket(http: httpx.Client, sandbox: Sandbox) -> None:
    token = auth0_token(http, sandbox)
    statuses = {r.status_code for r in burst(http, sandbox, token, 60)}
    assert statuses == {200}


def test_profile_can_change_at_run_time(http: httpx.Client, sandbox: Sandbox) -> None:
    token = auth0_token(http, sandbox)
    answer = http.post(f"{sandbox.auth0_url}/__sandbox/config", json={"profile": "free"})
    assert answer.json()["profile"] == "free" and answer.json()["retention_days"] == 1
    statuses = [r.status_code for r in burst(http, sandbox, token, 5)]
    assert statuses.count(429) >= 2
    stats = http.get(f"{sandbox.auth0_url}/__sandbox/stats").json()
    assert stats["status_429"] == statuses.count(429)
    assert stats["requests"]["/api/v2/logs"]["429"] == statuses.count(429)
