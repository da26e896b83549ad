"""`python -m backfill.sandbox` as a process: ready output, then serving until SIGTERM/SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


StartProcess = Callable[..., "subprocess.Popen[str]"]


@pytest.fixture
def start_process() -> Iterator[StartProcess]:
    started: list[subprocess.Popen[str]] = []

    def start(*arguments: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "backfill.sandbox", *arguments],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_json_ready_line_then_serves_until_sigterm(start_process: StartProcess) -> None:
    process = start_process("--json", "--logs", "500", "--days", "1", "--seed", "5")
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    assert {
        "AUTH0_DOMAIN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "TINYBIRD_HOST",
        "TINYBIRD_TOKEN", "TINYBIRD_DATASOURCE", "SANDBOX_AUTH0_URL", "SANDBOX_TINYBIRD_URL",
        "SANDBOX_AUTH0_LIMITED_CLIENT_ID", "SANDBOX_AUTH0_LIMITED_CLIENT_SECRET",
        "SANDBOX_TINYBIRD_APPEND_TOKEN", "SANDBOX_TINYBIRD_READ_TOKEN",
        "SANDBOX_TINYBIRD_OTHER_REGION_TOKEN",
    } == set(ready)  # fmt: skip
    stats = httpx.get(f"{ready['AUTH0_DOMAIN']}/__sandbox/stats", timeout=5).json()
    assert stats["logs"]["count"] == 500
    assert httpx.get(f"{ready['TINYBIRD_HOST']}/__sandbox/stats", timeout=5).status_code == 200
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{ready['AUTH0_DOMAIN']}/__sandbox/stats", timeout=2)


def test_export_lines_by_default_and_sigint_stops(start_process: StartProcess) -> None:
    process = start_process("--logs", "100", "--profile", "free", "--datasource", "logs")
    assert process.stdout is not None
    exported: dict[str, str] = {}
    while len(exported) < 13:
        line = process.stdout.readline()
        assert line.startswith("export "), line
        name, _, value = line[len("export ") :].strip().partition("=")
        exported[name] = value
    assert exported["TINYBIRD_DATASOURCE"] == "logs"
    assert exported["AUTH0_DOMAIN"].startswith("http://127.0.0.1:")
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


def test_bad_options_are_refused(start_process: StartProcess) -> None:
    process = start_process("--auth0-latency", "slow")
    _, errors = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "latency" in errors
    unknown_shape = start_process("--shape", "spiky")
    _, errors = unknown_shape.communicate(timeout=30)
    assert unknown_shape.returncode == 2
    assert "'spiky' is not one of 'even', 'uneven', 'quiet'" in errors


def test_stream_options_describe_the_streams_auth0_lists(start_process: StartProcess) -> None:
    process = start_process(
        "--json", "--logs", "300", "--days", "1", "--stream-from", "-12h",
        "--stream-filters", "auth.login.fail,auth.login.success", "--stream-pii", "email",
        "--stream-pii-method", "hash", "--stream-status", "suspended",
        "--stream-paused-at", "-1h", "--other-stream", "datadog", "--other-stream", "http",
    )  # fmt: skip
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline())
    token = httpx.post(
        f"{ready['AUTH0_DOMAIN']}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": ready["AUTH0_CLIENT_ID"],
            "client_secret": ready["AUTH0_CLIENT_SECRET"],
            "audience": f"{ready['AUTH0_DOMAIN']}/api/v2/",
        },
        timeout=5,
    ).json()["access_token"]
    streams = httpx.get(
        f"{ready['AUTH0_DOMAIN']}/api/v2/log-streams",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).json()
    assert [(s["type"], s["status"]) for s in streams] == [
        ("http", "suspended"), ("datadog", "active"), ("http", "active")
    ]  # fmt: skip
    main = streams[0]
    assert [f["name"] for f in main["filters"]] == ["auth.login.fail", "auth.login.success"]
    assert main["pii_config"] == {"log_fields": ["email"], "method": "hash", "algorithm": "xxhash"}
    assert main["sink"]["httpEndpoint"].startswith(f"{ready['TINYBIRD_HOST']}/v0/events?name=")
    assert "&token=" in main["sink"]["httpEndpoint"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0


def test_the_options_are_checked_by_the_configuration_alone() -> None:
    """What goes with what among sandbox's options, decided without a process or a server."""
    from backfill.sandbox.runner import SandboxConfig

    config = SandboxConfig.from_options(
        fault_rate=0.1,
        fault_kinds="429, reset",
        stream_from=datetime(2026, 11, 1, tzinfo=UTC),
        stream_filters="auth.login.fail, auth.signup.success",
        stream_pii="email",
        other_streams=("datadog", "http"),
        logs=100,
    )
    assert config.auth0_faults == config.tinybird_faults and config.auth0_faults.kinds == (
        "429",
        "reset",
    )
    assert config.stream_filters == ("auth.login.fail", "auth.signup.success")
    assert [spec.type for spec in config.streams] == ["datadog", "http"]
    with pytest.raises(ValueError, match="--fault-kinds"):
        SandboxConfig.from_options(fault_rate=0.1, fault_kinds="429,meteor")
    for described in ({"stream_pii": "email"}, {"stream_status": "paused"}):
        with pytest.raises(ValueError, match="give it too"):
            SandboxConfig.from_options(**described)  # type: ignore[arg-type]
