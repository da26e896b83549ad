"""The seeded fault schedule, as a client sees it over real sockets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandbox_helpers import MakeSandbox, append_events, auth0_token, get_logs

from backfill.sandbox import FaultSettings, Sandbox

NEWEST = "9" * 56


def statuses_under_faults(sandbox: Sandbox, count: int) -> list[str]:
    outcomes = []
    with httpx.Client(timeout=5.0) as http:
        token = auth0_token(http, sandbox)
        for _ in range(count):
            try:
                outcomes.append(str(get_logs(http, sandbox, token, **{"from": NEWEST}).status_code))
            except httpx.TransportError:
                outcomes.append("reset")
    return outcomes


def test_faults_happen_at_the_set_rate_and_are_counted(make_sandbox: MakeSandbox) -> None:
    faults = FaultSettings(rate=0.25, kinds=("500", "503", "reset"))
    sandbox = make_sandbox(auth0_faults=faults)
    outcomes = statuses_under_faults(sandbox, 300)
    failed = sum(outcome != "200" for outcome in outcomes)
    assert 45 <= failed <= 105  # 75 expected; the token grant draws from the schedule too
    assert {"500", "503", "reset"} <= set(outcomes)
    stats = httpx.get(f"{sandbox.auth0_url}/__sandbox/stats").json()
    assert sum(stats["faults"].values()) >= failed


def test_the_same_seed_gives_the_same_faults(make_sandbox: MakeSandbox) -> None:
    faults = FaultSettings(rate=0.3, kinds=("500", "503"))
    first = statuses_under_faults(make_sandbox(auth0_faults=faults), 40)
    second = statuses_under_faults(make_sandbox(auth0_faults=faults), 40)
    other = statuses_under_faults(make_sandbox(auth0_faults=faults, seed=43), 40)
    assert first == second
    assert first != other


def test_5xx_faults_have_html_bodies(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(auth0_faults=FaultSettings(rate=1.0, kinds=("503",)))
    response = httpx.get(f"{sandbox.auth0_url}/api/v2/logs")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text


def test_a_429_fault_carries_the_services_headers(make_sandbox: MakeSandbox) -> None:
    faults = FaultSettings(rate=1.0, kinds=("429",))
    sandbox = make_sandbox(auth0_faults=faults, tinybird_faults=faults)
    auth0 = httpx.get(f"{sandbox.auth0_url}/api/v2/logs")
    assert auth0.status_code == 429
    assert {
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    } <= auth0.headers.keys()
    assert auth0.json()["errorCode"] == "too_many_requests"
    with httpx.Client() as http:
        tinybird = append_events(http, sandbox, [{"log_id": "1"}])
    assert tinybird.status_code == 429
    assert tinybird.headers["Retry-After"] == "1"


def test_a_reset_fault_is_an_abortive_close(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(auth0_faults=FaultSettings(rate=1.0, kinds=("reset",)))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{sandbox.auth0_url}/api/v2/logs")


def test_a_truncated_fault_cuts_the_json_body(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox()
    with httpx.Client() as http:
        token = auth0_token(http, sandbox)
        whole = get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(0)})
        http.post(
            f"{sandbox.auth0_url}/__sandbox/config",
            json={"faults": {"rate": 1.0, "kinds": ["truncated"]}},
        )
        cut = get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(0)})
    assert cut.status_code == 200
    assert int(cut.headers["content-length"]) == len(cut.content) < len(whole.content)
    assert whole.content.startswith(cut.content)
    with pytest.raises(ValueError):
        cut.json()


def test_a_slow_fault_outlasts_the_client_timeout(make_sandbox: MakeSandbox) -> None:
    faults = FaultSettings(rate=1.0, kinds=("slow",), slow_seconds=1.0)
    sandbox = make_sandbox(auth0_faults=faults)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{sandbox.auth0_url}/api/v2/logs", timeout=0.3)


def test_append_faults_happen_both_before_and_after_rows_are_stored(
    make_sandbox: MakeSandbox,
) -> None:
    sandbox = make_sandbox(tinybird_faults=FaultSettings(rate=1.0, kinds=("500", "reset")))
    acknowledged = 0
    with httpx.Client() as http:
        for attempt in range(30):
            try:
                response = append_events(http, sandbox, [{"log_id": str(attempt), "data": {}}])
                acknowledged += response.status_code == 200
            except httpx.TransportError:
                pass
        stats: dict[str, Any] = http.get(f"{sandbox.tinybird_url}/__sandbox/stats").json()
    assert acknowledged == 0
    after = sum(stats["faults_after_work"].values())
    assert 0 < after < 30  # some lost acknowledgements, some requests never processed
    assert stats["datasources"]["auth0"]["rows"] == after == stats["rows_stored"]


def test_control_endpoints_are_never_faulted(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    faults = FaultSettings(rate=1.0, kinds=("500", "reset"))
    sandbox = make_sandbox(auth0_faults=faults, tinybird_faults=faults)
    for url in (sandbox.auth0_url, sandbox.tinybird_url):
        assert all(http.get(f"{url}/__sandbox/stats").status_code == 200 for _ in range(10))


def test_faults_can_be_switched_off_at_run_time(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(auth0_faults=FaultSettings(rate=1.0, kinds=("500",)))
    assert httpx.get(f"{sandbox.auth0_url}/api/v2/logs").status_code == 500
    answer = httpx.post(f"{sandbox.auth0_url}/__sandbox/config", json={"faults": {"rate": 0}})
    assert answer.json()["faults"]["rate"] == 0
    assert httpx.get(f"{sandbox.auth0_url}/api/v2/logs").status_code == 401
    refused = httpx.post(
        f"{sandbox.auth0_url}/__sandbox/config", json={"faults": {"kinds": ["meteor"]}}
    )
    assert refused.status_code == 400
