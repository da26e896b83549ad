"""One place that says the run is stopping, and why: a signal, or the first failure; and the
signal handlers that tell it."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from backfill.auth0.pacer import PacerStopped
from backfill.run.reader import Stopping

log = logging.getLogger("backfill.cli")


class Stopper:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.signum: int | None = None
        self.error: BaseException | None = None
        self._hooks: list[Callable[[], None]] = []

    @property
    def stopping(self) -> bool:
        return self._event.is_set()

    def on_stop(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    def request(self, signum: int) -> None:
        with self._lock:
            if self.signum is None:
                self.signum = signum
        self._trip()

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None and not isinstance(error, Stopping | PacerStopped):
                self.error = error
        self._trip()

    def _trip(self) -> None:
        if not self._event.is_set():
            self._event.set()
            for hook in self._hooks:
                hook()

    def sleep(self, seconds: float) -> None:
        """A sleep that ends early, by raising, when the run stops (retry backoff uses it)."""
        if self._event.wait(seconds):
            raise Stopping

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)


@contextmanager
def on_signals(stoppers: list[Stopper]) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop cleanly. A second: leave at once (the checkpoint stays valid)."""
    asked: list[int] = []

    def handle(signum: int, frame: FrameType | None) -> None:
        if asked:
            sys.stderr.write(f"auth0-backfill: {signal.Signals(signum).name} again, leaving now\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        log.warning(
            "stopping signal=%s note='letting appends in flight finish; send it again to leave "
            "at once'",
            signal.Signals(signum).name,
        )
        asked.append(signum)
        for stopper in stoppers:
            stopper.request(signum)

    previous: dict[signal.Signals, Callable[..., Any] | int | None] = {}
    for which in (signal.SIGINT, signal.SIGTERM):
        previous[which] = signal.signal(which, handle)
    try:
        yield
    finally:
        for which, handler in previous.items():
            signal.signal(which, handler)
