"""The pipeline against in-memory fakes: every guarantee that concurrency must keep."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backfill.auth0.log_ids import order_key, synthesize
from backfill.errors import CheckpointExpiredError
from backfill.records.batches import BatchLimits
from backfill.run.pipeline import Pipeline, RunOptions
from backfill.run.plan import StartPoint, split
from backfill.run.stopper import Stopper
from backfill.state.model import RunState, new_state
from backfill.timeutil import parse_record_date
from tests.unit.fakes import FakeAuth0, FakeTinybird, make_tenant

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=3, hours=1)
MARGIN = timedelta(seconds=60)


def plan(
    records: list[dict],
    *,
    lower: datetime | None = None,
    end: datetime | None = None,
    cursors: int = 4,
) -> RunState:
    current = new_state(tenant="t", datasource="auth0", tinybird_host="h", started_with={})
    if lower is None:
        oldest = records[0]
        start = StartPoint(
            oldest["log_id"], oldest["log_id"], None, parse_record_date(oldest["date"]), True
        )
    else:
        start = StartPoint(synthesize(lower - MARGIN), None, lower, lower, True)
    current.ranges = split(start, end=end, now=NOW, cursors=cursors)
    return current


def run(
    auth0: FakeAuth0,
    sink: FakeTinybird,
    current: RunState,
    *,
    saves: list[RunState] | None = None,
    landed: Any = None,
    **options: Any,
) -> Pipeline:
    def save(snapshot: RunState) -> None:
        if saves is not None:
            saves.append(copy.deepcopy(snapshot))

    pipeline = Pipeline(
        source=auth0,
        sink=sink,
        state=current,
        save=save,
        options=RunOptions(
            limits=BatchLimits(max_rows=options.pop("max_rows", 50)),
            in_flight=4,
            late_margin=MARGIN,
            resume_settle=0.0,
            **options,
        ),
        stopper=Stopper(),
        landed_between=landed,
        now=lambda: NOW,
    )
    asyncio.run(pipeline.run())
    return pipeline


def expected(
    records: list[dict], lower: datetime | None = None, upper: datetime | None = None
) -> list[str]:
    ids = []
    for record in records:
        date = parse_record_date(record["date"])
        assert date is not None
        if (lower is None or date >= lower) and (upper is None or date < upper):
            ids.append(record["log_id"])
    return ids


def sent_ids(sink: FakeTinybird) -> list[str]:
    return [row["log_id"] for row in sink.rows]


def test_everything_from_the_oldest_exactly_once_across_ranges() -> None:
    records = make_tenant(3000, T0, timedelta(days=3))
    current = plan(records)
    assert len(current.ranges) == 4  # really concurrent
    sink = FakeTinybird(delays=[0.0, 0.003, 0.001])
    run(FakeAuth0(records), sink, current)
    ids = sent_ids(sink)
    assert Counter(ids).most_common(1)[0][1] == 1  # no overlap between ranges
    assert sorted(ids, key=order_key) == expected(records)  # nothing lost
    by_id = {record["log_id"]: record for record in records}
    for row in sink.rows[:50]:
        original = by_id[row["log_id"]]
        assert row["data"]["description"] == original["description"]
        assert isinstance(row["data"]["scope"], list) and "_id" not in row["data"]
    bounded = [item for item in current.ranges if item.bounded]
    assert all(item.done for item in bounded)
    assert sum(current.ledger.values()) == len(records) == current.rows_sent
    assert not current.pending


def test_from_date_until_date_are_inclusive_exclusive_on_date() -> None:
    records = make_tenant(3000, T0, timedelta(days=3))
    lower, upper = T0 + timedelta(hours=13, minutes=7), T0 + timedelta(days=2, hours=3)
    current = plan(records, lower=lower, end=upper)
    sink = FakeTinybird()
    run(FakeAuth0(records), sink, current)
    assert sorted(sent_ids(sink), key=order_key) == expected(records, lower, upper)
    assert current.finished()


def test_checkpoint_never_passes_an_unacknowledged_batch() -> None:
    records = make_tenant(2000, T0, timedelta(days=3))
    current = plan(records)
    sink = FakeTinybird(delays=[0.02, 0.0, 0.01, 0.0, 0.005])  # acknowledgements out of order
    saves: list[RunState] = []
    stored: list[set[str]] = []

    def save_and_check(snapshot: RunState) -> None:
        landed = set(sent_ids(sink))
        saves.append(copy.deepcopy(snapshot))
        stored.append(landed)

    pipeline = Pipeline(
        source=FakeAuth0(records),
        sink=sink,
        state=current,
        save=save_and_check,
        options=RunOptions(limits=BatchLimits(max_rows=40), in_flight=4, late_margin=MARGIN),
        stopper=Stopper(),
        now=lambda: NOW,
    )
    asyncio.run(pipeline.run())
    assert len(saves) > 20
    for snapshot, landed in zip(saves, stored, strict=True):
        for item in snapshot.ranges:
            if item.cursor is None:
                continue
            low, high = parse_record_date(item.start), parse_record_date(item.end)
            for record in records:
                if order_key(record["log_id"]) > order_key(item.cursor):
                    break
                date = parse_record_date(record["date"])
                assert date is not None
                if (
                    (low is None or date >= low)
                    and (high is None or date < high)
                    and record["log_id"] >= item.start_after
                ):
                    assert record["log_id"] in landed, "checkpoint passed an unacknowledged row"


def test_acknowledgements_commit_in_read_order_per_range() -> None:
    records = make_tenant(1500, T0, timedelta(days=3))
    current = plan(records, cursors=1)
    assert len(current.ranges) == 1
    sink = FakeTinybird(delays=[0.03, 0.0, 0.0, 0.01])
    saves: list[RunState] = []
    run(FakeAuth0(records), sink, current, saves=saves, max_rows=25, concurrency=1)
    acked_order = [seq for _, seq in sink.appends]
    assert acked_order != sorted(acked_order)  # acknowledgements really arrived out of order
    cursors = [snapshot.ranges[0].cursor for snapshot in saves if snapshot.ranges[0].cursor]
    assert cursors == sorted(cursors, key=order_key)  # ... yet the checkpoint only moved forward


def test_a_crash_then_resume_loses_nothing_and_with_dedup_duplicates_nothing() -> None:
    records = make_tenant(2500, T0, timedelta(days=3))
    current = plan(records)
    sink = FakeTinybird(delays=[0.001], fail_on=17)
    saves: list[RunState] = []
    with pytest.raises(RuntimeError, match="scripted sink failure"):
        run(FakeAuth0(records), sink, current, saves=saves)
    crashed = copy.deepcopy(saves[-1])
    assert crashed.pending  # appends that were in flight are recorded
    sink.fail_on = None

    async def landed(pending: Any) -> set[str]:
        have = set(sent_ids(sink))
        return {
            i
            for i in have
            if order_key(pending.first_log_id) <= order_key(i) <= order_key(pending.last_log_id)
        }

    pipeline = run(FakeAuth0(records), sink, crashed, landed=landed)
    ids = sent_ids(sink)
    assert sorted(set(ids), key=order_key) == expected(records)
    assert len(ids) == len(set(ids)), "a resume with read access adds no duplicates"
    assert pipeline.counts.already_in_tinybird > 0


def test_type_filter_still_moves_the_checkpoint() -> None:
    records = make_tenant(900, T0, timedelta(days=3), types=("s", "f", "f", "f"))
    current = plan(records, cursors=1)
    sink = FakeTinybird()
    pipeline = run(
        FakeAuth0(records), sink, current, keep_type=lambda code: code == "s", concurrency=1
    )
    assert {row["data"]["type"] for row in sink.rows} == {"s"}
    assert len(sink.rows) == len([r for r in records if r["type"] == "s"])
    assert current.ranges[0].cursor == records[-1]["log_id"]
    assert pipeline.counts.filtered == len(records) - len(sink.rows)


def test_an_expired_checkpoint_stops_or_restarts_from_the_oldest() -> None:
    records = make_tenant(600, T0, timedelta(days=3))
    current = plan(records, cursors=1)
    current.ranges[0].cursor = records[100]["log_id"]
    auth0 = FakeAuth0(records, oldest_index=300)
    before = json.dumps(current.to_json(), sort_keys=True)
    with pytest.raises(
        CheckpointExpiredError, match="older than the oldest log Auth0 still retains"
    ):
        run(auth0, FakeTinybird(), current)
    assert current.ranges[0].cursor == records[100]["log_id"]
    assert json.loads(before)["ranges"][0]["cursor"] == current.ranges[0].cursor

    sink = FakeTinybird()
    run(auth0, sink, current, restart_from_oldest=True)
    oldest_id = asyncio.run(auth0.oldest())["log_id"]  # type: ignore[index]
    assert oldest_id == records[300]["log_id"]
    visible = [r["log_id"] for r in records[300:]]
    assert sorted(sent_ids(sink), key=order_key) == visible
    assert len(current.gaps) == 1 and current.gaps[0].seconds > 0


def test_idle_cursors_split_the_longest_range_and_keep_every_guarantee() -> None:
    sparse = make_tenant(400, T0, timedelta(days=2, hours=12))
    dense = make_tenant(9000, T0 + timedelta(days=2, hours=13), timedelta(hours=11))
    for index, record in enumerate(dense):  # distinct ids after the sparse ones
        record["log_id"] = record["log_id"][:-12] + f"{index + 500:012d}"
        record["_id"] = record["log_id"]
    records = sparse + dense
    current = plan(records, cursors=4)
    planned = len(current.ranges)
    saves: list[RunState] = []
    sink = FakeTinybird()
    run(FakeAuth0(records, delay=0.002), sink, current, saves=saves, concurrency=4, max_rows=500)
    assert len(current.ranges) > planned, "no idle cursor took over part of the dense range"
    ids = sent_ids(sink)
    assert len(ids) == len(set(ids)) == len(records)
    assert sorted(ids, key=order_key) == expected(records)
    bounded = [item for item in current.ranges if item.bounded]
    assert all(item.done for item in bounded)
    # Ranges still tile the log_ids without overlap: each range ends where the next begins.
    ordered = sorted(current.ranges, key=lambda item: order_key(item.start_after))
    for before, after in itertools.pairwise(ordered):
        assert before.end_id == after.start_after
    assert ordered[-1].end_id is None
