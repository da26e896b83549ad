"""The appends in flight: up to ``in_flight`` tasks, started as batches wait, each taking a batch
off a bounded queue and appending it with ``wait=true``. The pipeline hands batches over
(``put``) and hears of each one's fate, acknowledged or dropped (not sent, or cut off: then it
may have landed), through the callbacks it gives; the order of commits stays the pipeline's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from backfill.records.batches import Batch
from backfill.run.options import Sink
from backfill.run.reader import Stopping
from backfill.run.stopper import Stopper
from backfill.tinybird.events import AppendResult

log = logging.getLogger("backfill.pipeline")

PUT_RECHECK_SECONDS = 0.2  # a reader waiting for room looks at the stop this often


class Senders:
    def __init__(
        self,
        sink: Sink,
        *,
        in_flight: int,
        stopper: Stopper,
        acknowledged: Callable[[Batch, AppendResult], None],
        dropped: Callable[[Batch, bool], None],
    ) -> None:
        self._sink = sink
        self._in_flight = in_flight
        self._stopper = stopper
        self._acknowledged = acknowledged
        self._dropped = dropped  # (batch, sent): sent, it may have landed
        self._queue: asyncio.Queue[Batch | None] = asyncio.Queue(maxsize=in_flight)
        self._tasks: list[asyncio.Task[None]] = []
        self._idle = 0
        self._closing = False

    async def put(self, batch: Batch) -> None:
        """Queue the batch for a sender; waits while every sender is busy and the queue full."""
        self._add()
        while True:
            if self._stopper.stopping:
                self._dropped(batch, False)
                raise Stopping
            try:
                await asyncio.wait_for(self._queue.put(batch), timeout=PUT_RECHECK_SECONDS)
                return
            except TimeoutError:
                continue

    def _add(self) -> None:
        """One more sender when every one is busy, up to ``in_flight``."""
        if self._closing or len(self._tasks) >= self._in_flight:
            return
        if self._idle > self._queue.qsize():
            return  # a sender waiting for work takes this batch
        task = asyncio.create_task(self._send(), name=f"sender-{len(self._tasks)}")
        self._tasks.append(task)

    async def _send(self) -> None:
        while True:
            self._idle += 1
            try:
                batch = await self._queue.get()
            finally:
                self._idle -= 1
            if batch is None:
                return
            if self._stopper.stopping:
                self._dropped(batch, False)
                continue
            try:
                result = await self._sink.append(batch)
            except asyncio.CancelledError:
                self._dropped(batch, True)  # cut off at shutdown: it may have landed
                raise
            except BaseException as error:  # noqa: BLE001 - any failure of a task stops the run
                self._stopper.fail(error)
                self._dropped(batch, True)
                continue
            self._acknowledged(batch, result)

    def close(self) -> list[asyncio.Task[None]]:
        """No more batches: each sender leaves once the queue before it is sent. Its tasks,
        to wait for."""
        self._closing = True
        for _ in self._tasks:
            self._put_sentinel()
        return list(self._tasks)

    def abandon(self, tasks: list[asyncio.Task[None]], grace: float) -> list[asyncio.Task[None]]:
        """After the grace: what is still queued is dropped unsent (read again on the next
        run); the senders still appending, returned to be cancelled."""
        while self._drop_queued():  # a reader stopping may have queued one after the last left
            pass
        abandoned = [task for task in tasks if not task.done()]
        if abandoned:
            log.warning(
                "shutdown abandoned_appends=%d reason=grace_expired grace=%.0fs",
                len(abandoned),
                grace,
            )
        return abandoned

    def _put_sentinel(self) -> None:
        while True:
            try:
                self._queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self._drop_queued()  # stopping: queued batches will not be sent; make room

    def _drop_queued(self) -> bool:
        """Take one batch off the queue unsent; False when the queue was empty."""
        try:
            unsent = self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return False
        if unsent is not None:
            self._dropped(unsent, False)
        return True
