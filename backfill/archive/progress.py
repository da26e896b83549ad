"""Progress on a terminal: a bar redrawn in place; off a terminal (cron, a collector) a log line
every ``progress_interval`` seconds; ``--quiet`` silences both. Reading shows the bytes read of
the total where sizes are known (standard input has none), records/s and the time left; sending
shows rows of the staged total."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from backfill import logsetup
from backfill.archive.reading import ReadCounts
from backfill.archive.send import SendCounts
from backfill.timeutil import humanize

log = logging.getLogger("backfill.import.progress")


def size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


class ImportProgress:
    def __init__(
        self,
        *,
        mode: str,  # "bar", "lines" or "off"
        total_bytes: int | None,
        interval: float = 30.0,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.total_bytes = total_bytes
        self.interval = interval if mode == "lines" else 0.5
        self._stream = stream or sys.stderr
        self._clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last = clock() - self.interval
        self._drawn = False
        self._phase_started = self._started
        self.staged = 0
        if mode == "bar":
            logsetup.before_each_line(self._erase)

    @classmethod
    def choose(cls, *, quiet: bool, interval: float, total_bytes: int | None) -> ImportProgress:
        if quiet:
            return cls(mode="off", total_bytes=total_bytes)
        mode = "bar" if sys.stderr.isatty() else "lines"
        return cls(mode=mode, total_bytes=total_bytes, interval=interval)

    def _erase(self) -> None:
        if self._drawn:
            self._stream.write("\r\x1b[K")
            self._drawn = False

    def _due(self) -> bool:
        now = self._clock()
        if self.mode == "off" or now - self._last < self.interval:
            return False
        self._last = now
        return True

    def reading(self, counts: ReadCounts) -> None:
        with self._lock:
            if not self._due():
                return
            elapsed = max(self._clock() - self._started, 1e-6)
            rate = counts.items / elapsed
            fraction = counts.bytes_read / self.total_bytes if self.total_bytes else None
            left = (1 - fraction) * elapsed / fraction if fraction else None
            total = f" of {size(self.total_bytes)}" if self.total_bytes else ""
            self._show(
                "reading",
                fraction,
                f"read {size(counts.bytes_read)}{total}  {rate:,.0f} records/s",
                left,
                f"read_bytes={counts.bytes_read} records={counts.items} records_per_s={rate:.0f}",
            )

    def start_sending(self, staged: int) -> None:
        with self._lock:
            self.staged = staged
            self._phase_started = self._clock()
            self._last = self._clock() - self.interval

    def sending(self, counts: SendCounts, done_before: int) -> None:
        with self._lock:
            if not self._due():
                return
            elapsed = max(self._clock() - self._phase_started, 1e-6)
            done = done_before + counts.rows_done
            rate = counts.rows_done / elapsed
            fraction = done / self.staged if self.staged else 1.0
            left = (self.staged - done) / rate if rate > 0 else None
            self._show(
                "sending",
                fraction,
                f"{done:,} of {self.staged:,} rows  {rate:,.0f} rows/s",
                left,
                f"rows_done={done} rows_staged={self.staged} rows_per_s={rate:.0f}",
            )

    def _show(
        self, phase: str, fraction: float | None, text: str, left: float | None, fields: str
    ) -> None:
        eta = humanize(left) if left is not None else "?"
        if self.mode == "bar":
            width = 30
            filled = round(width * (fraction or 0.0))
            bar = "#" * filled + "-" * (width - filled)
            shown = f"{fraction * 100:5.1f}%" if fraction is not None else "  ?  "
            self._stream.write(f"\r{phase} [{bar}] {shown}  {text}  left {eta}   ")
            self._stream.flush()
            self._drawn = True
        else:
            log.info("progress phase=%s %s eta=%s", phase, fields, eta.replace(" ", ""))

    def close(self) -> None:
        with self._lock:
            if self.mode == "bar":
                logsetup.before_each_line(None)
            if self._drawn:
                self._stream.write("\n")
                self._stream.flush()
                self._drawn = False
