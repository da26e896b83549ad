"""Tenant shapes: the job on tenants shaped like real ones, against the ceiling their plans allow.

Each shape runs the job once, from launch to exit, on a fresh sandbox. Its ceiling counts the
bucket's burst: a tenant of `pages` pages (100 logs each) on a plan of burst B and refill R
requests/s needs at least

    ideal = max(0, pages - B) / R + one Auth0 round trip

(B pages come at once, the rest at the refill rate, and the last answer takes a round trip).
Several tenants each have their own bucket and run side by side, so their combined ideal is the
slowest tenant's and their combined ceiling in logs/s is the sum of their rates; past the job's
50 tenants at once (``[run] tenants_in_flight``), the others wait their turn, so the ideal is that
many turns of it. Share of the ceiling = ideal / wall time of the job (start-up included).

The data sources keep the seed schema's `log_id`, `date` and `auth0_client` only
(`shapes.datasource`): the job sends the same appends, and the Tinybird emulator's work per row
(the seed schema's 24 columns in chdb) stays small next to the job's even at forty tenants'
combined rate, so the figures are the job's, not the sandbox's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from backfill.config.settings import Settings
from backfill.sandbox import MultiTenantSandbox, Sandbox, SandboxConfig
from backfill.sandbox.profiles import plan_profile
from bench.measure import JobRun, note, run_job
from bench.plans import LOGS_PER_PAGE, describe_limit
from bench.sampler import logs_counts

DATASOURCE_FILE = Path(__file__).resolve().with_name("shapes.datasource")
AUTH0_ROUND_TRIP_MS = 300.0
TINYBIRD_ACK_MS = 1000.0
MIN_LOGS = 100
DEFAULT_TENANTS = 40
TENANT_COUNTS = (10, DEFAULT_TENANTS, 200)  # the cost of each tenant added, as the work grows
# The job's default ([run] tenants_in_flight): past it, the other tenants wait their turn.
TENANTS_IN_FLIGHT = Settings().tenants_in_flight


@dataclass(frozen=True)
class Shape:
    name: str
    description: str
    tenant_shape: str  # the sandbox's timeline: even, uneven, quiet
    profile: str
    logs: int  # per tenant
    days: float
    tenants: int = 1
    retention_days: float | None = None
    """Longer than the plan's when the span is: the plan's pacing over the whole span."""
    seeds: tuple[int, ...] = (1,)
    """One run per seed: the seed makes the logs, and places `uneven`'s burst and silent day,
    whose place against the job's ranges moves its figure a lot."""
    seed: int = 1  # this run's
    counts: tuple[int, ...] = ()
    """Several tenants: one run per count (``TENANT_COUNTS``), so the growth per tenant shows."""

    @property
    def burst(self) -> int:
        burst = plan_profile(self.profile).burst
        assert burst is not None
        return burst

    @property
    def rate(self) -> float:
        rate = plan_profile(self.profile).per_second
        assert rate is not None
        return rate

    @property
    def limit(self) -> str:
        return describe_limit(plan_profile(self.profile))

    def sandbox(self) -> SandboxConfig:
        return SandboxConfig(
            profile=self.profile,
            logs=self.logs,
            days=self.days,
            seed=self.seed,
            shape=self.tenant_shape,
            retention_days=self.retention_days,
            datasource_file=DATASOURCE_FILE,
            prerender=True,
            auth0_latency=f"{AUTH0_ROUND_TRIP_MS:g}",
            tinybird_ack_latency=f"{TINYBIRD_ACK_MS:g}",
        )

    @property
    def label(self) -> str:
        if len(self.counts) > 1:
            return f"{self.name} ({self.tenants})"
        return self.name if len(self.seeds) == 1 else f"{self.name} (seed {self.seed})"

    @property
    def waves(self) -> int:
        """How many tenants' turns follow one another: the job reads at most
        ``TENANTS_IN_FLIGHT`` tenants at once."""
        return math.ceil(self.tenants / TENANTS_IN_FLIGHT)

    def runs(
        self, factor: float, tenants: int | None, seeds: tuple[int, ...] | None
    ) -> list[Shape]:
        """This shape's runs: one per seed and tenant count, `factor` times the logs (shorter or
        longer), maybe one other number of tenants."""
        logs = max(MIN_LOGS, round(self.logs * factor))
        counts = self.counts or (self.tenants,)
        if tenants is not None and self.tenants > 1:
            counts = (tenants,)
        chosen = seeds or self.seeds
        return [
            replace(self, logs=logs, tenants=count, counts=counts, seeds=chosen, seed=seed)
            for count in counts
            for seed in chosen
        ]


SHAPES = {
    shape.name: shape
    for shape in (
        Shape("even", "every hour busy (a diurnal peak, quieter weekends)", "even",
              "enterprise", 60_000, 5.0),
        Shape("uneven", "day/night 10:1, a silent day, a two-hour burst of 30% of the logs",
              "uneven", "enterprise", 60_000, 5.0, seeds=(1, 2, 3)),
        Shape("quiet", "all on the first day, then four silent days up to now", "quiet",
              "free", 3_000, 5.0, retention_days=7.0),
        Shape("tenants", "many tenants in one run, each even over 12 hours", "even",
              "free", 3_000, 0.5, tenants=DEFAULT_TENANTS, counts=TENANT_COUNTS),
    )
}  # fmt: skip


def ideal_seconds(pages: int, burst: int, rate: float) -> float:
    return max(0, pages - burst) / rate + AUTH0_ROUND_TRIP_MS / 1000


@dataclass
class ShapeResult:
    shape: Shape
    job: JobRun
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.shape.label

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self.shape),
            "burst": self.shape.burst,
            "requests_per_second": self.shape.rate,
            "auth0_round_trip_ms": AUTH0_ROUND_TRIP_MS,
            "tinybird_ack_ms": TINYBIRD_ACK_MS,
            "figures": self.figures,
            "job": self.job.to_json(),
        }


def measure_shape(shape: Shape) -> ShapeResult:
    pages = math.ceil(shape.logs / LOGS_PER_PAGE)
    ideal = ideal_seconds(pages, shape.burst, shape.rate)
    who = f"{shape.tenants} tenants x " if shape.tenants > 1 else ""
    note(
        f"[{shape.label}] job: {who}{shape.logs:,} logs over {shape.days:g} days, {shape.profile} "
        f"({shape.limit}), ideal {ideal:.1f} s"
    )
    config = shape.sandbox()
    sandbox: Sandbox | MultiTenantSandbox = (
        MultiTenantSandbox(config, shape.tenants) if shape.tenants > 1 else Sandbox(config)
    )
    with sandbox:
        job = run_job(sandbox, timeout=4 * ideal + 120)
    if not job.ok:
        note(
            f"[{shape.label}] job FAILED (exit {job.exit_code}, timed out: {job.timed_out}):\n"
            f"{job.stderr_tail}"
        )
    result = ShapeResult(shape, job)
    result.figures = shape_figures(shape, job)
    f = result.figures
    note(
        f"[{shape.label}] {job.wall_seconds:.1f} s, {f['share_of_ceiling']:.2f} of the ceiling, "
        f"exactly once: {'yes' if f['exactly_once'] else 'NO'}"
    )
    return result


def shape_figures(shape: Shape, job: JobRun) -> dict[str, Any]:
    counts = logs_counts(job.auth0_stats)
    answers, answered, throttled = sum(counts.values()), counts.get("200", 0), counts.get("429", 0)
    in_auth0 = [item.expected for item in job.landing]
    pages = sum(math.ceil(count / LOGS_PER_PAGE) for count in in_auth0)
    ideal = shape.waves * max(
        (ideal_seconds(math.ceil(count / LOGS_PER_PAGE), shape.burst, shape.rate)
         for count in in_auth0),
        default=0.0,
    )  # fmt: skip
    wall = job.wall_seconds
    reached = sorted(t for t in job.first_checkpoint.values() if t is not None)
    threads = [s.threads for s in job.samples if s.threads is not None]
    return {
        "ok": job.ok,
        "exactly_once": job.exactly_once,
        "tenants": len(job.landing),
        "logs_in_auth0": sum(in_auth0),
        "rows_sent": job.rows_sent,
        "rows_landed": sum(item.rows for item in job.landing),
        "quarantined": sum(item.quarantined for item in job.landing),
        "missing": sum(item.missing for item in job.landing),
        "duplicates": sum(item.duplicates for item in job.landing),
        "unexpected": sum(item.unexpected for item in job.landing),
        "pages": pages,
        "wall_seconds": wall,
        "logs_per_second": job.rows_sent / wall if wall else 0.0,
        "ideal_seconds": ideal,
        "share_of_ceiling": ideal / wall if wall else 0.0,
        "ceiling_logs_per_second": min(len(in_auth0), TENANTS_IN_FLIGHT)
        * shape.rate
        * LOGS_PER_PAGE,
        "tenants_at_once": min(len(in_auth0), TENANTS_IN_FLIGHT),
        "logs_requests": answers,
        "logs_requests_200": answered,
        "requests_per_page": answered / pages if pages else None,
        "logs_429": throttled,
        "share_429": throttled / answers if answers else None,
        # Launch to the first checkpoint page asked (start-up, token, Log Streams, planning),
        # that page to the last one answered (the reading), the last answer to the exit.
        "seconds_to_first_page": job.page_span[0] if job.page_span else None,
        "reading_seconds": job.page_span[1] - job.page_span[0] if job.page_span else None,
        "seconds_after_last_page": wall - job.page_span[1] if job.page_span else None,
        "first_checkpoint_seconds": reached[0] if reached else None,
        "median_first_checkpoint_seconds": statistics.median(reached) if reached else None,
        "tenants_never_checkpointed": len(job.first_checkpoint) - len(reached),
        "peak_threads": max(threads, default=None),
        "peak_rss_mib": job.peak_rss_mib,
        "cpu_seconds": job.cpu_seconds,
        "sandbox_cpu_seconds": job.sandbox_cpu_seconds,
        "sandbox_core_share": job.sandbox_cpu_seconds / wall if wall else None,
        "sandbox_peak_threads": max((s.sandbox_threads for s in job.samples), default=None),
        "auth0_overhead_ms": _overhead_ms(job.auth0_stats),
        "tinybird_overhead_ms": _overhead_ms(job.tinybird_stats),
    }


def _overhead_ms(stats: dict[str, Any]) -> float | None:
    """The emulator's mean time per answer beyond the latencies it was told to sleep."""
    answers = int(stats.get("answers_timed", 0))
    return stats.get("answer_overhead_us", 0) / answers / 1000 if answers else None
