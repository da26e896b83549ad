"""Benchmark of auth0-backfill on the local sandbox: throughput per Auth0 plan, and memory.

    python -m bench.run                              # throughput table, every plan (< 5 minutes)
    python -m bench.run --profiles free,enterprise --seconds 10    # a quick look
    python -m bench.run --memory                     # peak RSS of a 1,000,000-log backfill

Method
- Each measurement starts a fresh sandbox (`backfill.sandbox.Sandbox`) in this process: the Auth0
  emulator with the plan's token bucket and a 250-350 ms round trip per request, the Tinybird
  emulator acknowledging `wait=true` appends after 1-4 s. The job under test is the real CLI,
  `python -m backfill run --quiet --json`, in a child process with the sandbox's environment, a
  fresh state file and its defaults (8 cursors, 4 appends in flight). The sandbox (chdb included)
  is never counted as the job's cost.
- CPU seconds and peak RSS are the child's own, from `os.wait4`, taken by a small launcher
  (`bench/_launch.py`): on Linux a process forked straight from this one would inherit this
  process's ~270 MB high-water mark in `ru_maxrss`. Wall time runs from launch to exit.
- Achieved logs/s is the steady state, measured over a window after the burst: the log records
  the Auth0 emulator put in its answers per second (counted in the emulator, sampled every
  0.25 s) from WARMUP_SECONDS after launch (process start, planning, and the bucket's initial
  burst, spent within a few seconds) until 90% of the run's `/api/v2/logs` requests were answered
  (the end, where cursors run out of work, is left out), times the share of records read that the
  job sent (rows sent / records read: records read again past a range's end are filtered out).
  Reading is held back by a bounded queue when appends fall behind, so a sustained read rate is a
  sustained delivery rate; Tinybird's row count comes in steps of whole batches (up to 10,000
  rows, often sent at a range's end) and is kept in the JSON only as a cross-check. "Whole run"
  is rows sent / wall time, start-up and tail included. The ceiling is the plan's refill rate x
  100 logs per request.
- 429 share: 429 answers / all `/api/v2/logs` answers, from the Auth0 emulator's stats.
- The naive baseline is what simple pollers do: one cursor, one request at a time, an append with
  `wait=true` after every page, sleeping until `x-ratelimit-reset` on a 429. It runs in this
  process for a fixed time on an identical fresh sandbox; its rate is rows acknowledged / time.
- `--scale PLAN=K` runs a plan K times faster in every respect the sandbox controls (refill rate
  x K, latencies / K, bucket size unchanged), which keeps rate x latency, the number of requests
  the job must keep in flight, the same. Not used by default: every plan fits the time budget.

Caveats
- Both emulators share this 2-core machine with the job (their CPU time is in the details and
  the JSON: about a third of a core at the enterprise rate, most of one in the memory run).
  Latencies are sleeps: no bandwidth, TLS or server-side variance.
- The job's CPU includes its start-up (imports, token, planning, ~0.5 s), spread over the run.
- Runs are seconds to a minute long; the job's fixed timers (pacer learning windows, polls) weigh
  more than in an hours-long backfill, and so does the tail, which "whole run" includes.
- Scaled plans are not identical to the real ones: the job's own timers do not scale.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import math
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from backfill.sandbox.latency import LatencyRange
from backfill.sandbox.profiles import PROFILES, PlanProfile, plan_profile
from backfill.sandbox.runner import Sandbox, SandboxConfig

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().with_name("_launch.py")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RESULTS_DIR = ROOT / ".bench"

DEFAULT_PLANS = ("free", "professional", "enterprise")
AUTH0_LATENCY = LatencyRange(250.0, 350.0)  # ms per request
TINYBIRD_ACK_LATENCY = LatencyRange(1000.0, 4000.0)  # ms before a wait=true append is answered
LOGS_PER_PAGE = 100
WARMUP_SECONDS = 10.0
STEADY_UNTIL = 0.9  # share of the run's requests after which the window closes
SAMPLE_SECONDS = 0.25
STARTUP_SECONDS = 2.0  # the job's process start before its first request, for sizing only
DEFAULT_SECONDS = 30.0
MIN_STEADY_SECONDS = 30.0  # a shorter window is flagged in the report
DEFAULT_NAIVE_SECONDS = 20.0
MEMORY_LOGS = 1_000_000

TARGET_SHARE_OF_CEILING = 0.9
TARGET_429_SHARE = 0.01
TARGET_PEAK_RSS_MIB = 150.0
TARGET_CORE_AT_ENTERPRISE = 0.10
LOGS_ROUTE = "/api/v2/logs"


def note(message: str) -> None:
    """Progress on stderr; stdout carries only the report."""
    print(message, file=sys.stderr, flush=True)


# -- plans ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """An Auth0 plan profile as benchmarked: maybe scaled, with the round trips that go with it."""

    base: str
    scale: float
    profile: PlanProfile
    auth0_latency: LatencyRange
    ack_latency: LatencyRange

    @property
    def label(self) -> str:
        return self.base if self.scale == 1 else f"{self.base} x{self.scale:g}"

    @property
    def rate(self) -> float:
        assert self.profile.per_second is not None
        return self.profile.per_second

    @property
    def burst(self) -> int:
        assert self.profile.burst is not None
        return self.profile.burst

    @property
    def ceiling(self) -> float:
        return self.rate * LOGS_PER_PAGE

    @property
    def limit(self) -> str:
        per_minute = self.rate * 60
        if abs(per_minute - round(per_minute)) < 1e-6 and self.rate < 10 and self.rate % 1:
            return f"burst {self.burst}, {per_minute:.0f}/min"
        return f"burst {self.burst}, {self.rate:g}/s"

    @property
    def days(self) -> float:
        """How many days the synthetic tenant spans: well within the plan's retention."""
        retention = self.profile.retention_days or 30.0
        return min(5.0, retention / 2)

    def sandbox(self, logs: int) -> SandboxConfig:
        return SandboxConfig(
            profile=self.profile.name,
            logs=logs,
            days=self.days,
            auth0_latency=self.auth0_latency.describe(),
            tinybird_ack_latency=self.ack_latency.describe(),
        )

    def describe(self) -> dict[str, Any]:
        return {
            "plan": self.base,
            "scale": self.scale,
            "profile": self.profile.name,
            "burst": self.burst,
            "requests_per_second": self.rate,
            "ceiling_logs_per_second": self.ceiling,
            "auth0_latency_ms": self.auth0_latency.describe(),
            "tinybird_ack_latency_ms": self.ack_latency.describe(),
            "tenant_days": self.days,
        }


def make_plan(base: str, scale: float = 1.0) -> Plan:
    profile = plan_profile(base)
    if profile.burst is None or profile.per_second is None:
        raise ValueError(f"plan {base!r} has no rate limit: nothing to compare with a ceiling")
    if scale != 1:
        # A profile of the bench's own, known to the sandbox by name: same bucket, K times the
        # refill. PROFILES is the table the sandbox looks plans up in.
        profile = PlanProfile(
            f"{base}-bench-x{scale:g}", profile.burst, profile.per_second * scale,
            profile.retention_days,
        )  # fmt: skip
        PROFILES[profile.name] = profile
    return Plan(
        base=base,
        scale=scale,
        profile=profile,
        auth0_latency=_scaled(AUTH0_LATENCY, scale),
        ack_latency=_scaled(TINYBIRD_ACK_LATENCY, scale),
    )


def _scaled(latency: LatencyRange, scale: float) -> LatencyRange:
    return LatencyRange(round(latency.low_ms / scale, 1), round(latency.high_ms / scale, 1))


def tenant_size(plan: Plan, seconds: float) -> int:
    """Logs enough for `seconds` of steady state between the warm-up and the 90% mark."""
    requests = plan.burst + plan.rate * (WARMUP_SECONDS + seconds + STARTUP_SECONDS)
    return math.ceil(requests / STEADY_UNTIL) * LOGS_PER_PAGE


# -- the job as a child process ---------------------------------------------------------------


@dataclass
class Sample:
    t: float  # seconds since launch
    logs_ok: int  # /api/v2/logs answers 200 so far
    logs_429: int
    records_served: int  # log records Auth0 put in its answers so far
    rows_stored: int  # rows Tinybird acknowledged so far
    rss_mib: float | None  # the job's resident memory now, when it could be read
    job_cpu: float | None = None  # the job's CPU seconds so far (/proc/<pid>/stat)


@dataclass
class JobRun:
    exit_code: int | None
    wall_seconds: float
    cpu_user_seconds: float | None
    cpu_system_seconds: float | None
    peak_rss_mib: float | None
    inherited_rss_mib: float | None
    sandbox_cpu_seconds: float  # this process (both emulators, the sampler) during the run
    summary: dict[str, Any]
    samples: list[Sample]
    auth0_stats: dict[str, Any]
    tinybird_stats: dict[str, Any]
    timed_out: bool = False
    stderr_tail: str = ""

    @property
    def cpu_seconds(self) -> float | None:
        if self.cpu_user_seconds is None or self.cpu_system_seconds is None:
            return None
        return self.cpu_user_seconds + self.cpu_system_seconds

    @property
    def rows_sent(self) -> int:
        return int(self.summary.get("rows_sent", 0))

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def to_json(self) -> dict[str, Any]:
        body = asdict(self)
        body["cpu_seconds"] = self.cpu_seconds
        body["samples"] = [
            [s.t, s.logs_ok, s.logs_429, s.records_served, s.rows_stored, s.rss_mib]
            for s in self.samples
        ]
        body["samples_columns"] = [
            "t", "logs_200", "logs_429", "records_served", "rows_stored", "job_rss_mib"
        ]  # fmt: skip
        return body


def job_environment(sandbox: Sandbox) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AUTH0_", "TINYBIRD_"))
    }
    env.update(sandbox.env())
    return env


class ServedRecords:
    """Counts the log records the Auth0 emulator builds for its answers.

    Every record an answer carries is built by `Tenant.record`, so wrapping that one method of
    this sandbox's tenant counts exactly what the job was sent, page by page.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.count = 0
        self._lock = threading.Lock()
        build = sandbox.tenant.record

        def counted(index: int) -> dict[str, Any]:
            with self._lock:
                self.count += 1
            return build(index)

        sandbox.tenant.record = counted  # type: ignore[method-assign]


class Sampler:
    """Reads the emulators' counters (in this process) and the job's RSS, every 0.25 s."""

    def __init__(
        self, sandbox: Sandbox, served: ServedRecords, launcher_pid: int, started: float
    ) -> None:
        self._sandbox = sandbox
        self._served = served
        self._launcher_pid = launcher_pid
        self._started = started
        self._job_pid: int | None = None
        self._stop = threading.Event()
        self.samples: list[Sample] = []
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._take()

    def _loop(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            self._take()

    def _take(self) -> None:
        requests = self._sandbox.auth0.counters.snapshot()["requests"]
        assert isinstance(requests, dict)
        logs = requests.get(LOGS_ROUTE, {})
        self.samples.append(
            Sample(
                t=round(time.monotonic() - self._started, 3),
                logs_ok=int(logs.get("200", 0)),
                logs_429=int(logs.get("429", 0)),
                records_served=self._served.count,
                rows_stored=self._sandbox.tinybird.counters.total("rows_stored"),
                rss_mib=self._job_rss(),
                job_cpu=self._job_cpu(),
            )
        )

    def _job_cpu(self) -> float | None:
        """utime + stime of the job, from /proc: its CPU over any stretch of the run."""
        if self._job_pid is None:
            return None
        try:
            fields = Path(f"/proc/{self._job_pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def _job_rss(self) -> float | None:
        try:
            if self._job_pid is None:
                children = Path(
                    f"/proc/{self._launcher_pid}/task/{self._launcher_pid}/children"
                ).read_text()
                if not children.split():
                    return None
                self._job_pid = int(children.split()[0])
            return _status_mib(Path(f"/proc/{self._job_pid}/status"), "VmRSS")
        except (OSError, ValueError):
            return None


def _status_mib(path: Path, key: str) -> float | None:
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024
    return None


def run_job(sandbox: Sandbox, timeout: float) -> JobRun:
    """`python -m backfill run --quiet --json` against the sandbox, through the launcher."""
    with tempfile.TemporaryDirectory(prefix="auth0-backfill-bench-") as scratch:
        workdir = Path(scratch)
        result_path = workdir / "usage.json"
        stderr_path = workdir / "stderr.txt"
        command = [
            sys.executable, "-I", "-S", str(LAUNCHER), str(result_path), "--",
            sys.executable, "-m", "backfill", "run", "--quiet", "--json",
            "--state", str(workdir / "state.json"),
        ]  # fmt: skip
        timed_out = False
        served = ServedRecords(sandbox)
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
            with Sampler(sandbox, served, process.pid, started) as sampler:
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
        summary: dict[str, Any] = {}
        with contextlib.suppress(ValueError):
            summary = json.loads(stdout.decode() or "{}")
        stderr_tail = stderr_path.read_text(errors="replace")[-2000:]
    auth0_stats = httpx.get(f"{sandbox.auth0_url}/__sandbox/stats", timeout=60).json()
    tinybird_stats = httpx.get(f"{sandbox.tinybird_url}/__sandbox/stats", timeout=60).json()
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
        auth0_stats=auth0_stats,
        tinybird_stats=tinybird_stats,
        timed_out=timed_out,
        stderr_tail=stderr_tail,
    )


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


# -- figures from a run -----------------------------------------------------------------------


@dataclass
class Window:
    start: float
    end: float
    requests: int
    records_served: int
    rows_stored: int
    job_cpu: float | None  # the job's CPU seconds within the window

    @property
    def seconds(self) -> float:
        return self.end - self.start


def steady_window(samples: list[Sample], warmup: float = WARMUP_SECONDS) -> Window | None:
    """From `warmup` s after launch until STEADY_UNTIL of the run's requests were answered."""
    if not samples:
        return None
    total = samples[-1].logs_ok
    first = next((s for s in samples if s.t >= warmup), None)
    last = next((s for s in samples if s.logs_ok >= STEADY_UNTIL * total), samples[-1])
    if first is None or last.t <= first.t:
        return None
    return Window(
        start=first.t,
        end=last.t,
        requests=last.logs_ok - first.logs_ok,
        records_served=last.records_served - first.records_served,
        rows_stored=last.rows_stored - first.rows_stored,
        job_cpu=last.job_cpu - first.job_cpu
        if last.job_cpu is not None and first.job_cpu is not None
        else None,
    )


def logs_route_counts(auth0_stats: dict[str, Any]) -> tuple[int, int, int]:
    """(answers, 200s, 429s) of /api/v2/logs, from the Auth0 emulator's stats."""
    counts: dict[str, int] = auth0_stats.get("requests", {}).get(LOGS_ROUTE, {})
    return sum(counts.values()), counts.get("200", 0), counts.get("429", 0)


@dataclass
class NaiveRun:
    seconds: float
    rows: int
    requests: int
    rate_limited: int
    caught_up: bool
    error: str | None = None

    @property
    def logs_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


def naive_loop(sandbox: Sandbox, seconds: float) -> NaiveRun:
    """One cursor, one request at a time, an append after every page: today's simple pollers."""
    env = sandbox.env()
    auth0, tinybird = sandbox.auth0_url, sandbox.tinybird_url
    rows = requests = rate_limited = 0
    caught_up = False
    error: str | None = None
    with httpx.Client(timeout=60) as http:
        token = http.post(
            f"{auth0}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": env["AUTH0_CLIENT_ID"],
                "client_secret": env["AUTH0_CLIENT_SECRET"],
                "audience": f"{auth0}/api/v2/",
            },
        )
        token.raise_for_status()
        auth0_headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        tinybird_headers = {
            "Authorization": f"Bearer {env['TINYBIRD_TOKEN']}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        }

        def get_logs(params: dict[str, str | int]) -> list[dict[str, Any]]:
            nonlocal requests, rate_limited
            while True:
                answer = http.get(f"{auth0}/api/v2/logs", params=params, headers=auth0_headers)
                requests += 1
                if answer.status_code != 429:
                    answer.raise_for_status()
                    page: list[dict[str, Any]] = answer.json()
                    return page
                rate_limited += 1
                reset = float(answer.headers.get("x-ratelimit-reset", time.time() + 1))
                time.sleep(max(0.0, reset - time.time()))

        def send(page: list[dict[str, Any]]) -> int:
            lines = b"".join(
                json.dumps({"log_id": record["log_id"], "data": record}).encode() + b"\n"
                for record in page
            )
            answer = http.post(
                f"{tinybird}/v0/events",
                params={"name": env["TINYBIRD_DATASOURCE"], "wait": "true"},
                content=gzip.compress(lines),
                headers=tinybird_headers,
            )
            answer.raise_for_status()
            acknowledged: int = answer.json()["successful_rows"] + answer.json()["quarantined_rows"]
            return acknowledged

        started = time.monotonic()
        try:
            # Start-up, not timed: the oldest log (from= is exclusive, so it is sent by itself).
            oldest = get_logs({"sort": "date:1", "per_page": 1})
            if oldest:
                send(oldest)
            position = oldest[-1]["log_id"] if oldest else None
            started = time.monotonic()
            deadline = started + seconds
            while position is not None and time.monotonic() < deadline:
                page = get_logs({"from": position, "take": LOGS_PER_PAGE})
                if not page:
                    caught_up = True
                    break
                rows += send(page)
                position = page[-1]["log_id"]
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        elapsed = time.monotonic() - started
    return NaiveRun(elapsed, rows, requests, rate_limited, caught_up, error)


# -- one plan ---------------------------------------------------------------------------------


@dataclass
class PlanResult:
    plan: Plan
    logs: int
    job: JobRun
    naive: NaiveRun
    naive_logs: int
    figures: dict[str, Any] = field(default_factory=dict)


def measure_plan(plan: Plan, seconds: float, naive_seconds: float) -> PlanResult:
    logs = tenant_size(plan, seconds)
    expected = logs / plan.ceiling
    note(
        f"[{plan.label}] job: {logs:,} logs, ~{expected:.0f} s at the ceiling "
        f"({plan.ceiling:,.0f} logs/s)"
    )
    with Sandbox(plan.sandbox(logs)) as sandbox:
        job = run_job(sandbox, timeout=3 * expected + 90)
    if not job.ok:
        note(
            f"[{plan.label}] job FAILED (exit {job.exit_code}, timed out: {job.timed_out}):\n"
            f"{job.stderr_tail}"
        )
    naive_logs = math.ceil(plan.ceiling * naive_seconds) + plan.burst * LOGS_PER_PAGE
    note(f"[{plan.label}] naive loop: {naive_seconds:.0f} s")
    with Sandbox(plan.sandbox(naive_logs)) as sandbox:
        naive = naive_loop(sandbox, naive_seconds)
    result = PlanResult(plan, logs, job, naive, naive_logs)
    result.figures = plan_figures(result)
    note(
        f"[{plan.label}] {result.figures['achieved_logs_per_second'] or 0:,.0f} logs/s steady, "
        f"naive {naive.logs_per_second:,.0f} logs/s"
    )
    return result


def plan_figures(result: PlanResult) -> dict[str, Any]:
    plan, job = result.plan, result.job
    answers, _, throttled = logs_route_counts(job.auth0_stats)
    window = steady_window(job.samples)
    # Records read again (the late margin past a range's end) are filtered out, not sent.
    read = int(job.summary.get("records_read", 0))
    useful = job.rows_sent / read if read else 0.0
    achieved = window.records_served * useful / window.seconds if window else None
    delivered_in_window = window.rows_stored / window.seconds if window else None
    cpu = job.cpu_seconds
    cpu_per_log = cpu / job.rows_sent if cpu is not None and job.rows_sent else None
    naive_rate = result.naive.logs_per_second
    return {
        "ok": job.ok,
        "complete": job.rows_sent == result.logs,
        "logs_in_tenant": result.logs,
        "achieved_logs_per_second": achieved,
        "share_of_ceiling": achieved / plan.ceiling if achieved is not None else None,
        "window": asdict(window) if window else None,
        "window_seconds": window.seconds if window else None,
        "logs_per_request_in_window": window.records_served / window.requests
        if window and window.requests
        else None,
        "requests_per_second_in_window": window.requests / window.seconds if window else None,
        "requests_share_of_refill": window.requests / window.seconds / plan.rate
        if window
        else None,
        "useful_share_of_records_read": useful,
        "tinybird_rows_per_second_in_window": delivered_in_window,
        "whole_run_logs_per_second": job.rows_sent / job.wall_seconds if job.wall_seconds else 0,
        "logs_requests": answers,
        "logs_429": throttled,
        "share_429": throttled / answers if answers else None,
        "cpu_seconds": cpu,
        "cpu_seconds_per_10k_logs": cpu_per_log * 10_000 if cpu_per_log is not None else None,
        # The target's measure: the job's CPU while it runs at the ceiling (the steady window),
        # per second of that window. Start-up (imports, token, planning) is outside it.
        "core_share_at_ceiling": window.job_cpu / window.seconds
        if window and window.job_cpu is not None
        else None,
        "core_share_whole_run_per_log": cpu_per_log * plan.ceiling
        if cpu_per_log is not None
        else None,
        "core_share_over_run": cpu / job.wall_seconds if cpu is not None else None,
        "peak_rss_mib": job.peak_rss_mib,
        "naive_logs_per_second": naive_rate,
        "ours_over_naive": achieved / naive_rate if achieved is not None and naive_rate else None,
    }


# -- reports ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = None
    with contextlib.suppress(OSError, ValueError, TypeError):
        memory = round((_status_mib(Path("/proc/meminfo"), "MemTotal") or 0) / 1024, 1)
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
        "revision": _revision(),
    }


def _revision() -> str | None:
    """The commit benchmarked, `+dirty` with uncommitted changes (read-only git calls)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
            check=True, timeout=10,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")


def header(command: str, facts: dict[str, Any], started: datetime) -> list[str]:
    return [
        f"Command: `{command}`  ",
        f"Date: {started:%Y-%m-%d %H:%M} UTC  ",
        f"Machine: {facts['cores']} cores ({facts['cpu']}), {facts['memory_gib']} GiB, "
        f"Python {facts['python']}, {facts['platform']}; load average at start "
        f"{' '.join(f'{value:g}' for value in facts['load_average_at_start'])}  ",
        f"Code: {facts['revision'] or 'unknown revision'}; the job with its defaults "
        "(8 cursors, 4 appends in flight)",
    ]


def _number(value: float | None, digits: int = 0, suffix: str = "") -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{suffix}"


def _percent(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def throughput_report(
    results: list[PlanResult], command: str, facts: dict[str, Any], started: datetime, total: float
) -> str:
    lines = [
        "### Throughput per Auth0 plan (local sandbox)",
        "",
        *header(command, facts, started),
        "",
        "| Plan (Auth0 limit) | Ceiling logs/s | Achieved logs/s | Of ceiling | Whole run logs/s "
        "| 429s / requests | CPU s / 10k logs | Core at ceiling | Peak RSS | Naive loop logs/s "
        "| Ours / naive |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for result in results:
        f = result.figures
        ratio = f["ours_over_naive"]
        lines.append(
            f"| {result.plan.label} ({result.plan.limit}) | {result.plan.ceiling:,.0f} "
            f"| {_number(f['achieved_logs_per_second'])} | {_number(f['share_of_ceiling'], 3)} "
            f"| {_number(f['whole_run_logs_per_second'])} "
            f"| {_percent(f['share_429'])} ({f['logs_429']}/{f['logs_requests']}) "
            f"| {_number(f['cpu_seconds_per_10k_logs'], 2)} "
            f"| {_percent(f['core_share_at_ceiling'])} "
            f"| {_number(f['peak_rss_mib'], 0, ' MiB')} "
            f"| {result.naive.logs_per_second:,.0f} "
            f"| {'n/a' if ratio is None else f'{ratio:.1f}x'} |"
        )
    lines += ["", *_details(results), "", *_targets(results)]
    lines += ["", f"Benchmark wall time: {total:.0f} s."]
    return "\n".join(lines)


def _details(results: list[PlanResult]) -> list[str]:
    lines = [
        "How: Auth0 round trip "
        f"{AUTH0_LATENCY.describe()} ms, Tinybird `wait=true` acknowledged after "
        f"{TINYBIRD_ACK_LATENCY.describe()} ms. *Achieved* is the steady state after the burst: "
        "log records Auth0 served per second (counted in the emulator) from "
        f"{WARMUP_SECONDS:g} s after launch (start-up and the bucket's initial burst spent) "
        f"until {STEADY_UNTIL:.0%} of the run's requests, times the share of records read that "
        "the job sent. *Whole run* is rows sent / wall time, start-up and tail included. "
        "*Core at ceiling* is the job's CPU seconds per second over that same steady window "
        "(from `/proc/<pid>/stat`; start-up excluded; the whole run's CPU per log x the ceiling is "
        "in the details). *Peak RSS* is the job process's "
        "(`wait4`). The naive loop pages one cursor and appends after every page.",
        "",
    ]
    for result in results:
        f, plan, job = result.figures, result.plan, result.job
        window = f["window"]
        span = (
            f"window {window['start']:.0f}-{window['end']:.0f} s ({f['window_seconds']:.0f} s"
            + (", SHORT: not a steady state" if f["window_seconds"] < MIN_STEADY_SECONDS else "")
            + ")"
            if window
            else "no steady window"
        )
        scaled = (
            f"; SCALED x{plan.scale:g}: refill x{plan.scale:g}, Auth0 "
            f"{plan.auth0_latency.describe()} ms, Tinybird ack {plan.ack_latency.describe()} ms"
            if plan.scale != 1
            else ""
        )
        status = "ok" if job.ok else f"FAILED (exit {job.exit_code}, timeout {job.timed_out})"
        complete = "" if f["complete"] else f", INCOMPLETE: {job.rows_sent:,} rows sent"
        lines.append(
            f"- {plan.label}: {result.logs:,} logs, job {status}{complete} in "
            f"{job.wall_seconds:.0f} s ({_number(f['cpu_seconds'], 1)} CPU s, "
            f"{_percent(f['core_share_over_run'])} of a core on average, start-up included, "
            f"or {_percent(f['core_share_whole_run_per_log'])} at the ceiling as CPU per log x "
            "ceiling; the sandbox "
            f"{job.sandbox_cpu_seconds:.1f} CPU s), {span}, "
            f"{_number(f['requests_per_second_in_window'], 2)} requests/s in it "
            f"({_number(f['requests_share_of_refill'], 3)} of the refill) with "
            f"{_number(f['logs_per_request_in_window'], 1)} logs each, "
            f"{f['useful_share_of_records_read']:.1%} of records read were sent; "
            f"naive: {result.naive.rows:,} rows in "
            f"{result.naive.seconds:.0f} s, {result.naive.rate_limited} 429s"
            + (f", error {result.naive.error}" if result.naive.error else "")
            + scaled
        )
    return lines


def _targets(results: list[PlanResult]) -> list[str]:
    def mark(passed: bool) -> str:
        return "met" if passed else "NOT MET"

    lines = ["Targets:"]
    shares = [(r.plan.label, r.figures["share_of_ceiling"]) for r in results]
    lines.append(
        f"- >= {TARGET_SHARE_OF_CEILING:g} of the ceiling on every plan: "
        + ", ".join(f"{label} {_number(share, 3)}" for label, share in shares)
        + f" ({mark(all(s is not None and s >= TARGET_SHARE_OF_CEILING for _, s in shares))})"
    )
    throttled = [(r.plan.label, r.figures["share_429"]) for r in results]
    lines.append(
        f"- 429s <= {TARGET_429_SHARE:.0%} of requests: "
        + ", ".join(f"{label} {_percent(share, 2)}" for label, share in throttled)
        + f" ({mark(all(s is not None and s <= TARGET_429_SHARE for _, s in throttled))})"
    )
    for result in results:
        if result.plan.base == "enterprise" and result.plan.scale == 1:
            core = result.figures["core_share_at_ceiling"]
            passed = core is not None and core <= TARGET_CORE_AT_ENTERPRISE
            lines.append(
                f"- <= {TARGET_CORE_AT_ENTERPRISE:.0%} of one core at the enterprise ceiling: "
                f"{_percent(core)} ({mark(passed)})"
            )
    lines.append(
        f"- peak RSS <= {TARGET_PEAK_RSS_MIB:g} MiB at 1,000,000 logs: see "
        "`python -m bench.run --memory`"
    )
    return lines


# -- memory -----------------------------------------------------------------------------------


def measure_memory(logs: int) -> tuple[dict[str, Any], JobRun]:
    config = SandboxConfig(profile="unlimited", logs=logs, days=7.0, record_raw=False)
    note(f"[memory] job: {logs:,} logs, profile unlimited, no latency")
    with Sandbox(config) as sandbox:
        job = run_job(sandbox, timeout=1800)
    if not job.ok:
        note(f"[memory] job FAILED (exit {job.exit_code}):\n{job.stderr_tail}")
    rss = [s.rss_mib for s in job.samples if s.rss_mib is not None]
    cpu = job.cpu_seconds
    figures = {
        "ok": job.ok,
        "complete": job.rows_sent == logs,
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
    }
    return figures, job


def _quarters(values: list[float]) -> list[float]:
    if not values:
        return []
    return [round(values[min(len(values) - 1, len(values) * q // 4)], 1) for q in (1, 2, 3, 4)]


def memory_report(
    figures: dict[str, Any], command: str, facts: dict[str, Any], started: datetime, total: float
) -> str:
    peak = figures["peak_rss_mib"]
    passed = peak is not None and peak <= TARGET_PEAK_RSS_MIB and figures["complete"]
    quarters = " / ".join(f"{value:.0f}" for value in figures["rss_mib_at_quarters"]) or "n/a"
    lines = [
        "### Memory of a 1,000,000-log backfill (local sandbox)",
        "",
        *header(command, facts, started),
        "",
        "| Logs | Rows sent | Wall s | Logs/s | CPU s | CPU s / 10k logs | RSS at 1/4, 1/2, 3/4, "
        "end (MiB) | Peak RSS | Target |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|---|",
        f"| {figures['logs_in_tenant']:,} | {figures['rows_sent']:,} "
        f"| {figures['wall_seconds']:.0f} | {figures['logs_per_second']:,.0f} "
        f"| {_number(figures['cpu_seconds'], 1)} "
        f"| {_number(figures['cpu_seconds_per_10k_logs'], 2)} "
        f"| {quarters} | {_number(peak, 0, ' MiB')} "
        f"| <= {TARGET_PEAK_RSS_MIB:g} MiB: {'met' if passed else 'NOT MET'} |",
        "",
        "How: profile `unlimited` (no rate limit), no latency, `record_raw` off, so the job runs "
        "as fast as the sandbox serves it on this machine. Peak RSS is the job process's own "
        "(`wait4` from a small launcher, which it inherits "
        f"{_number(figures['inherited_rss_mib'], 0, ' MiB')} from); the RSS columns are "
        "`/proc` samples taken during the run.",
        "",
        f"Benchmark wall time: {total:.0f} s.",
    ]
    return "\n".join(lines)


# -- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark auth0-backfill on the local sandbox (see the module docstring).",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help=f"Peak RSS of a {MEMORY_LOGS:,}-log backfill instead of the throughput table.",
    )
    parser.add_argument(
        "--profiles",
        default=",".join(DEFAULT_PLANS),
        help="Comma-separated plan profiles (default: %(default)s).",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=DEFAULT_SECONDS,
        help="Steady-state seconds to size each plan's tenant for (default: %(default)g).",
    )
    parser.add_argument(
        "--naive-seconds",
        type=float,
        help=f"How long the naive loop runs per plan (default: min({DEFAULT_NAIVE_SECONDS:g}, "
        "--seconds)).",
    )
    parser.add_argument(
        "--scale",
        action="append",
        default=[],
        metavar="PLAN=K",
        help="Run PLAN K times faster: refill x K, latencies / K (repeatable).",
    )
    parser.add_argument("--logs", type=int, default=MEMORY_LOGS, help="Logs for --memory.")
    parser.add_argument("--json", type=Path, metavar="FILE", help="Also save the figures here.")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be positive")
    return args


def _scales(items: list[str]) -> dict[str, float]:
    scales: dict[str, float] = {}
    for item in items:
        name, _, factor = item.partition("=")
        try:
            value = float(factor)
        except ValueError:
            raise SystemExit(f"--scale {item!r}: use PLAN=K, e.g. professional=4") from None
        if value <= 0:
            raise SystemExit(f"--scale {item!r}: K must be positive")
        scales[name.strip()] = value
    return scales


def save(document: dict[str, Any], name: str, extra: Path | None) -> list[Path]:
    RESULTS_DIR.mkdir(exist_ok=True)
    paths = [RESULTS_DIR / name, *([extra] if extra else [])]
    for path in paths:
        path.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    started_at = datetime.now(UTC)
    started = time.monotonic()
    facts = machine()
    if args.memory:
        figures, job = measure_memory(args.logs)
        total = time.monotonic() - started
        report = memory_report(figures, command, facts, started_at, total)
        document = {
            "kind": "memory",
            "command": command,
            "date": started_at.isoformat(),
            "machine": facts,
            "figures": figures,
            "job": job.to_json(),
            "benchmark_seconds": total,
        }
        paths = save(document, "latest-memory.json", args.json)
        print(report)
        note(f"figures saved to {', '.join(str(path) for path in paths)}")
        return 0 if figures["ok"] else 1

    scales = _scales(args.scale)
    names = [name.strip() for name in args.profiles.split(",") if name.strip()]
    try:
        plans = [make_plan(name, scales.get(name, 1.0)) for name in names]
    except ValueError as problem:
        raise SystemExit(str(problem)) from None
    naive_seconds = args.naive_seconds or min(DEFAULT_NAIVE_SECONDS, args.seconds)
    results = [measure_plan(plan, args.seconds, naive_seconds) for plan in plans]
    total = time.monotonic() - started
    report = throughput_report(results, command, facts, started_at, total)
    document = {
        "kind": "throughput",
        "command": command,
        "date": started_at.isoformat(),
        "machine": facts,
        "method": {
            "warmup_seconds": WARMUP_SECONDS,
            "steady_until_share_of_requests": STEADY_UNTIL,
            "sample_seconds": SAMPLE_SECONDS,
            "naive_seconds": naive_seconds,
            "target_steady_seconds": args.seconds,
        },
        "plans": [
            {
                **result.plan.describe(),
                "figures": result.figures,
                "job": result.job.to_json(),
                "naive": {**asdict(result.naive), "logs_in_tenant": result.naive_logs},
            }
            for result in results
        ],
        "benchmark_seconds": total,
    }
    paths = save(document, "latest.json", args.json)
    print(report)
    note(f"figures saved to {', '.join(str(path) for path in paths)}")
    return 0 if all(result.job.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
