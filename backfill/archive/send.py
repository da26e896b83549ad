"""The second phase: the staged rows, in their order, to Tinybird, with the checkpoint after each
acknowledged batch. Only this module knows that order of operations.

- Batches are cut from the staged rows after the checkpoint (``BatchLimits``: rows, bytes, and
  rows of at most two calendar months, which the staged order by month keeps full), in a thread
  of their own, one at a time.
- Before a batch is handed to a sender, the state records it as pending (its span of keys,
  log_ids and dates): a resume after a crash asks Tinybird which of those rows landed and sends
  only the rest (``recover``).
- Senders (up to ``in_flight``) append with ``wait=true``; acknowledgements are recorded strictly
  in the order batches were cut, so the checkpoint never passes a batch Tinybird has not
  acknowledged.
- A stop (a signal, a failure) cuts no further batch; appends in flight get ``shutdown_grace``
  seconds to finish and be recorded; a batch cut off stays pending for the next run to check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from backfill.archive.checkpoint import ImportState, Pending
from backfill.archive.staging import Row, Staging
from backfill.errors import Interrupted
from backfill.records.batches import Batch, BatchBuilder, BatchLimits
from backfill.run.options import Sink
from backfill.run.refused import record_left_out, refused_error
from backfill.run.stopper import Stopper
from backfill.timeutil import parse_record_date

log = logging.getLogger("backfill.import")
QUEUED = 2


@dataclass
class Cut:
    batch: Batch
    pending: Pending
    consumed: int  # staged rows it accounts for (those Tinybird already had included)


@dataclass
class SendCounts:
    rows_sent: int = 0  # acknowledged, quarantined rows included
    batches: int = 0
    quarantined_rows: int = 0
    already_in_tinybird: int = 0
    rows_done: int = 0  # staged rows the checkpoint has passed this run
    refused: list[str] = field(default_factory=list)


class Sender:
    def __init__(
        self,
        *,
        staging: Staging,
        state: ImportState,
        save: Callable[[ImportState], Awaitable[None]],
        sink: Sink,
        limits: BatchLimits,
        in_flight: int,
        stopper: Stopper,
        landed: set[str],
        shutdown_grace: float,
        progress: Callable[[SendCounts], None] = lambda counts: None,
    ) -> None:
        self._state = state
        self._save = save
        self._sink = sink
        self._limits = limits
        self._in_flight = in_flight
        self._stopper = stopper
        self._landed = landed
        self._grace = shutdown_grace
        self._progress = progress
        key = (state.cursor[0], state.cursor[1]) if state.cursor else None
        self._chunks: Iterator[list[Row]] = staging.rows_after(key)
        self._buffer: list[Row] = []
        self._seq = 0
        self._acked: dict[int, tuple[Cut, object]] = {}
        self._next_commit = 0
        # Batches cut and waiting for a sender: one is enough to keep them busy, and each holds
        # about a megabyte and a half.
        self._queue: asyncio.Queue[Cut | None] = asyncio.Queue(maxsize=QUEUED)
        self.counts = SendCounts()

    async def run(self) -> SendCounts:
        senders = [asyncio.create_task(self._sender()) for _ in range(self._in_flight)]
        loop = asyncio.get_running_loop()
        # One thread cuts every batch: memory freed by one batch is reused by the next instead
        # of lingering in the allocator's arena of whichever pool thread made it.
        cutter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cutter")
        try:
            while not self._stopper.stopping:
                cut = await loop.run_in_executor(cutter, self._cut)
                if cut is None:
                    break
                if not await self._register(cut):
                    continue
                await self._put(cut)
        finally:
            cutter.shutdown(wait=False)
            await self._shutdown(senders)
        if self._stopper.error is not None:
            raise self._stopper.error
        if self._stopper.signum is not None:
            raise Interrupted(self._stopper.signum)
        if self._next_commit != self._seq:  # never: every batch cut was sent and recorded
            raise RuntimeError(f"{self._seq - self._next_commit} batches were not recorded")
        return self.counts

    # -- cutting batches (in a worker thread) -------------------------------------------------

    def _row(self) -> Row | None:
        if not self._buffer:
            self._buffer = next(self._chunks, [])
            self._buffer.reverse()
        return self._buffer[-1] if self._buffer else None

    def _cut(self) -> Cut | None:
        builder = BatchBuilder(self._limits, range_id=0)
        consumed = 0
        first: Row | None = None
        last: Row | None = None
        low = high = None
        while (row := self._row()) is not None:
            log_id, _, date, _, line = row
            if log_id in self._landed:
                builder.count_already_in_tinybird(date)
            elif builder.fits(len(line), date):
                builder.add_line(line, log_id, date)
                # As the Query API compares them (strings), not as numbers.
                low = log_id if low is None or log_id < low else low
                high = log_id if high is None or log_id > high else high
            else:
                break
            self._buffer.pop()
            consumed += 1
            first = first or row
            last = row
        if last is None or first is None:
            return None
        batch = builder.close(last[0], seq=self._seq, cursor_date=last[2])
        pending = Pending(
            seq=self._seq,
            rows=batch.rows,
            first=[first[1], first[0]],
            last=[last[1], last[0]],
            min_log_id=low or last[0],
            max_log_id=high or last[0],
            min_date=batch.min_date or last[2],
            max_date=batch.max_date or last[2],
            digest=batch.digest,
        )
        self._seq += 1
        return Cut(batch, pending, consumed)

    # -- sending -----------------------------------------------------------------------------

    async def _register(self, cut: Cut) -> bool:
        """Record a batch as pending (on disk) before it is sent; False when it has nothing to
        send (its rows were all in Tinybird already): then it is committed at once."""
        if cut.batch.rows == 0:
            await self._acknowledge(cut, None)
            return False
        self._state.pending.append(cut.pending)
        await self._save(self._state)
        return True

    async def _put(self, cut: Cut) -> None:
        while True:
            if self._stopper.stopping:
                self._drop(cut)
                return
            try:
                await asyncio.wait_for(self._queue.put(cut), timeout=0.2)
                return
            except TimeoutError:
                continue

    async def _sender(self) -> None:
        while (cut := await self._queue.get()) is not None:
            if self._stopper.stopping:
                self._drop(cut)
                continue
            try:
                result = await self._sink.append(cut.batch)
            except asyncio.CancelledError:
                raise  # cut off at shutdown: it may have landed, so it stays pending
            except BaseException as error:  # noqa: BLE001 - any failure stops the import
                self._stopper.fail(error)
                continue
            await self._acknowledge(cut, result)

    def _drop(self, cut: Cut) -> None:
        """A batch that was never sent cannot have landed: no longer pending."""
        self._state.pending = [item for item in self._state.pending if item.seq != cut.pending.seq]

    async def _shutdown(self, senders: list[asyncio.Task[None]]) -> None:
        while self._stopper.stopping and not self._queue.empty():  # what waits is not sent
            queued = self._queue.get_nowait()
            if queued is not None:
                self._drop(queued)
        for _ in senders:
            await self._queue.put(None)  # after every batch queued: each sender takes one
        _, cut_off = await asyncio.wait(senders, timeout=self._grace)
        for task in cut_off:
            task.cancel()
        if cut_off:
            log.warning("shutdown abandoned_appends=%d reason=grace_expired", len(cut_off))
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*cut_off, return_exceptions=True)
        await self._save(self._state)

    # -- the in-order commit -----------------------------------------------------------------

    async def _acknowledge(self, cut: Cut, result: object) -> None:
        """Record acknowledgements in the order batches were cut (between two awaits, so no
        other step sees it half done), then save."""
        self._acked[cut.pending.seq] = (cut, result)
        moved = False
        while self._next_commit in self._acked:
            done, outcome = self._acked.pop(self._next_commit)
            self._next_commit += 1
            self._apply(done, outcome)
            moved = True
        if moved:
            self._progress(self.counts)
            await self._save(self._state)

    def _apply(self, cut: Cut, result: object) -> None:
        state, counts, batch = self._state, self.counts, cut.batch
        sent = getattr(result, "successful_rows", 0) + getattr(result, "quarantined_rows", 0)
        quarantined = getattr(result, "quarantined_rows", 0)
        already = getattr(result, "already_in_tinybird", 0) + batch.already_in_tinybird
        days = dict(batch.days)
        refused = record_left_out(state, getattr(result, "left_out", []), days)
        state.cursor = list(cut.pending.last)
        state.rows_sent += sent
        state.quarantined_rows += quarantined
        state.already_landed_rows += already
        state.batches += 1 if batch.rows else 0
        for day, count in days.items():
            state.ledger[day] = state.ledger.get(day, 0) + count
        state.pending = [
            item
            for item in state.pending
            if item.seq != cut.pending.seq and not (item.seq < 0 and item.last <= state.cursor)
        ]
        counts.rows_sent += sent
        counts.quarantined_rows += quarantined
        counts.already_in_tinybird += already
        counts.batches += 1 if batch.rows else 0
        counts.rows_done += cut.consumed
        if refused:
            counts.refused.extend(refused)
            self._stopper.fail(refused_error(refused))


async def recover(
    state: ImportState,
    landed_between: Callable[..., Awaitable[set[str]]] | None,
    *,
    settle: Callable[[], Awaitable[None]],
) -> set[str]:
    """Appends that were in flight when the last run died: the log_ids of theirs that landed
    (None to ask: without read access they are sent again, at least once)."""
    if not state.pending:
        return set()
    if landed_between is None:
        log.warning(
            "resume_unclean pending_appends=%d dedup=unavailable "
            "note='rows of these appends that landed will be sent again'",
            len(state.pending),
        )
        return set()
    await settle()
    landed: set[str] = set()
    for pending in state.pending:
        # Kept (as seq -1, never one of this run's batches) until the checkpoint passes it: a
        # crash before then must find it again.
        pending.seq = -1
        found = await landed_between(
            pending.min_log_id,
            pending.max_log_id,
            parse_record_date(pending.min_date),
            parse_record_date(pending.max_date),
        )
        landed |= found
        log.info("resume_unclean rows=%d already_in_tinybird=%d", pending.rows, len(found))
    return landed
