"""Following (issue 25): how soon `run --follow` lands a new log, what it costs idle, how it
stops; and what `--rate-share` leaves to the tenant's own application.

Follow latency. A fresh `Sandbox` (free plan, 2,000 logs of history over half a day, Auth0 round
trip and Tinybird acknowledgement as the shapes have them), the job launched as
`run --follow --poll-interval P`. Once its state file records `caught_up_through` (the history
is in), logs are appended for a while at random moments (a seeded RNG, one to three at a time)
through the Auth0 emulator's `/__sandbox/append`: a log's write moment is that call's. Its
acknowledgement is the moment the Tinybird emulator answered the append that held it
(`Acknowledgements`: no query, no polling). One append hides its first log for
`late_seconds` behind a newer one: that log's latency counts from when it became visible, and
it must land once. Then an idle window without appends: the job's `/api/v2/logs` requests in it
against window / P, its CPU, and its RSS from the history's end to the window's (the Sampler's
`/proc` samples). Then SIGTERM: the exit code, how long the stop took, and every log in Auth0's
window landed exactly once.

Rate share. A Free tenant (a bucket of 2, refilled at 2/s, shared by the whole Management API),
3,000 logs over half a day, backfilled by `run --rate-share S` while the tenant's own
application calls `GET /api/v2/log-streams` every 2 s with a token of its own. The job's pace is
its `/api/v2/logs` answers per second while it reads (from the first checkpoint page asked to
the last answered, the Sampler's counts), against the plan's 2 requests/s; beside it, the
application's calls and their 429s, and the job's own. Run at 0.5 and at 1 (the default) for
the difference.

Caveats: the appends are a few a second at most, so the latency is the poll's and the round
trips', not a throughput; a run of minutes shows RSS over minutes, not over days.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backfill.sandbox import Sandbox, SandboxConfig
from backfill.sandbox.httpbase import Request, Response
from backfill.sandbox.profiles import plan_profile
from backfill.sandbox.tinybird_store import AppendResult
from bench.landing import Landing
from bench.measure import JobRun, LaunchedJob, note, run_job
from bench.sampler import Sample, logs_counts
from bench.shapes import AUTH0_ROUND_TRIP_MS, TINYBIRD_ACK_MS

PROFILE = "free"
POLL_INTERVAL = 5.0
HISTORY_LOGS = 2_000
APPENDING_SECONDS = 30.0
IDLE_SECONDS = 45.0
MEAN_SECONDS_BETWEEN_APPENDS = 1.0
MOST_LOGS_AT_ONCE = 3
LATE_MARGIN_SECONDS = 60.0  # the job's `late_margin_seconds`: a later log is for a backfill
CAUGHT_UP_TIMEOUT = 180.0
STOP_TIMEOUT = 45.0

RATE_SHARE_LOGS = 3_000
RATE_SHARES = (0.5, 1.0)
APPLICATION_EVERY_SECONDS = 2.0
RATE_SHARE_SEED = 82  # tests/e2e/test_follow.py's tenant


# -- what the job acknowledged, and when --------------------------------------------------------


class Acknowledgements:
    """When the Tinybird emulator answered each append, per log_id it held (time.monotonic).

    The emulator's handler and its store's append are wrapped, in this process: the ids an
    append stores are kept for the thread that handles the request (the same thread), and
    stamped as the answer leaves, after the acknowledgement's latency. For a sandbox of the
    bench's own: nothing else wraps them.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self._lock = threading.Lock()
        self._first: dict[str, float] = {}
        self._count: Counter[str] = Counter()
        self._stored = threading.local()
        store, emulator = sandbox.store, sandbox.tinybird
        append_lines, handle = store.append_lines, emulator.handle

        def appending(name: str, lines: Sequence[bytes], import_id: str) -> AppendResult:
            result = append_lines(name, lines, import_id)
            self._stored.ids = [*getattr(self._stored, "ids", []), *log_ids(lines)]
            return result

        def handling(request: Request) -> Response:
            self._stored.ids = []
            response = handle(request)
            stored, self._stored.ids = self._stored.ids, []
            if stored and 200 <= response.status < 300:
                self._stamp(stored, time.monotonic())
            return response

        store.append_lines = appending  # type: ignore[method-assign]
        emulator.handle = handling  # type: ignore[method-assign]

    def _stamp(self, ids: list[str], moment: float) -> None:
        with self._lock:
            for log_id in ids:
                self._first.setdefault(log_id, moment)
                self._count[log_id] += 1

    def at(self, log_id: str) -> float | None:
        """When the first append holding it was answered; None before."""
        with self._lock:
            return self._first.get(log_id)

    def times(self, log_id: str) -> int:
        """How many answered appends held it (more than one: sent twice)."""
        with self._lock:
            return self._count[log_id]


def log_ids(lines: Sequence[bytes]) -> list[str]:
    """The log_id of each NDJSON envelope (lines that are not one are left out)."""
    found = []
    for line in lines:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            found.append(str(json.loads(line)["log_id"]))
    return found


# -- pure figures -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q% of the values at or below it (a
    value that was measured, never an interpolation)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def latency_summary(latencies: Sequence[float]) -> dict[str, float | int | None]:
    if not latencies:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    return {
        "count": len(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "max": max(latencies),
    }


def rss_at(samples: Sequence[Sample], moment: float) -> float | None:
    """The job's RSS in the last sample taken at or before `moment` (seconds since launch)."""
    before = [s.rss_mib for s in samples if s.t <= moment and s.rss_mib is not None]
    return before[-1] if before else None


def between(samples: Sequence[Sample], start: float, end: float) -> tuple[Sample, Sample] | None:
    """The first and last samples within [start, end] (seconds since launch), if two are."""
    inside = [s for s in samples if start <= s.t <= end]
    return (inside[0], inside[-1]) if len(inside) >= 2 and inside[-1].t > inside[0].t else None


def logs_answers_per_second(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """`/api/v2/logs` answers (200) per second within [start, end], from the samples in it."""
    pair = between(samples, start, end)
    if pair is None:
        return None
    first, last = pair
    return (last.logs_ok - first.logs_ok) / (last.t - first.t)


def core_share(samples: Sequence[Sample], start: float, end: float) -> float | None:
    """The job's CPU seconds per second within [start, end]."""
    pair = between(samples, start, end)
    if pair is None or pair[0].job_cpu is None or pair[1].job_cpu is None:
        return None
    first, last = pair
    assert first.job_cpu is not None and last.job_cpu is not None
    return (last.job_cpu - first.job_cpu) / (last.t - first.t)


# -- follow latency ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FollowSettings:
    poll_interval: float = POLL_INTERVAL
    appending_seconds: float = APPENDING_SECONDS
    idle_seconds: float = IDLE_SECONDS
    history_logs: int = HISTORY_LOGS
    seed: int = 25

    @property
    def late_seconds(self) -> float:
        """Longer than a poll (its newer neighbour lands first), within the job's late margin."""
        return min(2 * self.poll_interval, LATE_MARGIN_SECONDS / 2)

    def sandbox(self) -> SandboxConfig:
        return SandboxConfig(
            profile=PROFILE,
            logs=self.history_logs,
            days=0.5,
            seed=self.seed,
            auth0_latency=f"{AUTH0_ROUND_TRIP_MS:g}",
            tinybird_ack_latency=f"{TINYBIRD_ACK_MS:g}",
        )


@dataclass(frozen=True)
class Written:
    log_id: str
    at: float  # time.monotonic of the append call
    visible_after: float = 0.0  # seconds it stayed hidden (`late_seconds`)


@dataclass
class FollowResult:
    settings: FollowSettings
    job: JobRun
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self.settings),
            "profile": PROFILE,
            "late_seconds": self.settings.late_seconds,
            "auth0_round_trip_ms": AUTH0_ROUND_TRIP_MS,
            "tinybird_ack_ms": TINYBIRD_ACK_MS,
            "figures": self.figures,
            "job": self.job.to_json(),
        }


def measure_follow(settings: FollowSettings) -> FollowResult:
    interval = settings.poll_interval
    note(
        f"[follow] job: run --follow --poll-interval {interval:g} on {settings.history_logs:,} "
        f"logs ({PROFILE}); {settings.appending_seconds:g} s of appends, "
        f"{settings.idle_seconds:g} s idle"
    )
    # Seconds since launch: the history in, the appends acknowledged, the idle window.
    moments: dict[str, float | None] = dict.fromkeys(
        ("caught_up", "appends_done", "idle_start", "idle_end")
    )
    written: list[Written] = []
    idle: dict[str, int] = {}
    stop_seconds: float | None = None
    with Sandbox(settings.sandbox()) as sandbox:
        acknowledged = Acknowledgements(sandbox)
        args = ["--follow", "--poll-interval", f"{interval:g}"]
        with LaunchedJob(sandbox, args) as job, httpx.Client(timeout=10) as http:
            state = job.tenants[0].state
            if _wait_until(lambda: _caught_up(state), CAUGHT_UP_TIMEOUT, job):
                moments["caught_up"] = job.since_launch()
                note(f"[follow] history in after {moments['caught_up']:.1f} s; appending")
                written = _append_for(http, sandbox, settings, random.Random(settings.seed))
                drained = settings.late_seconds + 3 * interval + 30
                _wait_until(lambda: all(acknowledged.at(w.log_id) for w in written), drained, job)
                moments["appends_done"] = job.since_launch()
                before = _requests(sandbox)
                moments["idle_start"] = job.since_launch()
                note(f"[follow] idle for {settings.idle_seconds:g} s")
                _wait_until(lambda: False, settings.idle_seconds, job)  # time alone
                moments["idle_end"] = job.since_launch()
                after = _requests(sandbox)
                idle = {key: after[key] - before[key] for key in after}
            else:
                note("[follow] the history never came in")
            if job.process.poll() is None:
                stop_seconds = job.stop(signal.SIGTERM, STOP_TIMEOUT)
            else:
                job.wait(0)
            run = job.result()
    result = FollowResult(settings, run)
    result.figures = follow_figures(
        settings, run, written, acknowledged, moments, idle, stop_seconds
    )
    f = result.figures
    note(
        f"[follow] p50 {_seconds(f['latency']['p50'])}, p95 {_seconds(f['latency']['p95'])}, "
        f"exit {run.exit_code}, exactly once: {'yes' if f['exactly_once'] else 'NO'}"
    )
    if not run.ok:
        note(f"[follow] job FAILED (exit {run.exit_code}):\n{run.stderr_tail}")
    return result


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


def _caught_up(state: Path) -> bool:
    """The job's state file records up to when every log was read and acknowledged."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        return bool(json.loads(state.read_bytes()).get("caught_up_through"))
    return False


def _wait_until(done: Callable[[], bool], timeout: float, job: LaunchedJob) -> bool:
    """Whether `done` came true within `timeout` seconds, while the job still runs."""
    deadline = time.monotonic() + timeout
    while not done():
        if job.process.poll() is not None or time.monotonic() >= deadline:
            return done()
        time.sleep(0.05)
    return True


def _append_for(
    http: httpx.Client, sandbox: Sandbox, settings: FollowSettings, rng: random.Random
) -> list[Written]:
    """Logs written at random moments (one to three at a time) for `appending_seconds`; one of
    the appends hides its first log for `late_seconds` behind its newer neighbour."""
    started = time.monotonic()
    deadline = started + settings.appending_seconds
    late_at = started + settings.appending_seconds * rng.uniform(0.3, 0.6)
    written: list[Written] = []
    late_done = False
    while True:
        pause = rng.expovariate(1 / MEAN_SECONDS_BETWEEN_APPENDS)
        if time.monotonic() + pause >= deadline:
            return written
        time.sleep(pause)
        late = not late_done and time.monotonic() >= late_at
        count = 2 if late else rng.randint(1, MOST_LOGS_AT_ONCE)
        payload: dict[str, Any] = {"count": count}
        if late:
            payload["late_seconds"] = settings.late_seconds
            late_done = True
        at = time.monotonic()
        answer = http.post(f"{sandbox.auth0_url}/__sandbox/append", json=payload)
        answer.raise_for_status()
        ids = _appended_ids(sandbox, answer.json())
        written += [
            Written(log_id, at, settings.late_seconds if late and number == 0 else 0.0)
            for number, log_id in enumerate(ids)
        ]


def _appended_ids(sandbox: Sandbox, answer: dict[str, Any]) -> list[str]:
    """The ids of the logs an append answer counts: the newest of the tenant (only the bench
    appends), checked against the answer's first and last."""
    tenant, count = sandbox.tenant, int(answer["count"])
    ids = [tenant.log_id(index) for index in range(len(tenant) - count, len(tenant))]
    if ids and (ids[0], ids[-1]) != (answer["first_log_id"], answer["last_log_id"]):
        raise RuntimeError(f"the append answered {answer}, not the tenant's newest logs")
    return ids


def _requests(sandbox: Sandbox) -> dict[str, int]:
    """The Auth0 emulator's answers so far: `/api/v2/logs`, and the other Management API calls
    (the Log Streams listing of the job's every-tenth-poll check)."""
    snapshot = sandbox.auth0.counters.snapshot()
    routes: dict[str, dict[str, int]] = snapshot.get("requests", {})  # type: ignore[assignment]
    logs = sum(logs_counts(snapshot).values())
    other = sum(
        sum(counts.values())
        for route, counts in routes.items()
        if route.startswith("/api/v2/") and route != "/api/v2/logs"
    )
    return {"logs": logs, "other": other}


def follow_figures(
    settings: FollowSettings,
    job: JobRun,
    written: list[Written],
    acknowledged: Acknowledgements,
    moments: dict[str, float | None],
    idle: dict[str, int],
    stop_seconds: float | None,
) -> dict[str, Any]:
    on_time = [w for w in written if not w.visible_after]
    latencies = [
        landed - w.at for w in on_time if (landed := acknowledged.at(w.log_id)) is not None
    ]
    late = next((w for w in written if w.visible_after), None)
    late_landed = acknowledged.at(late.log_id) if late else None
    idle_seconds = (
        moments["idle_end"] - moments["idle_start"]
        if moments["idle_end"] is not None and moments["idle_start"] is not None
        else None
    )
    samples = job.samples

    def rss(moment: str) -> float | None:
        at = moments[moment]
        return rss_at(samples, at) if at is not None else None

    landing = job.landing[0] if job.landing else None
    return {
        "ok": job.ok,
        "exit_code": job.exit_code,
        "outcome": job.reports[0].get("outcome") if job.reports else None,
        "poll_interval": settings.poll_interval,
        "caught_up_seconds": moments["caught_up"],
        "appended": len(on_time),
        "latency": latency_summary(latencies),
        "never_acknowledged": sum(1 for w in written if acknowledged.at(w.log_id) is None),
        "acknowledged_more_than_once": sum(1 for w in written if acknowledged.times(w.log_id) > 1),
        "late": None
        if late is None
        else {
            "log_id": late.log_id,
            "hidden_seconds": late.visible_after,
            "acknowledged": acknowledged.times(late.log_id),
            "seconds_after_visible": late_landed - late.at - late.visible_after
            if late_landed is not None
            else None,
        },
        "idle_seconds": idle_seconds,
        "idle_logs_requests": idle.get("logs"),
        "idle_other_requests": idle.get("other"),
        "idle_expected_requests": idle_seconds / settings.poll_interval if idle_seconds else None,
        "idle_core_share": core_share(samples, moments["idle_start"], moments["idle_end"])
        if moments["idle_start"] is not None and moments["idle_end"] is not None
        else None,
        "rss_mib_caught_up": rss("caught_up"),
        "rss_mib_appends_done": rss("appends_done"),
        "rss_mib_idle_end": rss("idle_end"),
        "peak_rss_mib": job.peak_rss_mib,
        "stop_seconds": stop_seconds,
        "exactly_once": job.exactly_once,
        **_landing_counts(landing),
    }


def _landing_counts(landing: Landing | None) -> dict[str, int | None]:
    if landing is None:
        return {"logs_in_auth0": None, "missing": None, "duplicates": None, "unexpected": None}
    return {
        "logs_in_auth0": landing.expected,
        "missing": landing.missing,
        "duplicates": landing.duplicates,
        "unexpected": landing.unexpected,
    }


# -- rate share -------------------------------------------------------------------------------


class TenantApplication:
    """The tenant's own application: `GET /api/v2/log-streams` every `every` seconds with a
    token of its own, from `__enter__` to `__exit__`; the status of each call."""

    def __init__(self, sandbox: Sandbox, every: float = APPLICATION_EVERY_SECONDS) -> None:
        self._sandbox = sandbox
        self._every = every
        self._stop = threading.Event()
        self.statuses: list[int] = []
        self._thread = threading.Thread(target=self._call, name="bench-application", daemon=True)

    def __enter__(self) -> TenantApplication:
        self._token = application_token(self._sandbox)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _call(self) -> None:
        url = f"{self._sandbox.auth0_url}/api/v2/log-streams"
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(self._every):
                answer = http.get(url, headers={"Authorization": f"Bearer {self._token}"})
                self.statuses.append(answer.status_code)


def application_token(sandbox: Sandbox) -> str:
    """A client-credentials token, as any application of the tenant gets one."""
    env = sandbox.env()
    answer = httpx.post(
        f"{sandbox.auth0_url}/oauth/token",
        json={
            "grant_type": "client_credentials",
            "client_id": env["AUTH0_CLIENT_ID"],
            "client_secret": env["AUTH0_CLIENT_SECRET"],
            "audience": f"{sandbox.auth0_url}/api/v2/",
        },
        timeout=10,
    )
    answer.raise_for_status()
    return str(answer.json()["access_token"])


@dataclass
class RateShareResult:
    share: float
    logs: int
    job: JobRun
    application_statuses: list[int]
    figures: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "rate_share": self.share,
            "logs": self.logs,
            "profile": PROFILE,
            "application_every_seconds": APPLICATION_EVERY_SECONDS,
            "application_statuses": self.application_statuses,
            "figures": self.figures,
            "job": self.job.to_json(),
        }


def rate_share_sandbox(logs: int = RATE_SHARE_LOGS) -> SandboxConfig:
    return SandboxConfig(
        profile=PROFILE,
        logs=logs,
        days=0.5,
        seed=RATE_SHARE_SEED,
        auth0_latency=f"{AUTH0_ROUND_TRIP_MS:g}",
        tinybird_ack_latency=f"{TINYBIRD_ACK_MS:g}",
    )


def refill_rate() -> float:
    rate = plan_profile(PROFILE).per_second
    assert rate is not None
    return rate


def measure_rate_share(share: float, logs: int = RATE_SHARE_LOGS) -> RateShareResult:
    note(
        f"[rate share {share:g}] job: {logs:,} logs ({PROFILE}), the tenant's application "
        f"calling every {APPLICATION_EVERY_SECONDS:g} s"
    )
    ideal = logs / 100 / (refill_rate() * share)
    with Sandbox(rate_share_sandbox(logs)) as sandbox, TenantApplication(sandbox) as application:
        job = run_job(sandbox, timeout=4 * ideal + 120, args=["--rate-share", f"{share:g}"])
    if not job.ok:
        note(f"[rate share {share:g}] job FAILED (exit {job.exit_code}):\n{job.stderr_tail}")
    result = RateShareResult(share, logs, job, list(application.statuses))
    result.figures = rate_share_figures(share, job, result.application_statuses)
    f = result.figures
    note(
        f"[rate share {share:g}] {_share(f['share_of_ceiling'])} of the ceiling, application "
        f"429s {f['application_429']}/{f['application_calls']}"
    )
    return result


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def rate_share_figures(share: float, job: JobRun, statuses: list[int]) -> dict[str, Any]:
    span = job.page_span
    pace = logs_answers_per_second(job.samples, *span) if span else None
    refused = statuses.count(429)
    # The bucket refuses in one place for everyone: the job's 429s are the rest.
    all_429 = int(job.auth0_stats.get("status_429", 0))
    return {
        "ok": job.ok,
        "exactly_once": job.exactly_once,
        "rate_share": share,
        "wall_seconds": job.wall_seconds,
        "reading_seconds": span[1] - span[0] if span else None,
        "job_requests_per_second": pace,
        "share_of_ceiling": pace / refill_rate() if pace is not None else None,
        "job_429": all_429 - refused,
        "job_logs_requests": sum(logs_counts(job.auth0_stats).values()),
        "job_rate_limited_reported": sum(int(r.get("rate_limited", 0)) for r in job.reports),
        "application_calls": len(statuses),
        "application_429": refused,
        "rows_sent": job.rows_sent,
    }
