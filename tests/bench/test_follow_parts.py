"""The follow measurements' own logic: percentiles, the windows read from samples, the clock of
acknowledgements, what runs, and the report's marks."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from backfill.sandbox import Sandbox, SandboxConfig
from bench.follow import (
    Acknowledgements,
    FollowResult,
    FollowSettings,
    RateShareResult,
    _appended_ids,
    latency_summary,
    logs_answers_per_second,
    percentile,
    rss_at,
)
from bench.measure import JobRun
from bench.report import follow_section, rate_share_section
from bench.run import parse_args
from bench.sampler import Sample


def test_percentiles_are_nearest_rank_values_that_were_measured() -> None:
    values = [float(n) for n in range(20, 0, -1)]  # order does not matter
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 100) == 20.0
    assert percentile([4.2], 95) == 4.2
    assert latency_summary([3.0, 1.0, 2.0]) == {"count": 3, "p50": 2.0, "p95": 3.0, "max": 3.0}
    assert latency_summary([])["p95"] is None
    with pytest.raises(ValueError):
        percentile([], 50)


def sample(t: float, logs_ok: int, rss: float | None = 40.0, cpu: float | None = 1.0) -> Sample:
    return Sample(t, logs_ok, 0, 0, 0, rss, job_cpu=cpu)


def test_the_pace_and_the_memory_are_read_from_the_samples_within_the_window() -> None:
    samples = [sample(0.0, 0), sample(1.0, 3, 41.0), sample(3.0, 7, None), sample(5.0, 11, 43.0)]
    # Within [0.5, 5]: the samples at 1 s and 5 s, 8 answers in 4 s.
    assert logs_answers_per_second(samples, 0.5, 5.0) == 2.0
    assert logs_answers_per_second(samples, 3.5, 4.0) is None  # no two samples in it
    assert rss_at(samples, 4.0) == 41.0  # the last sample with an RSS at or before
    assert rss_at(samples, -1.0) is None


def test_a_late_log_stays_within_the_jobs_late_margin() -> None:
    assert FollowSettings(poll_interval=5).late_seconds == 10
    assert FollowSettings(poll_interval=60).late_seconds == 30


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    config = SandboxConfig(
        logs=50, days=1.0, seed=33, profile="unlimited", tinybird_ack_latency="200"
    )
    with Sandbox(config) as running:
        yield running


def send(sandbox: Sandbox, log_ids: list[str], wait: bool = True) -> httpx.Response:
    lines = b"".join(
        json.dumps({"log_id": log_id, "data": {"log_id": log_id}}).encode() + b"\n"
        for log_id in log_ids
    )
    return httpx.post(
        f"{sandbox.tinybird_url}/v0/events",
        params={"name": "auth0", "wait": "true" if wait else "false"},
        content=gzip.compress(lines),
        headers={
            "Authorization": f"Bearer {sandbox.env()['TINYBIRD_TOKEN']}",
            "Content-Encoding": "gzip",
        },
        timeout=10,
    )


def test_a_log_is_acknowledged_when_the_answer_to_its_append_leaves(sandbox: Sandbox) -> None:
    acknowledged = Acknowledgements(sandbox)
    added = httpx.post(f"{sandbox.auth0_url}/__sandbox/append", json={"count": 3}, timeout=10)
    ids = _appended_ids(sandbox, added.json())
    assert len(ids) == 3 and ids[-1] == added.json()["last_log_id"]
    sent = time.monotonic()
    assert send(sandbox, ids[:2]).status_code == 200
    first = acknowledged.at(ids[0])
    assert first is not None and first - sent >= 0.2, "after the acknowledgement's latency"
    assert acknowledged.at(ids[2]) is None
    assert send(sandbox, ids[:1], wait=False).status_code == 202
    assert (acknowledged.times(ids[0]), acknowledged.times(ids[1])) == (2, 1)
    assert acknowledged.at(ids[0]) == first, "the first answer counts"


def test_every_family_runs_by_default_and_only_what_is_asked_otherwise() -> None:
    everything = parse_args([])
    assert everything.follow and everything.shape_names and everything.plan_names
    follow = parse_args(["--follow", "--poll-interval", "30", "--idle-seconds", "60"])
    assert (follow.plan_names, follow.shape_names, follow.follow) == ([], [], True)
    assert (follow.poll_interval, follow.idle_seconds, follow.appending_seconds) == (30, 60, 30)
    plans = parse_args(["--profiles", "free"])
    assert (plans.plan_names, plans.follow) == (["free"], False)
    with pytest.raises(SystemExit):
        parse_args(["--follow", "--poll-interval", "0"])


def job() -> JobRun:
    return JobRun(0, 60.0, None, None, None, None, 0.0, {}, [], {}, {})


def follow_figures(**changes: Any) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "exit_code": 0,
        "caught_up_seconds": 12.0,
        "latency": {"count": 40, "p50": 3.9, "p95": 6.1, "max": 6.6},
        "never_acknowledged": 0,
        "late": {"acknowledged": 1, "seconds_after_visible": 4.2, "hidden_seconds": 10.0},
        "idle_seconds": 45.0,
        "idle_logs_requests": 9,
        "idle_other_requests": 1,
        "idle_expected_requests": 9.0,
        "idle_core_share": 0.002,
        "rss_mib_caught_up": 45.0,
        "rss_mib_appends_done": 46.0,
        "rss_mib_idle_end": 46.0,
        "peak_rss_mib": 47.0,
        "stop_seconds": 0.4,
        "exactly_once": True,
        "missing": 0,
        "duplicates": 0,
        "unexpected": 0,
    }
    return figures | changes


def follow_text(**changes: Any) -> str:
    result = FollowResult(FollowSettings(), job(), follow_figures(**changes))
    return "\n".join(follow_section(result))


def test_the_follow_report_marks_each_target() -> None:
    text = follow_text()
    assert "| 5 s | 40 | 3.90 | 6.10 | 6.60 | landed once, 4.20 s after visible | 9 (9.0) |" in text
    assert "NOT MET" not in text and "default of 30 s expect up to about 25 s more" in text
    slow = follow_text(latency={"count": 40, "p50": 3.9, "p95": 9.0, "max": 10.5})
    assert "max 10.50 s, 0 never (NOT MET)" in slow
    twice = follow_text(late={"acknowledged": 2, "seconds_after_visible": 4.2})
    assert "landed 2 TIMES" in twice and twice.count("NOT MET") == 1
    spinning = follow_text(idle_logs_requests=40)
    assert "40 `/api/v2/logs` requests for 9.0 polls" in spinning and "NOT MET" in spinning
    killed = follow_text(exit_code=-9, stop_seconds=45.0)
    assert "exit -9 in 45.0 s (NOT MET)" in killed


def rate_share(share: float, pace: float, refused: int, calls: int = 15) -> RateShareResult:
    figures = {
        "exactly_once": True,
        "job_requests_per_second": pace * 2,
        "share_of_ceiling": pace,
        "reading_seconds": 30.0,
        "wall_seconds": 34.0,
        "job_429": 0,
        "application_calls": calls,
        "application_429": refused,
    }
    return RateShareResult(share, 3000, job(), [], figures)


def test_the_rate_share_report_holds_a_share_to_its_target_and_the_default_as_baseline() -> None:
    text = "\n".join(rate_share_section([rate_share(0.5, 0.45, 0), rate_share(1.0, 0.9, 7, 10)]))
    assert "| 0.5 | 3,000 | 0.90 | 0.45 | 30.0 | 34.0 | 0 | 15 | 0 (0%) | yes |" in text
    assert "at least 0.8 of its share, 0.40 of the ceiling: 0.45 (met)" in text
    assert "the application met 7 429s in 10 calls (issue 25: 7 of 10)" in text
    assert "NOT MET" not in text
    short = "\n".join(rate_share_section([rate_share(0.5, 0.38, 2)]))
    assert "0.40 of the ceiling: 0.38 (NOT MET)" in short
    assert "the application meets no 429: 2 in 15 calls (NOT MET)" in short
