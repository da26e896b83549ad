"""Tenant shapes: how the synthetic logs spread over the days (even, uneven, quiet)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from sandbox_helpers import MakeSandbox, auth0_token, get_logs

from backfill.sandbox.generator import Tenant
from backfill.sandbox.timelines import DAY_US, HOUR_US, SHAPES
from backfill.sandbox.timeparse import parse_instant, to_us

# Mid-morning, so the span's first and last days are partial, as with end = now.
END = to_us(datetime(2026, 11, 3, 10, 17, 23, tzinfo=UTC))


def in_window(tenant: Tenant, window: tuple[int, int]) -> int:
    return len(tenant.written_between(window[0], window[1], range(len(tenant))))


def write_times(tenant: Tenant) -> list[int]:
    return [tenant.write_us(index) for index in range(len(tenant))]


@pytest.fixture(scope="module")
def uneven() -> Tenant:
    return Tenant(seed=11, count=60_000, days=5, end_us=END, shape="uneven")


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_is_reproducible_sorted_and_within_the_span(shape: str) -> None:
    first = Tenant(4, 5_000, 5, end_us=END, shape=shape)
    again = Tenant(4, 5_000, 5, end_us=END, shape=shape)
    other = Tenant(5, 5_000, 5, end_us=END, shape=shape)
    times = write_times(first)
    assert len(times) == 5_000
    assert times == write_times(again) and times != write_times(other)
    assert all(earlier < later for earlier, later in itertools.pairwise(times))
    assert times[0] >= END - 5 * DAY_US and times[-1] <= END


def test_even_is_the_default() -> None:
    assert write_times(Tenant(4, 2_000, 3, end_us=END)) == write_times(
        Tenant(4, 2_000, 3, end_us=END, shape="even")
    )


def test_an_unknown_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown shape 'spiky'"):
        Tenant(4, 100, 1, end_us=END, shape="spiky")


def test_uneven_has_a_two_hour_daytime_burst_holding_30_percent(uneven: Tenant) -> None:
    burst = uneven.landmarks.burst
    assert burst is not None
    assert burst[1] - burst[0] == 2 * HOUR_US and burst[0] % HOUR_US == 0
    assert 8 <= (burst[0] // HOUR_US) % 24 <= 18  # both hours in 08:00-20:00 UTC
    assert in_window(uneven, burst) / len(uneven) == pytest.approx(0.30, abs=0.005)
    # The burst is the densest stretch by far: its hours hold far more than any other hour.
    hours = Counter(moment // HOUR_US for moment in write_times(uneven))
    outside = [count for hour, count in hours.items() if not burst[0] <= hour * HOUR_US < burst[1]]
    assert min(hours[burst[0] // HOUR_US], hours[burst[0] // HOUR_US + 1]) > 10 * max(outside)


def test_uneven_has_one_whole_silent_utc_day(uneven: Tenant) -> None:
    silent = uneven.landmarks.silent
    assert silent is not None
    assert silent[1] - silent[0] == DAY_US and silent[0] % DAY_US == 0
    assert silent[0] >= END - 5 * DAY_US and silent[1] <= END
    assert in_window(uneven, silent) == 0
    burst = uneven.landmarks.burst
    assert burst is not None and not silent[0] <= burst[0] < silent[1]
    # Every other whole day has logs.
    days = Counter(moment // DAY_US for moment in write_times(uneven))
    assert set(range(min(days), max(days) + 1)) - set(days) == {silent[0] // DAY_US}


def test_uneven_has_ten_times_more_logs_by_day_than_by_night(uneven: Tenant) -> None:
    burst, silent = uneven.landmarks.burst, uneven.landmarks.silent
    assert burst is not None and silent is not None
    per_hour: Counter[str] = Counter()
    hours: Counter[str] = Counter()
    first_hour, last_hour = -(-(END - 5 * DAY_US) // HOUR_US), END // HOUR_US
    for hour in range(first_hour, last_hour):  # whole hours only
        start = hour * HOUR_US
        if burst[0] <= start < burst[1] or silent[0] <= start < silent[1]:
            continue
        label = "day" if 8 <= hour % 24 < 20 else "night"
        hours[label] += 1
        per_hour[label] += in_window(uneven, (start, start + HOUR_US))
    ratio = (per_hour["day"] / hours["day"]) / (per_hour["night"] / hours["night"])
    assert ratio == pytest.approx(10.0, rel=0.02)


def test_uneven_over_less_than_a_whole_day_has_no_silent_day() -> None:
    tenant = Tenant(3, 2_000, 0.5, end_us=END, shape="uneven")
    assert tenant.landmarks.silent is None
    assert len(tenant) == 2_000


def test_quiet_writes_everything_on_the_first_day_then_nothing() -> None:
    tenant = Tenant(8, 3_000, 5, end_us=END, shape="quiet")
    start = END - 5 * DAY_US
    assert tenant.landmarks.last_active_us == start + DAY_US
    assert in_window(tenant, (start, start + DAY_US)) == 3_000
    assert tenant.write_us(len(tenant) - 1) < start + DAY_US
    # Spread over that day, not bunched at its start: every six-hour quarter has logs.
    quarters = Counter((moment - start) * 4 // DAY_US for moment in write_times(tenant))
    assert set(quarters) == {0, 1, 2, 3} and min(quarters.values()) > 150


def test_the_sandbox_serves_the_shape_it_was_given(make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(logs=600, days=4.0, shape="quiet", profile="enterprise")
    busy_until = sandbox.tenant.landmarks.last_active_us
    assert busy_until is not None
    with httpx.Client(timeout=10) as http:
        token = auth0_token(http, sandbox)
        oldest = get_logs(http, sandbox, token, sort="date:1", per_page=1).json()
        newest = get_logs(http, sandbox, token, sort="date:-1", per_page=1).json()
    # The newest log is from the first of the four days, and all of them are served.
    assert to_us(parse_instant(newest[0]["date"])) < busy_until
    assert to_us(parse_instant(oldest[0]["date"])) >= busy_until - DAY_US - 5_000_000
    assert len(sandbox.auth0.visible_now()) == 600
