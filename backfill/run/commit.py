"""The in-order commit: a range's acknowledgements are recorded strictly in the order its batches
were read, so the checkpoint never passes a batch Tinybird has not acknowledged; and before a
batch is sent, the state records it as pending, so a resume after a crash can ask Tinybird which
of its rows landed (``recover_pending``).

A row Tinybird refused as too large even alone is recorded with its batch, in order, and then
stops the run (``refused``): every acknowledged batch is recorded, so nothing is sent twice.

``Committer`` is plain computation (and the state file's write): the pipeline calls it between
two awaits, so no other step of the run sees it half done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from backfill.auth0.log_ids import order_key
from backfill.records.batches import Batch
from backfill.run.refused import record_left_out, refused_error
from backfill.run.report import Counts
from backfill.state.model import Acknowledged, Gap, PendingAppend, RunState
from backfill.tinybird.events import AppendResult

log = logging.getLogger("backfill.pipeline")


@dataclass
class _ReadOrder:
    """A range's batches by the order they were read in."""

    next_seq: int = 0
    next_commit: int = 0
    acked: dict[int, tuple[Batch, AppendResult]] = field(default_factory=dict)
    repositions: dict[int, tuple[str, Gap]] = field(default_factory=dict)


class Committer:
    def __init__(
        self,
        state: RunState,
        save: Callable[[RunState], None],
        counts: Counts,
        stop: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.state = state
        self.counts = counts
        self._save = save
        self._stop = stop  # told once a refused row is recorded
        self._orders: dict[int, _ReadOrder] = {}
        self.outstanding = 0  # batches registered and not yet committed or dropped

    def save(self) -> None:
        self._save(self.state)

    def register(self, batch: Batch) -> bool:
        """Give the batch its place in its range's order; False when it has nothing to send
        (it is committed at once)."""
        order = self._orders.setdefault(batch.range_id, _ReadOrder())
        batch.seq = order.next_seq
        order.next_seq += 1
        self.outstanding += 1
        if batch.rows == 0:
            self.acknowledge(batch, AppendResult())
            return False
        self.state.pending.append(
            PendingAppend(
                range=batch.range_id,
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
        self.save()
        return True

    def reposition_next(self, range_id: int, oldest_id: str, gap: Gap) -> None:
        """After --restart-from-oldest: once the next batch of the range is committed, the range
        continues at the oldest retained log (the jump is itself in the commit order)."""
        order = self._orders.setdefault(range_id, _ReadOrder())
        order.repositions[order.next_seq] = (oldest_id, gap)

    def drop(self, batch: Batch, *, sent: bool) -> None:
        """A batch that will not be acknowledged in this run: its rows are read again next time.

        One that was never sent cannot have landed, so it leaves the pending list; one that was
        sent stays there, for the next run to check.
        """
        self.outstanding -= 1
        if not sent:
            self.state.pending = [
                item
                for item in self.state.pending
                if (item.range, item.seq) != (batch.range_id, batch.seq)
            ]

    def acknowledge(self, batch: Batch, result: AppendResult) -> None:
        """Record acknowledgements in read order."""
        order = self._orders[batch.range_id]
        order.acked[batch.seq] = (batch, result)
        moved = False
        while order.next_commit in order.acked:
            done, outcome = order.acked.pop(order.next_commit)
            order.next_commit += 1
            self.outstanding -= 1
            self._apply(order, done, outcome)
            moved = True
        if moved:
            self.save()

    def _apply(self, order: _ReadOrder, batch: Batch, result: AppendResult) -> None:
        item = next(item for item in self.state.ranges if item.id == batch.range_id)
        if batch.cursor_after is not None and (
            item.cursor is None or order_key(batch.cursor_after) >= order_key(item.cursor)
        ):  # a range read again from behind its cursor (following) never moves it back
            item.cursor = batch.cursor_after
            item.cursor_date = batch.cursor_date
        acknowledged = Acknowledged(
            rows=result.successful_rows + result.quarantined_rows,
            quarantined_rows=result.quarantined_rows,
            already_in_tinybird=result.already_in_tinybird + batch.already_in_tinybird,
            batches=1 if batch.rows else 0,
        )
        item.rows += acknowledged.rows
        days = batch.days
        if result.left_out:
            days = dict(days)
            refused = record_left_out(self.state, result.left_out, days)
            if refused and self._stop is not None:
                self._stop(refused_error(refused))
        self.state.add(acknowledged, days)
        self.counts.add(acknowledged)
        self.state.pending = [
            pending
            for pending in self.state.pending
            if (pending.range, pending.seq) != (batch.range_id, batch.seq)
            and not (pending.seq == -1 and self._passed_by_all(pending))
        ]
        restart = order.repositions.pop(batch.seq, None)
        if restart is not None:
            oldest_id, gap = restart
            item.cursor, item.cursor_date = None, None
            item.start_after, item.lead = oldest_id, oldest_id
            self.state.gaps.append(gap)
        if batch.completes_range:
            item.done = True
            log.info("range_done range=%d rows=%d", item.id, item.rows)

    def _passed_by_all(self, pending: PendingAppend) -> bool:
        """No range will read this recovered append's rows again."""
        last = pending.last_log_id or pending.cursor_after
        if last is None:
            return True
        for item in self.state.ranges:
            if item.done:
                continue
            if order_key(item.position) >= order_key(last):
                continue
            if item.end is not None and pending.min_date and item.end <= pending.min_date:
                continue  # ends before the append's rows begin (ISO strings of one format)
            first = pending.first_log_id
            if item.end_id is not None and first and order_key(item.end_id) < order_key(first):
                continue  # ends at a log_id before the append's first
            return False
        return True


async def recover_pending(
    state: RunState,
    landed_between: Callable[[PendingAppend], Awaitable[set[str]]] | None,
    *,
    settle_seconds: float,
    sleep: Callable[[float], Awaitable[None]],
) -> set[str]:
    """Appends that were in flight when the last run died: the log_ids of theirs that landed."""
    if not state.pending:
        return set()
    if landed_between is None:
        log.warning(
            "resume_unclean pending_appends=%d dedup=unavailable "
            "note='rows of these appends that landed will be sent again'",
            len(state.pending),
        )
        state.pending.clear()
        return set()
    # An append in flight when the last run died may still be landing: give it a moment,
    # counted from the last time that run was known alive (its last save).
    latest = max(state.saved_at, *((item.registered_at or 0.0) for item in state.pending))
    settle = latest + settle_seconds - time.time()
    if settle > 0:
        log.info("resume_unclean settling=%.1fs", settle)
        await sleep(settle)
    landed: set[str] = set()
    for pending in state.pending:
        # Kept (as seq -1, so it never matches this run's batches) until no range has to
        # read its rows any more: a crash before that must find it again.
        pending.seq = -1
        found = await landed_between(pending)
        landed.update(found)
        log.info(
            "resume_unclean range=%d rows=%d already_in_tinybird=%d",
            pending.range,
            pending.rows,
            len(found),
        )
    return landed
