"""Splitting ranges while they are read (``steal``), alone: where each reader stands, what is
left, and whether, which and where a free cursor cuts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backfill.auth0.log_ids import synthesize, write_time
from backfill.run.steal import Fetched, Pace, choose_split, pages_left
from backfill.state.model import RangeState
from tests.unit.fakes import log_id_at

T0 = datetime(2026, 11, 1, tzinfo=UTC)
HORIZON = T0 + timedelta(days=5)


def page(start: datetime, every: timedelta, count: int = 100) -> list[dict[str, str]]:
    return [{"log_id": log_id_at(start + every * index, index)} for index in range(count)]


def reading(start: datetime, every: timedelta) -> Fetched:
    fetched = Fetched(reading=True)
    fetched.record(page(start, every))
    return fetched


def pace(busy: int, *, needed: int = 8, saturated: bool = False) -> Pace:
    return Pace(cursors=8, busy=busy, needed=needed, saturated=saturated, horizon=HORIZON)


def bounded(index: int, start: datetime, end: datetime) -> RangeState:
    return RangeState(
        id=index, start=None, end=None, start_after=synthesize(start), end_id=synthesize(end)
    )


def test_where_a_reader_stands_and_what_is_left_come_from_its_last_page() -> None:
    fetched = reading(T0, timedelta(seconds=10))  # 100 logs, one every 10 s
    assert fetched.to == T0 + timedelta(seconds=990)
    assert fetched.density is not None and abs(fetched.density - 0.1) < 1e-9
    item = bounded(0, T0, T0 + timedelta(seconds=990 + 10_000))
    left = pages_left(item, fetched, HORIZON)
    assert left is not None and abs(left - 10.0) < 1e-6  # 1,000 logs left: 10 pages
    assert pages_left(item, Fetched(reading=True), HORIZON) is None  # before its first page
    open_tail = RangeState(id=1, start=None, end=None, start_after=synthesize(T0))
    assert pages_left(open_tail, fetched, T0 + timedelta(seconds=990)) == 0  # at the newest


def test_no_free_cursor_no_split() -> None:
    item = bounded(0, T0, T0 + timedelta(days=1))
    ranges = [(item, reading(T0, timedelta(seconds=1)))]
    assert choose_split(ranges, pace=pace(busy=8), new_id=9) is None


def test_a_free_cursor_cuts_the_range_with_most_left_after_its_reader() -> None:
    light = bounded(0, T0, T0 + timedelta(days=1))
    heavy = bounded(1, T0 + timedelta(days=1), T0 + timedelta(days=2))
    heavy_reader = reading(T0 + timedelta(days=1), timedelta(seconds=2))
    ranges = [(light, reading(T0, timedelta(seconds=60))), (heavy, heavy_reader)]
    split = choose_split(ranges, pace=pace(busy=2, needed=6), new_id=7)
    assert split is not None and split.victim is heavy
    new = split.new
    assert new.id == 7 and new.end_id == heavy.end_id  # it takes the victim's far part ...
    assert (new.start, new.end) == (heavy.start, heavy.end)  # ... with the same dates
    cut = write_time(new.start_after)
    assert cut is not None and heavy_reader.to is not None
    assert heavy_reader.to < cut < T0 + timedelta(days=2)  # after every id fetched, before end
    assert new.start_after > synthesize(heavy_reader.to)


def test_in_a_burst_the_victim_keeps_its_share_nearer_its_reader() -> None:
    # A reader entering a burst (a log every 0.4 s) in a range that runs a day further: cut at
    # the middle of the day, the new range would get the quiet hours and leave the burst alone.
    item = bounded(0, T0, T0 + timedelta(days=1))
    burst = reading(T0 + timedelta(hours=1), timedelta(seconds=0.4))
    others = [
        (bounded(index, T0 + timedelta(days=index), T0 + timedelta(days=index + 1)), fetched)
        for index, fetched in (
            (1, reading(T0 + timedelta(days=1), timedelta(seconds=60))),
            (2, reading(T0 + timedelta(days=2), timedelta(seconds=60))),
        )
    ]
    split = choose_split([(item, burst), *others], pace=pace(busy=3, needed=6), new_id=5)
    assert split is not None and split.victim is item
    cut = write_time(split.new.start_after)
    assert cut is not None and burst.to is not None
    middle = burst.to + (T0 + timedelta(days=1) - burst.to) / 2
    assert cut - burst.to < (middle - burst.to) * 0.6  # well short of the middle of its time


def test_while_the_limit_sets_the_pace_only_a_range_left_alone_at_the_end_is_cut() -> None:
    even = [
        (bounded(index, T0 + timedelta(days=index), T0 + timedelta(days=index + 1)), fetched)
        for index, fetched in (
            (0, reading(T0, timedelta(seconds=30))),
            (1, reading(T0 + timedelta(days=1), timedelta(seconds=30))),
        )
    ]
    # Enough cursors to keep up, or the limit holding requests back: balanced ranges stay.
    assert choose_split(even, pace=pace(busy=2, needed=2), new_id=3) is None
    assert choose_split(even, pace=pace(busy=2, needed=6, saturated=True), new_id=3) is None
    # ... but not one with far more left than the others: it would be read alone at the end.
    long = bounded(2, T0 + timedelta(days=2), T0 + timedelta(days=4))
    ranges = [*even, (long, reading(T0 + timedelta(days=2), timedelta(seconds=10)))]
    split = choose_split(ranges, pace=pace(busy=3, needed=3, saturated=True), new_id=3)
    assert split is not None and split.victim is long
    # Unless one cursor keeps up with the limit alone (a small bucket): then the cut would
    # only cost part of a page.
    assert choose_split(ranges, pace=pace(busy=3, needed=1, saturated=True), new_id=3) is None


def test_a_lone_cursor_that_keeps_up_is_never_cut() -> None:
    # A small tenant on the free plan: one range, one cursor enough for the bucket.
    item = RangeState(id=0, start=None, end=None, start_after=synthesize(T0))
    ranges = [(item, reading(T0, timedelta(seconds=30)))]
    assert choose_split(ranges, pace=pace(busy=1, needed=1), new_id=1) is None
    split = choose_split(ranges, pace=pace(busy=1, needed=2), new_id=1)  # a slow round trip
    assert split is not None and split.new.end_id is None  # the new one is the open tail


def test_a_range_nearly_read_is_not_worth_a_cut() -> None:
    item = bounded(0, T0, T0 + timedelta(seconds=99 + 250))  # 2.5 pages left
    ranges = [(item, reading(T0, timedelta(seconds=1)))]
    assert choose_split(ranges, pace=pace(busy=1, needed=8), new_id=1) is None


def test_a_range_whose_reader_caught_up_is_never_cut() -> None:
    # Its reader ends with the ends it took with that short page: a cut made after it would
    # leave the range bounded, and not done.
    item = RangeState(id=0, start=None, end=None, start_after=synthesize(T0))
    fetched = reading(T0, timedelta(seconds=30))
    fetched.record(page(T0 + timedelta(hours=1), timedelta(seconds=30), count=40), final=True)
    assert pages_left(item, fetched, HORIZON) is None
    assert choose_split([(item, fetched)], pace=pace(busy=1, needed=8), new_id=1) is None
