"""When a synthetic tenant's logs were written: the shape of its traffic over the days it spans.

A timeline is an `array('q')` of strictly increasing write times (microseconds), built by
stratified inverse-CDF sampling over buckets of time with relative weights: log i sits at
quantile (i + r_i) / count of the weights, so the output is sorted by construction, costs
8 bytes a log, and a bucket holds its weight's share of the logs to within one log.

Shapes:
- `even`: a busy tenant, every hour busy: a diurnal peak around 15:00 UTC, quieter weekends and
  the odd incident (hourly buckets over the whole span).
- `uneven`: a tenant as real ones are: ten times more logs by day (08:00-20:00 UTC) than by
  night, one whole UTC day silent, and a two-hour burst (a campaign, a credential-stuffing
  attack) holding 30% of the logs. Buckets are whole UTC hours, so the silent day and the
  burst are exact windows (`Landmarks`).
- `quiet`: everything in the first 24 hours of the span (diurnal as `even`), then nothing up to
  the end: a staging tenant, a weekend.
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from backfill.sandbox.mixing import mix64

MICROS = 1_000_000
HOUR_US = 3_600 * MICROS
DAY_US = 24 * HOUR_US

SHAPES = ("even", "uneven", "quiet")
BURST_SHARE = 0.3
BURST_HOURS = 2
DAY_TO_NIGHT = 10.0
DAYTIME_HOURS = range(8, 20)  # UTC hours the `uneven` tenant is busy


@dataclass(frozen=True)
class Landmarks:
    """Where a shaped timeline's features are, as [start, end) microsecond windows."""

    burst: tuple[int, int] | None = None
    silent: tuple[int, int] | None = None
    last_active_us: int | None = None
    """No log is written after this (the end of `quiet`'s busy day)."""


def timeline(
    shape: str, seed: int, count: int, start_us: int, end_us: int
) -> tuple[array[int], Landmarks]:
    if shape == "even":
        return _even(seed, count, start_us, end_us), Landmarks()
    if shape == "uneven":
        return _uneven(seed, count, start_us, end_us)
    if shape == "quiet":
        return _quiet(seed, count, start_us, end_us)
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")


def _activity(moment_us: int) -> float:
    """A busy tenant's relative traffic: a diurnal peak around 15:00 UTC, quieter weekends."""
    hour = (moment_us // HOUR_US) % 24 + 0.5
    weekday = (moment_us // DAY_US + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    diurnal = 0.3 + math.exp(-(((hour - 15.0) / 4.5) ** 2))
    weekly = (1.0, 1.0, 1.0, 1.0, 0.95, 0.6, 0.5)[weekday]
    return diurnal * weekly


def _even(seed: int, count: int, start_us: int, end_us: int) -> array[int]:
    """`count` strictly increasing write times in [start, end], denser when the tenant is busy."""
    times: array[int] = array("q")
    if count == 0:
        return times
    rng = random.Random(mix64(seed, 0x71E))
    buckets = max(1, math.ceil((end_us - start_us) / HOUR_US))
    width = (end_us - start_us) / buckets
    weights = [
        _activity(int(start_us + (b + 0.5) * width)) * (0.8 + 0.4 * rng.random())
        * (3.0 if rng.random() < 0.01 else 1.0)  # the odd incident or campaign
        for b in range(buckets)
    ]  # fmt: skip
    total = math.fsum(weights)
    step = total / count
    bucket, bucket_floor = 0, 0.0
    bucket_ceiling = weights[0]
    previous = start_us - 1
    draw = rng.random
    append = times.append
    for i in range(count):
        quantile = (i + draw()) * step
        while quantile >= bucket_ceiling and bucket < buckets - 1:
            bucket += 1
            bucket_floor = bucket_ceiling
            bucket_ceiling += weights[bucket]
        moment = int(start_us + (bucket + (quantile - bucket_floor) / weights[bucket]) * width)
        if moment <= previous:
            moment = previous + 1
        append(moment)
        previous = moment
    return times


def _hour_edges(start_us: int, end_us: int) -> list[int]:
    """[start, each whole UTC hour strictly inside, end]: buckets that are whole hours but two."""
    first = -(-start_us // HOUR_US) * HOUR_US
    inner = range(first if first > start_us else first + HOUR_US, end_us, HOUR_US)
    return [start_us, *inner, end_us]


def _uneven(seed: int, count: int, start_us: int, end_us: int) -> tuple[array[int], Landmarks]:
    edges = _hour_edges(start_us, end_us)
    buckets = range(len(edges) - 1)
    weights = [
        (DAY_TO_NIGHT if (edges[b] // HOUR_US) % 24 in DAYTIME_HOURS else 1.0)
        * (edges[b + 1] - edges[b])
        / HOUR_US
        for b in buckets
    ]
    choose = random.Random(mix64(seed, 0x5EA50))
    # The silent day: a whole UTC day inside the span, when there is one.
    whole_days = range(-(-start_us // DAY_US), end_us // DAY_US)
    silent: tuple[int, int] | None = None
    if whole_days:
        day = choose.choice(whole_days)
        silent = (day * DAY_US, (day + 1) * DAY_US)
        for b in buckets:
            if silent[0] <= edges[b] < silent[1]:
                weights[b] = 0.0
    # The burst: two whole daytime hours, off the silent day, holding BURST_SHARE of the logs.
    candidates = [
        b
        for b in buckets[: len(edges) - BURST_HOURS]
        if all(
            edges[b + k + 1] - edges[b + k] == HOUR_US
            and weights[b + k] > 0
            and (edges[b + k] // HOUR_US) % 24 in DAYTIME_HOURS
            for k in range(BURST_HOURS)
        )
    ]
    burst: tuple[int, int] | None = None
    if candidates:
        first = choose.choice(candidates)
        burst = (edges[first], edges[first + BURST_HOURS])
        inside = range(first, first + BURST_HOURS)
        rest = math.fsum(weights[b] for b in buckets if b not in inside)
        for b in inside:
            weights[b] = rest * BURST_SHARE / (1 - BURST_SHARE) / BURST_HOURS
    times = _sample(random.Random(mix64(seed, 0x71E)), count, edges, weights)
    return times, Landmarks(burst=burst, silent=silent)


def _quiet(seed: int, count: int, start_us: int, end_us: int) -> tuple[array[int], Landmarks]:
    busy_until = min(end_us, start_us + DAY_US)
    edges = _hour_edges(start_us, busy_until)
    weights = [
        _activity((edges[b] + edges[b + 1]) // 2) * (edges[b + 1] - edges[b]) / HOUR_US
        for b in range(len(edges) - 1)
    ]
    times = _sample(random.Random(mix64(seed, 0x71E)), count, edges, weights)
    return times, Landmarks(last_active_us=busy_until)


def _sample(
    rng: random.Random, count: int, edges: Sequence[int], weights: list[float]
) -> array[int]:
    """`count` strictly increasing times, bucket b = [edges[b], edges[b+1]) holding its weight's
    share; buckets of weight 0 get none."""
    times: array[int] = array("q")
    live = [b for b, weight in enumerate(weights) if weight > 0]
    if count == 0 or not live:
        return times
    total = math.fsum(weights)
    step = total / count
    position = 0  # index into `live`
    bucket = live[0]
    floor, ceiling = 0.0, weights[bucket]
    previous = edges[0] - 1
    for i in range(count):
        quantile = (i + rng.random()) * step
        while quantile >= ceiling and position < len(live) - 1:
            position += 1
            bucket = live[position]
            floor, ceiling = ceiling, ceiling + weights[bucket]
        width = edges[bucket + 1] - edges[bucket]
        moment = edges[bucket] + min(width - 1, int((quantile - floor) / weights[bucket] * width))
        # Strictly increasing; a crowded bucket pushes a log at most a few microseconds on.
        moment = max(moment, previous + 1)
        times.append(moment)
        previous = moment
    return times
