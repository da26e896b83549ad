"""A range's reader: pages one range by checkpoint, keeps what is dated inside it and of the
wanted types, and cuts batches.

It knows nothing of tasks, senders or the commit order: it talks to the pipeline through
``Outlet`` (hand over a batch, count what was read, say how far it fetched), so it can be tested
with a list standing in for the pipeline. Consuming a page is plain computation; the batches it
cuts are handed over after the page (``hand_over``), in order, which is where a full send queue
makes the reader wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from backfill.auth0.event_types import is_known
from backfill.auth0.log_ids import order_key, synthesize, write_time
from backfill.errors import Auth0RequestError
from backfill.records.batches import Batch, BatchBuilder, BatchLimits
from backfill.records.envelope import serialize, to_envelope
from backfill.records.pii import drop_pii
from backfill.run.retention import aged_out, expired_error, gap_to_oldest
from backfill.state.model import Gap, RangeState
from backfill.timeutil import iso, parse_record_date, stamp

log = logging.getLogger("backfill.pipeline")

Record = dict[str, Any]


class Source(Protocol):
    async def page_after(self, checkpoint: str, take: int = 100) -> list[Record]: ...

    async def get(self, log_id: str) -> Record | None: ...

    async def oldest(self) -> Record | None: ...


@dataclass
class ReadCounts:
    read: int = 0
    filtered: int = 0
    outside_range: int = 0
    undated: int = 0
    unknown_types: dict[str, int] = field(default_factory=dict)  # left out, not in the table


class Outlet(Protocol):
    """What a reader needs from the pipeline."""

    @property
    def stopping(self) -> bool: ...

    @property
    def checkpointed(self) -> bool:
        """This run has recorded rows as sent: from then on batches wait for ``flush_seconds``."""
        ...

    def fetched(self, range_id: int, page: list[Record]) -> tuple[str | None, str | None]:
        """Record how far the range has fetched; its ends now, ``(end, end_id)`` (a split may
        have moved them)."""
        ...

    async def emit(self, range_id: int, batch: Batch) -> None: ...

    async def reposition(self, range_id: int, mark: Batch, oldest_id: str, gap: Gap) -> None: ...

    def count(self, range_id: int, counts: ReadCounts, last_date: datetime | None) -> None: ...

    def caught_up(self, range_id: int, asked_at: datetime) -> None:
        """An open range read to its end: every log written before ``asked_at`` was read."""
        ...

    def hold(self, delta: int) -> None:
        """Bytes of batch data taken (positive) or given up to a batch (``run.budget``)."""
        ...

    def over_budget(self) -> bool:
        """The tenant holds its share of the memory budget: send, then wait, before reading."""
        ...

    @property
    def idle(self) -> bool:
        """Nothing of this tenant is on its way to Tinybird or waiting to be committed."""
        ...

    async def room(self) -> None:
        """Until acknowledgements give enough of the tenant's share back."""
        ...


class Stopping(Exception):
    """Raised inside the run's tasks once it is stopping."""


@dataclass(frozen=True)
class ReadOptions:
    limits: BatchLimits
    take: int
    late_margin: timedelta
    flush_seconds: float  # send a range's batch at least this often
    first_flush_seconds: float  # ... and this soon, until the run's first checkpoint
    keep_type: Callable[[object], bool] | None
    restart_from_oldest: bool
    pii_fields: frozenset[str] | None = None  # values dropped before sending (--pii drop)
    oldest: Record | None = None  # the oldest log Auth0 held at start (--restart-from-oldest)
    # Following: an open range is read again from this far behind its cursor, for logs made
    # visible after newer ones (what this process sent then is skipped: ``reread``).
    rewind: timedelta | None = None
    rewind_floor: str | None = None  # ... never before this log_id


class RangeReader:
    """Reads one range by checkpoint, filters on date and type, and cuts batches."""

    def __init__(
        self,
        item: RangeState,
        *,
        source: Source,
        outlet: Outlet,
        options: ReadOptions,
        already_in_tinybird: Container[str],
        reread: Container[str] = frozenset(),
        clock: Callable[[], float],
        now: Callable[[], datetime],
        known: Mapping[str, list[Record]] | None = None,
    ) -> None:
        self.item = item
        # By a lead's log_id: the lead and the logs after it, as a search already returned
        # them (``newrun._searched``)
        self.known = known or {}
        self.source = source
        self.outlet = outlet
        self.options = options
        self.already_in_tinybird = already_in_tinybird
        self.reread = reread  # sent already, read again behind the cursor: skipped, not counted
        self.clock = clock
        self.now = now
        # Dates are compared as canonical stamps (timeutil.stamp): strings, cheap per record.
        self.lower = stamp(item.start)
        self.upper: str | None = None
        self.stop_at: str | None = None
        self.end_seen: str | None = None
        self.end_id: str | None = None
        self.id_complete_at: str | None = None  # when no log of id <= end_id can appear any more
        self.take_end((item.end, item.end_id))
        self.builder = BatchBuilder(options.limits, item.id, clock=clock)
        self.last_consumed: str | None = None
        self.last_consumed_date: str | None = None
        self.counts = ReadCounts()
        self.ready: list[Batch] = []  # batches cut, not yet handed over (``hand_over``)
        self.flushed = False  # a batch was sent before it was full (``flush``)
        self.held = 0  # what the budget was told the batch being filled holds

    async def read(self) -> None:
        item = self.item
        if item.lead and item.cursor is None:
            searched = self.known.get(item.lead)
            lead = searched[0] if searched else await self.source.get(item.lead)
            if lead is not None:
                self.consume(lead)
            done = self.consume_records(searched[1:]) if searched else False
            if not done:
                self.flush_if_due()
            await self.hand_over()
            if done:
                return
        position: str | None = self.last_consumed or self.rewound(item.position)
        oldest = self.options.oldest
        if position is not None and oldest is not None and aged_out(item, oldest):
            # Found before paging (Auth0 need not answer 400 to an aged-out checkpoint).
            position = await self.skip_to_oldest(position, oldest)
        while position is not None:
            if self.outlet.stopping:
                raise Stopping
            if self.outlet.over_budget():
                self.flush()  # what this range holds goes to a sender, to be given back
                await self.hand_over()
                await self.outlet.room()
            asked_at = self.now()
            try:
                page = await self.source.page_after(position, self.options.take)
            except Auth0RequestError as error:
                if error.status != 400:
                    raise
                position = await self.expired(position, error)
                continue
            short = len(page) < self.options.take
            position = self.read_page(page, position)
            del page  # consumed: not kept while the next one is awaited
            if position is None and short and not item.bounded:
                self.outlet.caught_up(item.id, asked_at)
            await self.hand_over()

    def rewound(self, position: str) -> str:
        """Where an open range is read from: its cursor, or (following) a while before it."""
        rewind, item = self.options.rewind, self.item
        written = write_time(position)
        if rewind is None or item.bounded or written is None:
            return position
        earlier = synthesize(written - rewind)
        floor = self.options.rewind_floor or item.start_after
        return max(earlier, item.start_after, floor, key=order_key)

    async def hand_over(self) -> None:
        """The batches cut while consuming, to the pipeline, in the order they were cut."""
        self.account()
        while self.ready:
            await self.outlet.emit(self.item.id, self.ready.pop(0))

    def take_end(self, ends: tuple[str | None, str | None]) -> None:
        """The range's ends, ``(end, end_id)``, which a split may have moved closer."""
        end, end_id = ends
        if end_id != self.end_id:
            self.end_id = end_id
            written = write_time(end_id) if end_id else None
            # A log is written (its id made) a few seconds after its date at most: past this,
            # a caught-up cursor has seen every id up to end_id.
            self.id_complete_at = iso(written + self.options.late_margin) if written else None
        if end == self.end_seen:
            return  # unchanged (the common case, once a page); no end: None, None as set up
        self.end_seen = end
        moment = _parse(end)
        self.upper = iso(moment) if moment else None
        self.stop_at = iso(moment + self.options.late_margin) if moment else None

    def read_page(self, page: list[Record], position: str) -> str | None:
        """Consume one page; the next position, or None when the range's reading is over."""
        # Taken after recording the fetch: a split from now on lies beyond every record of it.
        self.take_end(self.outlet.fetched(self.item.id, page))
        if self.consume_records(page):
            return None
        if len(page) < self.options.take:
            # Caught up with what Auth0 has written. A bounded range whose end lies further back
            # than the late margin is complete: every log dated (or id made) before it exists.
            now = iso(self.now())
            complete = (self.stop_at is not None and now >= self.stop_at) or (
                self.id_complete_at is not None and now >= self.id_complete_at
            )
            self.finish(completes=complete)
            return None
        self.flush_if_due()
        return str(page[-1]["log_id"]) if page else position

    def flush_if_due(self) -> None:
        """After a page: send what the batch holds when a long stretch was filtered out or a
        slow plan fills batches slowly, so the checkpoint moves and a stop re-reads little.
        While the run has no checkpoint, a range's first page goes at once: the first
        checkpoint comes an acknowledgement after the first page, not a batch's age later.
        And whenever nothing of the tenant is on its way (``idle``), what was read goes: Tinybird
        would wait idle, and a small tenant's last append holds a page, not its whole run."""
        if self.builder.consumed and (
            self.builder.consumed >= self.options.limits.max_rows
            or self.clock() - self.builder.opened >= self.flush_after()
            or not (self.flushed or self.outlet.checkpointed)
            or self.outlet.idle
        ):
            self.flush()

    def consume_records(self, records: list[Record]) -> bool:
        """Consume fetched records in id order; True when they reach past the range's end."""
        last_date: str | None = None
        end_id = self.end_id
        try:
            for record in records:
                if end_id is not None and _beyond(record.get("log_id"), end_id):
                    self.finish(completes=True)  # the next range's: every id up to end_id read
                    return True
                date = self.date_of(record)
                if self.stop_at is not None and date is not None and date >= self.stop_at:
                    self.finish(completes=True)
                    return True
                self.consume(record, date)
                last_date = date or last_date
        finally:
            counts, self.counts = self.counts, ReadCounts()
            counts.read = len(records)
            self.outlet.count(self.item.id, counts, _parse(last_date))
        return False

    def flush_after(self) -> float:
        """How old a batch may grow: short until the run's first checkpoint, so a stop early
        in a run loses little at any plan's pace; then ``flush_seconds``, for large batches."""
        if self.outlet.checkpointed:
            return self.options.flush_seconds
        return min(self.options.first_flush_seconds, self.options.flush_seconds)

    def date_of(self, record: Record) -> str | None:
        """The record's date as a stamp; without one, the write time its id carries."""
        date = stamp(record.get("date"))
        if date is None:
            self.counts.undated += 1
            log_id = record.get("log_id")
            written = write_time(log_id) if isinstance(log_id, str) else None
            date = iso(written) if written else None
        return date

    def consume(self, record: Record, date: str | None = None) -> None:
        envelope = to_envelope(record)  # raises on a record without a log_id
        log_id: str = envelope["log_id"]
        if date is None:
            date = self.date_of(record)
        keep_type = self.options.keep_type
        if not self.in_range(date):
            self.counts.outside_range += 1  # another range's (read past an edge for late ids)
        elif keep_type is not None and not keep_type(record.get("type")):
            self.counts.filtered += 1
            code = record.get("type")
            if not is_known(code):  # never left out silently: counted by code
                unknown = self.counts.unknown_types
                unknown[str(code)] = unknown.get(str(code), 0) + 1
        elif log_id in self.reread:
            pass  # this process sent it (following, an open range is read from behind)
        elif log_id in self.already_in_tinybird:
            self.builder.count_already_in_tinybird(date)
        else:
            if self.options.pii_fields:
                envelope["data"] = drop_pii(envelope["data"], self.options.pii_fields)
            line = serialize(envelope)
            if not self.builder.fits(len(line), date):
                self.flush()
            self.builder.add_line(line, log_id, date)
        self.builder.count_consumed()
        self.last_consumed = log_id
        raw_date = record.get("date")
        self.last_consumed_date = raw_date if isinstance(raw_date, str) else None

    def in_range(self, date: str | None) -> bool:
        if date is None:
            return True  # no date and no readable id: only a single-range run reads it
        if self.lower is not None and date < self.lower:
            return False
        return self.upper is None or date < self.upper

    def account(self) -> None:
        """Tell the budget what the batch being filled holds now (its rows compressed)."""
        self.builder.compress()
        held = self.builder.held_bytes
        if held != self.held:
            self.outlet.hold(held - self.held)
            self.held = held

    def close(self) -> Batch:
        batch = self.builder.close(self.last_consumed, seq=-1, cursor_date=self.last_consumed_date)
        self.outlet.hold(len(batch.body) - self.held)  # the builder's bytes are the batch's now
        self.held = 0
        return batch

    def flush(self) -> None:
        if self.builder.consumed:
            self.flushed = True
            self.ready.append(self.close())

    def finish(self, *, completes: bool) -> None:
        batch = self.close()
        batch.ends_range, batch.completes_range = True, completes
        self.ready.append(batch)

    async def expired(self, position: str, error: Auth0RequestError) -> str | None:
        """A 400 on a checkpoint: did it age out of retention? Stop, or skip the gap knowingly."""
        oldest = await self.source.oldest()
        if oldest is None or order_key(position) >= order_key(oldest["log_id"]):
            raise error
        return await self.skip_to_oldest(position, oldest)

    async def skip_to_oldest(self, position: str, oldest: Record) -> str | None:
        """The range's checkpoint aged out: stop, or (--restart-from-oldest) record the gap and
        go on from the oldest log Auth0 still holds."""
        if not self.options.restart_from_oldest:
            raise expired_error(position, self.item.cursor_date, oldest, self.now())
        oldest_date = parse_record_date(oldest.get("date"))
        self.flush()
        gap = gap_to_oldest(self.item.id, position, self.item.cursor_date, oldest)
        gone = self.upper is not None and oldest_date is not None and self.upper <= iso(oldest_date)
        mark = self.close()
        mark.ends_range = mark.completes_range = gone
        await self.hand_over()
        await self.outlet.reposition(self.item.id, mark, str(oldest["log_id"]), gap)
        if gone:
            return None  # the whole rest of this range aged out
        self.last_consumed = None
        self.consume(oldest)
        return str(oldest["log_id"])


def _beyond(log_id: object, end_id: str) -> bool:
    """Whether a record's log_id comes after ``end_id`` in Auth0's order."""
    if not isinstance(log_id, str):
        return False  # no id: consume() refuses the record
    if len(log_id) == len(end_id):
        return log_id > end_id  # same width, digits: string order is numeric order (cheap)
    return order_key(log_id) > order_key(end_id)


def _parse(value: str | None) -> datetime | None:
    return parse_record_date(value) if value else None
