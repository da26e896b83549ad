"""Batches: envelopes bound for one append, composed and compressed deterministically.

A batch holds at most ``max_rows`` rows, ``max_bytes`` of uncompressed NDJSON and rows from at most
``max_months`` calendar months (a historic insert touching many monthly partitions can fail with
TOO_MANY_PARTS). Its rows are gzip-compressed as they arrive, so a full batch waiting to be sent
costs about a tenth of its size in memory, and the same rows always give the same bytes (gzip
header without a timestamp), so a resend is byte-identical.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backfill.timeutil import stamp

try:
    # ISA-L's deflate: a fraction of zlib's CPU, and its level 1 compresses NDJSON about as
    # well as zlib's level 3 (docs/performance.md has the figures).
    from isal import isal_zlib as deflate

    GZIP_LEVEL = 1
except ImportError:  # no isal wheel for this machine (see pyproject.toml)
    import zlib as deflate  # type: ignore[no-redef]

    GZIP_LEVEL = 3  # most of level 9's ratio on JSON at a fraction of the CPU


@dataclass(frozen=True)
class BatchLimits:
    max_rows: int = 10_000
    max_bytes: int = 8 * 1024 * 1024
    max_months: int = 2


@dataclass
class Batch:
    """Rows for one append, and where the cursor stands once Tinybird acknowledges them.

    ``cursor_after`` is the log_id of the last record this batch accounts for, rows that were
    filtered out included: the checkpoint once the batch (and every earlier one) is acknowledged.
    """

    range_id: int
    seq: int
    rows: int
    raw_bytes: int
    body: bytes
    digest: str
    first_log_id: str | None
    last_log_id: str | None
    min_date: str | None
    max_date: str | None
    cursor_after: str | None
    days: dict[str, int] = field(default_factory=dict)
    consumed: int = 0  # records read into this batch, filtered ones included
    already_in_tinybird: int = 0  # records not sent because Tinybird already had them
    cursor_date: str | None = None
    ends_range: bool = False  # the range's reading stops after this batch
    completes_range: bool = False  # ... because it reached the range's end

    def lines(self) -> list[bytes]:
        raw = gzip.decompress(self.body) if self.body else b""
        return [line + b"\n" for line in raw.split(b"\n") if line]

    def log_ids(self) -> list[str]:
        return [json.loads(line)["log_id"] for line in self.lines()]

    def without(self, landed: set[str]) -> Batch:
        """The same batch minus rows whose log_id already landed (the checkpoint is unchanged)."""
        kept = [line for line in self.lines() if json.loads(line)["log_id"] not in landed]
        return self._rebuilt(kept)

    def halves(self) -> tuple[Batch, Batch]:
        """Split in two (after a 413); the second half keeps the cursor."""
        lines = self.lines()
        middle = len(lines) // 2
        first, second = self._rebuilt(lines[:middle]), self._rebuilt(lines[middle:])
        return first, second

    def _rebuilt(self, lines: list[bytes]) -> Batch:
        builder = BatchBuilder(
            BatchLimits(max_rows=max(len(lines), 1), max_bytes=2**62), self.range_id
        )
        for line in lines:
            envelope = json.loads(line)
            builder.add_line(line, envelope["log_id"], _date_of(envelope))
        batch = builder.close(self.cursor_after, seq=self.seq)
        batch.consumed, batch.already_in_tinybird, batch.cursor_date = (
            self.consumed,
            self.already_in_tinybird,
            self.cursor_date,
        )
        batch.ends_range, batch.completes_range = self.ends_range, self.completes_range
        return batch


class BatchBuilder:
    """Accumulates serialized envelopes until a limit would be crossed.

    Dates arrive as canonical stamps (``2026-11-03T03:06:05.696Z``, see ``timeutil.stamp``): the
    month and day are slices of them and they compare as strings, which keeps the per-row cost
    low. Lines are compressed a chunk at a time, not one by one, for the same reason.
    """

    def __init__(
        self, limits: BatchLimits, range_id: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._limits = limits
        self._range_id = range_id
        self._clock = clock
        self._reset()

    def _reset(self) -> None:
        self._compressor: Any = None  # made with the first row: an empty batch holds none
        self._chunks: list[bytes] = []
        self._chunk_bytes = 0
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._hash = hashlib.sha256()
        self.rows = 0
        self.raw_bytes = 0
        self.consumed = 0
        self.already_in_tinybird = 0
        self.opened = self._clock()  # when the batch's first record was read
        self._months: set[str] = set()
        self._days: dict[str, int] = {}
        self._first: str | None = None
        self._last: str | None = None
        self._min_date: str | None = None
        self._max_date: str | None = None

    def fits(self, line_length: int, stamp: str | None) -> bool:
        """Whether one more row keeps the batch within every limit (an empty batch takes any)."""
        if self.rows == 0:
            return True
        if self.rows + 1 > self._limits.max_rows:
            return False
        if self.raw_bytes + line_length > self._limits.max_bytes:
            return False
        month = _month(stamp)
        return month in self._months or len(self._months) < self._limits.max_months

    def add_line(self, line: bytes, log_id: str, stamp: str | None) -> None:
        self._pending.append(line)
        self._pending_bytes += len(line)
        if self._pending_bytes >= _CHUNK:
            self._compress_pending()
        self.rows += 1
        self.raw_bytes += len(line)
        self._months.add(_month(stamp))
        self._count_day(stamp)
        if self._first is None:
            self._first = log_id
        self._last = log_id
        if stamp is not None:
            if self._min_date is None or stamp < self._min_date:
                self._min_date = stamp
            if self._max_date is None or stamp > self._max_date:
                self._max_date = stamp

    @property
    def held_bytes(self) -> int:
        """What the batch keeps in memory now: its rows compressed so far, and those not yet."""
        return self._chunk_bytes + self._pending_bytes

    def compress(self) -> None:
        """Compress the rows added since the last time (the reader calls it after each page):
        a serialized row costs several times its length in memory until it is compressed
        (orjson allocates kilobytes for each line), so none waits long."""
        if self._pending:
            self._compress_pending()

    def _compress_pending(self) -> None:
        data = b"".join(self._pending)
        if self._compressor is None:
            self._compressor = deflate.compressobj(GZIP_LEVEL, deflate.DEFLATED, 31)  # 31: gzip
        chunk = self._compressor.compress(data)
        self._chunks.append(chunk)
        self._chunk_bytes += len(chunk)
        self._hash.update(data)
        self._pending.clear()
        self._pending_bytes = 0

    def _count_day(self, stamp: str | None) -> None:
        day = stamp[:10] if stamp else "unknown"
        self._days[day] = self._days.get(day, 0) + 1

    def count_consumed(self) -> None:
        self.consumed += 1

    def count_already_in_tinybird(self, stamp: str | None) -> None:
        """A record Tinybird already has: not sent again, but it belongs in the day ledger."""
        self.already_in_tinybird += 1
        self._count_day(stamp)

    def close(self, cursor_after: str | None, *, seq: int, cursor_date: str | None = None) -> Batch:
        if self.rows:
            self._compress_pending()
            self._chunks.append(self._compressor.flush())
            body = b"".join(self._chunks)
        else:
            body = b""
        batch = Batch(
            range_id=self._range_id,
            seq=seq,
            rows=self.rows,
            raw_bytes=self.raw_bytes,
            body=body,
            digest=self._hash.hexdigest(),
            first_log_id=self._first,
            last_log_id=self._last,
            min_date=self._min_date,
            max_date=self._max_date,
            cursor_after=cursor_after,
            days=dict(self._days),
            consumed=self.consumed,
            already_in_tinybird=self.already_in_tinybird,
            cursor_date=cursor_date,
        )
        self._reset()
        return batch


_CHUNK = 256 * 1024  # uncompressed bytes handed to the compressor at a time


def _month(stamp: str | None) -> str:
    # Rows without a date land in the current month's partition (the column's DEFAULT now()).
    return stamp[:7] if stamp else "now"


def _date_of(envelope: dict[str, object]) -> str | None:
    data = envelope.get("data")
    return stamp(data.get("date")) if isinstance(data, dict) else None
