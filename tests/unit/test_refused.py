"""A row Tinybird refuses as too large even alone: every acknowledged batch recorded, the row held
as refused, the run stopped; the next run skips it as asked, or tries it once more."""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from datetime import timedelta

import pytest

from backfill.auth0.log_ids import order_key
from backfill.errors import RowsRefusedError
from backfill.records.batches import Batch
from backfill.run.refused import LeaveOut, settle_refused
from backfill.state.model import LeftOut, RunState
from backfill.timeutil import stamp
from backfill.tinybird.events import AppendResult, LeftOutRow
from tests.unit.fakes import FakeAuth0, FakeTinybird, make_tenant
from tests.unit.test_pipeline import T0, plan, run, sent_ids


class Refusing(FakeTinybird):
    """Stores every row but ``too_large``, which it leaves out as the real sink does on a 413."""

    def __init__(self, too_large: str, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.too_large = too_large

    async def append(self, batch: Batch) -> AppendResult:
        if self.too_large not in batch.log_ids():
            return await super().append(batch)
        rest = batch.without({self.too_large})
        result = await super().append(rest) if rest.rows else AppendResult()
        result.left_out.append(LeftOutRow(self.too_large, batch.min_date, "refused"))
        return result


def test_acknowledged_batches_after_a_refused_row_are_all_recorded() -> None:
    records = make_tenant(2000, T0, timedelta(days=1))
    current = plan(records, cursors=1)
    too_large = records[230]["log_id"]
    # The refused row's batch is acknowledged last: the ones after it land before it.
    sink = Refusing(too_large, delays=[0.0, 0.0, 0.0, 0.0, 0.05, 0.0, 0.0])
    with pytest.raises(RowsRefusedError, match=f"--skip-log-id {too_large}"):
        run(FakeAuth0(records), sink, current, max_rows=50, concurrency=1)
    sent = sent_ids(sink)
    assert too_large not in sent and len(sent) > 250  # later batches landed too
    # Every acknowledged row is recorded: counted, in the ledger, behind the checkpoint.
    assert current.rows_sent == len(sent) == sum(current.ledger.values())
    cursor = current.ranges[0].cursor
    assert cursor is not None and max(order_key(log_id) for log_id in sent) <= order_key(cursor)
    assert [entry.log_id for entry in current.refused] == [too_large]

    # The next run, told to skip it, sends the rest and nothing twice.
    asyncio.run(
        settle_refused(
            current,
            skip=frozenset({too_large}),
            source=FakeAuth0(records),
            sink=FakeTinybird(),
            save=lambda state: None,
            note=lambda text: None,
            preview=False,
        )
    )
    assert not current.refused and [entry.log_id for entry in current.skipped] == [too_large]
    rest = FakeTinybird()
    run(FakeAuth0(records), rest, current, max_rows=50, concurrency=1)
    everything = Counter(sent + sent_ids(rest))
    assert max(everything.values()) == 1  # nothing acknowledged was sent again
    assert set(everything) == {record["log_id"] for record in records} - {too_large}


def refused_state() -> tuple[RunState, list[dict[str, object]], str]:
    records = make_tenant(300, T0, timedelta(hours=5))
    current = plan(records, cursors=1)
    log_id = str(records[7]["log_id"])
    current.refused = [LeftOut(log_id, stamp(records[7]["date"]), "too large", "then")]
    return current, records, log_id


def test_a_refused_row_is_tried_once_more_first() -> None:
    current, records, log_id = refused_state()
    sink, saves, notes = FakeTinybird(), [], []
    asyncio.run(
        settle_refused(
            current,
            skip=frozenset(),
            source=FakeAuth0(records),
            sink=sink,
            save=saves.append,
            note=notes.append,
            preview=False,
        )
    )
    assert sent_ids(sink) == [log_id] and not current.refused and current.rows_sent == 1
    assert sum(current.ledger.values()) == 1 and saves and "accepted this time" in notes[0]


def test_a_refused_row_tried_again_has_its_personal_data_dropped_too() -> None:
    current, records, log_id = refused_state()
    for record in records:
        record["user_name"] = "neo@example.com"
    sink = FakeTinybird()
    asyncio.run(
        settle_refused(
            current,
            skip=frozenset(),
            source=FakeAuth0(records),
            sink=sink,
            save=lambda _: None,
            note=lambda _: None,
            preview=False,
            pii_fields=frozenset({"email", "username"}),
        )
    )
    (row,) = sink.rows
    assert row["log_id"] == log_id and row["data"]["user_name"] is None


def test_refused_again_stops_with_the_state_as_it_was() -> None:
    current, records, log_id = refused_state()
    before = copy.deepcopy(current)
    with pytest.raises(
        RowsRefusedError, match=f"1 log as too large \\(413\\), even alone: {log_id}\\."
    ) as refused:
        asyncio.run(
            settle_refused(
                current,
                skip=frozenset(),
                source=FakeAuth0(records),
                sink=Refusing(log_id),
                save=lambda state: pytest.fail("saved"),
                note=lambda text: None,
                preview=False,
            )
        )
    assert refused.value.exit_code == 9
    assert current == before


def test_skip_leaves_the_log_out_of_any_batch_that_carries_it() -> None:
    records = make_tenant(300, T0, timedelta(hours=5))
    current = plan(records, cursors=1)
    skipped = {records[3]["log_id"], records[150]["log_id"]}
    sink = FakeTinybird()
    run(FakeAuth0(records), LeaveOut(sink, frozenset(skipped)), current, max_rows=50)  # type: ignore[arg-type]
    assert set(sent_ids(sink)) == {record["log_id"] for record in records} - skipped
    assert {entry.log_id for entry in current.skipped} == skipped
    assert current.rows_sent == sum(current.ledger.values()) == len(records) - 2
