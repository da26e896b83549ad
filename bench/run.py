"""Benchmark of auth0-backfill on the local sandbox: throughput per Auth0 plan, tenant shapes
against the ceiling, following (latency, idle, stop; a share of the rate limit), and memory.
The figures go to stdout (Markdown) and to `.bench/*.json`; docs/performance.md keeps the ones
worth quoting, with their date and commit.

    python -m bench.run                              # every plan, shape and follow (make bench)
    python -m bench.run --shapes uneven              # one shape only (no plans)
    python -m bench.run --shapes uneven --seeds 2    # and one of its seeds
    python -m bench.run --shapes all --shape-scale 0.25 --tenants 10   # a quicker look
    python -m bench.run --profiles free,enterprise --seconds 10         # plans only, short
    python -m bench.run --follow                     # follow latency and rate share only
    python -m bench.run --follow --poll-interval 30 --appending-seconds 300   # longer
    python -m bench.run --memory                     # peak RSS of a 1,000,000-log backfill
    python -m bench.run --imports                    # `import` of 300,000 and 1,000,000 records

Giving `--profiles`, `--shapes` or `--follow` runs only what is given (`none` for no plans or
no shapes); giving none of them runs all three. Modules: `measure.py` (the job as a child
process: `LaunchedJob`, `run_job`), `sampler.py` (what is read while it runs), `landing.py`
(what landed), `plans.py`, `shapes.py` and `follow.py` (the families of measurements; the
follow's method is in its docstring), `report.py` (the tables), `_launch.py` (the job's own
resource use).

Method
- Each measurement starts a fresh sandbox in this process: `Sandbox` (one tenant) or
  `MultiTenantSandbox` (several, each with its own Auth0 emulator and token bucket, one Tinybird
  emulator with a data source each). The job under test is the real CLI,
  `python -m backfill run --quiet --json`, in a child process with the sandbox's environment,
  fresh state files and its defaults (8 cursors, 8 appends in flight). The sandbox (chdb
  included) is never counted as the job's cost.
- CPU seconds and peak RSS are the child's own, from `os.wait4`, taken by a small launcher
  (`bench/_launch.py`): on Linux a process forked straight from this one would inherit this
  process's high-water mark (chdb and the emulators) in `ru_maxrss`. Wall time runs from launch
  to exit. Threads are the job process's, sampled from `/proc/<pid>/status`.
- Plans. Achieved logs/s is the steady state, measured over a window after the burst: the log
  records the Auth0 emulator put in its answers per second (counted in the emulator, sampled
  every 0.25 s) from WARMUP_SECONDS after launch (process start, planning, and the bucket's
  initial burst) until 90% of the run's `/api/v2/logs` requests were answered (the end, where
  cursors run out of work, is left out), times the share of records read that the job sent
  (rows sent / records read: records read again past a range's end are filtered out). Reading is
  held back by a bounded queue when appends fall behind, so a sustained read rate is a sustained
  delivery rate. "Whole run" is rows sent / wall time. The ceiling is the plan's refill rate x
  100 logs per request. The naive baseline is what simple pollers do: one cursor, one request at
  a time, an append with `wait=true` after every page, sleeping until `x-ratelimit-reset` on a
  429; it runs in this process for a fixed time on an identical fresh sandbox.
- Shapes (`shapes.py` has the definition of the ceiling with its burst). Each runs the job once
  from launch to exit: share of the ceiling = ideal time / wall time; seconds to the first
  checkpoint are read from the state files (polled every 0.25 s).
- Every run ends with a check of what landed: each tenant's logs in Auth0's window against the
  rows of its data source and quarantine (`landing.py`).
- The emulators time their answers beyond the latencies they sleep (`answer_overhead_us` in
  their stats): when that grows, or this process nears a full core, the sandbox may be what a
  figure measures, and the report says so.
- `--scale PLAN=K` runs a plan K times faster in every respect the sandbox controls (refill rate
  x K, latencies / K, bucket size unchanged), which keeps rate x latency, the number of requests
  the job must keep in flight, the same. Not used by default.

Caveats
- The emulators share the machine's cores with the job; their CPU time is in the details and
  the JSON. Latencies are sleeps: no bandwidth, TLS or server-side variance.
- The job's CPU includes its start-up (imports, token, planning), spread over the run.
- Runs are seconds to a minute long; the job's fixed timers (pacer learning windows, polls) weigh
  more than in an hours-long backfill, and so does the tail, which whole-run figures include.
- Scaled plans are not identical to the real ones: the job's own timers do not scale.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.follow import (
    APPENDING_SECONDS,
    IDLE_SECONDS,
    POLL_INTERVAL,
    RATE_SHARES,
    FollowSettings,
    measure_follow,
    measure_rate_share,
)
from bench.imports import SIZES as IMPORT_SIZES
from bench.imports import import_report, measure_imports
from bench.measure import ROOT, measure_memory, note
from bench.plans import (
    DEFAULT_NAIVE_SECONDS,
    DEFAULT_PLANS,
    DEFAULT_SECONDS,
    STEADY_UNTIL,
    WARMUP_SECONDS,
    make_plan,
    measure_plan,
)
from bench.report import machine, memory_report, report
from bench.sampler import SAMPLE_SECONDS
from bench.shapes import SHAPES, measure_shape

RESULTS_DIR = ROOT / ".bench"
MEMORY_LOGS = 1_000_000


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark auth0-backfill on the local sandbox (see the module docstring).",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help=f"Peak RSS of a {MEMORY_LOGS:,}-log backfill instead of the throughput tables.",
    )
    parser.add_argument(
        "--imports",
        action="store_true",
        help="The import of archives (bench/imports.py) instead of the throughput tables.",
    )
    parser.add_argument(
        "--import-sizes",
        default=",".join(str(size) for size in IMPORT_SIZES),
        metavar="N,N",
        help="Archive sizes for --imports, in records (default: %(default)s).",
    )
    parser.add_argument(
        "--profiles",
        help=f"Comma-separated plan profiles, or none (default: {','.join(DEFAULT_PLANS)}).",
    )
    parser.add_argument(
        "--shapes",
        help=f"Comma-separated tenant shapes, all, or none (default: {','.join(SHAPES)}).",
    )
    parser.add_argument(
        "--shape-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="Run each shape on F times its logs, for a quicker look (default: %(default)g).",
    )
    parser.add_argument(
        "--tenants", type=int, help="Tenants in the `tenants` shape (default: its own, 40)."
    )
    parser.add_argument(
        "--seeds",
        help="Comma-separated seeds for every shape's tenants: their logs, where the burst and "
        "the silent day fall; one run each (default: each shape's own; uneven runs 1,2,3).",
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
    parser.add_argument(
        "--follow",
        action="store_true",
        help="Run the follow measurements: latency from a log's write to its acknowledgement, "
        f"idle cost and stop of `run --follow`; then `--rate-share` "
        f"{' and '.join(f'{share:g}' for share in RATE_SHARES)} beside the tenant's own "
        "application.",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=POLL_INTERVAL,
        metavar="SECONDS",
        help="The follow's --poll-interval (default: %(default)g; the job's own is 30).",
    )
    parser.add_argument(
        "--appending-seconds",
        type=float,
        default=APPENDING_SECONDS,
        metavar="SECONDS",
        help="How long new logs are appended while following (default: %(default)g).",
    )
    parser.add_argument(
        "--idle-seconds",
        type=float,
        default=IDLE_SECONDS,
        metavar="SECONDS",
        help="The idle window after the appends (default: %(default)g).",
    )
    parser.add_argument("--logs", type=int, default=MEMORY_LOGS, help="Logs for --memory.")
    parser.add_argument("--json", type=Path, metavar="FILE", help="Also save the figures here.")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.shape_scale <= 0:
        parser.error("--seconds and --shape-scale must be positive")
    if min(args.poll_interval, args.appending_seconds, args.idle_seconds) <= 0:
        parser.error("--poll-interval, --appending-seconds and --idle-seconds must be positive")
    if args.tenants is not None and args.tenants < 1:
        parser.error("--tenants must be at least 1")
    if args.profiles is None and args.shapes is None and not args.follow:
        args.profiles, args.shapes, args.follow = ",".join(DEFAULT_PLANS), "all", True
    try:
        args.seeds = tuple(int(seed) for seed in _names(args.seeds)) or None
    except ValueError:
        parser.error("--seeds: comma-separated integers")
    args.plan_names = _names(args.profiles)
    args.shape_names = list(SHAPES) if args.shapes == "all" else _names(args.shapes)
    unknown = sorted(set(args.shape_names) - set(SHAPES))
    if unknown:
        parser.error(f"--shapes: no shape {', '.join(unknown)}; choose from {', '.join(SHAPES)}")
    return args


def _names(text: str | None) -> list[str]:
    if text is None or text.strip() == "none":
        return []
    return [name.strip() for name in text.split(",") if name.strip()]


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


def save(
    document: dict[str, Any], latest: str, started: datetime, extra: Path | None
) -> list[Path]:
    """`.bench/<latest>`, a dated copy beside it (earlier runs stay), and `extra` if given."""
    RESULTS_DIR.mkdir(exist_ok=True)
    dated = RESULTS_DIR / f"{started:%Y%m%dT%H%M%SZ}-{document['kind']}.json"
    paths = [RESULTS_DIR / latest, dated, *([extra] if extra else [])]
    for path in paths:
        path.write_text(json.dumps(document, indent=1, default=str) + "\n", encoding="utf-8")
    return paths


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    args = parse_args(arguments)
    command = shlex.join(["python", "-m", "bench.run", *arguments])
    started_at = datetime.now(UTC)
    started = time.monotonic()
    facts = machine()
    common: dict[str, Any] = {"command": command, "date": started_at.isoformat(), "machine": facts}
    if args.imports:
        try:
            sizes = tuple(int(size) for size in _names(args.import_sizes))
        except ValueError:
            raise SystemExit("--import-sizes: comma-separated integers") from None
        results = measure_imports(sizes)
        text = import_report(results, command)
        total = time.monotonic() - started
        document = {"kind": "imports", **common, "imports": results, "benchmark_seconds": total}
        paths = save(document, "latest-imports.json", started_at, args.json)
        print(text)
        note(f"figures saved to {', '.join(str(path) for path in paths)}")
        return 0 if all(item["exit_code"] == 0 and item["exactly_once"] for item in results) else 1
    if args.memory:
        figures, job = measure_memory(args.logs)
        total = time.monotonic() - started
        text = memory_report(figures, command, facts, started_at, total)
        memory = {"kind": "memory", **common, "figures": figures, "job": job.to_json()}
        memory["benchmark_seconds"] = total
        paths = save(memory, "latest-memory.json", started_at, args.json)
        print(text)
        note(f"figures saved to {', '.join(str(path) for path in paths)}")
        return 0 if figures["ok"] and figures["exactly_once"] else 1

    scales = _scales(args.scale)
    try:
        plans = [make_plan(name, scales.get(name, 1.0)) for name in args.plan_names]
    except ValueError as problem:
        raise SystemExit(str(problem)) from None
    naive_seconds = args.naive_seconds or min(DEFAULT_NAIVE_SECONDS, args.seconds)
    plan_results = [measure_plan(plan, args.seconds, naive_seconds) for plan in plans]
    shape_results = [
        measure_shape(run)
        for name in args.shape_names
        for run in SHAPES[name].runs(args.shape_scale, args.tenants, args.seeds)
    ]
    follow_settings = FollowSettings(args.poll_interval, args.appending_seconds, args.idle_seconds)
    follow = measure_follow(follow_settings) if args.follow else None
    rate_shares = [measure_rate_share(share) for share in RATE_SHARES] if args.follow else []
    total = time.monotonic() - started
    text = report(
        plan_results, shape_results, command, facts, started_at, total, follow, rate_shares
    )
    document = {
        "kind": "throughput",
        **common,
        "method": {
            "warmup_seconds": WARMUP_SECONDS,
            "steady_until_share_of_requests": STEADY_UNTIL,
            "sample_seconds": SAMPLE_SECONDS,
            "naive_seconds": naive_seconds,
            "target_steady_seconds": args.seconds,
            "shape_scale": args.shape_scale,
            "seeds": args.seeds,
        },
        "plans": [result.to_json() for result in plan_results],
        "shapes": [result.to_json() for result in shape_results],
        "follow": follow.to_json() if follow else None,
        "rate_share": [result.to_json() for result in rate_shares],
        "benchmark_seconds": total,
    }
    paths = save(document, "latest.json", started_at, args.json)
    print(text)
    note(f"figures saved to {', '.join(str(path) for path in paths)}")
    jobs = [
        *(result.job for result in plan_results),
        *(result.job for result in shape_results),
        *(result.job for result in rate_shares),
    ]
    followed = follow is None or (follow.job.exit_code == 0 and follow.job.exactly_once)
    return 0 if followed and all(job.ok and job.exactly_once for job in jobs) else 1


if __name__ == "__main__":
    sys.exit(main())
