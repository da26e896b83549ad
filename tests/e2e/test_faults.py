"""Issue 4: transient faults survived with nothing lost; each permanent fault stops with its exit
code, a message that says what to do, and a checkpoint that is unchanged or valid."""

from __future__ import annotations

import json
import os
import signal
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from backfill.sandbox.faults import FaultSettings
from tests.e2e.conftest import Harness, assert_exactly, kill, wait_for
from tests.e2e.stubs import StubServer, auth0_returning

pytestmark = pytest.mark.e2e

SMALL = {"logs": 3000, "days": 3.0, "seed": 21, "profile": "unlimited"}


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return str(path)


def no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


# -- transient faults -------------------------------------------------------------------------


@pytest.mark.slow
def test_faults_on_both_services_lose_nothing(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    faults = FaultSettings(rate=0.12, slow_seconds=3.0)
    h: Harness = harness(
        logs=20000,
        days=5.0,
        seed=3,
        profile="unlimited",
        auth0_faults=faults,
        tinybird_faults=faults,
    )
    settings = config(
        tmp_path,
        "[batch]\nmax_rows = 500\n[http]\ntimeout_seconds = 2\n"
        "[retry]\nmax_attempts = 10\n[run]\nresume_settle_seconds = 4\n",
    )
    result = h.run("run", "--config", settings, "--json", timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    auth0_stats = h.auth0("/__sandbox/stats").json()
    tinybird_stats = h.tinybird("/__sandbox/stats").json()
    injected = sum(auth0_stats["faults"].values()), sum(tinybird_stats["faults"].values())
    assert injected[0] >= 20 and injected[1] >= 5, injected  # both services really misbehaved
    assert "retrying" in result.stderr
    assert_exactly(h.received(), h.records())  # nothing lost, nothing duplicated
    assert result.summary()["retries"] >= sum(injected) * 0.5


@pytest.mark.slow
def test_rate_limited_tinybird_is_waited_out(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL, tinybird_faults=FaultSettings(rate=0.5, kinds=("429",)))
    result = h.run("run", "--config", config(tmp_path, "[batch]\nmax_rows = 300\n"))
    assert result.returncode == 0, result.stderr
    assert "429" in result.stderr
    assert_exactly(h.received(), h.records())


# -- permanent faults: Auth0 ------------------------------------------------------------------


def test_missing_read_logs_scope(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    extras = h.sandbox.extras()
    result = h.run(
        "run",
        env={
            "AUTH0_CLIENT_ID": extras["SANDBOX_AUTH0_LIMITED_CLIENT_ID"],
            "AUTH0_CLIENT_SECRET": extras["SANDBOX_AUTH0_LIMITED_CLIENT_SECRET"],
        },
    )
    assert result.returncode == 3
    assert "read:logs" in result.stderr and "Machine to Machine" in result.stderr
    assert not h.state.exists() and h.received() == []
    no_traceback(result.stderr)


def test_wrong_client_secret(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run("run", env={"AUTH0_CLIENT_SECRET": "not-the-secret"})
    assert result.returncode == 3
    assert "AUTH0_CLIENT_SECRET" in result.stderr and "not-the-secret" not in result.stderr
    no_traceback(result.stderr)


def test_wrong_domain_is_a_404(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    elsewhere = StubServer(lambda method, path, query: (404, {"error": "Not Found"}))
    try:
        result = h.run("run", env={"AUTH0_DOMAIN": elsewhere.url})
        with_token = h.run("run", env={"AUTH0_DOMAIN": elsewhere.url, "AUTH0_TOKEN": "t"})
    finally:
        elsewhere.close()
    assert with_token.returncode == 3
    assert "404" in with_token.stderr and "AUTH0_DOMAIN" in with_token.stderr
    assert result.returncode == 3
    assert "404" in result.stderr and "AUTH0_DOMAIN" in result.stderr
    no_traceback(result.stderr)


def test_a_400_on_a_query(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    refusing = auth0_returning(
        lambda q: (400, {"statusCode": 400, "error": "Bad Request", "message": "Invalid from"})
    )
    try:
        result = h.run("run", "--from-log-id", "9" * 56, env={"AUTH0_DOMAIN": refusing.url})
    finally:
        refusing.close()
    assert result.returncode == 3, result.stderr
    assert "400" in result.stderr and "Invalid from" in result.stderr
    no_traceback(result.stderr)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (lambda q: (200, {"logs": []}), "not an array of logs"),
        (lambda q: (200, [{"type": "s", "date": "2026-11-01T00:00:00.000Z"}]), "without a log_id"),
        (
            lambda q: (200, [{"log_id": q["from"][0] if "from" in q else "1", "type": "s"}]),
            "did not advance",
        ),
    ],
    ids=["not-an-array", "no-log-id", "cursor-stuck"],
)
def test_unusable_auth0_answers(harness, answer, message) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    stub = auth0_returning(answer)
    try:
        result = h.run("run", "--from-log-id", "900" + "0" * 53, env={"AUTH0_DOMAIN": stub.url})
    finally:
        stub.close()
    assert result.returncode == 9, result.stderr
    assert message in result.stderr
    assert h.received() == []
    no_traceback(result.stderr)


def test_a_checkpoint_that_aged_out(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=3000, days=3.0, seed=8, retention_days=10, tinybird_ack_latency="200")
    settings = config(tmp_path, "[batch]\nmax_rows = 100\n[run]\nconcurrency = 1\n")
    process = h.start("run", "--config", settings)
    wait_for(lambda: h.received_count() > 300, timeout=60)
    kill(process, signal.SIGINT)
    before = h.state.read_bytes()
    h.auth0("/__sandbox/config", method="POST", json={"retention_days": 1}).raise_for_status()
    expired = h.run("run", "--config", settings)
    assert expired.returncode == 6, expired.stderr
    assert "older than the oldest log Auth0 still retains" in expired.stderr
    assert "days old" in expired.stderr or "d " in expired.stderr
    assert "Enterprise 30 days" in expired.stderr and "--restart-from-oldest" in expired.stderr
    assert h.state.read_bytes() == before  # found before anything moved
    answered = h.auth0("/__sandbox/stats").json()["requests"]["/api/v2/logs"]
    assert "400" not in answered  # found before paging, not from Auth0 refusing the checkpoint
    no_traceback(expired.stderr)
    accepted = h.run("run", "--config", settings, "--restart-from-oldest", "--json")
    assert accepted.returncode == 0, accepted.stderr
    summary = accepted.summary()
    assert summary["gaps"] and summary["gaps"][0]["seconds"] > 24 * 3600
    assert "GAP" in h.run("run", "--config", settings).stdout or summary["gaps"]
    status = h.run("status", "--json")
    assert status.summary()["gap_seconds"] > 24 * 3600
    # Everything Auth0 still has arrived; only the aged-out stretch is missing.
    received = {row["log_id"] for row in h.received()}
    assert {record["log_id"] for record in h.records()} <= received


# -- permanent faults: Tinybird ---------------------------------------------------------------


def test_token_without_append_rights(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    read_only = h.sandbox.extras()["SANDBOX_TINYBIRD_READ_TOKEN"]
    result = h.run("run", env={"TINYBIRD_TOKEN": read_only})
    assert result.returncode == 4
    assert "DATASOURCES:APPEND" in result.stderr and read_only not in result.stderr
    no_traceback(result.stderr)


def test_wrong_region_names_the_host_and_the_region_hosts(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run(
        "run", env={"TINYBIRD_TOKEN": h.sandbox.extras()["SANDBOX_TINYBIRD_OTHER_REGION_TOKEN"]}
    )
    assert result.returncode == 4
    assert h.sandbox.tinybird_url in result.stderr
    assert "configuration page lists them" in result.stderr
    assert len(result.stderr.strip().splitlines()[-1]) <= 620
    # The token names its region: the run says, at start, that the configured host is another.
    assert "but the token belongs to a workspace in US East" in result.stderr
    assert "https://api.us-east.tinybird.co" in result.stderr
    check = h.run(
        "check", env={"TINYBIRD_TOKEN": h.sandbox.extras()["SANDBOX_TINYBIRD_OTHER_REGION_TOKEN"]}
    )
    host_line = next(line for line in check.stdout.splitlines() if "tinybird.host" in line)
    assert host_line.startswith("WARN") and h.sandbox.tinybird_url in host_line
    no_traceback(result.stderr)


def test_unknown_datasource(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run("run", env={"TINYBIRD_DATASOURCE": "auth0_missing"})
    assert result.returncode == 4
    assert (
        "auth0_missing" in result.stderr
        and "tinybird/datasources/auth0.datasource" in result.stderr
    )


def test_a_400_from_tinybird(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)

    def tinybird(method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if path.startswith("/v0/datasources/"):
            return 200, {"name": "auth0"}
        if path == "/v0/sql":
            return 200, {"meta": [], "data": [], "rows": 0}
        return 400, {"error": "Invalid data source name (simulated)"}

    stub = StubServer(tinybird)
    try:
        result = h.run("run", env={"TINYBIRD_HOST": stub.url})
    finally:
        stub.close()
    assert result.returncode == 4, result.stderr
    assert "Invalid data source name" in result.stderr
    assert "Nothing from this batch" in result.stderr
    assert json.loads(h.state.read_text())["rows_sent"] == 0  # valid, and not moved
    no_traceback(result.stderr)


def test_a_429_asking_a_day_stops_at_once_with_the_checkpoint_valid(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)

    def tinybird(method: str, path: str, query: dict[str, list[str]]) -> Any:
        if path.startswith("/v0/datasources/"):
            return 200, {"name": "auth0"}
        if path == "/v0/sql":
            return 200, {"meta": [], "data": [], "rows": 0}
        return 429, {"error": "Too many requests"}, {"Retry-After": "86400"}

    stub = StubServer(tinybird)
    started = time.monotonic()
    try:
        result = h.run("run", env={"TINYBIRD_HOST": stub.url})
    finally:
        stub.close()
    assert time.monotonic() - started < 60  # not a wait for the retry budget to run out
    assert result.returncode == 7, result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert "429" in message and "86,400s" in message and "max_seconds 600s" in message
    assert "timeout" not in message.lower()
    assert json.loads(h.state.read_text())["rows_sent"] == 0  # valid, and not moved
    no_traceback(result.stderr)


def test_413_splits_batches_until_they_fit(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL, max_body_bytes=60_000)
    result = h.run("run", "--json")
    assert result.returncode == 0, result.stderr
    assert "batch_split" in result.stderr
    assert h.tinybird("/__sandbox/stats").json()["status_413"] > 0
    assert_exactly(h.received(), h.records())


def test_a_single_row_too_large(harness) -> None:  # type: ignore[no-untyped-def]
    # Every row is over the limit, so each batch is halved down to its rows one by one: a small
    # tenant keeps that quick.
    h: Harness = harness(**{**SMALL, "logs": 200}, max_body_bytes=200)
    result = h.run("run")
    assert result.returncode == 9
    assert "too large (413), even alone" in result.stderr
    oldest = h.records()[0]["log_id"]
    assert any(record_id in result.stderr for record_id in (oldest,)) or "log 900" in result.stderr
    assert h.received() == []
    # Every row refused: a count and a few ids, not a flood of them, and a way on.
    message = result.stderr.strip().splitlines()[-1]
    assert len(message) <= 620 and message.count("900") <= 4, message
    assert "logs as too large" in message and "proxy" in message


def test_422_stops_and_is_never_resent(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL, mv_failure_rate=1.0)
    result = h.run("run")
    assert result.returncode == 8, result.stderr
    assert "materialized view" in result.stderr and "not resent" in result.stderr
    received = [row["log_id"] for row in h.received()]
    assert len(received) == len(set(received))  # each batch went once
    stats = h.tinybird("/__sandbox/stats").json()
    assert stats["status_422"] >= 1
    state = json.loads(h.state.read_text())
    assert state["rows_sent"] == 0  # nothing acknowledged, nothing checkpointed past


# -- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_cleanly_and_the_resume_loses_nothing(harness, tmp_path, signum, code) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=8000, days=3.0, seed=4, tinybird_ack_latency="200-400")
    settings = config(tmp_path, "[batch]\nmax_rows = 300\n")
    process = h.start("run", "--config", settings)
    wait_for(lambda: h.received_count() > 1000, timeout=60)
    stdout, stderr = kill(process, signum)
    assert process.returncode == code, stderr
    no_traceback(stderr)
    assert f"stopped by {signal.Signals(signum).name}" in stdout + stderr
    state = json.loads(h.state.read_text())
    assert state["rows_sent"] > 0
    resumed = h.run("run", "--config", settings)
    assert resumed.returncode == 0, resumed.stderr
    assert_exactly(h.received(), h.records())


# -- the state file ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"format": "auth0-backfill-state", "version": 1, "ten', "not valid JSON"),
        ("\x00\x01garbage", "not valid JSON"),
        ('{"hello": "world"}', "not an auth0-backfill state file"),
        ('{"format": "auth0-backfill-state", "version": 7, "written_by": "9.9"}', "newer"),
    ],
    ids=["truncated", "corrupted", "foreign", "newer"],
)
def test_unusable_state_files(harness, content, message) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    h.state.write_text(content)
    result = h.run("run")
    assert result.returncode == 5, result.stderr
    assert message in result.stderr and str(h.state) in result.stderr
    assert h.state.read_text() == content  # never overwritten silently
    no_traceback(result.stderr)


def test_state_of_another_tenant_or_datasource(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    assert h.run("run").returncode == 0
    before = h.state.read_bytes()
    assert stat.S_IMODE(os.stat(h.state).st_mode) == 0o600
    other = h.run("run", env={"TINYBIRD_DATASOURCE": "auth0_other"})
    assert other.returncode == 5 and "belongs to tenant" in other.stderr
    assert h.state.read_bytes() == before


def test_a_second_run_on_the_same_state_exits_at_once(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=6000, days=3.0, seed=9, tinybird_ack_latency="300-600")
    first = h.start("run")
    wait_for(lambda: h.state.exists(), timeout=30)
    started = time.monotonic()
    second = h.run("run")
    assert time.monotonic() - started < 10
    assert second.returncode == 75
    assert "Another auth0-backfill run" in second.stderr and str(h.state) in second.stderr
    first.communicate(timeout=120)
    assert first.returncode == 0


# -- configuration ----------------------------------------------------------------------------


def test_configuration_mistakes(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    typo = h.run("run", "--config", config(tmp_path, "[tinybird]\ndatsource = 'x'\n"))
    assert typo.returncode == 2 and "did you mean 'datasource'" in typo.stderr
    bad_date = h.run("run", "--from-date", "yesterday")
    assert bad_date.returncode == 2 and "not an ISO 8601" in bad_date.stderr
    backwards = h.run("run", "--from-date", "2026-11-02", "--until-date", "2026-11-01")
    assert backwards.returncode == 2 and "not after" in backwards.stderr
    env: dict[str, Any] = {
        name: "" for name in ("AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET")
    }
    missing = h.run("run", env=env)
    assert missing.returncode == 2
    for name in env:
        assert name in missing.stderr
    for result in (typo, bad_date, backwards, missing):
        no_traceback(result.stderr)
    assert not h.state.exists()
