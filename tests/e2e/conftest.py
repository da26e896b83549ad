"""End-to-end harness: the sandbox's servers on 127.0.0.1 in this process, the real CLI as a
subprocess pointed at them, and what Tinybird received compared with what Auth0 holds."""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from backfill.sandbox.runner import Sandbox, SandboxConfig

pytestmark = pytest.mark.e2e

# One client for every call a test makes to the sandbox: httpx.request() builds a client each
# time, and with it a TLS context that loads the CA bundle (about 50 ms of CPU, for servers on
# plain http). No keep-alive: each call on a connection of its own, as before.
_HTTP = httpx.Client(timeout=60, verify=False, limits=httpx.Limits(max_keepalive_connections=0))
atexit.register(_HTTP.close)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def summary(self) -> dict[str, Any]:
        return json.loads(self.stdout)


@dataclass
class Harness:
    sandbox: Sandbox
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    started: list[subprocess.Popen[str]] = field(default_factory=list)  # killed after the test

    @property
    def state(self) -> Path:
        return self.workdir / "state.json"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "backfill", *args]

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AUTH0_", "TINYBIRD_"))
        }
        env.update(self.sandbox.env())
        env["AUTH0_BACKFILL_STATE"] = str(self.state)
        env.update(self.env)
        env.update(extra or {})
        return {key: value for key, value in env.items() if value is not None}

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 180,
        umask: int = -1,
    ) -> Result:
        """Run the CLI to its end; ``umask`` is the child's alone (-1: this process's)."""
        done = subprocess.run(
            self.command(*args),
            env=self.environment(env),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            umask=umask,
        )
        return Result(done.returncode, done.stdout, done.stderr)

    def start(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            self.command(*args),
            env=self.environment(env),
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.started.append(process)
        return process

    def close(self) -> None:
        """Whatever the test left running (it failed before stopping it: a follow never ends)."""
        for process in self.started:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
            for pipe in (process.stdin, process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()

    # -- the sandbox's control plane ----------------------------------------------------------

    def auth0(self, path: str, **kwargs: Any) -> httpx.Response:
        return _HTTP.request(kwargs.pop("method", "GET"), self.sandbox.auth0_url + path, **kwargs)

    def tinybird(self, path: str, **kwargs: Any) -> httpx.Response:
        return _HTTP.request(
            kwargs.pop("method", "GET"), self.sandbox.tinybird_url + path, **kwargs
        )

    def records(
        self, from_date: str | None = None, until_date: str | None = None
    ) -> list[dict[str, Any]]:
        params = {
            key: value
            for key, value in (("from_date", from_date), ("until_date", until_date))
            if value
        }
        response = self.auth0("/__sandbox/records", params=params)
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def received(self) -> list[dict[str, Any]]:
        response = self.tinybird("/__sandbox/received", params={"name": "auth0"})
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def received_count(self) -> int:
        """How many envelopes ``received()`` would list, read from the emulator in this process:
        the predicate to poll while a run goes on (``received()`` fetches and parses them all,
        which polled 20 times a second costs a core)."""
        return len(self.sandbox.tinybird.store.received("auth0"))

    def sql(self, query: str) -> list[dict[str, Any]]:
        response = self.tinybird(
            "/v0/sql",
            method="POST",
            data={"q": query + " FORMAT JSON"},
            headers={"Authorization": f"Bearer {self.sandbox.env()['TINYBIRD_TOKEN']}"},
        )
        response.raise_for_status()
        return response.json()["data"]  # type: ignore[no-any-return]

    def table_log_ids(self) -> Counter[str]:
        rows = self.sql("SELECT log_id FROM auth0 UNION ALL SELECT log_id FROM auth0_quarantine")
        return Counter(row["log_id"] for row in rows)

    def append_logs(self, count: int) -> dict[str, Any]:
        response = self.auth0("/__sandbox/append", method="POST", json={"count": count})
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]


def stream_envelope(record: dict[str, Any]) -> dict[str, Any]:
    """The envelope the spec asks for, written from the spec (not from the job's code)."""
    data = {key: value for key, value in record.items() if key not in ("_id", "id")}
    if isinstance(data.get("scope"), str):
        data["scope"] = [part for part in data["scope"].split(" ") if part]
    return {"log_id": record["log_id"], "data": data}


def assert_exactly(
    received: list[dict[str, Any]], records: list[dict[str, Any]], *, duplicates_allowed: int = 0
) -> int:
    """Every expected envelope arrived unchanged, none missing, none extra; duplicates counted."""
    expected = {record["log_id"]: stream_envelope(record) for record in records}
    counts = Counter(envelope["log_id"] for envelope in received)
    missing = set(expected) - set(counts)
    extra = set(counts) - set(expected)
    assert not missing, f"{len(missing)} logs never reached Tinybird, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected logs reached Tinybird, e.g. {sorted(extra)[:3]}"
    for envelope in received:
        assert envelope == expected[envelope["log_id"]], f"changed on the way: {envelope['log_id']}"
    duplicates = sum(count - 1 for count in counts.values())
    assert duplicates <= duplicates_allowed, f"{duplicates} duplicate rows"
    return duplicates


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Any]:
    """``harness(**SandboxConfig fields)`` starts a sandbox; all are closed after the test."""
    opened: list[Harness] = []

    def make(**config: Any) -> Harness:
        config.setdefault("record_raw", True)
        sandbox = Sandbox(SandboxConfig(**config))
        workdir = tmp_path / f"run{len(opened) + 1}"
        workdir.mkdir()
        opened.append(Harness(sandbox, workdir))
        return opened[-1]

    yield make
    for made in opened:
        made.close()
        made.sandbox.close()


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.05) -> None:
    """Wait for an observable event (a file, a counter, a line); ``timeout`` only bounds a
    failure, so make it generous. Poll something cheap: the predicate runs 20 times a second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def kill(process: subprocess.Popen[str], signum: int = signal.SIGKILL) -> tuple[str, str]:
    """Signal the job and collect what it printed (closing its pipes)."""
    process.send_signal(signum)
    return process.communicate(timeout=60)


def iso_day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")
