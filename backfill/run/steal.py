"""Splitting ranges while they are read, so every cursor stays busy to the end.

A range is cut at a log_id: it keeps the ids up to the cut, and a new range, with the same
dates, takes the ids after it. Every log has exactly one id, so the two never overlap and need no
margin between them; and the cut lies after every id the range's reader has fetched, so nothing
it holds belongs to the new range. A cut costs about half a page: the shortened range's last
page, which reads into the new one.

Where a reader stands is the write time in its last log_id, and how dense its logs are there is
the write-time span of its last page: so a range's remaining work is known at every page
(``Fetched``). ``choose_split`` decides from that and the rate limit whether a free cursor should
take part of a range, which range, and where to cut it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backfill.auth0.log_ids import synthesize, write_time
from backfill.state.model import RangeState

PAGE = 100  # logs per page
MIN_SPLIT_PAGES = 4.0  # a range is cut only if it has this many pages left: two for each part
MIN_KEEP_PAGES = 2.0
# While the rate limit sets the pace, more cursors read no faster: a range is cut only if it has
# this many times the average left, as it would otherwise be read alone at the end.
TAIL_FACTOR = 1.5


@dataclass
class Fetched:
    """How far a range's reader has fetched, and how dense the logs are where it stands."""

    reading: bool = False
    to: datetime | None = None  # write time of the last log_id fetched
    density: float | None = None  # logs per second of write time over the last page

    def record(self, page: list[dict[str, Any]], *, final: bool = False) -> None:
        """Note a page the reader fetched. ``final``: a short page, after which the reader ends
        with the ends it holds now: a cut made later would leave its range bounded and not done,
        so it is out of reach of cuts from here on."""
        if final:
            self.reading = False
        if not page:
            return
        last = page[-1].get("log_id")
        reached = write_time(last) if isinstance(last, str) else None
        if reached is None:
            return
        first = page[0].get("log_id")
        began = write_time(first) if isinstance(first, str) else None
        self.to = reached
        if len(page) >= 2 and began is not None and reached > began:
            self.density = (len(page) - 1) / (reached - began).total_seconds()


@dataclass(frozen=True)
class Pace:
    """What decides whether a free cursor should cut a range."""

    cursors: int  # the most ranges read at once (``concurrency``)
    busy: int  # ranges being read or waiting for a cursor
    needed: int  # cursors that keep up with the rate limit
    saturated: bool  # the rate limit holds requests back: it sets the pace, not the cursors
    horizon: datetime  # where the open tail's logs end, as far as is known


@dataclass(frozen=True)
class Split:
    victim: RangeState
    new: RangeState
    pages_left: float  # estimated pages left in the victim before the cut


def pages_left(item: RangeState, fetched: Fetched, horizon: datetime) -> float | None:
    """Estimated pages between where the range's reader stands and the range's end: the
    density where it stands over the span left. None before its first page."""
    if not fetched.reading or item.done or fetched.to is None or fetched.density is None:
        return None
    _, high = item.span()
    end = high if high is not None else horizon
    seconds = max((end - fetched.to).total_seconds(), 0.0)
    return seconds * fetched.density / PAGE


def choose_split(
    ranges: Iterable[tuple[RangeState, Fetched]], *, pace: Pace, new_id: int
) -> Split | None:
    """The cut that gives a free cursor its share of the work, or None.

    A free cursor (fewer ranges busy than ``cursors``) takes part of the range with the most
    pages left, when more cursors would read faster (fewer busy than ``needed``, and the rate
    limit holds no request back), or when that range would otherwise be read alone at the end
    by a cursor that cannot keep up with the limit alone.
    The range keeps its share of all the pages left (over the busy cursors, one more counted),
    at most half of its own, and the new range takes the rest. Its own estimate counts the
    density where its reader stands over all its span, which in a burst overstates it: a cut in
    the middle of its time would give the new range the quiet hours after the burst. Its share
    lies nearer its reader, and each later cut nearer still, so the burst is shared within a
    few cuts (a cut just past the reader, tried too, shared bursts at once but cut the last
    ranges of a run into chains of small ones).

    Pure: the caller applies it (``victim.end_id = new.start_after``) under its lock.
    """
    if pace.busy >= pace.cursors:
        return None
    estimates = []
    for item, fetched in ranges:
        left = pages_left(item, fetched, pace.horizon)
        if left is not None:
            estimates.append((left, item, fetched))
    if not estimates:
        return None
    total = sum(left for left, _, _ in estimates)
    left, victim, fetched = max(estimates, key=lambda estimate: estimate[0])
    if left < MIN_SPLIT_PAGES:
        return None
    faster = pace.busy < pace.needed and not pace.saturated  # another cursor reads faster
    # Read alone at the end, a range is slower than the limit only if one cursor cannot keep
    # up with it (free and professional plans: it can, and each cut costs part of a page).
    alone_is_slower = pace.needed > 1 and left >= TAIL_FACTOR * total / len(estimates)
    if not faster and not alone_is_slower:
        return None
    keep = max(MIN_KEEP_PAGES, min(left / 2, total / (pace.busy + 1)))
    assert fetched.to is not None and fetched.density is not None
    kept = timedelta(seconds=keep * PAGE / fetched.density)
    cut_at = _second_after(fetched.to, fetched.to + kept)
    _, high = victim.span()
    if high is not None and cut_at >= high:
        return None  # the range ends within the second after the one its reader reached
    new = RangeState(
        id=new_id,
        start=victim.start,
        end=victim.end,
        start_after=synthesize(cut_at),
        end_id=victim.end_id,
    )
    return Split(victim, new, left)


def _second_after(reached: datetime, cut: datetime) -> datetime:
    """``cut`` to the second, at least the second after ``reached``: an id synthesized there
    (the first of its second) sorts after every id the reader fetched."""
    return max(cut, reached + timedelta(seconds=1)).replace(microsecond=0)
