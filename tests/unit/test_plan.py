"""The planner alone: where a run starts (``find_start``), and how the run is cut into ranges
(``split``, ``estimate_pages``)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from backfill.auth0.log_ids import order_key, synthesize, write_time
from backfill.run.plan import (
    StartPoint,
    derive_start,
    estimate_pages,
    find_start,
    newest_written,
    searched_after,
    split,
)
from backfill.timeutil import iso
from tests.unit.fakes import FakeAuth0, make_tenant

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MARGIN = timedelta(seconds=60)


class Searchable(FakeAuth0):
    """Search mode for tenants whose ids are not of the observed shape."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(records)
        self.searches: list[str | None] = []

    async def search(self, *, q: str | None = None, sort: str = "date:1", **_: Any) -> list[Any]:
        self.searches.append(q)
        return [dict(self.records[10])]


async def start_of(source: FakeAuth0, **given: Any) -> tuple[StartPoint | None, list[str]]:
    notes: list[str] = []
    point = await find_start(
        source,
        from_date=given.get("from_date"),
        from_log_id=given.get("from_log_id"),
        margin=MARGIN,
        notes=notes.append,
    )
    return point, notes


def test_no_start_given_means_the_oldest_log_emitted_first() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    point, notes = asyncio.run(start_of(FakeAuth0(records)))
    assert point is not None
    assert point.start_after == point.lead == records[0]["log_id"]  # from is exclusive
    assert point.shaped and point.lower is None
    assert "starting from the oldest log" in notes[0]


def test_from_date_becomes_an_id_a_margin_earlier_filtered_on_date() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    wanted = T0 + timedelta(hours=6)
    point, notes = asyncio.run(start_of(FakeAuth0(records), from_date=wanted))
    assert point is not None and not notes
    assert point.start_after == synthesize(wanted - MARGIN) and point.lead is None
    assert point.lower == point.moment == wanted


def test_a_from_date_before_retention_starts_at_the_oldest_and_says_so() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    point, notes = asyncio.run(start_of(FakeAuth0(records, oldest_index=100), from_date=T0))
    assert point is not None and point.lead == records[100]["log_id"]
    assert "before the oldest log Auth0 still retains" in notes[0]


def test_from_log_id_is_exclusive_and_an_aged_out_one_starts_at_the_oldest() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    point, notes = asyncio.run(start_of(FakeAuth0(records), from_log_id=records[42]["log_id"]))
    assert point is not None and point.start_after == records[42]["log_id"]
    assert point.lead is None and not notes
    point, notes = asyncio.run(
        start_of(FakeAuth0(records, oldest_index=100), from_log_id=records[42]["log_id"])
    )
    assert point is not None and point.lead == records[100]["log_id"]
    assert "older than the oldest log" in notes[0]


def test_ids_of_another_shape_find_the_start_by_search() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    for index, record in enumerate(records):
        record["log_id"] = f"{index:030d}"
    source = Searchable(records)
    point, _ = asyncio.run(start_of(source, from_date=T0 + timedelta(hours=6)))
    assert point is not None and not point.shaped
    assert point.start_after == records[10]["log_id"]
    assert source.searches == [f"date:[* TO {iso(T0 + timedelta(hours=6) - MARGIN)}}}"]


def test_an_empty_tenant_has_no_start() -> None:
    assert asyncio.run(start_of(FakeAuth0([])))[0] is None


def test_a_from_date_start_is_derived_from_one_page_that_is_also_the_first_read() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    wanted = T0 + timedelta(hours=6)
    source = FakeAuth0(records)
    derived = asyncio.run(derive_start(source, wanted, MARGIN))
    assert derived is not None
    point, page = derived
    first = min(i for i, r in enumerate(records) if r["log_id"] > synthesize(wanted - MARGIN))
    assert page == records[first : first + 100]  # the page after the synthesized id
    assert point.start_after == point.lead == records[first]["log_id"]  # emitted first
    assert point.lower == point.moment == wanted and point.shaped
    assert source.requests == 1 and source.page_searches == 0  # no search


def test_what_a_derived_start_cannot_vouch_for_is_left_to_the_search() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    # Auth0 refuses an id older than what it retains (a 400, as reported).
    aged = FakeAuth0(records, oldest_index=100)
    assert asyncio.run(derive_start(aged, T0, MARGIN)) is None
    # Nothing after the date.
    assert asyncio.run(derive_start(FakeAuth0(records), T0 + timedelta(days=2), MARGIN)) is None
    # The first log comes long after the date: retention, or a quiet stretch; the search says.
    late = [r for r in records if r["date"] >= iso(T0 + timedelta(hours=12))]
    assert asyncio.run(derive_start(FakeAuth0(late), T0 + timedelta(hours=6), MARGIN)) is None
    # Ids of another shape.
    odd = [{**record, "log_id": f"{index:030d}"} for index, record in enumerate(records)]
    assert asyncio.run(derive_start(FakeAuth0(odd), T0, MARGIN)) is None


def test_ranges_are_cut_at_log_ids_up_to_the_newest_log_and_share_the_run_dates() -> None:
    point = StartPoint(synthesize(T0 - MARGIN), None, T0, T0, True)
    newest = T0 + timedelta(hours=10)
    ranges = split(point, end=None, now=T0 + timedelta(days=4), cursors=8, horizon=newest)
    assert len(ranges) == 8
    assert ranges[0].start_after == point.start_after and ranges[-1].end_id is None
    for before, after in itertools.pairwise(ranges):
        assert before.end_id == after.start_after  # ids after one cut, up to the next
        assert order_key(after.start_after) > order_key(before.start_after)
        cut = write_time(after.start_after)
        assert cut is not None and T0 < cut < newest  # the logs' span, not up to now
    assert {(item.start, item.end) for item in ranges} == {(iso(T0), None)}
    assert [item.id for item in ranges] == list(range(8))
    assert not any(item.bounded for item in ranges[-1:])  # the last one: until caught up


def test_a_run_with_an_end_keeps_it_on_every_range_and_cuts_before_it() -> None:
    oldest = make_tenant(1, T0, timedelta(seconds=1))[0]
    point = StartPoint(oldest["log_id"], oldest["log_id"], None, T0, True, lead_record=oldest)
    end = T0 + timedelta(hours=4)
    ranges = split(point, end=end, now=T0 + timedelta(days=1), cursors=4)
    assert [item.end for item in ranges] == [iso(end)] * 4
    assert ranges[0].lead == oldest["log_id"] and all(item.lead is None for item in ranges[1:])
    assert all(item.start is None for item in ranges)
    cuts = [write_time(item.start_after) for item in ranges[1:]]
    assert cuts == [T0 + timedelta(hours=hours) for hours in (1, 2, 3)]


def test_split_gives_no_range_fewer_pages_than_worth_a_cursor() -> None:
    point = StartPoint(synthesize(T0), None, T0, T0, True)
    later = T0 + timedelta(days=1)
    assert len(split(point, end=None, now=later, cursors=8, expected_pages=9)) == 2
    assert len(split(point, end=None, now=later, cursors=8, expected_pages=3_000)) == 8
    assert len(split(point, end=None, now=later, cursors=1, expected_pages=3_000)) == 1
    short = split(point, end=None, now=T0 + timedelta(minutes=3), cursors=8)
    assert len(short) == 3  # none shorter than a minute


def test_pages_are_estimated_from_the_oldest_and_newest_pages() -> None:
    day = make_tenant(3_000, T0, timedelta(days=1))  # 3,000 logs in a day, then nothing
    oldest, newest = day[:100], day[-100:][::-1]
    horizon = newest_written(newest)
    assert horizon is not None and horizon == write_time(day[-1]["log_id"])
    estimate = estimate_pages([oldest, newest], horizon - T0)
    assert estimate is not None and 27 <= estimate <= 33  # 30 pages
    assert estimate_pages([day[:40]], timedelta(days=5)) == 0.4  # fewer logs than a page


def paged_after(source: FakeAuth0, log_id: str) -> list[str]:
    found: list[str] = []
    while page := asyncio.run(source.page_after(log_id)):
        found += [record["log_id"] for record in page]
        log_id = page[-1]["log_id"]
    return found


def test_the_oldest_page_gives_what_paging_after_its_lead_would_return_first() -> None:
    records = make_tenant(1_000, T0, timedelta(minutes=5))  # ids 0.02-5 s after their dates
    source = FakeAuth0(records)
    page = asyncio.run(source.oldest_page())  # by date: not the first hundred ids
    assert [r["log_id"] for r in page] != [r["log_id"] for r in records[:100]]
    lead = min(r["log_id"] for r in page)
    searched = [r["log_id"] for r in searched_after(page, lead)]
    assert 50 < len(searched) < 100 and searched == sorted(searched)
    # Paging on from the last of them misses nothing and repeats nothing.
    assert searched + paged_after(source, searched[-1]) == paged_after(source, lead)


def test_a_page_short_of_full_holds_every_log_after_its_lead() -> None:
    records = make_tenant(40, T0, timedelta(minutes=1))
    page = asyncio.run(FakeAuth0(records).oldest_page())
    lead = min(r["log_id"] for r in page)
    assert [r["log_id"] for r in searched_after(page, lead)] == [r["log_id"] for r in records[1:]]


def test_nothing_is_taken_from_a_page_it_cannot_vouch_for() -> None:
    page = asyncio.run(FakeAuth0(make_tenant(300, T0, timedelta(minutes=5))).oldest_page())
    lead = min(r["log_id"] for r in page)
    undated = [dict(r) for r in page]
    undated[50]["date"] = None
    assert searched_after(undated, lead) == []  # where the page ends in time is unknown
    other_shape = [dict(r, log_id=f"log{i}") for i, r in enumerate(page)]
    assert searched_after(other_shape, "log0") == []  # ids that tell no write time
