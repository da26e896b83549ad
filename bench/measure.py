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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backfill.sandbox import MultiTenantSandbox, Sandbox, SandboxConfig
from bench.landing import Landing, ServedTenant, check_landing
from bench.sampler import COLUMNS, Sample, Sampler, merged_stats

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
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTH0_", "TINYBIRD_"))
    }
    env.update(sandbox.env())
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


def run_job(sandbox: Sandbox | MultiTenantSandbox, timeout: float) -> JobRun:
    """`python -m backfill run --quiet --json` against the sandbox, through the launcher."""
    with tempfile.TemporaryDirectory(prefix="auth0-backfill-bench-") as scratch:
        workdir = Path(scratch)
        tenants = served_tenants(sandbox, workdir)
        result_path = workdir / "usage.json"
        stderr_path = workdir / "stderr.txt"
        command = [
            sys.executable, "-I", "-S", str(LAUNCHER), str(result_path), "--",
            sys.executable, "-m", "backfill", "run", "--quiet", "--json",
            *job_arguments(sandbox, workdir),
        ]  # fmt: skip
        timed_out = False
        sandbox_cpu = _own_cpu_seconds()
        with stderr_path.open("wb") as stderr:
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                cwd=workdir,
                env=job_environment(sandbox),
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # its own process group: a timeout stops job and launcher
            )
            with Sampler(sandbox, tenants, process.pid, started) as sampler:
                try:
                    stdout, _ = process.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    stdout = _stop_group(process)
            wall = time.monotonic() - started
        sandbox_cpu = _own_cpu_seconds() - sandbox_cpu
        usage: dict[str, Any] = {}
        if result_path.exists():
            usage = json.loads(result_path.read_text())
        summary: dict[str, Any] | list[dict[str, Any]] = {}
        with contextlib.suppress(ValueError):
            summary = json.loads(stdout.decode() or "{}")
        stderr_tail = stderr_path.read_text(errors="replace")[-2000:]
    peak = usage.get("max_rss_kib")
    inherited = usage.get("launcher_hwm_kib")
    return JobRun(
        exit_code=usage.get("exit_code", process.returncode),
        wall_seconds=usage.get("wall_seconds", wall),
        cpu_user_seconds=usage.get("cpu_user_seconds"),
        cpu_system_seconds=usage.get("cpu_system_seconds"),
        peak_rss_mib=peak / 1024 if peak else None,
        inherited_rss_mib=inherited / 1024 if inherited else None,
        sandbox_cpu_seconds=sandbox_cpu,
        summary=summary,
        samples=sampler.samples,
        auth0_stats=merged_stats([item.auth0.counters.snapshot() for item in tenants]),
        tinybird_stats=sandbox.tinybird.counters.snapshot(),
        first_checkpoint=sampler.first_checkpoint,
        landing=[check_landing(sandbox.store, item) for item in tenants],
        page_span=_page_span(tenants, started),
        timed_out=timed_out,
        stderr_tail=stderr_tail,
    )


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
