"""Server behaviour shared by both emulators, the control plane, and the runner's environment."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from sandbox_helpers import MakeSandbox, append_events, auth0_token, get_logs

from backfill.sandbox import Sandbox
from backfill.sandbox.timeparse import iso_millis


def test_latency_is_slept_per_request_without_blocking_others(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(auth0_latency="300")
    with httpx.Client() as http:
        token = auth0_token(http, sandbox)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(
                pool.map(
                    lambda _: get_logs(http, sandbox, token, **{"from": "9" * 56}).status_code,
                    range(8),
                )
            )
        elapsed = time.monotonic() - started
    assert statuses == [200] * 8
    assert 0.3 <= elapsed < 0.9  # eight round trips of 300 ms, concurrently


def test_stats_time_each_answer_beyond_the_latency_it_slept(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(auth0_latency="400", tinybird_ack_latency="1000")
    with httpx.Client() as http:
        token = auth0_token(http, sandbox)
        for _ in range(2):
            get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(0)})
        http.get(f"{sandbox.auth0_url}/__sandbox/stats")  # the control plane is not timed
        auth0 = http.get(f"{sandbox.auth0_url}/__sandbox/stats").json()
        record = sandbox.tenant.stream_record(0)
        appended = append_events(
            http, sandbox, [{"log_id": record["log_id"], "data": record}], name="auth0", wait="true"
        )
        assert appended.status_code == 200
        tinybird = sandbox.tinybird.counters.snapshot()
    assert auth0["answers_timed"] == 3  # the token and two pages
    # The emulators' own work, not the 400 ms round trip or the 1 s acknowledgement (the
    # margins are for a busy machine).
    assert 0 < auth0["answer_overhead_us"] / 3 < 300_000
    assert tinybird["answers_timed"] == 1
    assert 0 < int(tinybird["answer_overhead_us"]) < 700_000  # type: ignore[call-overload]


def test_answers_are_http11_keep_alive_with_a_content_length(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    token = auth0_token(http, sandbox)
    response = get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(0)})
    assert response.http_version == "HTTP/1.1"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.headers.get("connection", "keep-alive").lower() != "close"


def test_close_ends_idle_keep_alive_connections_and_sleeping_requests(
    make_sandbox: MakeSandbox,
) -> None:
    before = threading.active_count()
    sandbox = make_sandbox(auth0_latency="5000")
    idle = httpx.Client()
    idle.get(f"{sandbox.auth0_url}/__sandbox/stats")  # leaves a keep-alive connection open
    sleeping = threading.Event()
    pause = sandbox.auth0.pause

    def observed_pause(seconds: float) -> None:
        if seconds > 0:
            sleeping.set()
        pause(seconds)

    sandbox.auth0.pause = observed_pause  # type: ignore[method-assign]
    sleeper = threading.Thread(target=_get_quietly, args=(f"{sandbox.auth0_url}/api/v2/logs",))
    sleeper.start()
    assert sleeping.wait(10), "the request never reached its 5 s latency"
    started = time.monotonic()
    sandbox.close()
    assert time.monotonic() - started < 2.0
    sleeper.join(timeout=5)
    idle.close()
    assert not sleeper.is_alive()
    assert threading.active_count() <= before


def _get_quietly(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.get(url, timeout=10)


def test_env_points_the_job_at_the_sandbox(http: httpx.Client, sandbox: Sandbox) -> None:
    env = sandbox.env()
    assert set(env) == {
        "AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET",
        "TINYBIRD_HOST", "TINYBIRD_TOKEN", "TINYBIRD_DATASOURCE",
    }  # fmt: skip
    assert env["AUTH0_DOMAIN"].startswith("http://127.0.0.1:")
    assert env["TINYBIRD_DATASOURCE"] == "auth0"
    grant = http.post(
        f"{env['AUTH0_DOMAIN']}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": env["AUTH0_CLIENT_ID"],
            "client_secret": env["AUTH0_CLIENT_SECRET"],
            "audience": f"{env['AUTH0_DOMAIN']}/api/v2/",
        },
    )
    assert grant.status_code == 200
    described = http.get(
        f"{env['TINYBIRD_HOST']}/v0/datasources/auth0",
        headers={"Authorization": f"Bearer {env['TINYBIRD_TOKEN']}"},
    )
    assert described.status_code == 200


def test_credentials_derive_from_the_seed(make_sandbox: MakeSandbox) -> None:
    first, same, other = make_sandbox(), make_sandbox(), make_sandbox(seed=7)
    assert first.env()["AUTH0_CLIENT_SECRET"] == same.env()["AUTH0_CLIENT_SECRET"]
    assert first.env()["TINYBIRD_TOKEN"] == same.env()["TINYBIRD_TOKEN"]
    assert first.env()["AUTH0_CLIENT_SECRET"] != other.env()["AUTH0_CLIENT_SECRET"]
    extras = first.extras()
    tokens = {extras[name] for name in extras if name.endswith("TOKEN")}
    assert len(tokens) == 3 and first.env()["TINYBIRD_TOKEN"] not in tokens


def test_records_control_endpoint_exports_visible_records_in_a_date_window(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    tenant = sandbox.tenant
    low, high = tenant.date_us(1_000), tenant.date_us(1_200)
    response = http.get(
        f"{sandbox.auth0_url}/__sandbox/records",
        params={"from_date": iso_millis(low), "until_date": iso_millis(high)},
    )
    assert response.headers["content-type"] == "application/x-ndjson"
    records = [json.loads(line) for line in response.text.splitlines()]
    expected = [tenant.log_id(i) for i in range(len(tenant)) if low <= tenant.date_us(i) < high]
    assert [record["log_id"] for record in records] == expected
    assert records[0] == tenant.record(tenant.find(expected[0], range(len(tenant))) or 0)
    everything = http.get(f"{sandbox.auth0_url}/__sandbox/records")
    assert len(everything.text.splitlines()) == len(tenant)


def test_append_control_endpoint_adds_visible_logs(http: httpx.Client, sandbox: Sandbox) -> None:
    newest = sandbox.tenant.log_id(len(sandbox.tenant) - 1)
    answer = http.post(f"{sandbox.auth0_url}/__sandbox/append", json={"count": 30}).json()
    assert answer["count"] == 30 and newest < answer["first_log_id"] < answer["last_log_id"]
    token = auth0_token(http, sandbox)
    page = get_logs(http, sandbox, token, **{"from": newest, "take": 100}).json()
    assert [record["log_id"] for record in page][:1] == [answer["first_log_id"]]
    assert page[-1]["log_id"] == answer["last_log_id"] and len(page) == 30
    stats = http.get(f"{sandbox.auth0_url}/__sandbox/stats").json()
    assert stats["logs"]["newest_log_id"] == answer["last_log_id"]
    assert stats["logs"]["count"] == 3_030
    late = http.post(f"{sandbox.auth0_url}/__sandbox/append", json={"count": 1, "until": "-30d"})
    assert late.status_code == 400


def test_unknown_paths_are_404(http: httpx.Client, sandbox: Sandbox) -> None:
    assert http.get(f"{sandbox.auth0_url}/api/v2/users").status_code in (401, 404)
    assert http.get(f"{sandbox.auth0_url}/nothing").status_code == 404
    assert http.get(f"{sandbox.tinybird_url}/__sandbox/nothing").status_code == 404
