"""The planner alone: where a run starts (``find_start``), and how a tail far behind is cut
again (``resplit_tail``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from backfill.auth0.log_ids import order_key, synthesize, write_time
from backfill.run.plan import RESPLIT_TAIL_AFTER, StartPoint, find_start, resplit_tail, split
from backfill.state import RangeState
from backfill.timeutil import iso, parse_record_date
from tests.unit.fakes import FakeAuth0, make_tenant

T0 = datetime(2026, 11, 1, tzinfo=UTC)
MARGIN = timedelta(seconds=60)


class Searchable(FakeAuth0):
    """Search mode for tenants whose ids are not of the observed shape."""

    def __init__(self, records: list[dict[str, Any]]) -> None:
        super().__init__(records)
        self.searches: list[str | None] = []

    def search(self, *, q: str | None = None, sort: str = "date:1", **_: Any) -> list[Any]:
        self.searches.append(q)
        return [dict(self.records[10])]


def start_of(source: FakeAuth0, **given: Any) -> tuple[StartPoint | None, list[str]]:
    notes: list[str] = []
    point = find_start(
        source,
        from_date=given.get("from_date"),
        from_log_id=given.get("from_log_id"),
        margin=MARGIN,
        notes=notes.append,
    )
    return point, notes


def test_no_start_given_means_the_oldest_log_emitted_first() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    point, notes = start_of(FakeAuth0(records))
    assert point is not None
    assert point.start_after == point.lead == records[0]["log_id"]  # from is exclusive
    assert point.shaped and point.lower is None
    assert "starting from the oldest log" in notes[0]


def test_from_date_becomes_an_id_a_margin_earlier_filtered_on_date() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    wanted = T0 + timedelta(hours=6)
    point, notes = start_of(FakeAuth0(records), from_date=wanted)
    assert point is not None and not notes
    assert point.start_after == synthesize(wanted - MARGIN) and point.lead is None
    assert point.lower == point.moment == wanted


def test_a_from_date_before_retention_starts_at_the_oldest_and_says_so() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    point, notes = start_of(FakeAuth0(records, oldest_index=100), from_date=T0)
    assert point is not None and point.lead == records[100]["log_id"]
    assert "before the oldest log Auth0 still retains" in notes[0]


def test_from_log_id_is_exclusive_and_an_aged_out_one_starts_at_the_oldest() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    point, notes = start_of(FakeAuth0(records), from_log_id=records[42]["log_id"])
    assert point is not None and point.start_after == records[42]["log_id"]
    assert point.lead is None and not notes
    point, notes = start_of(FakeAuth0(records, oldest_index=100), from_log_id=records[42]["log_id"])
    assert point is not None and point.lead == records[100]["log_id"]
    assert "older than the oldest log" in notes[0]


def test_ids_of_another_shape_find_the_start_by_search() -> None:
    records = make_tenant(500, T0, timedelta(days=1))
    for index, record in enumerate(records):
        record["log_id"] = f"{index:030d}"
    source = Searchable(records)
    point, _ = start_of(source, from_date=T0 + timedelta(hours=6))
    assert point is not None and not point.shaped
    assert point.start_after == records[10]["log_id"]
    assert source.searches == [f"date:[* TO {iso(T0 + timedelta(hours=6) - MARGIN)}}}"]


def test_an_empty_tenant_has_no_start() -> None:
    assert start_of(FakeAuth0([]))[0] is None


def tail_at(position: datetime) -> RangeState:
    records = make_tenant(10, position - timedelta(minutes=1), timedelta(minutes=1))
    item = RangeState(id=3, start=iso(T0), end=None, start_after=records[0]["log_id"])
    item.cursor = records[-1]["log_id"]
    return item


def test_a_tail_far_behind_is_cut_at_a_margin_after_what_it_committed() -> None:
    now = T0 + timedelta(days=2)
    done = RangeState(id=0, start=None, end=iso(T0), start_after="900", done=True)
    tail = tail_at(T0 + timedelta(days=1))
    ranges = resplit_tail([done, tail], now=now, cursors=4, margin=MARGIN, expected_logs=40_000)
    assert len(ranges) > 2
    committed = write_time(tail.position)
    assert committed is not None
    new = ranges[2:]
    assert tail.end == new[0].start  # the tail now ends where the new ranges begin
    first_cut = parse_record_date(new[0].start)
    assert first_cut is not None and first_cut >= committed + MARGIN
    ids = [item.id for item in new]
    assert min(ids) > 3 and len(set(ids)) == len(ids)  # new ids, none reused
    assert new[-1].end is None  # the last one stays open: until caught up
    for before, after in itertools.pairwise(new):
        assert before.end == after.start
        assert order_key(after.start_after) > order_key(tail.position)


def test_a_tail_close_to_now_or_a_single_cursor_is_left_alone() -> None:
    now = T0 + timedelta(days=2)
    near = tail_at(now - RESPLIT_TAIL_AFTER / 2)
    assert resplit_tail([near], now=now, cursors=8, margin=MARGIN) == [near]
    far = tail_at(T0)
    assert resplit_tail([far], now=now, cursors=1, margin=MARGIN) == [far]
    assert far.end is None


def test_split_gives_no_range_fewer_logs_than_worth_a_cursor() -> None:
    point = StartPoint(synthesize(T0), None, T0, T0, True)
    few = split(
        point, end=None, now=T0 + timedelta(days=1), cursors=8, margin=MARGIN, expected_logs=3_000
    )
    many = split(
        point, end=None, now=T0 + timedelta(days=1), cursors=8, margin=MARGIN, expected_logs=300_000
    )
    assert len(few) == 1 and len(many) == 16
