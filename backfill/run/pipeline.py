"""The order of operations: read a page, transform, batch, send, wait for the acknowledgement,
then record the checkpoint. Only this module knows that order.

Concurrency, and why it keeps every guarantee (asyncio: every step below runs between two
awaits of one event loop, so the shared state needs no lock):
- Readers (one task per range at a time, up to ``concurrency``) page their range by checkpoint
  through the shared pacer (``reader.RangeReader``), and put full batches on a bounded queue, so
  reading never waits on Tinybird and memory stays bounded. After every page, a free cursor may
  take part of a range (``steal``): when more cursors would read faster, or when a range would be
  read alone at the end. Reader tasks start when a range needs one and end when none does.
- Senders (``senders.Senders``: up to ``in_flight`` tasks, started as batches wait) append
  batches with ``wait=true``.
- The committer records a range's acknowledgements strictly in the order its batches were read:
  a batch acknowledged early waits for the ones before it, so the checkpoint never passes a batch
  Tinybird has not acknowledged. Before a batch is handed to a sender, the state file records it
  as pending (its log_id span and digest), so a resume after a crash can ask Tinybird which of
  its rows landed and send only the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from backfill.auth0.log_ids import order_key, write_time
from backfill.errors import Interrupted, StateError
from backfill.records.batches import Batch
from backfill.run.budget import TenantBudget
from backfill.run.commit import Committer, recover_pending
from backfill.run.options import NoProgress, Progress, RunOptions, Sink
from backfill.run.reader import (
    Outlet,
    RangeReader,
    ReadCounts,
    Record,
    Source,
    Stopping,
)
from backfill.run.report import Counts
from backfill.run.senders import Senders
from backfill.run.steal import PAGE, Fetched, Pace, choose_split
from backfill.run.stopper import Stopper
from backfill.state.model import Gap, PendingAppend, RangeState, RunState
from backfill.timeutil import iso, utcnow
from backfill.tinybird.events import AppendResult

log = logging.getLogger("backfill.pipeline")

__all__ = ["Pipeline", "Progress", "RunOptions", "Sink"]


@dataclass
class _RangeRun:
    state: RangeState
    fetched: Fetched = field(default_factory=Fetched)


class Pipeline(Outlet):
    def __init__(
        self,
        *,
        source: Source,
        sink: Sink,
        state: RunState,
        save: Callable[[RunState], None],
        options: RunOptions,
        durable: Callable[[], Awaitable[None]] | None = None,
        stopper: Stopper,
        progress: Progress | None = None,
        landed_between: Callable[[PendingAppend], Awaitable[set[str]]] | None = None,
        already_in_tinybird: set[str] | None = None,
        acknowledged: Callable[[Batch], None] | None = None,
        reread: set[str] | None = None,
        known: dict[str, list[Record]] | None = None,
        budget: TenantBudget | None = None,
        now: Callable[[], datetime] = utcnow,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._durable = durable  # what was saved so far is on disk (``state.file.Saver``)
        self._known = known or {}  # what a search already returned, by the lead's log_id
        self._source = source
        self._sink = sink
        self._state = state
        self._options = options
        self._reading = options.reading()
        self._stopper = stopper
        self._progress = progress or NoProgress()
        self._landed_between = landed_between
        self._now = now
        self._runs = {item.id: _RangeRun(item) for item in state.ranges}
        self._waiting: deque[_RangeRun] = deque()  # ranges no cursor is free for yet
        self._active: dict[int, _RangeRun] = {}  # ranges a reader is reading
        self._readers: set[asyncio.Task[None]] = set()
        self._senders = Senders(
            sink,
            in_flight=options.in_flight,
            stopper=stopper,
            acknowledged=self._on_acknowledged,
            dropped=self._drop,
        )
        self._closing = False
        self._wake = asyncio.Event()  # a reader ended or a batch was committed
        # log_ids Tinybird already has (appends in flight when the last run died, what the live
        # stream delivered). Shared by every range: after a re-split, another range than the
        # one that sent them reads them.
        self._already_in_tinybird: set[str] = set(already_in_tinybird or ())
        self._acknowledged = acknowledged  # told of each batch Tinybird acknowledged
        self._reread = reread or set()  # following: sent already, read again from behind
        self._budget = budget  # the tenant's part of the process's memory budget
        self.caught_up_at: datetime | None = None  # when the open range was last read to its end
        self.counts = Counts()
        self._commits = Committer(state, save, self.counts, stop=stopper.fail)

    # -- the run ----------------------------------------------------------------------------

    async def run(self) -> Counts:
        with self._budget.reading() if self._budget else contextlib.nullcontext():
            return await self._run()

    async def _run(self) -> Counts:
        with contextlib.suppress(Stopping):  # a signal while settling: stop before starting
            self._already_in_tinybird |= await recover_pending(
                self._state,
                self._landed_between,
                settle_seconds=self._options.resume_settle,
                sleep=self._stopper.sleep,
            )
        if self._stopper.stopping:
            return self._finish()
        pending_ranges = sorted(
            (item for item in self._state.ranges if not item.done),
            key=lambda item: (order_key(item.position), item.id),
        )
        self._state.running = True
        self._save_state()
        for item in pending_ranges:
            self._dispatch(self._runs[item.id])
        while not self._stopper.stopping:
            self._wake.clear()
            finished = not self._readers and not self._waiting and self._commits.outstanding == 0
            if finished:
                break
            self._progress.tick(self.counts)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=0.2)
        await self._shutdown()
        return self._finish()

    def _finish(self) -> Counts:
        self._progress.tick(self.counts)
        if self._stopper.error is not None:
            raise self._stopper.error
        if self._stopper.signum is not None:
            raise Interrupted(self._stopper.signum)
        return self.counts

    async def _shutdown(self) -> None:
        self._closing = True
        senders, readers = self._senders.close(), list(self._readers)
        grace = self._options.shutdown_grace
        if senders or readers:
            await asyncio.wait([*senders, *readers], timeout=grace)
        abandoned = self._senders.abandon(senders, grace)
        for task in [*abandoned, *(reader for reader in readers if not reader.done())]:
            task.cancel()  # an append cut off may have landed: its batch stays pending
        self._state.running = bool(abandoned)
        self._save_state()
        if self._durable is not None:
            with contextlib.suppress(StateError):  # the run's own failure says more
                await self._durable()

    # -- readers ----------------------------------------------------------------------------

    def _dispatch(self, run: _RangeRun) -> None:
        """A cursor for the range: a new reader task, or the first one free."""
        if self._closing or len(self._readers) >= self._options.concurrency:
            self._waiting.append(run)
            return
        self._activate(run)
        task = asyncio.create_task(self._reader(run), name=f"reader-{run.state.id}")
        self._readers.add(task)

    def _activate(self, run: _RangeRun) -> None:
        run.fetched.reading = True
        self._active[run.state.id] = run

    async def _reader(self, run: _RangeRun | None) -> None:
        try:
            while run is not None and not self._stopper.stopping:
                await self._read_range(run)
                run = self._next_range(run)
        except BaseException as error:
            self._stopper.fail(error)
            if isinstance(error, asyncio.CancelledError):
                raise
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._readers.discard(task)
            self._wake.set()

    def _next_range(self, finished: _RangeRun) -> _RangeRun | None:
        """The next range for a cursor whose range is read: one waiting, or part of another."""
        finished.fetched.reading = False
        self._active.pop(finished.state.id, None)
        if self._stopper.stopping:
            return None
        run = self._waiting.popleft() if self._waiting else self._split()
        if run is not None:
            self._activate(run)
        return run

    async def _read_range(self, run: _RangeRun) -> None:
        if run.state.done:
            return
        await RangeReader(
            run.state,
            source=self._source,
            outlet=self,
            options=self._reading,
            already_in_tinybird=self._already_in_tinybird,
            reread=self._reread,
            clock=self._clock,
            now=self._now,
            known=self._known,
        ).read()

    def _split(self) -> _RangeRun | None:
        """Cut a range for a free cursor when it pays (``steal``); the new range, or None.

        The reader of the shortened range picks up its new end with its next page. Both parts
        are in the state file before either reads on.
        """
        busy = len(self._active) + len(self._waiting)
        options = self._options
        if busy >= options.concurrency:
            return None
        pace = Pace(
            cursors=options.concurrency,
            busy=busy,
            needed=options.cursors_needed(options.concurrency),
            saturated=options.saturated(),
            horizon=options.horizon or self._now(),
        )
        split = choose_split(
            ((run.state, run.fetched) for run in self._active.values()),
            pace=pace,
            new_id=max(self._runs) + 1,
        )
        if split is None:
            return None
        split.victim.end_id = split.new.start_after
        self._state.ranges.append(split.new)
        run = self._runs[split.new.id] = _RangeRun(split.new)
        self._progress.split(split.victim, split.new)
        self._save_state()
        at = write_time(split.new.start_after)
        log.info(
            "range_split range=%d at=%s new_range=%d logs_left~%d",
            split.victim.id,
            iso(at) if at else split.new.start_after,
            split.new.id,
            split.pages_left * PAGE,
        )
        return run

    # -- what readers call (Outlet) ---------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopper.stopping

    @property
    def idle(self) -> bool:
        return self._commits.outstanding == 0

    @property
    def checkpointed(self) -> bool:
        return self.counts.batches > 0  # a batch of rows acknowledged, and its commit saved

    def fetched(self, range_id: int, page: list[Record]) -> tuple[str | None, str | None]:
        run = self._runs[range_id]
        full = len(page) >= self._options.take
        run.fetched.record(page, final=not full)
        if full and not self._stopper.stopping:
            # Where every reader stands is known afresh: a free cursor may take part of a
            # range now (this one's included: its new end is returned below).
            split = self._split()
            if split is not None:
                self._dispatch(split)
        return run.state.end, run.state.end_id

    def count(self, range_id: int, counts: ReadCounts, last_date: datetime | None) -> None:
        self.counts.records_read += counts.read
        self.counts.filtered += counts.filtered
        self.counts.outside_range += counts.outside_range
        self.counts.undated += counts.undated
        for code, seen in counts.unknown_types.items():
            self.counts.unknown_types[code] = self.counts.unknown_types.get(code, 0) + seen
        self._progress.advance(range_id, last_date, counts.read)

    def caught_up(self, range_id: int, asked_at: datetime) -> None:
        self.caught_up_at = asked_at

    def hold(self, delta: int) -> None:
        if self._budget is not None:
            self._budget.change(delta)

    def over_budget(self) -> bool:
        return self._budget is not None and self._budget.over()

    async def room(self) -> None:
        if self._budget is not None:
            await self._budget.room(lambda: self._commits.outstanding)

    async def reposition(self, range_id: int, mark: Batch, oldest_id: str, gap: Gap) -> None:
        """After --restart-from-oldest: the range continues at the oldest retained log, once
        every batch read before the jump is committed (the jump is itself in the commit order)."""
        self._commits.reposition_next(range_id, oldest_id, gap)
        await self.emit(range_id, mark)

    # -- hand-over to senders and the committer ------------------------------------------------

    async def emit(self, range_id: int, batch: Batch) -> None:
        if not self._commits.register(batch):
            self._wake.set()
            return  # nothing to send: committed at once
        if self._durable is not None:
            try:
                await self._durable()  # the batch is on disk as pending before it may be sent
            except BaseException:
                self._drop(batch)
                raise
        await self._senders.put(batch)

    def _on_acknowledged(self, batch: Batch, result: AppendResult) -> None:
        if self._acknowledged is not None:
            self._acknowledged(batch)
        self.hold(-len(batch.body))
        # Acknowledged, its rows are no longer needed: only its place in the commit order.
        self._commits.acknowledge(replace(batch, body=b""), result)
        self._wake.set()

    def _drop(self, batch: Batch, sent: bool = False) -> None:
        self.hold(-len(batch.body))
        self._commits.drop(batch, sent=sent)
        self._wake.set()

    def _save_state(self) -> None:
        self._commits.save()
