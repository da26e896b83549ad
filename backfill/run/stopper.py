"""One place that says the run is stopping, and why: a signal, or the first failure; and the
signal handlers that tell it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import weakref
from collections.abc import Callable, Iterator

from backfill.auth0.pacer import PacerStopped
from backfill.run.reader import Stopping

log = logging.getLogger("backfill.cli")


class Stopper:
    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.signum: int | None = None
        self.error: BaseException | None = None
        self._hooks: list[Callable[[], None]] = []
        self._children: weakref.WeakSet[Stopper] = weakref.WeakSet()

    @property
    def stopping(self) -> bool:
        return self._event.is_set()

    def on_stop(self, hook: Callable[[], None]) -> None:
        self._hooks.append(hook)

    def request(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
        self._trip()

    def fail(self, error: BaseException) -> None:
        if self.error is None and not isinstance(
            error, Stopping | PacerStopped | asyncio.CancelledError
        ):
            self.error = error
        self._trip()

    def _trip(self) -> None:
        if not self._event.is_set():
            self._event.set()
            for hook in self._hooks:
                hook()
            for step in list(self._children):
                step._follow(self)

    def child(self) -> Stopper:
        """A stopper for one step of a longer run (a poll of ``--follow``): it stops when this
        one does (a signal, its failure), but its own failure stops only the step."""
        step = Stopper()
        self._children.add(step)  # weakly: a finished step is forgotten
        if self.stopping:
            step._follow(self)
        return step

    def _follow(self, parent: Stopper) -> None:
        if parent.signum is not None:
            self.request(parent.signum)
        else:
            self._trip()

    async def sleep(self, seconds: float) -> None:
        """A sleep that ends early, by raising, when the run stops (retry backoff uses it)."""
        if await self.wait(seconds):
            raise Stopping

    async def wait(self, seconds: float) -> bool:
        """Whether the run stopped within ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=max(seconds, 0.0))
        return self._event.is_set()


@contextlib.contextmanager
def on_signals(stoppers: list[Stopper]) -> Iterator[None]:
    """First SIGINT/SIGTERM: stop cleanly. A second: leave at once (the checkpoint stays valid).

    Installed on the running event loop, so the stoppers are told between two steps of the
    run, never in the middle of one."""
    loop = asyncio.get_running_loop()
    asked: list[int] = []

    def handle(signum: int) -> None:
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

    for which in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(which, handle, which)
    try:
        yield
    finally:
        for which in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(which)
