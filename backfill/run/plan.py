"""Where a run starts and ends, and how ``[start, end)`` is cut into ranges read concurrently.

Start: ``--from-log-id`` (logs after it), else ``--from-date`` (logs whose date is at or after
it), else the oldest log Auth0 still retains. With ids of the observed shape, a date becomes a
synthesized id a margin earlier (ids are written 0.02-5 s after the record's date), filtered on
``date``.

Ranges are cut at log_ids (``split``): each takes the ids after its cut up to the next one, all
with the run's dates, so they cannot overlap and none re-reads another's logs. They cover the
span up to where the logs are (the newest log, when known), not up to now: a quiet stretch at
the end then costs nothing. How many: as many as keep up with the rate limit (``Pacer.
cursors_needed``), fewer for a small tenant. Readers then cut ranges further while reading,
where the logs turn out to be (``steal``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from backfill.auth0.log_ids import has_observed_shape, order_key, synthesize, write_time
from backfill.errors import Auth0RequestError
from backfill.state.model import RangeState
from backfill.timeutil import iso, parse_record_date

log = logging.getLogger("backfill.plan")

Record = dict[str, Any]

# Below this span a range is not worth its own cursor.
MIN_RANGE = timedelta(minutes=1)
# Each cut costs about half a page (the last page of a range reads into the next): a range is
# planned only for this many pages of logs.
MIN_PAGES_PER_RANGE = 4
PAGE = 100


class PageSource(Protocol):
    async def page_after(self, checkpoint: str, take: int = PAGE) -> list[Record]: ...


class LogFinder(Protocol):
    async def oldest(self) -> Record | None: ...

    async def search(
        self, *, q: str | None = None, sort: str = "date:1", per_page: int = 100, page: int = 0
    ) -> list[Record]: ...


@dataclass(frozen=True)
class StartPoint:
    start_after: str  # paging begins after this log_id
    lead: str | None  # a log_id to emit first (Auth0's from would skip it)
    lower: datetime | None  # inclusive lower bound on date
    moment: datetime  # where date coverage begins, for splitting and progress
    shaped: bool  # the tenant's ids have the observed shape
    lead_record: Record | None = None  # the lead itself, when a search already returned it


async def find_start(
    source: LogFinder,
    *,
    from_date: datetime | None,
    from_log_id: str | None,
    margin: timedelta,
    notes: Callable[[str], None],
) -> StartPoint | None:
    """The run's start, or None when the tenant has no logs at all."""
    oldest = await source.oldest()
    if oldest is None:
        return None
    oldest_id: str = oldest["log_id"]
    oldest_date = parse_record_date(oldest.get("date")) or write_time(oldest_id)
    shaped = has_observed_shape(oldest_id)
    from_oldest = StartPoint(
        oldest_id, oldest_id, from_date, oldest_date or _epoch(), shaped, lead_record=oldest
    )

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
            return StartPoint(
                oldest_id, oldest_id, from_date, from_date, shaped, lead_record=oldest
            )
        # Ids of another shape: find the last log before the margin by search, page after it.
        before = await source.search(
            q=f"date:[* TO {iso(from_date - margin)}}}", sort="date:-1", per_page=1
        )
        if before:
            return StartPoint(before[0]["log_id"], None, from_date, from_date, shaped)
        return from_oldest

    notes(
        f"No start given: starting from the oldest log Auth0 still retains ({oldest.get('date')})."
    )
    return from_oldest


async def derive_start(
    source: PageSource, from_date: datetime, margin: timedelta
) -> tuple[StartPoint, list[Record]] | None:
    """``--from-date`` without a search: the first page after an id synthesized a margin before
    the date (what Auth0's reference and production pollers do), which is also the run's first
    page (its first log the lead, the rest already read). None when that cannot be trusted, and
    the search decides instead: no log after it, ids of another shape, a first log dated past
    the date by more than the margin (retention reached, or a quiet stretch: the search tells
    which, and says so), or Auth0 refusing the id (400, reported for aged-out checkpoints).
    """
    try:
        page = await source.page_after(synthesize(from_date - margin), PAGE)
    except Auth0RequestError as error:
        if error.status != 400:
            raise
        return None
    ids = [record.get("log_id") for record in page]
    if not page or not all(isinstance(item, str) and has_observed_shape(item) for item in ids):
        return None
    first = page[0]
    first_id = str(first["log_id"])
    begins = parse_record_date(first.get("date")) or write_time(first_id)
    if begins is None or begins > from_date + margin:
        return None
    start = StartPoint(first_id, first_id, from_date, from_date, True, lead_record=first)
    return start, page


def estimate_pages(pages: Sequence[list[Record]], span: timedelta) -> float | None:
    """Pages of logs in ``span``, from the density of full pages taken in it (the oldest and
    the newest, say): None when it cannot tell; the logs themselves when a page is not full."""
    densities = []
    for page in pages:
        if len(page) < PAGE:
            return len(page) / PAGE  # the tenant holds fewer logs than a page
        written = [write_time(str(record.get("log_id"))) for record in page]
        known = [moment for moment in written if moment is not None]
        if len(known) < 2 or max(known) <= min(known):
            return None
        densities.append((len(known) - 1) / (max(known) - min(known)).total_seconds())
    if not densities:
        return None
    return sum(densities) / len(densities) * span.total_seconds() / PAGE


def searched_after(page: Sequence[Record], lead: str) -> list[Record]:
    """The logs a search page sorted by date holds after ``lead`` in id order, as far as it is
    sure to hold every one: what paging from ``lead`` would return first, without asking again.

    A log missing from a full page is dated at or after the page's last date, and its id is
    written after its date: every id before that date's second is on the page (ids of the
    observed shape only; else nothing). A page that is not full holds every log there was.
    """
    ids = [record.get("log_id") for record in page]
    dates = [parse_record_date(record.get("date")) for record in page]
    shaped = [log_id for log_id in ids if isinstance(log_id, str) and has_observed_shape(log_id)]
    if not has_observed_shape(lead) or len(shaped) < len(page) or None in dates:
        return []
    after = order_key(lead)
    bound = order_key(synthesize(max(d for d in dates if d))) if len(page) >= PAGE else None
    found = [
        record
        for record, log_id in zip(page, shaped, strict=True)
        if order_key(log_id) > after and (bound is None or order_key(log_id) < bound)
    ]
    return sorted(found, key=lambda record: order_key(record["log_id"]))


def newest_written(page: Sequence[Record]) -> datetime | None:
    """The latest write time among a page's log_ids: where the tenant's logs end, for now."""
    written = [write_time(str(record.get("log_id"))) for record in page]
    return max((moment for moment in written if moment is not None), default=None)


def split(
    start: StartPoint,
    *,
    end: datetime | None,
    now: datetime,
    cursors: int,
    horizon: datetime | None = None,
    expected_pages: float | None = None,
    first_id: int = 0,
) -> list[RangeState]:
    """Cut the run, from its start up to ``end`` (else up to ``horizon``, where the newest log
    is, else now), into ranges of equal time, at log_ids; the last range keeps the run's end
    (none: until caught up).

    ``cursors`` ranges, but none shorter than ``MIN_RANGE`` and, when the volume is known,
    none with fewer than ``MIN_PAGES_PER_RANGE`` pages.
    """
    stop = end if end is not None else now
    if horizon is not None:
        stop = min(stop, horizon)
    pieces = 1
    if start.shaped and cursors > 1 and stop > start.moment:
        pieces = max(1, min(cursors, int((stop - start.moment) / MIN_RANGE)))
        if expected_pages is not None:
            pieces = max(1, min(pieces, int(expected_pages // MIN_PAGES_PER_RANGE)))
    step = (stop - start.moment) / pieces
    # Cut at whole seconds (a synthesized id is the first of its second), each after the last.
    cuts: list[datetime] = []
    for index in range(1, pieces):
        moment = (start.moment + step * index).replace(microsecond=0)
        if moment > start.moment and (not cuts or moment > cuts[-1]):
            cuts.append(moment)
    afters = [start.start_after, *(synthesize(moment) for moment in cuts)]
    ends: list[str | None] = [*afters[1:], None]
    return [
        RangeState(
            id=first_id + index,
            start=iso(start.lower) if start.lower else None,
            end=iso(end) if end else None,
            start_after=after,
            lead=start.lead if index == 0 else None,
            end_id=end_id,
        )
        for index, (after, end_id) in enumerate(zip(afters, ends, strict=True))
    ]


def _epoch() -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC)
