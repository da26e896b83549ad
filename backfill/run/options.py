"""What the pipeline is given: its options (``RunOptions``), and the small protocols of the sink
and the progress display it reports to, so its tests use in-memory fakes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from backfill.records.batches import Batch, BatchLimits
from backfill.run.reader import ReadOptions, Record
from backfill.run.report import Counts
from backfill.state.model import RangeState
from backfill.tinybird.events import AppendResult


class Sink(Protocol):
    async def append(self, batch: Batch) -> AppendResult: ...


class Progress(Protocol):
    def advance(self, range_id: int, date: datetime | None, records: int) -> None: ...

    def split(self, shortened: RangeState, new: RangeState) -> None: ...

    def tick(self, counts: Counts) -> None: ...


class NoProgress:
    def advance(self, range_id: int, date: datetime | None, records: int) -> None:
        pass

    def split(self, shortened: RangeState, new: RangeState) -> None:
        pass

    def tick(self, counts: Counts) -> None:
        pass


@dataclass
class RunOptions:
    limits: BatchLimits = field(default_factory=BatchLimits)
    concurrency: int = 8
    in_flight: int = 8
    late_margin: timedelta = timedelta(seconds=60)
    keep_type: Callable[[object], bool] | None = None
    pii_fields: frozenset[str] | None = None  # values dropped before sending (--pii drop)
    oldest: Record | None = None  # the oldest log Auth0 held at start (--restart-from-oldest)
    restart_from_oldest: bool = False
    shutdown_grace: float = 30.0
    resume_settle: float = 5.0
    flush_seconds: float = 60.0  # send a range's batch at least this often
    first_flush_seconds: float = 10.0  # ... and this soon, until the run's first checkpoint
    take: int = 100
    # How many cursors keep up with the source's rate limit, at most the number given: beyond
    # it more cursors read no faster, and a split only adds a partial page.
    cursors_needed: Callable[[int], int] = lambda most: most
    saturated: Callable[[], bool] = lambda: False  # the rate limit holds requests back now
    horizon: datetime | None = None  # where the newest log was at planning (else: now)
    rewind: timedelta | None = None  # following: an open range re-read this far behind
    rewind_floor: str | None = None  # ... but not before this log_id (another process's)

    def reading(self) -> ReadOptions:
        return ReadOptions(
            limits=self.limits,
            take=self.take,
            late_margin=self.late_margin,
            flush_seconds=self.flush_seconds,
            first_flush_seconds=self.first_flush_seconds,
            keep_type=self.keep_type,
            restart_from_oldest=self.restart_from_oldest,
            pii_fields=self.pii_fields,
            oldest=self.oldest,
            rewind=self.rewind,
            rewind_floor=self.rewind_floor,
        )
