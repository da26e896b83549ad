"""The order of operations: read a page, transform, batch, send, wait for the acknowledgement,
then record the checkpoint. Only this module knows that order.

Concurrency, and why it keeps every guarantee:
- Readers (one per range at a time, up to ``concurrency``) page their range by checkpoint through
  the shared pacer, and put full batches on a bounded queue, so reading never waits on Tinybird
  and memory stays bounded.
- Senders (``in_flight`` of them) append batches with ``wait=true``.
- The committer records a range's acknowledgements strictly in the order its batches were read:
  a batch acknowledged early waits for the ones before it, so the checkpoint never passes a batch
  Tinybird has not acknowledged. Before a batch is handed to a sender, the state file records it
  as pending (its log_id span and digest), so a resume after a crash can ask Tinybird which of
  its rows landed and send only the rest.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from backfill.batches import Batch, BatchBuilder, BatchLimits
from backfill.envelope import serialize, to_envelope
from backfill.errors import (
    Auth0RequestError,
    BackfillError,
    CheckpointExpiredError,
    Interrupted,
)
from backfill.log_ids import order_key, synthesize, write_time
from backfill.pacer import PacerStopped
from backfill.state import Gap, PendingAppend, RangeState, RunState
from backfill.timeutil import humanize, iso, parse_record_date, stamp, utcnow
from backfill.tinybird_sink import AppendResult

log = logging.getLogger("backfill.pipeline")

Record = dict[str, Any]

STEAL_MIN_LOGS = 1_000  # a range is split for an idle cursor only if both halves get this many

RETENTION_TABLE = (
    "Auth0 keeps logs for: Starter/free 1 day, Essentials 5 days, Professional 10 days, "
    "Enterprise 30 days."
)


class Source(Protocol):
    def page_after(self, checkpoint: str, take: int = 100) -> list[Record]: ...

    def get(self, log_id: str) -> Record | None: ...

    def oldest(self) -> Record | None: ...


class Sink(Protocol):
    def append(self, batch: Batch) -> AppendResult: ...


class Stopping(Exception):
    """Raised inside worker threads once the run is stopping."""


class Stopper:
    """One place that says the run is stopping, and why: a signal, or the first failure."""

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


@dataclass
class RunOptions:
    limits: BatchLimits = field(default_factory=BatchLimits)
    concurrency: int = 8
    in_flight: int = 4
    late_margin: timedelta = timedelta(seconds=60)
    keep_type: Callable[[object], bool] | None = None
    restart_from_oldest: bool = False
    shutdown_grace: float = 30.0
    resume_settle: float = 5.0
    flush_seconds: float = 60.0  # send a range's batch at least this often
    take: int = 100
    # True while the source's rate limit, not the number of cursors, sets the pace: then an idle
    # cursor splitting a range would only add partial pages and re-read margins.
    rate_limited: Callable[[], bool] = lambda: False


@dataclass
class RunTotals:
    records_read: int = 0
    rows_sent: int = 0
    quarantined: int = 0
    already_landed: int = 0
    filtered: int = 0  # left out by --types / --exclude-types
    outside: int = 0  # read past a range's edge: another range's, not sent twice
    batches: int = 0
    splits: int = 0
    undated: int = 0
    gaps: list[Gap] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)


class Progress(Protocol):
    def advance(self, range_id: int, date: datetime | None, records: int) -> None: ...

    def split(self, shortened: RangeState, new: RangeState) -> None: ...

    def tick(self, totals: RunTotals) -> None: ...


class _NoProgress:
    def advance(self, range_id: int, date: datetime | None, records: int) -> None:
        pass

    def split(self, shortened: RangeState, new: RangeState) -> None:
        pass

    def tick(self, totals: RunTotals) -> None:
        pass


@dataclass
class _RangeRun:
    state: RangeState
    next_seq: int = 0
    next_commit: int = 0
    acked: dict[int, tuple[Batch, AppendResult]] = field(default_factory=dict)
    repositions: dict[int, tuple[str, Gap]] = field(default_factory=dict)
    reading: bool = False
    fetched_to: datetime | None = None  # write time of the last log_id fetched for this range
    fetched: int = 0  # records fetched, with the span they covered: the range's density
    fetched_since: datetime | None = None

    def density(self) -> float | None:
        """Logs per second seen so far in this range."""
        if self.fetched_to is None or self.fetched_since is None or self.fetched < 100:
            return None
        seconds = (self.fetched_to - self.fetched_since).total_seconds()
        return self.fetched / seconds if seconds > 0 else None


class Pipeline:
    def __init__(
        self,
        *,
        source: Source,
        sink: Sink,
        state: RunState,
        save: Callable[[RunState], None],
        options: RunOptions,
        stopper: Stopper,
        progress: Progress | None = None,
        landed_between: Callable[[PendingAppend], set[str]] | None = None,
        already_there: set[str] | None = None,
        now: Callable[[], datetime] = utcnow,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._source = source
        self._sink = sink
        self._state = state
        self._save = save
        self._options = options
        self._stopper = stopper
        self._progress = progress or _NoProgress()
        self._landed_between = landed_between
        self._now = now
        self._lock = threading.RLock()
        self._runs = {item.id: _RangeRun(item) for item in state.ranges}
        self._work: queue.Queue[int] = queue.Queue()
        self._send: queue.Queue[Batch | None] = queue.Queue(maxsize=options.in_flight)
        self._outstanding = 0  # batches registered and not yet committed or dropped
        # log_ids Tinybird already has (appends in flight when the last run died). Shared by
        # every range: after a re-split, another range than the one that sent them reads them.
        self._skip: set[str] = set(already_there or ())
        self._readers_left = 0
        self.totals = RunTotals()

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> RunTotals:
        with contextlib.suppress(Stopping):  # a signal while settling: stop before starting
            self._recover_pending()
        if self._stopper.stopping:
            return self._finish()
        pending_ranges = sorted(
            (item for item in self._state.ranges if not item.done),
            key=lambda item: (item.start or "", item.id),
        )
        for item in pending_ranges:
            self._work.put(item.id)
        readers = [
            threading.Thread(target=self._reader, name=f"reader-{index}", daemon=True)
            for index in range(min(self._options.concurrency, len(pending_ranges)))
        ]
        senders = [
            threading.Thread(target=self._sender, name=f"sender-{index}", daemon=True)
            for index in range(self._options.in_flight)
        ]
        self._readers_left = len(readers)
        self._state.running = True
        self._save_state()
        for thread in readers + senders:
            thread.start()
        while not self._stopper.stopping:
            with self._lock:
                finished = self._readers_left == 0 and self._outstanding == 0
            if finished:
                break
            self._progress.tick(self.totals)
            self._stopper.wait(0.2)
        self._shutdown(readers, senders)
        return self._finish()

    def _finish(self) -> RunTotals:
        self._progress.tick(self.totals)
        if self._stopper.error is not None:
            raise self._stopper.error
        if self._stopper.signum is not None:
            raise Interrupted(self._stopper.signum)
        return self.totals

    def _shutdown(self, readers: list[threading.Thread], senders: list[threading.Thread]) -> None:
        for _ in senders:
            self._put_sentinel()
        deadline = time.monotonic() + self._options.shutdown_grace
        for thread in senders + readers:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        abandoned = [thread.name for thread in senders if thread.is_alive()]
        if abandoned:
            log.warning(
                "shutdown abandoned_appends=%d reason=grace_expired grace=%.0fs",
                len(abandoned),
                self._options.shutdown_grace,
            )
        with self._lock:
            self._state.running = bool(abandoned)
            self._save_state()

    def _put_sentinel(self) -> None:
        while True:
            try:
                self._send.put(None, timeout=0.1)
                return
            except queue.Full:
                # Stopping: queued batches will not be sent; drop one to make room.
                try:
                    dropped = self._send.get_nowait()
                except queue.Empty:
                    continue
                if dropped is not None:
                    self._drop(dropped)

    # -- recovery after a crash (exactly once) ----------------------------------------------

    def _recover_pending(self) -> None:
        """Appends that were in flight when the last run died: skip what of them landed."""
        if not self._state.pending:
            return
        if self._landed_between is None:
            log.warning(
                "resume_unclean pending_appends=%d dedup=unavailable "
                "note='rows of these appends that landed will be sent again'",
                len(self._state.pending),
            )
            self._state.pending.clear()
            return
        # An append in flight when the last run died may still be landing: give it a moment,
        # counted from the last time that run was known alive (its last save).
        latest = max(
            self._state.saved_at, *((item.registered_at or 0.0) for item in self._state.pending)
        )
        settle = latest + self._options.resume_settle - time.time()
        if settle > 0:
            log.info("resume_unclean settling=%.1fs", settle)
            self._stopper.sleep(settle)
        for pending in self._state.pending:
            # Kept (as seq -1, so it never matches this run's batches) until no range has to
            # read its rows any more: a crash before that must find it again.
            pending.seq = -1
            found = self._landed_between(pending)
            self._skip.update(found)
            log.info(
                "resume_unclean range=%d rows=%d already_in_tinybird=%d",
                pending.range,
                pending.rows,
                len(found),
            )

    # -- readers ----------------------------------------------------------------------------

    def _reader(self) -> None:
        try:
            while not self._stopper.stopping:
                try:
                    run = self._runs[self._work.get_nowait()]
                except queue.Empty:
                    stolen = self._steal()
                    if stolen is None:
                        with self._lock:
                            busy = any(other.reading for other in self._runs.values())
                        if not busy:
                            return
                        self._stopper.wait(0.25)  # a range may become worth splitting
                        continue
                    run = stolen
                self._read_range(run)
        except BaseException as error:  # noqa: BLE001 - any failure of a worker stops the run
            self._stopper.fail(error)
        finally:
            with self._lock:
                self._readers_left -= 1

    def _read_range(self, run: _RangeRun) -> None:
        if run.state.done:
            return
        with self._lock:
            run.reading = True
        try:
            _RangeReader(self, run).read()
        finally:
            with self._lock:
                run.reading = False

    def _steal(self) -> _RangeRun | None:
        """An idle cursor takes the far half of the range with the most left to read.

        The split point lies beyond everything the range's reader has fetched (by a margin), so
        no record it holds belongs to the new half; the reader picks up its new end with its next
        page. Both halves are in the state file before either reads on.
        """
        margin = self._options.late_margin
        if self._options.rate_limited():
            return None
        with self._lock:
            best: tuple[float, _RangeRun, datetime, datetime] | None = None
            now = self._now()
            for run in self._runs.values():
                item = run.state
                density = run.density()
                if not run.reading or item.done or run.fetched_to is None or density is None:
                    continue
                low = run.fetched_to + margin
                high = _parse(item.end) or now
                left = (high - low).total_seconds() * density
                if left >= 2 * STEAL_MIN_LOGS and (best is None or left > best[0]):
                    best = (left, run, low, high)
            if best is None:
                return None
            _, victim, low, high = best
            middle = low + (high - low) / 2
            new = RangeState(
                id=max(self._runs) + 1,
                start=iso(middle),
                end=victim.state.end,
                start_after=synthesize(middle - margin),
            )
            victim.state.end = new.start
            self._state.ranges.append(new)
            run = self._runs[new.id] = _RangeRun(new)
            self._progress.split(victim.state, new)
            self._save_state()
            log.info(
                "range_split range=%d at=%s new_range=%d logs_left~%d",
                victim.state.id,
                new.start,
                new.id,
                best[0],
            )
            return run

    # -- hand-over to senders and the committer ------------------------------------------------

    def emit(self, run: _RangeRun, batch: Batch) -> None:
        with self._lock:
            batch.seq = run.next_seq
            run.next_seq += 1
            self._outstanding += 1
            if batch.rows == 0:
                self._commit(run, batch, AppendResult())
                return
            self._state.pending.append(
                PendingAppend(
                    range=run.state.id,
                    seq=batch.seq,
                    rows=batch.rows,
                    first_log_id=batch.first_log_id,
                    last_log_id=batch.last_log_id,
                    min_date=batch.min_date,
                    max_date=batch.max_date,
                    digest=batch.digest,
                    cursor_after=batch.cursor_after,
                    registered_at=time.time(),
                )
            )
            self._save_state()
        while True:
            if self._stopper.stopping:
                self._drop(batch)
                raise Stopping
            try:
                self._send.put(batch, timeout=0.2)
                return
            except queue.Full:
                continue

    def _sender(self) -> None:
        while True:
            batch = self._send.get()
            if batch is None:
                return
            if self._stopper.stopping:
                self._drop(batch)
                continue
            try:
                result = self._sink.append(batch)
            except BaseException as error:  # noqa: BLE001 - any failure of a worker stops the run
                self._stopper.fail(error)
                self._drop(batch, sent=True)
                continue
            with self._lock:
                self._commit(self._runs[batch.range_id], batch, result)

    def _drop(self, batch: Batch, *, sent: bool = False) -> None:
        """A batch that will not be acknowledged in this run: its rows are read again next time.

        One that was never sent cannot have landed, so it leaves the pending list; one that was
        sent stays there, for the next run to check.
        """
        with self._lock:
            self._outstanding -= 1
            if not sent:
                self._state.pending = [
                    item
                    for item in self._state.pending
                    if (item.range, item.seq) != (batch.range_id, batch.seq)
                ]

    def _commit(self, run: _RangeRun, batch: Batch, result: AppendResult) -> None:
        """Record acknowledgements in read order; caller holds the lock."""
        run.acked[batch.seq] = (batch, result)
        moved = False
        while run.next_commit in run.acked:
            done, outcome = run.acked.pop(run.next_commit)
            run.next_commit += 1
            self._outstanding -= 1
            self._apply(run, done, outcome)
            moved = True
        if moved:
            self._save_state()

    def _apply(self, run: _RangeRun, batch: Batch, result: AppendResult) -> None:
        state, totals, item = self._state, self.totals, run.state
        if batch.cursor_after is not None:
            item.cursor = batch.cursor_after
            item.cursor_date = batch.cursor_date
        acknowledged = result.successful_rows + result.quarantined_rows
        item.rows += acknowledged
        state.rows_sent += acknowledged
        state.quarantined_rows += result.quarantined_rows
        state.already_landed_rows += result.already_landed + batch.landed
        for day, count in batch.days.items():
            state.ledger[day] = state.ledger.get(day, 0) + count
        if batch.rows:
            state.batches += 1
            totals.batches += 1
        totals.rows_sent += acknowledged
        totals.quarantined += result.quarantined_rows
        totals.already_landed += result.already_landed + batch.landed
        totals.splits += result.splits
        state.pending = [
            pending
            for pending in state.pending
            if (pending.range, pending.seq) != (batch.range_id, batch.seq)
            and not (pending.seq == -1 and self._passed_by_all(pending))
        ]
        restart = run.repositions.pop(batch.seq, None)
        if restart is not None:
            oldest_id, gap = restart
            item.cursor, item.cursor_date = None, None
            item.start_after, item.lead = oldest_id, oldest_id
            state.gaps.append(gap)
            totals.gaps.append(gap)
        if batch.completes_range:
            item.done = True
            log.info("range_done range=%d rows=%d", item.id, item.rows)

    def _passed_by_all(self, pending: PendingAppend) -> bool:
        """No range will read this recovered append's rows again (caller holds the lock)."""
        last = pending.last_log_id or pending.cursor_after
        if last is None:
            return True
        for item in self._state.ranges:
            if item.done:
                continue
            if order_key(item.position) >= order_key(last):
                continue
            if item.end is not None and pending.min_date and item.end <= pending.min_date:
                continue  # ends before the append's rows begin (ISO strings of one format)
            return False
        return True

    def reposition(self, run: _RangeRun, mark: Batch, oldest_id: str, gap: Gap) -> None:
        """After --restart-from-oldest: the range continues at the oldest retained log, once
        every batch read before the jump is committed (the jump is itself in the commit order)."""
        with self._lock:
            run.repositions[run.next_seq] = (oldest_id, gap)
            self.emit(run, mark)

    def count(self, *, read: int, filtered: int, outside: int, undated: int) -> None:
        with self._lock:
            self.totals.records_read += read
            self.totals.filtered += filtered
            self.totals.outside += outside
            self.totals.undated += undated

    def _save_state(self) -> None:
        with self._lock:
            self._save(self._state)


class _RangeReader:
    """Reads one range by checkpoint, filters on date and type, and cuts batches."""

    def __init__(self, pipeline: Pipeline, run: _RangeRun) -> None:
        self.pipeline = pipeline
        self.source = pipeline._source
        self.run = run
        self.options = pipeline._options
        item = run.state
        # Dates are compared as canonical stamps (timeutil.stamp): strings, cheap per record.
        self.lower = stamp(item.start)
        self.upper: str | None = None
        self.stop_at: str | None = None
        self.end_seen: str | None = None
        self.refresh_end()
        self.builder = BatchBuilder(self.options.limits, item.id, clock=pipeline._clock)
        self.last_consumed: str | None = None
        self.last_consumed_date: str | None = None
        self.filtered = 0
        self.outside = 0
        self.undated = 0

    def read(self) -> None:
        item = self.run.state
        if item.lead and item.cursor is None:
            lead = self.source.get(item.lead)
            if lead is not None:
                self.consume(lead)
        position: str | None = self.last_consumed or item.position
        while position is not None:
            if self.pipeline._stopper.stopping:
                raise Stopping
            try:
                page = self.source.page_after(position, self.options.take)
            except Auth0RequestError as error:
                if error.status != 400:
                    raise
                position = self.expired(position, error)
                continue
            position = self.read_page(page, position)

    def refresh_end(self) -> None:
        """The range's end, which a split may have moved closer (caller holds the lock)."""
        if self.run.state.end == self.end_seen:
            return  # unchanged (the common case, once a page); no end: None, None as set up
        self.end_seen = self.run.state.end
        end = _parse(self.run.state.end)
        self.upper = iso(end) if end else None
        self.stop_at = iso(end + self.options.late_margin) if end else None

    def fetched(self, page: list[Record]) -> None:
        """Record how far this range has fetched, then take its current end: a split after
        this point lies beyond every record of the page."""
        with self.pipeline._lock:
            run = self.run
            if page:
                reached = write_time(page[-1]["log_id"])
                if reached is not None:
                    if run.fetched_since is None:
                        run.fetched_since = write_time(page[0]["log_id"])
                    run.fetched_to = reached
                    run.fetched += len(page)
            self.refresh_end()

    def read_page(self, page: list[Record], position: str) -> str | None:
        """Consume one page; the next position, or None when the range's reading is over."""
        self.fetched(page)
        last_date: str | None = None
        try:
            for record in page:
                date = self.date_of(record)
                if self.stop_at is not None and date is not None and date >= self.stop_at:
                    self.finish(completes=True)
                    return None
                self.consume(record, date)
                last_date = date or last_date
        finally:
            self.pipeline.count(
                read=len(page), filtered=self.filtered, outside=self.outside, undated=self.undated
            )
            self.filtered = self.outside = self.undated = 0
            self.pipeline._progress.advance(self.run.state.id, _parse(last_date), len(page))
        if len(page) < self.options.take:
            # Caught up with what Auth0 has written. A bounded range whose end lies further back
            # than the late margin is complete: every log dated before it has been written.
            complete = self.stop_at is not None and iso(self.pipeline._now()) >= self.stop_at
            self.finish(completes=complete)
            return None
        if self.builder.consumed and (
            self.builder.consumed >= self.options.limits.max_rows
            or self.pipeline._clock() - self.builder.opened >= self.options.flush_seconds
        ):
            # A long stretch filtered out, or a slow plan filling batches slowly: send what
            # there is, so the checkpoint moves and a stop re-reads little.
            self.flush()
        return str(page[-1]["log_id"]) if page else position

    def date_of(self, record: Record) -> str | None:
        """The record's date as a stamp; without one, the write time its id carries."""
        date = stamp(record.get("date"))
        if date is None:
            self.undated += 1
            log_id = record.get("log_id")
            written = write_time(log_id) if isinstance(log_id, str) else None
            date = iso(written) if written else None
        return date

    def consume(self, record: Record, date: str | None = None) -> None:
        envelope = to_envelope(record)  # raises on a record without a log_id
        log_id: str = envelope["log_id"]
        if date is None:
            date = self.date_of(record)
        keep_type = self.options.keep_type
        if not self.in_range(date):
            self.outside += 1  # another range's (read past an edge for late-written ids)
        elif keep_type is not None and not keep_type(record.get("type")):
            self.filtered += 1
        elif log_id in self.pipeline._skip:
            self.builder.count_landed(date)
        else:
            line = serialize(envelope)
            if not self.builder.fits(len(line), date):
                self.flush()
            self.builder.add_line(line, log_id, date)
        self.builder.count_consumed()
        self.last_consumed = log_id
        raw_date = record.get("date")
        self.last_consumed_date = raw_date if isinstance(raw_date, str) else None

    def in_range(self, date: str | None) -> bool:
        if date is None:
            return True  # no date and no readable id: only a single-range run reads it
        if self.lower is not None and date < self.lower:
            return False
        return self.upper is None or date < self.upper

    def close(self) -> Batch:
        return self.builder.close(self.last_consumed, seq=-1, cursor_date=self.last_consumed_date)

    def flush(self) -> None:
        if self.builder.consumed:
            self.pipeline.emit(self.run, self.close())

    def finish(self, *, completes: bool) -> None:
        batch = self.close()
        batch.ends_range, batch.completes_range = True, completes
        self.pipeline.emit(self.run, batch)

    def expired(self, position: str, error: Auth0RequestError) -> str | None:
        """A 400 on a checkpoint: did it age out of retention? Stop, or skip the gap knowingly."""
        oldest = self.source.oldest()
        if oldest is None or order_key(position) >= order_key(oldest["log_id"]):
            raise error
        now = self.pipeline._now()
        then = write_time(position) or _parse(self.run.state.cursor_date)
        oldest_date = parse_record_date(oldest.get("date"))
        age = f"{humanize(now - then)} old" if then else "of unknown age"
        if not self.options.restart_from_oldest:
            raise CheckpointExpiredError(
                f"The checkpoint {position} ({iso(then) if then else 'date unknown'}, {age}) is "
                f"older than the oldest log Auth0 still retains ({oldest.get('date')}): the logs "
                f"between them are gone. {RETENTION_TABLE}",
                hint="Run again with --restart-from-oldest to accept the gap and go on from the "
                "oldest retained log (the gap is recorded and reported), or start over with "
                "--restart.",
            )
        self.flush()
        seconds = (oldest_date - then).total_seconds() if then and oldest_date else 0.0
        gap = Gap(
            after_log_id=position,
            after_date=iso(then) if then else None,
            resumed_at_date=oldest.get("date"),
            seconds=max(seconds, 0.0),
        )
        log.warning(
            "checkpoint_expired range=%d gap=%s from=%s to=%s action=restart_from_oldest",
            self.run.state.id,
            humanize(gap.seconds),
            gap.after_date,
            gap.resumed_at_date,
        )
        gone = self.upper is not None and oldest_date is not None and self.upper <= iso(oldest_date)
        mark = self.close()
        mark.ends_range = mark.completes_range = gone
        self.pipeline.reposition(self.run, mark, str(oldest["log_id"]), gap)
        if gone:
            return None  # the whole rest of this range aged out
        self.last_consumed = None
        self.consume(oldest)
        return str(oldest["log_id"])


def _parse(value: str | None) -> datetime | None:
    return parse_record_date(value) if value else None


def describe_error(error: BaseException) -> str:
    return str(error) if isinstance(error, BackfillError) else f"{type(error).__name__}: {error}"
