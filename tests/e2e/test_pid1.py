"""In a container the job is PID 1 (the Dockerfile's ENTRYPOINT, no init): the kernel delivers a
signal to PID 1 only through a handler it installed. `run` installs its own for SIGTERM, so
`docker stop` or a pod's termination stops it as on a terminal: appends in flight finish, exit
143, and the next run resumes without a loss. Here the job runs as PID 1 of a new PID namespace
(`unshare`, as a container runtime does) and gets SIGTERM from outside it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Harness, assert_exactly, wait_for

pytestmark = pytest.mark.e2e


def _can_make_pid_namespaces() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "true"], capture_output=True, timeout=30, check=False
    )
    return probe.returncode == 0


def _pid_one_of(runner: subprocess.Popen[str]) -> int:
    """The host pid of the process `unshare --fork` started, once it runs as PID 1."""
    children = Path(f"/proc/{runner.pid}/task/{runner.pid}/children")
    found: list[int] = []

    def started() -> bool:
        found[:] = [int(pid) for pid in children.read_text().split()]
        if not found:
            return False
        status = Path(f"/proc/{found[0]}/status").read_text()
        nspid = next(line for line in status.splitlines() if line.startswith("NSpid:"))
        return nspid.split()[-1] == "1"

    wait_for(started, timeout=30)
    return found[0]


@pytest.mark.skipif(not _can_make_pid_namespaces(), reason="needs unshare --pid (root on Linux)")
def test_as_pid_1_sigterm_stops_the_run_cleanly(harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=8000, days=3.0, seed=4, tinybird_ack_latency="200-400")
    settings = tmp_path / "settings.toml"
    settings.write_text("[batch]\nmax_rows = 300\n")
    runner = subprocess.Popen(
        [
            "unshare",
            "--pid",
            "--fork",
            "--kill-child",
            *h.command("run", "--config", str(settings)),
        ],
        env=h.environment(),
        cwd=h.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        job = _pid_one_of(runner)
        wait_for(lambda: h.received_count() > 1000, timeout=60)
        started = time.monotonic()
        os.kill(job, signal.SIGTERM)
        stdout, stderr = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 143, stderr
    assert time.monotonic() - started < 30  # well inside the default grace of a pod (30 s)
    assert "stopped by SIGTERM" in stdout + stderr and "Traceback" not in stderr
    assert json.loads(h.state.read_text())["rows_sent"] > 0
    resumed = h.run("run", "--config", str(settings))
    assert resumed.returncode == 0, resumed.stderr
    assert_exactly(h.received(), h.records())
