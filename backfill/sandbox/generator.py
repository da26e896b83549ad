"""The synthetic Auth0 tenant: a reproducible log timeline that scales to millions of records.

Only the write times are stored (an `array('q')` of microseconds, strictly increasing, 8 bytes a
log); everything else about record i (type, `date`, id digits, content) is rebuilt from
(seed, i) on demand; `timelines.py` shapes the traffic over the days (`even`, `uneven`, `quiet`).
Facts kept from the reference:
- log_id = `900` + UTC write time `YYYYMMDDhhmmss` + 6 sub-second digits + 33 opaque digits, so
  ids increase with the index;
- the write time is 0.02 s to 5 s after the record's `date` (millisecond precision);
- retention hides a prefix of the timeline, measured on write time at request time.
"""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Callable
from typing import Any

from backfill.sandbox.mixing import mix64, unit
from backfill.sandbox.records import EventKind, RecordFactory, event_kind_for, event_kind_of
from backfill.sandbox.timelines import DAY_US, Landmarks, timeline
from backfill.sandbox.timeparse import compact_utc, now_us

MIN_LAG_US = 20_000
MAX_LAG_US = 5_000_000
_LAG_SPAN_US = 4_978_000  # + 20 ms + up to 1 ms of truncation to millis stays under 5 s
_STREAM_ONLY_FIELDS = ("_id", "id", "isMobile")
JsonObject = dict[str, Any]


class Tenant:
    def __init__(
        self,
        seed: int,
        count: int,
        days: float,
        end_us: int | None = None,
        shape: str = "even",
    ) -> None:
        if count < 0 or days <= 0:
            raise ValueError("a tenant needs count >= 0 logs over days > 0")
        end = now_us() if end_us is None else end_us
        start = end - int(days * DAY_US)
        self.seed = seed
        self.shape = shape
        self.start_us, self.end_us = start, end
        self._write_us, landmarks = timeline(shape, seed, count, start, end)
        self.landmarks: Landmarks = landmarks
        # Records dated after this carry the newer fields ($event_schema, tenant_name ...).
        self.schema_cutoff_us = start + int(0.4 * (end - start))
        self.factory = RecordFactory(
            seed, user_count=min(200_000, max(50, count // 20)), ip_count=max(100, count // 10)
        )
        self._append_lock = threading.Lock()
        self._listeners: list[Callable[[range], None]] = []
        # Appends of a chosen event type: where each began and ended (index), and its code.
        self._chosen_starts: list[int] = []
        self._chosen: list[tuple[int, str]] = []
        self.extra_categories: dict[str, str] = {}
        """Log Streams categories of appended codes the catalogue does not know."""

    def __len__(self) -> int:
        return len(self._write_us)

    # -- one record ---------------------------------------------------------------------------
    def write_us(self, index: int) -> int:
        return self._write_us[index]

    def date_us(self, index: int) -> int:
        lag = MIN_LAG_US + int(_LAG_SPAN_US * unit(mix64(self.seed, index, 0x1A6)) ** 3)
        return (self._write_us[index] - lag) // 1000 * 1000

    def log_id(self, index: int) -> str:
        opaque = mix64(self.seed, index, 0x1D) % 10**17 * 10**16 + mix64(self.seed, index) % 10**16
        return f"900{compact_utc(self._write_us[index])}{opaque:033d}"

    def event_kind(self, index: int) -> EventKind:
        if self._chosen_starts and index >= self._chosen_starts[0]:
            position = bisect.bisect_right(self._chosen_starts, index) - 1
            stop, code = self._chosen[position]
            if index < stop:
                return event_kind_of(code)
        return event_kind_for(unit(mix64(self.seed, index, 0x7E)))

    def record(self, index: int) -> JsonObject:
        """The record as `GET /api/v2/logs` returns it (with `_id`, `id` and `isMobile`)."""
        date = self.date_us(index)
        return self.factory.build(
            index, self.event_kind(index), date, self.log_id(index), date >= self.schema_cutoff_us
        )

    def stream_record(self, index: int) -> JsonObject:
        """The record as a Log Stream delivers it (no `_id`, `id`, `isMobile`)."""
        record = self.record(index)
        for name in _STREAM_ONLY_FIELDS:
            record.pop(name, None)
        return record

    # -- finding records ----------------------------------------------------------------------
    def visible(self, at_us: int, retention_days: float | None) -> range:
        """Indices Auth0 would show at `at_us`: written within retention, and not in the future."""
        size = len(self._write_us)
        low = 0
        if retention_days is not None:
            low = bisect.bisect_left(self._write_us, at_us - int(retention_days * DAY_US), 0, size)
        high = bisect.bisect_right(self._write_us, at_us, low, size)
        return range(low, high)

    def first_written_from(self, at_us: int, within: range) -> int:
        return bisect.bisect_left(self._write_us, at_us, within.start, within.stop)

    def first_after_id(self, log_id: str, within: range) -> int:
        """Index of the first record in `within` whose id is numerically greater than `log_id`."""
        return bisect.bisect_right(_IdView(self), log_id.zfill(56), within.start, within.stop)

    def find(self, log_id: str, within: range) -> int | None:
        position = bisect.bisect_left(_IdView(self), log_id, within.start, within.stop)
        if position < within.stop and self.log_id(position) == log_id:
            return position
        return None

    def written_between(self, low_us: int, high_us: int, within: range) -> range:
        """Indices in `within` whose write time is in [low_us, high_us)."""
        low = bisect.bisect_left(self._write_us, low_us, within.start, within.stop)
        high = bisect.bisect_left(self._write_us, high_us, low, within.stop)
        return range(low, high)

    # -- growth -------------------------------------------------------------------------------
    def append(self, count: int, until_us: int | None = None, code: str | None = None) -> range:
        """Add `count` logs written after the newest one and no later than `until_us` (now),
        all of event type `code` when given (any code, known to Auth0's catalogue or not)."""
        if count < 0:
            raise ValueError("count must be >= 0")
        if code is not None and not code:
            raise ValueError("an event type code cannot be empty")
        until = now_us() if until_us is None else until_us
        with self._append_lock:
            size = len(self._write_us)
            first = self._write_us[size - 1] + 1 if size else until - DAY_US
            if until - first < count:
                raise ValueError("`until` leaves no room after the newest log for that many logs")
            if code is not None and count:  # before the times: a reader sees new logs at once
                self._chosen.append((size + count, code))
                self._chosen_starts.append(size)
            rng = random.Random(mix64(self.seed, size, 0xA99))
            times = sorted(rng.randrange(first, until + 1) for _ in range(count))
            previous = first - 1
            for offset, moment in enumerate(times):
                # Keep strictly increasing times without passing `until`.
                moment = max(moment, previous + 1)
                moment = min(moment, until - (count - 1 - offset))
                self._write_us.append(moment)
                previous = moment
            added = range(size, size + count)
        for listener in list(self._listeners):
            listener(added)
        return added

    def on_append(self, listener: Callable[[range], None]) -> None:
        self._listeners.append(listener)


class _IdView:
    """The tenant's ids as a lazy sorted sequence, so `bisect` can search them."""

    def __init__(self, tenant: Tenant) -> None:
        self._tenant = tenant

    def __len__(self) -> int:
        return len(self._tenant)

    def __getitem__(self, index: int) -> str:
        return self._tenant.log_id(index)
