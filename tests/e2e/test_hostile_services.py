"""Issue 14: services that cannot be reached, that hang or trickle, and a record too large for
Tinybird; the real CLI against the sandbox and a small hostile server (``hostile``)."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.clean import assert_clean, assert_says
from tests.e2e.conftest import Harness, wait_for
from tests.e2e.hostile import Hostile, closed_port_url
from tests.e2e.test_operator import lines

pytestmark = pytest.mark.e2e

SMALL = {"logs": 1500, "days": 2.0, "seed": 61, "profile": "unlimited"}
# Short limits for hostile servers, so a test proves the bound without waiting for the defaults.
SHORT = "[http]\ntimeout_seconds = 2\n[retry]\nmax_attempts = 3\nmax_seconds = 5\n"


def settings(tmp_path: Path, text: str) -> str:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return str(path)


def resolves_invalid_quickly() -> bool:
    """Whether this machine's resolver says at once that a .invalid name does not exist
    (RFC 6761); without a resolver to ask, a lookup may hang until the job's own limit."""
    answered: list[bool] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo("no-such-tenant.invalid", 443)
        except socket.gaierror:
            answered.append(True)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(2.0)
    return bool(answered)


# -- unreachable hosts: one quick retry, then a setting named ---------------------------------


@pytest.mark.parametrize("service", ["auth0", "tinybird"])
def test_a_refused_connection_names_the_host_and_the_setting(harness, service) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    nowhere = closed_port_url()
    variable = "AUTH0_DOMAIN" if service == "auth0" else "TINYBIRD_HOST"
    started = time.monotonic()
    result = h.run("run", env={variable: nowhere})
    assert time.monotonic() - started < 15  # was 47 s of retries
    assert result.returncode == 2, result.stderr
    assert_says(result, "127.0.0.1", "connection was refused", f"check {variable}")
    assert (
        "tried 2 times" in result.stderr and "Run the same command again later" not in result.stderr
    )
    assert not h.state.exists() and h.received() == []
    assert_clean(h, result)


@pytest.mark.parametrize("service", ["auth0", "tinybird"])
def test_a_name_that_does_not_resolve(harness, tmp_path, service) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    variable = "AUTH0_DOMAIN" if service == "auth0" else "TINYBIRD_HOST"
    host = f"no-such-{service}.invalid"  # RFC 2606: never resolves, no query leaves a resolver
    started = time.monotonic()
    result = h.run("run", "--config", settings(tmp_path, SHORT), env={variable: host})
    elapsed = time.monotonic() - started
    if resolves_invalid_quickly():
        assert result.returncode == 2, result.stderr
        assert_says(result, host, "does not resolve", f"check {variable}")
        assert elapsed < 15
    else:  # no resolver answers here: the job's own limits still end it, naming the host
        assert result.returncode in (2, 7), result.stderr
        assert_says(result, host)
        assert elapsed < 30
    assert not h.state.exists() and h.received() == []
    assert_clean(h, result)


def test_a_host_that_answered_before_is_retried_as_usual(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Mid-run, a refused connection is an outage, not a setting: the policy's retries apply."""
    h: Harness = harness(**SMALL, tinybird_ack_latency="300")
    config = settings(tmp_path, "[batch]\nmax_rows = 100\n[run]\nconcurrency = 1\n" + SHORT)
    process = h.start("run", "--config", config)
    wait_for(lambda: h.received_count() >= 200, timeout=60)
    h.sandbox.close()  # both services go away mid-run: connections refused
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 7, stderr
    assert "kept failing" in stderr and "Run the same command again later" in stderr
    assert "Traceback" not in stderr


# -- check: one line per check, within seconds ------------------------------------------------


def test_check_reports_every_check_when_hosts_are_unreachable(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    hanging = Hostile("hang")
    try:
        started = time.monotonic()
        result = h.run(
            "check", env={"AUTH0_DOMAIN": closed_port_url(), "TINYBIRD_HOST": hanging.url}
        )
        elapsed = time.monotonic() - started
    finally:
        hanging.close()
    assert result.returncode == 10, result.stdout + result.stderr
    assert elapsed < 20, elapsed  # about 15 s at most; was 50 s and one line
    statuses = lines(result.stdout)
    assert statuses == {
        "tinybird.host": "PASS",
        "auth0.credentials": "FAIL",
        "auth0.read_logs": "SKIP",
        "auth0.oldest_log": "SKIP",
        "tinybird.token": "FAIL",
        "tinybird.append": "SKIP",
        "tinybird.datasource": "SKIP",
        "tinybird.schema": "SKIP",
    }, result.stdout
    assert "connection was refused" in result.stdout and "AUTH0_DOMAIN" in result.stdout
    assert hanging.url.removeprefix("http://") in result.stdout and "TINYBIRD_HOST" in result.stdout
    assert_clean(h, result, urls=hanging.request_lines)


def test_every_command_leaves_on_sigterm(harness) -> None:  # type: ignore[no-untyped-def]
    """As PID 1 in a container a process gets only the signals it handles: check (like status
    and verify) handles SIGTERM, and leaves at once with 143."""
    h: Harness = harness(**SMALL)
    hanging = Hostile("hang")
    try:
        process = h.start("check", env={"TINYBIRD_HOST": hanging.url})
        # Signalled once inside a request that never gets an answer: the hanging server has
        # read it, so the command is past its start (where the handler is installed).
        wait_for(lambda: bool(hanging.request_lines) or process.poll() is not None, timeout=60)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    finally:
        hanging.close()
    assert process.returncode == 143, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr


def test_check_goes_on_after_a_failing_service(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run("check", env={"AUTH0_DOMAIN": closed_port_url()})
    assert result.returncode == 10
    statuses = lines(result.stdout)
    assert statuses["auth0.credentials"] == "FAIL"
    for name in ("tinybird.token", "tinybird.append", "tinybird.datasource", "tinybird.schema"):
        assert statuses[name] == "PASS", result.stdout
    assert_clean(h, result)


# -- a server that trickles, hangs or answers HTML: bounded as a whole -------------------------


@pytest.mark.parametrize("mode", ["trickle", "hang", "html"])
@pytest.mark.parametrize("service", ["auth0", "tinybird"])
def test_hostile_servers_are_bounded_by_the_documented_limits(
    harness, tmp_path, mode, service
) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    server = Hostile(mode)
    variable = "AUTH0_DOMAIN" if service == "auth0" else "TINYBIRD_HOST"
    try:
        started = time.monotonic()
        result = h.run("run", "--config", settings(tmp_path, SHORT), env={variable: server.url})
        elapsed = time.monotonic() - started
    finally:
        server.close()
    # [retry] max_seconds = 5 bounds each request, waits and the attempt in progress included;
    # a trickle of one byte every 0.5 s would otherwise hold each attempt for about 25 s.
    assert elapsed < 15, (elapsed, result.stderr[-2000:])
    assert result.returncode == 7, result.stderr
    assert_says(result, "kept failing", "Run the same command again later")
    if mode == "html":
        assert "502" in result.stderr and "<html>" not in result.stderr
    else:
        assert "Timeout" in result.stderr
    assert server.request_lines  # it was really asked
    assert not h.state.exists() or h.received() == []
    assert_clean(h, result, urls=server.request_lines)
