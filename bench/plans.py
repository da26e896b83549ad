"""Throughput per Auth0 plan: the job at each plan's rate limit, its steady state against the
ceiling, and a naive sequential loop on an identical tenant for comparison."""

from __future__ import annotations

import gzip
import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from backfill.sandbox.latency import LatencyRange
from backfill.sandbox.profiles import PROFILES, PlanProfile, plan_profile
from backfill.sandbox.runner import Sandbox, SandboxConfig
from bench.measure import JobRun, note, run_job
from bench.sampler import Sample, logs_counts

DEFAULT_PLANS = ("free", "professional", "enterprise")
AUTH0_LATENCY = LatencyRange(250.0, 350.0)  # ms per request
TINYBIRD_ACK_LATENCY = LatencyRange(1000.0, 4000.0)  # ms before a wait=true append is answered
LOGS_PER_PAGE = 100
WARMUP_SECONDS = 10.0
STEADY_UNTIL = 0.9  # share of the run's requests after which the window closes
STARTUP_SECONDS = 2.0  # the job's process start before its first request, for sizing only
DEFAULT_SECONDS = 30.0
MIN_STEADY_SECONDS = 30.0  # a shorter window is flagged in the report
DEFAULT_NAIVE_SECONDS = 20.0


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
        return describe_limit(self.profile)

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


def describe_limit(profile: PlanProfile) -> str:
    """`burst 10, 100/min` or `burst 50, 16/s`, as Auth0 documents its plans."""
    assert profile.burst is not None and profile.per_second is not None
    rate = profile.per_second
    per_minute = rate * 60
    if abs(per_minute - round(per_minute)) < 1e-6 and rate < 10 and rate % 1:
        return f"burst {profile.burst}, {per_minute:.0f}/min"
    return f"burst {profile.burst}, {rate:g}/s"


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


# -- the steady window ------------------------------------------------------------------------


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


# -- the naive loop ---------------------------------------------------------------------------


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

    def to_json(self) -> dict[str, Any]:
        return {
            **self.plan.describe(),
            "figures": self.figures,
            "job": self.job.to_json(),
            "naive": {**asdict(self.naive), "logs_in_tenant": self.naive_logs},
        }


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
    counts = logs_counts(job.auth0_stats)
    answers, throttled = sum(counts.values()), counts.get("429", 0)
    window = steady_window(job.samples)
    # Records read again (the late margin past a range's end) are filtered out, not sent.
    read = job.records_read
    useful = job.rows_sent / read if read else 0.0
    achieved = window.records_served * useful / window.seconds if window else None
    delivered_in_window = window.rows_stored / window.seconds if window else None
    cpu = job.cpu_seconds
    cpu_per_log = cpu / job.rows_sent if cpu is not None and job.rows_sent else None
    naive_rate = result.naive.logs_per_second
    return {
        "ok": job.ok,
        "complete": job.rows_sent == result.logs,
        "exactly_once": job.exactly_once,
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
        "first_checkpoint_seconds": next(iter(job.first_checkpoint.values()), None),
        "peak_threads": max(
            (s.threads for s in job.samples if s.threads is not None), default=None
        ),
        "naive_logs_per_second": naive_rate,
        "ours_over_naive": achieved / naive_rate if achieved is not None and naive_rate else None,
    }
