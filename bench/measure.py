"""Running the job under test against a sandbox, watching it run, and checking what landed.

The job is the real CLI, `python -m backfill run --quiet --json`, in a child process of a small
launcher (`_launch.py`, for its own peak RSS and CPU), pointed at a `Sandbox` (`--state FILE`) or
a `MultiTenantSandbox` (`--config FILE` with its `[[tenants]]`). The emulators run in this
process; every 0.25 s a sampler reads their counters, the job's `/proc` entry and its state
files. After the job exits, every data source is compared with the logs its tenant holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backfill.sandbox import MultiTenantSandbox, Sandbox, SandboxConfig
from bench.landing import Landing, ServedTenant, check_landing
from bench.sampler import COLUMNS, Sample, Sampler, job_pid, merged_stats

ROOT = Path(__file__).resolve().parent.parent  # the checkout benchmarked
LAUNCHER = Path(__file__).resolve().with_name("_launch.py")


def note(message: str) -> None:
    """Progress on stderr; stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


def served_tenants(sandbox: Sandbox | MultiTenantSandbox, workdir: Path) -> list[ServedTenant]:
    if isinstance(sandbox, Sandbox):
        return [
            ServedTenant(
                "tenant", sandbox.tenant, sandbox.auth0, sandbox.config.datasource,
                workdir / "state.json",
            )
        ]  # fmt: skip
    return [
        ServedTenant(item.name, item.tenant, item.auth0, item.datasource, item.state_path(workdir))
        for item in sandbox.tenants
    ]


def job_arguments(sandbox: Sandbox | MultiTenantSandbox, workdir: Path) -> list[str]:
    if isinstance(sandbox, Sandbox):
        return ["--state", str(workdir / "state.json")]
    return ["--config", str(sandbox.write_settings(workdir / "tenants.toml", workdir))]


def job_environment(sandbox: Sandbox | MultiTenantSandbox) -> dict[str, str]:
    """This environment pointed at the sandbox; this checkout first on the import path, so the
    job is this code even where an installed copy (an editable install of another worktree)
    would be found otherwise."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTH0_", "TINYBIRD_"))
    }
    env.update(sandbox.env())
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *(item for item in env.get("PYTHONPATH", "").split(os.pathsep) if item)]
    )
    return env


# -- one run ----------------------------------------------------------------------------------


@dataclass
class JobRun:
    exit_code: int | None
    wall_seconds: float
    cpu_user_seconds: float | None
    cpu_system_seconds: float | None
    peak_rss_mib: float | None
    inherited_rss_mib: float | None
    sandbox_cpu_seconds: float  # this process (the emulators, the sampler) during the run
    summary: dict[str, Any] | list[dict[str, Any]]
    samples: list[Sample]
    auth0_stats: dict[str, Any]  # every tenant's Auth0 counters, added up
    tinybird_stats: dict[str, Any]
    first_checkpoint: dict[str, float | None] = field(default_factory=dict)
    landing: list[Landing] = field(default_factory=list)
    page_span: tuple[float, float] | None = None
    """Seconds from launch to the first checkpoint page asked of Auth0 and to the last one
    answered (any tenant's): before it, start-up and planning; after it, the last appends."""
    timed_out: bool = False
    stderr_tail: str = ""

    @property
    def cpu_seconds(self) -> float | None:
        if self.cpu_user_seconds is None or self.cpu_system_seconds is None:
            return None
        return self.cpu_user_seconds + self.cpu_system_seconds

    @property
    def reports(self) -> list[dict[str, Any]]:
        """The job's summary, one report per tenant."""
        return self.summary if isinstance(self.summary, list) else [self.summary]

    @property
    def rows_sent(self) -> int:
        return sum(int(report.get("rows_sent", 0)) for report in self.reports)

    @property
    def records_read(self) -> int:
        return sum(int(report.get("records_read", 0)) for report in self.reports)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def exactly_once(self) -> bool:
        return bool(self.landing) and all(item.exactly_once for item in self.landing)

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["cpu_seconds"] = self.cpu_seconds
        body["exactly_once"] = self.exactly_once
        body["samples"] = [list(asdict(sample).values()) for sample in self.samples]
        body["samples_columns"] = COLUMNS
        return body


def run_job(
    sandbox: Sandbox | MultiTenantSandbox, timeout: float, args: Sequence[str] = ()
) -> JobRun:
    """`python -m backfill run --quiet --json [ARGS]` against the sandbox, launch to exit."""
    with LaunchedJob(sandbox, args) as job:
        job.wait(timeout)
        return job.result()


class LaunchedJob:
    """The job under test, started through the launcher against a sandbox and watched by a
    `Sampler` until `wait` sees it exit, or `stop` signals it (a follow ends only so); then
    `result`. Leaving the context stops what still runs and removes the scratch directory."""

    def __init__(self, sandbox: Sandbox | MultiTenantSandbox, args: Sequence[str] = ()) -> None:
        self._sandbox = sandbox
        self._cleanup = contextlib.ExitStack()
        scratch = self._cleanup.enter_context(
            tempfile.TemporaryDirectory(prefix="auth0-backfill-bench-")
        )
        self.workdir = Path(scratch)
        self.tenants = served_tenants(sandbox, self.workdir)
        self._usage_path = self.workdir / "usage.json"
        self._stderr_path = self.workdir / "stderr.txt"
        command = [
            sys.executable, "-I", "-S", str(LAUNCHER), str(self._usage_path), "--",
            sys.executable, "-m", "backfill", "run", "--quiet", "--json",
            *job_arguments(sandbox, self.workdir), *args,
        ]  # fmt: skip
        self.timed_out = False
        self._stdout = b""
        self._sandbox_cpu = _own_cpu_seconds()
        self.ended: float | None = None
        try:
            stderr = self._cleanup.enter_context(self._stderr_path.open("wb"))
            self.started = time.monotonic()
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=job_environment(sandbox),
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # its own process group: a timeout stops job and launcher
            )
        except BaseException:
            self._cleanup.close()
            raise
        self.sampler = Sampler(sandbox, self.tenants, self.process.pid, self.started)
        self._cleanup.callback(self._end)
        self.sampler.start()

    def __enter__(self) -> LaunchedJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup.close()

    def since_launch(self) -> float:
        return time.monotonic() - self.started

    def wait(self, timeout: float) -> None:
        """Until the job exits; past `timeout`, stopped (SIGTERM, then SIGKILL) and flagged."""
        try:
            self._stdout, _ = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self._stdout = _stop_group(self.process)
        self.ended = time.monotonic()

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 45.0) -> float:
        """Signal the job, not the launcher (which waits for it and reports its exit code), and
        wait for it: the seconds from the signal to the exit."""
        signalled = time.monotonic()
        pid = job_pid(self.process.pid)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        self.wait(timeout)
        return time.monotonic() - signalled

    def result(self) -> JobRun:
        """What the run did, once it ended (`wait` or `stop`): usage, summary, samples, landing."""
        if self.ended is None:
            raise RuntimeError("the job is still running: wait for it or stop it first")
        self.sampler.stop()
        sandbox_cpu = _own_cpu_seconds() - self._sandbox_cpu
        usage: dict[str, Any] = {}
        if self._usage_path.exists():
            usage = json.loads(self._usage_path.read_text())
        summary: dict[str, Any] | list[dict[str, Any]] = {}
        with contextlib.suppress(ValueError):
            summary = json.loads(self._stdout.decode() or "{}")
        peak = usage.get("max_rss_kib")
        inherited = usage.get("launcher_hwm_kib")
        sandbox = self._sandbox
        return JobRun(
            exit_code=usage.get("exit_code", self.process.returncode),
            wall_seconds=usage.get("wall_seconds", self.ended - self.started),
            cpu_user_seconds=usage.get("cpu_user_seconds"),
            cpu_system_seconds=usage.get("cpu_system_seconds"),
            peak_rss_mib=peak / 1024 if peak else None,
            inherited_rss_mib=inherited / 1024 if inherited else None,
            sandbox_cpu_seconds=sandbox_cpu,
            summary=summary,
            samples=self.sampler.samples,
            auth0_stats=merged_stats([item.auth0.counters.snapshot() for item in self.tenants]),
            tinybird_stats=sandbox.tinybird.counters.snapshot(),
            first_checkpoint=self.sampler.first_checkpoint,
            landing=[check_landing(sandbox.store, item) for item in self.tenants],
            page_span=_page_span(self.tenants, self.started),
            timed_out=self.timed_out,
            stderr_tail=self._stderr_path.read_text(errors="replace")[-2000:],
        )

    def _end(self) -> None:
        if self.process.poll() is None:
            _stop_group(self.process)
        self.sampler.stop()


def _page_span(tenants: list[ServedTenant], started: float) -> tuple[float, float] | None:
    spans = [span for item in tenants if (span := item.auth0.page_span()) is not None]
    if not spans:
        return None
    return min(s[0] for s in spans) - started, max(s[1] for s in spans) - started


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stop_group(process: subprocess.Popen[bytes]) -> bytes:
    """SIGTERM to the launcher's process group (the job stops cleanly), SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        stdout, _ = process.communicate(timeout=45)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        stdout, _ = process.communicate()
    return stdout


# -- memory -----------------------------------------------------------------------------------


def measure_memory(logs: int) -> tuple[dict[str, Any], JobRun]:
    """A large backfill with no rate limit and no latency: the job's memory over the run."""
    config = SandboxConfig(profile="unlimited", logs=logs, days=7.0, record_raw=False)
    note(f"[memory] job: {logs:,} logs, profile unlimited, no latency")
    with Sandbox(config) as sandbox:
        job = run_job(sandbox, timeout=1800)
    if not job.ok:
        note(f"[memory] job FAILED (exit {job.exit_code}):\n{job.stderr_tail}")
    rss = [s.rss_mib for s in job.samples if s.rss_mib is not None]
    threads = [s.threads for s in job.samples if s.threads is not None]
    cpu = job.cpu_seconds
    figures = {
        "ok": job.ok,
        "complete": job.rows_sent == logs,
        "exactly_once": job.exactly_once,
        "logs_in_tenant": logs,
        "rows_sent": job.rows_sent,
        "wall_seconds": job.wall_seconds,
        "logs_per_second": job.rows_sent / job.wall_seconds if job.wall_seconds else 0,
        "cpu_seconds": cpu,
        "cpu_seconds_per_10k_logs": cpu / job.rows_sent * 10_000 if cpu and job.rows_sent else None,
        "core_share_over_run": cpu / job.wall_seconds if cpu is not None else None,
        "peak_rss_mib": job.peak_rss_mib,
        "inherited_rss_mib": job.inherited_rss_mib,
        # RSS sampled at a quarter and at the end of the run: flat means bounded, not growing.
        "rss_mib_at_quarters": _quarters(rss),
        "peak_threads": max(threads, default=None),
    }
    return figures, job


def _quarters(values: list[float]) -> list[float]:
    if not values:
        return []
    return [round(values[min(len(values) - 1, len(values) * q // 4)], 1) for q in (1, 2, 3, 4)]
