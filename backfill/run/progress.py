"""Progress by date coverage: how much of ``[start, end)`` (or to now) the cursors have passed.

On a terminal, a bar redrawn in place with logs/s and time left; off a terminal (cron, a log
collector), one log line at a steady interval; ``--quiet`` silences both.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TextIO

from backfill import logsetup
from backfill.state.model import RangeState
from backfill.timeutil import humanize, parse_record_date, utcnow

log = logging.getLogger("backfill.run.progress")


class Coverage:
    """Per range: where it starts and ends, and the newest date its cursor has reached."""

    def __init__(self, ranges: Sequence[RangeState], now: Callable[[], datetime] = utcnow) -> None:
        self._lock = threading.Lock()
        self._now = now
        self._spans: dict[int, tuple[datetime | None, datetime | None]] = {}
        self._reached: dict[int, datetime] = {}
        self._done: set[int] = set()
        for item in ranges:
            self._spans[item.id] = item.span()
            if item.done:
                self._done.add(item.id)
            reached = parse_record_date(item.cursor_date)
            if reached is not None:
                self._reached[item.id] = reached

    def advance(self, range_id: int, date: datetime | None) -> None:
        if date is None:
            return
        with self._lock:
            if range_id not in self._spans:
                return
            low, _ = self._spans[range_id]
            if low is None:
                self._spans[range_id] = (date, self._spans[range_id][1])
            previous = self._reached.get(range_id)
            if previous is None or date > previous:
                self._reached[range_id] = date

    def split(self, shortened: RangeState, new: RangeState) -> None:
        with self._lock:
            low, _ = self._spans.get(shortened.id, (None, None))
            self._spans[shortened.id] = (low, shortened.span()[1])
            self._spans[new.id] = new.span()

    def fraction(self) -> float:
        now = self._now()
        total = covered = 0.0
        with self._lock:
            for range_id, (low, high) in self._spans.items():
                end = high or now
                start = low or self._reached.get(range_id) or end
                span = max((end - start).total_seconds(), 0.0)
                total += span
                if range_id in self._done:
                    covered += span
                    continue
                reached = self._reached.get(range_id)
                if reached is not None:
                    covered += min(max((reached - start).total_seconds(), 0.0), span)
        return 1.0 if total <= 0 else min(covered / total, 1.0)


class ProgressReporter:
    """Turns coverage and counters into a bar or periodic lines."""

    def __init__(
        self,
        coverage: Coverage,
        *,
        mode: str,  # "bar", "lines" or "off"
        interval: float = 30.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.coverage = coverage
        self.mode = mode
        self.interval = interval if mode == "lines" else 0.5
        self._stream = stream or sys.stderr
        self._clock = clock
        self._started = clock()
        self._last = clock()
        self._read = 0
        self._start_fraction: float | None = None
        self._drawn = False
        if mode == "bar":
            logsetup.before_each_line(self._erase)

    def _erase(self) -> None:
        """A log line is coming: clear the bar first (the next tick draws it again)."""
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._drawn = False

    @classmethod
    def choose(
        cls, coverage: Coverage, *, quiet: bool, interval: float, lines: bool = False
    ) -> ProgressReporter:
        if quiet:
            return cls(coverage, mode="off")
        mode = "bar" if sys.stderr.isatty() and not lines else "lines"
        return cls(coverage, mode=mode, interval=interval)

    def advance(self, range_id: int, date: datetime | None, records: int) -> None:
        self.coverage.advance(range_id, date)
        self._read += records  # only read for display; an approximate count is fine

    def split(self, shortened: RangeState, new: RangeState) -> None:
        self.coverage.split(shortened, new)

    def tick(self, totals: object) -> None:
        if self.mode == "off":
            return
        now = self._clock()
        if now - self._last < self.interval:
            return
        self._last = now
        self.render(totals)

    def render(self, totals: object) -> None:
        fraction = self.coverage.fraction()
        if self._start_fraction is None:
            self._start_fraction = fraction
        elapsed = max(self._clock() - self._started, 1e-6)
        rate = self._read / elapsed
        progressed = fraction - self._start_fraction
        left = (1 - fraction) * elapsed / progressed if progressed > 0 else None
        sent = getattr(totals, "rows_sent", 0)
        eta = humanize(left) if left is not None else "?"
        if self.mode == "bar":
            width = 30
            filled = round(width * fraction)
            bar = "#" * filled + "-" * (width - filled)
            self._stream.write(
                f"\r[{bar}] {fraction * 100:5.1f}%  {rate:7.0f} logs/s  sent {sent:,}  "
                f"left {eta}   "
            )
            self._stream.flush()
            self._drawn = True
        else:
            log.info(
                "progress coverage=%.1f%% logs_per_s=%.0f read=%d sent=%d eta=%s",
                fraction * 100,
                rate,
                self._read,
                sent,
                eta.replace(" ", ""),
            )

    def close(self) -> None:
        if self.mode == "bar":
            logsetup.before_each_line(None)
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False
