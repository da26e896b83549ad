"""Splitting a range for an idle cursor: which range, and where.

An idle cursor takes the far half of the range with the most left to read. "Left to read" is
the span between where the range's reader has fetched to (the write time in its last log_id)
and its end, times the density the reader has seen so far. The split point lies beyond everything
the reader has fetched (by the late-id margin), so no record it holds belongs to the new half.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backfill.auth0.log_ids import synthesize, write_time
from backfill.state import RangeState
from backfill.timeutil import iso, parse_record_date

STEAL_MIN_LOGS = 1_000  # a range is split for an idle cursor only if both halves get this many


@dataclass
class Fetched:
    """How far a range's reader has fetched, and how dense the range has been so far."""

    reading: bool = False
    to: datetime | None = None  # write time of the last log_id fetched
    records: int = 0
    since: datetime | None = None  # write time of the first log_id fetched

    def record(self, page: list[dict[str, Any]]) -> None:
        if not page:
            return
        reached = write_time(page[-1]["log_id"])
        if reached is None:
            return
        if self.since is None:
            self.since = write_time(page[0]["log_id"])
        self.to = reached
        self.records += len(page)

    def density(self) -> float | None:
        """Logs per second seen so far in this range."""
        if self.to is None or self.since is None or self.records < 100:
            return None
        seconds = (self.to - self.since).total_seconds()
        return self.records / seconds if seconds > 0 else None


@dataclass(frozen=True)
class Split:
    victim: RangeState
    new: RangeState
    logs_left: float  # estimated logs left in the victim before the split


def choose_split(
    ranges: Iterable[tuple[RangeState, Fetched]], *, margin: timedelta, now: datetime, new_id: int
) -> Split | None:
    """The split that gives an idle cursor the most work, or None when no range is worth it.

    Pure: the caller applies it (``victim.end = new.start``) under its lock.
    """
    best: tuple[float, RangeState, datetime, datetime] | None = None
    for item, fetched in ranges:
        density = fetched.density()
        if not fetched.reading or item.done or fetched.to is None or density is None:
            continue
        low = fetched.to + margin
        end = parse_record_date(item.end) if item.end else None
        high = end or now
        left = (high - low).total_seconds() * density
        if left >= 2 * STEAL_MIN_LOGS and (best is None or left > best[0]):
            best = (left, item, low, high)
    if best is None:
        return None
    left, victim, low, high = best
    middle = low + (high - low) / 2
    new = RangeState(
        id=new_id,
        start=iso(middle),
        end=victim.end,
        start_after=synthesize(middle - margin),
    )
    return Split(victim, new, left)
