"""The process's memory budget (``run.budget``), measured by the job's own accounting: a run
whose budget is small stays within it, gives every byte back, and still sends every row once;
a tenant that Tinybird acknowledges slowly fills its own share, not the others'."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from backfill.records.batches import BatchLimits
from backfill.records.envelope import serialize, to_envelope
from backfill.run.budget import MemoryBudget, TenantBudget
from backfill.run.pipeline import Pipeline, RunOptions
from backfill.run.plan import StartPoint, split
from backfill.run.stopper import Stopper
from backfill.state.model import RunState, new_state
from backfill.timeutil import parse_record_date
from tests.unit.fakes import FakeAuth0, FakeTinybird, make_tenant

T0 = datetime(2026, 11, 1, tzinfo=UTC)
NOW = T0 + timedelta(days=3, hours=1)
CURSORS = 4


def whole_run(records: list[dict[str, object]]) -> RunState:
    state = new_state(tenant="t", datasource="auth0", tinybird_host="h", started_with={})
    oldest = records[0]
    moment = parse_record_date(str(oldest["date"]))
    assert moment is not None
    start = StartPoint(str(oldest["log_id"]), str(oldest["log_id"]), None, moment, True)
    state.ranges = split(start, end=None, now=NOW, cursors=CURSORS)
    return state


def pipeline(
    records: list[dict[str, object]], sink: FakeTinybird, budget: TenantBudget
) -> Pipeline:
    return Pipeline(
        source=FakeAuth0(records),
        sink=sink,
        state=whole_run(records),
        save=lambda _: None,
        options=RunOptions(
            # Batches as large as the settings allow, sent only at the end of a range: what
            # bounds them here is the budget alone.
            limits=BatchLimits(max_rows=100_000, max_bytes=1 << 30),
            concurrency=CURSORS,
            in_flight=4,
            resume_settle=0.0,
            flush_seconds=3600.0,
            first_flush_seconds=3600.0,
        ),
        stopper=Stopper(),
        now=lambda: NOW,
        budget=budget,
    )


def page_bytes(records: list[dict[str, object]]) -> int:
    """The most one page adds before the reader sees the share is full: its rows as sent, not
    compressed yet (the budget's slack, per cursor)."""
    return max(
        sum(len(serialize(to_envelope(dict(record)))) for record in records[at : at + 100])
        for at in range(0, len(records), 100)
    )


def test_a_small_budget_holds_and_every_row_still_lands_once() -> None:
    records = make_tenant(8000, T0, timedelta(days=3))
    slack = CURSORS * page_bytes(records)
    held: dict[int, int] = {}
    for total in (64 * 1024, 64 * 1024 * 1024):
        budget = MemoryBudget(total).tenant("t")
        sink = FakeTinybird(delays=[0.002])
        asyncio.run(pipeline(records, sink, budget).run())
        assert Counter(row["log_id"] for row in sink.rows) == Counter(
            record["log_id"] for record in records
        ), "every row once"
        assert budget.held == 0, "every byte given back"
        held[total] = budget.most
    assert held[64 * 1024] <= 64 * 1024 + slack
    # Without a budget that binds, the same run holds more: the small one is what bound it.
    assert held[64 * 1024 * 1024] > 64 * 1024 + slack


def test_a_slow_tenant_fills_its_own_share_and_starves_no_other() -> None:
    budget = MemoryBudget(128 * 1024)
    records = make_tenant(6000, T0, timedelta(days=3))
    slack = CURSORS * page_bytes(records)
    slow, fast = budget.tenant("slow"), budget.tenant("fast")
    slow_sink, fast_sink = FakeTinybird(delays=[0.05]), FakeTinybird(delays=[0.0])
    process_held: list[int] = []
    finished: list[str] = []

    async def both() -> None:
        async def one(name: str, tenant: TenantBudget, sink: FakeTinybird) -> None:
            original = sink.append

            async def watched(batch):  # type: ignore[no-untyped-def]
                process_held.append(budget.held())
                return await original(batch)

            sink.append = watched  # type: ignore[method-assign]
            await pipeline(records, sink, tenant).run()
            finished.append(name)

        await asyncio.gather(one("slow", slow, slow_sink), one("fast", fast, fast_sink))

    asyncio.run(both())
    assert finished == ["fast", "slow"], "the fast tenant was not held back by the slow one"
    assert len(fast_sink.rows) == len(slow_sink.rows) == len(records)
    share = budget.total // 2
    assert slow.most >= share, "the slow tenant did fill its share (and waited there)"
    assert slow.most <= share + slack and fast.most <= share + slack
    assert max(process_held) <= budget.total + 2 * slack
    assert slow.held == fast.held == 0
