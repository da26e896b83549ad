"""A range's reader alone, against a list standing in for the pipeline: where it stops (a log_id
end, a date end) and when it sends what it has (the first checkpoint's deadline)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from backfill.auth0.log_ids import synthesize
from backfill.records.batches import Batch, BatchLimits
from backfill.run.reader import RangeReader, ReadCounts, ReadOptions
from backfill.state.model import Gap, RangeState
from backfill.timeutil import iso
from tests.unit.fakes import FakeAuth0, make_tenant

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=2)


class Outlet:
    """The pipeline's side: the batches a reader hands over, and whether the run has
    checkpointed; ``tick`` seconds pass on the clock with every page. Unless ``idle``, an
    append is always on its way (the batches handed over are never acknowledged here)."""

    def __init__(
        self,
        clock: list[float],
        *,
        tick: float = 0.0,
        checkpointed: bool = False,
        idle: bool = False,
    ):
        self.item = RangeState(id=0, start=None, end=None, start_after="0")
        self.batches: list[Batch] = []
        self.clock = clock
        self.tick = tick
        self.checkpointed = checkpointed
        self.idle = idle
        self.stopping = False
        self.ends: tuple[str | None, str | None] | None = None  # a split arriving

    def fetched(self, range_id: int, page: list[dict[str, Any]]) -> tuple[str | None, str | None]:
        self.clock[0] += self.tick
        if self.ends is not None:
            return self.ends
        return self.item.end, self.item.end_id

    async def emit(self, range_id: int, batch: Batch) -> None:
        self.batches.append(batch)

    def count(self, range_id: int, counts: ReadCounts, last_date: datetime | None) -> None:
        pass

    def caught_up(self, range_id: int, asked_at: datetime) -> None:
        self.caught_up_at = asked_at

    def hold(self, delta: int) -> None:
        self.held = getattr(self, "held", 0) + delta

    def over_budget(self) -> bool:
        return False

    async def room(self) -> None:
        raise AssertionError("never over budget here")

    async def reposition(self, range_id: int, mark: Batch, oldest_id: str, gap: Gap) -> None:
        raise AssertionError("not expected")


def reader(  # type: ignore[no-untyped-def]
    item: RangeState, records: list[dict[str, Any]] | FakeAuth0, outlet: Outlet, **options: Any
):
    outlet.item = item
    return RangeReader(
        item,
        source=records if isinstance(records, FakeAuth0) else FakeAuth0(records),
        outlet=outlet,  # type: ignore[arg-type]
        options=ReadOptions(
            limits=BatchLimits(max_rows=options.get("max_rows", 10_000)),
            take=100,
            late_margin=timedelta(seconds=60),
            flush_seconds=options.get("flush_seconds", 60.0),
            first_flush_seconds=options.get("first_flush_seconds", 10.0),
            keep_type=None,
            restart_from_oldest=False,
        ),
        already_in_tinybird=set(),
        clock=lambda: outlet.clock[0],
        now=lambda: NOW,
        known=options.get("known"),
    )


def sent(outlet: Outlet) -> list[str]:
    return [log_id for batch in outlet.batches for log_id in batch.log_ids()]


def test_a_range_ending_at_a_log_id_keeps_every_id_up_to_it_whatever_its_date() -> None:
    records = make_tenant(1_000, T0, timedelta(hours=10))
    cut = synthesize(T0 + timedelta(hours=4))
    # A log dated before the cut but written after it belongs to the next range: ranges cut
    # at log_ids are told apart by id alone.
    late = next(r for r in records if r["log_id"] > cut)
    late["date"] = iso(T0 + timedelta(hours=3, minutes=59, seconds=59))
    item = RangeState(id=0, start=None, end=None, start_after=records[0]["log_id"], end_id=cut)
    outlet = Outlet([0.0])
    asyncio.run(reader(item, records, outlet).read())
    assert sent(outlet) == [r["log_id"] for r in records[1:] if r["log_id"] <= cut]
    assert outlet.batches[-1].completes_range  # it read past its end: every id up to it read
    following = RangeState(id=1, start=None, end=None, start_after=cut)
    outlet = Outlet([0.0])
    asyncio.run(reader(following, records, outlet).read())
    assert late["log_id"] in sent(outlet)  # ... the next range sends it, once


def test_a_cut_while_reading_is_taken_with_the_next_page() -> None:
    records = make_tenant(1_000, T0, timedelta(hours=10))
    item = RangeState(id=0, start=None, end=None, start_after=records[0]["log_id"])
    outlet = Outlet([0.0])
    cut = synthesize(T0 + timedelta(hours=6))
    outlet.ends = (None, cut)  # a free cursor took everything after six hours
    asyncio.run(reader(item, records, outlet).read())
    assert sent(outlet) == [r["log_id"] for r in records[1:] if r["log_id"] <= cut]


def test_caught_up_short_of_its_log_id_end_is_complete_once_that_end_is_past() -> None:
    records = make_tenant(300, NOW - timedelta(hours=1), timedelta(minutes=50))
    for end, complete in ((NOW + timedelta(minutes=5), False), (NOW - timedelta(minutes=2), True)):
        # Ids up to an end still to come are not all written yet; past it (and the late
        # margin), every one is.
        item = RangeState(
            id=0, start=None, end=None, start_after=records[0]["log_id"], end_id=synthesize(end)
        )
        outlet = Outlet([0.0])
        asyncio.run(reader(item, records, outlet).read())
        assert len(sent(outlet)) == 299
        assert outlet.batches[-1].completes_range is complete


def test_before_the_first_checkpoint_the_first_page_goes_at_once_then_batches_by_age() -> None:
    records = make_tenant(5_000, T0, timedelta(days=1))
    item = RangeState(id=0, start=None, end=None, start_after=records[0]["log_id"])
    outlet = Outlet([0.0], tick=0.5)  # a free plan's pace: a page every half second
    asyncio.run(reader(item, records, outlet).read())
    # The first page alone, then every 10 s (20 pages) a batch, as no checkpoint is recorded
    # in this stand-in.
    sizes = [batch.rows for batch in outlet.batches]
    assert sizes[:3] == [100, 2_000, 2_000] and sum(sizes) == 4_999


def test_the_logs_a_search_returned_go_at_once_while_the_run_has_no_checkpoint() -> None:
    records = make_tenant(1_000, NOW - timedelta(hours=10), timedelta(hours=9))
    lead = records[0]
    item = RangeState(id=0, start=None, end=None, start_after=lead["log_id"], lead=lead["log_id"])
    known = {lead["log_id"]: [lead, *records[1:91]]}
    outlet = Outlet([0.0])
    asyncio.run(reader(item, FakeAuth0(records), outlet, known=known).read())
    assert outlet.batches[0].rows == 91  # before any page is asked
    checkpointed = Outlet([0.0], checkpointed=True)
    asyncio.run(reader(item, FakeAuth0(records), checkpointed, known=known).read())
    assert checkpointed.batches[0].rows == 1_000  # one batch: the run had its checkpoint


def test_after_the_first_checkpoint_batches_wait_for_flush_seconds_or_max_rows() -> None:
    records = make_tenant(5_000, T0, timedelta(days=1))
    item = RangeState(id=0, start=None, end=None, start_after=records[0]["log_id"])
    outlet = Outlet([0.0], tick=0.5, checkpointed=True)
    asyncio.run(reader(item, records, outlet, flush_seconds=20.0).read())
    sizes = [batch.rows for batch in outlet.batches]
    assert sizes[0] == 4_000 and sum(sizes) == 4_999  # 40 pages = 20 s, not 10
    outlet = Outlet([0.0], tick=0.5, checkpointed=True)
    asyncio.run(reader(item, records, outlet, max_rows=1_500).read())
    assert [batch.rows for batch in outlet.batches][:3] == [1_500, 1_500, 1_500]


def test_when_nothing_of_the_tenant_is_on_its_way_what_was_read_goes_at_once() -> None:
    # Sent as it is read while Tinybird has nothing of the tenant's: the last append after
    # the last page holds a page, not the whole run's tail, and the checkpoint keeps up.
    records = make_tenant(1_000, T0, timedelta(days=1))
    item = RangeState(id=0, start=None, end=None, start_after=records[0]["log_id"])
    outlet = Outlet([0.0], tick=0.5, checkpointed=True, idle=True)
    asyncio.run(reader(item, records, outlet).read())
    assert [batch.rows for batch in outlet.batches] == [100] * 9 + [99]


def test_the_logs_a_search_already_returned_are_read_without_asking_again() -> None:
    records = make_tenant(1_000, NOW - timedelta(hours=10), timedelta(hours=9))
    source = FakeAuth0(records)
    lead = records[0]
    searched = [dict(r) for r in records[1:91]]  # as newrun found them on the oldest page
    item = RangeState(id=0, start=None, end=None, start_after=lead["log_id"], lead=lead["log_id"])
    outlet = Outlet([0.0])
    asyncio.run(reader(item, source, outlet, known={lead["log_id"]: [lead, *searched]}).read())
    assert sent(outlet) == [r["log_id"] for r in records]  # each once, in id order
    assert source.requests == 10  # 909 logs after the searched ones: ten pages, none asked twice


def test_searched_logs_past_the_range_end_are_left_to_the_next_range() -> None:
    records = make_tenant(1_000, NOW - timedelta(hours=10), timedelta(hours=9))
    source = FakeAuth0(records)
    lead, cut = records[0], records[40]["log_id"]
    item = RangeState(
        id=0, start=None, end=None, start_after=lead["log_id"], lead=lead["log_id"], end_id=cut
    )
    outlet = Outlet([0.0])
    asyncio.run(reader(item, source, outlet, known={lead["log_id"]: [lead, *records[1:91]]}).read())
    assert sent(outlet) == [r["log_id"] for r in records[:41]]
    assert outlet.batches[-1].completes_range and source.requests == 0
