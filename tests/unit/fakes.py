"""In-memory stand-ins for Auth0 and Tinybird, for pipeline tests (no sockets)."""

from __future__ import annotations

import asyncio
import bisect
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from backfill.errors import Auth0RequestError
from backfill.records.batches import Batch
from backfill.tinybird.events import AppendResult

Record = dict[str, Any]


def log_id_at(written: datetime, serial: int) -> str:
    written = written.astimezone(UTC)
    return (
        "900" + written.strftime("%Y%m%d%H%M%S") + f"{written.microsecond:06d}" + f"{serial:033d}"
    )


def make_tenant(
    count: int, start: datetime, span: timedelta, *, types: tuple[str, ...] = ("s", "f", "seacft")
) -> list[Record]:
    """``count`` records over ``span``; ids written 0.02-5 s after ``date``, in id order."""
    records = []
    step = span / count
    for index in range(count):
        written = start + step * index + timedelta(seconds=5)
        lag = timedelta(milliseconds=20 + (index * 7919) % 4980)
        date = written - lag
        log_id = log_id_at(written, index)
        records.append(
            {
                "date": date.strftime("%Y-%m-%dT%H:%M:%S.") + f"{date.microsecond // 1000:03d}Z",
                "type": types[index % len(types)],
                "description": f"event {index} ünïcødé",
                "scope": "openid profile" if index % 3 == 0 else ["read:logs"],
                "log_id": log_id,
                "_id": log_id,
                "isMobile": False,
            }
        )
    return records


class FakeAuth0:
    """Checkpoint paging over a list, with the reference's semantics (exclusive from)."""

    def __init__(self, records: list[Record], *, oldest_index: int = 0, delay: float = 0.0) -> None:
        self.delay = delay
        self.records = records
        self.ids = [record["log_id"] for record in records]
        self.oldest_index = oldest_index
        self.streams: list[Record] | None = []  # None: the token may not list them
        self.requests = 0
        self.page_searches = 0

    async def page_after(self, checkpoint: str, take: int = 100) -> list[Record]:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.oldest_index and checkpoint < self.ids[self.oldest_index]:
            raise Auth0RequestError("from is too old", status=400)
        start = bisect.bisect_right(self.ids, checkpoint)
        return [dict(record) for record in self.records[start : start + take]]

    async def get(self, log_id: str) -> Record | None:
        index = bisect.bisect_left(self.ids, log_id)
        if index < len(self.ids) and self.ids[index] == log_id:
            return dict(self.records[index])
        return None

    async def oldest(self) -> Record | None:
        visible = self.records[self.oldest_index :]
        if not visible:
            return None
        return dict(min(visible[:100], key=lambda record: record["date"]))

    async def oldest_page(self) -> list[Record]:
        """Search mode: the first page by date, which may differ from id order."""
        self.page_searches += 1
        by_date = sorted(self.records[self.oldest_index :], key=lambda record: record["date"])
        return [dict(record) for record in by_date[:100]]

    async def newest_page(self) -> list[Record]:
        self.page_searches += 1
        return [dict(record) for record in self.records[self.oldest_index :][-100:][::-1]]

    async def search(
        self, *, q: str | None = None, sort: str = "date:1", per_page: int = 100, page: int = 0
    ) -> list[Record]:
        raise NotImplementedError

    async def log_streams(self) -> list[Record] | None:
        return self.streams


class FakeTinybird:
    """Stores appended envelopes; acknowledges after a per-batch delay (so out of order), and
    can lose one acknowledgement after storing the rows (``fail_on``)."""

    def __init__(self, delays: list[float] | None = None, fail_on: int | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self.appends: list[tuple[int, int]] = []  # (range, seq) in acknowledgement order
        self.delays = delays or []
        self.fail_on = fail_on
        self.calls = 0

    async def append(self, batch: Batch) -> AppendResult:
        call = self.calls
        self.calls += 1
        if self.delays:
            await asyncio.sleep(self.delays[call % len(self.delays)])
        envelopes = [json.loads(line) for line in batch.lines()]
        self.rows.extend(envelopes)
        self.appends.append((batch.range_id, batch.seq))
        if self.fail_on is not None and call == self.fail_on:
            # The rows landed but the acknowledgement is lost: the worst case for duplicates.
            raise RuntimeError("scripted sink failure")
        return AppendResult(successful_rows=len(envelopes))


class Blocking:
    """An object whose coroutine methods each run to their end in an event loop of their own:
    tests call the job's clients as plain functions."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            return asyncio.run(method(*args, **kwargs))

        return call


def recorder(waits: list[float]) -> Any:
    """A retry policy's sleep that records each wait instead of sleeping."""

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return sleep
