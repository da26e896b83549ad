"""Where a run starts and ends, and how ``[start, end)`` is cut into ranges read concurrently.

Start: ``--from-log-id`` (logs after it), else ``--from-date`` (logs whose date is at or after
it), else the oldest log Auth0 still retains. With ids of the observed shape, a date becomes a
synthesized id a margin earlier (ids are written 0.02-5 s after the record's date), and the
ranges after the first each start at such an id; every range filters on ``date``, so ranges are
disjoint by construction, and each reads past its end by the late-id margin so no late-written
record is missed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from backfill.auth0.log_ids import has_observed_shape, order_key, synthesize, write_time
from backfill.state import RangeState
from backfill.timeutil import iso, parse_record_date

log = logging.getLogger("backfill.plan")

Record = dict[str, Any]

# Below this span a range is not worth its own cursor (the late margin is read twice per cut).
MIN_RANGE = timedelta(minutes=10)
RANGES_PER_CURSOR = 2  # a few spare ranges; idle cursors then split the longest (pipeline)
# Each cut costs a partial page and the late margin: worth it only for ranges of many pages.
LOGS_PER_RANGE = 2_000
# An open tail further behind than this is cut into ranges again on the next run.
RESPLIT_TAIL_AFTER = timedelta(hours=1)


class LogFinder(Protocol):
    def oldest(self) -> Record | None: ...

    def search(
        self, *, q: str | None = None, sort: str = "date:1", per_page: int = 100, page: int = 0
    ) -> list[Record]: ...


@dataclass(frozen=True)
class StartPoint:
    start_after: str  # paging begins after this log_id
    lead: str | None  # a log_id to emit first (Auth0's from would skip it)
    lower: datetime | None  # inclusive lower bound on date
    moment: datetime  # where date coverage begins, for splitting and progress
    shaped: bool  # the tenant's ids have the observed shape


def find_start(
    source: LogFinder,
    *,
    from_date: datetime | None,
    from_log_id: str | None,
    margin: timedelta,
    notes: Callable[[str], None],
) -> StartPoint | None:
    """The run's start, or None when the tenant has no logs at all."""
    oldest = source.oldest()
    if oldest is None:
        return None
    oldest_id: str = oldest["log_id"]
    oldest_date = parse_record_date(oldest.get("date")) or write_time(oldest_id)
    shaped = has_observed_shape(oldest_id)
    from_oldest = StartPoint(oldest_id, oldest_id, from_date, oldest_date or _epoch(), shaped)

    if from_log_id is not None:
        if order_key(from_log_id) < order_key(oldest_id):
            notes(
                f"--from-log-id {from_log_id} is older than the oldest log Auth0 still retains "
                f"({oldest_id}, {oldest.get('date')}): starting there; what lay between is gone."
            )
            return from_oldest
        moment = write_time(from_log_id) or oldest_date or _epoch()
        return StartPoint(from_log_id, None, None, moment, shaped)

    if from_date is not None:
        if oldest_date is not None and from_date < oldest_date:
            notes(
                f"--from-date {iso(from_date)} is before the oldest log Auth0 still retains "
                f"({oldest.get('date')}): starting there; Auth0 no longer has older logs."
            )
            return from_oldest
        if shaped:
            synthetic = synthesize(from_date - margin)
            if order_key(synthetic) > order_key(oldest_id):
                return StartPoint(synthetic, None, from_date, from_date, shaped)
            return StartPoint(oldest_id, oldest_id, from_date, from_date, shaped)
        # Ids of another shape: find the last log before the margin by search, page after it.
        before = source.search(
            q=f"date:[* TO {iso(from_date - margin)}}}", sort="date:-1", per_page=1
        )
        if before:
            return StartPoint(before[0]["log_id"], None, from_date, from_date, shaped)
        return from_oldest

    notes(
        f"No start given: starting from the oldest log Auth0 still retains ({oldest.get('date')})."
    )
    return from_oldest


def estimate_logs(page: list[Record], span: timedelta) -> int | None:
    """Logs in ``span``, judged from the density of one full page; None when it cannot tell."""
    if len(page) < 2:
        return len(page)
    first = write_time(page[0]["log_id"])
    last = write_time(page[-1]["log_id"])
    if first is None or last is None or last <= first:
        return None
    return int(span / (last - first) * len(page))


def split(
    start: StartPoint,
    *,
    end: datetime | None,
    now: datetime,
    cursors: int,
    margin: timedelta,
    first_id: int = 0,
    expected_logs: int | None = None,
) -> list[RangeState]:
    """Cut ``[start, end)`` into ranges; with no end, the last one stays open (until caught up).

    As many ranges as keep every cursor busy, but none shorter than ``MIN_RANGE`` and, when the
    volume is known, none with fewer than ``LOGS_PER_RANGE`` logs.
    """
    stop = end if end is not None else now
    pieces = 1
    if start.shaped and cursors > 1 and stop > start.moment:
        pieces = max(1, min(cursors * RANGES_PER_CURSOR, int((stop - start.moment) / MIN_RANGE)))
        if expected_logs is not None:
            pieces = max(1, min(pieces, expected_logs // LOGS_PER_RANGE))
    step = (stop - start.moment) / pieces if pieces > 1 else timedelta(0)
    cuts = [start.moment + step * index for index in range(1, pieces)]
    lows: list[datetime | None] = [start.lower, *cuts]
    highs: list[datetime | None] = [*cuts, end]
    ranges = []
    for index, (low, high) in enumerate(zip(lows, highs, strict=True)):
        if index == 0:
            after, lead = start.start_after, start.lead
        else:
            assert low is not None
            after, lead = synthesize(low - margin), None
        ranges.append(
            RangeState(
                id=first_id + index,
                start=iso(low) if low else None,
                end=iso(high) if high else None,
                start_after=after,
                lead=lead,
            )
        )
    return ranges


def tail_behind(ranges: Sequence[RangeState], now: datetime) -> RangeState | None:
    """The open tail, when it is far enough behind to be worth cutting again."""
    tails = [item for item in ranges if item.end is None]
    if len(tails) != 1:
        return None
    behind = write_time(tails[0].position)
    if behind is None or now - behind < RESPLIT_TAIL_AFTER:
        return None
    return tails[0]


def resplit_tail(
    ranges: Sequence[RangeState],
    *,
    now: datetime,
    cursors: int,
    margin: timedelta,
    expected_logs: int | None = None,
) -> list[RangeState]:
    """On a catch-up run far behind, cut the open tail again so several cursors share it."""
    tail = tail_behind(ranges, now)
    if tail is None or cursors <= 1:
        return list(ranges)
    behind = write_time(tail.position)
    assert behind is not None
    # Everything the tail committed so far was written before its position, so a new bound a
    # margin later cuts nothing already sent in two.
    restart = StartPoint(tail.position, None, None, behind + margin, shaped=True)
    pieces = split(
        restart,
        end=None,
        now=now,
        cursors=cursors,
        margin=margin,
        first_id=_next_id(ranges),
        expected_logs=expected_logs,
    )
    if len(pieces) < 2:
        return list(ranges)
    tail.end = pieces[1].start
    log.info("tail_resplit behind=%s ranges=%d", iso(behind), len(pieces) - 1)
    return [*ranges, *pieces[1:]]


def _next_id(ranges: Sequence[RangeState]) -> int:
    return max((item.id for item in ranges), default=-1) + 1


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)
