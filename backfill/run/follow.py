"""``run --follow``: once the history is in, keep reading new logs, a poll every
``--poll-interval`` seconds, with the run's guarantees, until SIGTERM or SIGINT.

Each poll is the pipeline again on the same state (the open range's cursor moves on after every
acknowledged batch, as in a run), so a stop at any moment resumes without loss; with read access
a crash adds no duplicate. What is particular to following:
- An open range is read again from a while behind its cursor (``[run] late_margin_seconds``):
  a log that becomes visible after newer ones, with a log_id behind theirs, still lands. What
  was acknowledged in that window is not sent twice (``RecentIds``; after a restart, asked of
  Tinybird when the token can read, else the window starts at the restart's cursor).
- A failure a retry cannot get past within ``[retry]`` (an outage of either service) ends the
  poll, not the follow: it pauses, longer each time (up to five minutes), and goes on; a
  refusal that no pause changes (credentials revoked, the data source gone, a Log Stream that
  now feeds it) ends the follow with its exit code.
- Every tenth poll it checks again that the data source exists and that no Log Stream feeds
  it (a stream's rows and the follow's would be there twice): a request in ten more.
- Idle, a poll is one request (a short page): no busy loop; memory does not grow with the
  hours (the recent ids are pruned as the newest moves, a pipeline lives one poll).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime, timedelta

from backfill.auth0.log_ids import order_key, synthesize, write_time
from backfill.clients import Services
from backfill.errors import Interrupted, RetriesExhaustedError
from backfill.records.batches import Batch
from backfill.run import survey
from backfill.run.budget import TenantBudget
from backfill.run.figures import TenantFigures
from backfill.run.pipeline import Pipeline
from backfill.run.request import JobRequest, Notes
from backfill.run.start import Plan
from backfill.state import file as state_file
from backfill.state.model import RangeState, RunState
from backfill.timeutil import humanize, iso, parse_record_date, utcnow

log = logging.getLogger("backfill.follow")

SURVEY_EVERY = 10  # polls between checks that the data source and its streams allow it
MOST_PAUSE = 300.0  # the longest pause after failed polls


def pause_after(interval: float, failures: int) -> float:
    """The pause after ``failures`` failed polls in a row: the interval, doubling each time, up
    to five minutes (or the interval, when longer); none failed: the interval."""
    return (
        min(interval * 2 ** min(failures, 30), max(MOST_PAUSE, interval)) if failures else interval
    )


class RecentIds:
    """The log_ids acknowledged within ``window`` of the newest one: what a poll that reads an
    open range again from behind its cursor must not send twice. Pruned as the newest moves."""

    def __init__(self, window: timedelta) -> None:
        self._window = window
        self._written: dict[str, datetime] = {}  # log_id -> its write time
        self._newest: datetime | None = None

    def note(self, batch: Batch) -> None:
        """A batch Tinybird acknowledged (Pipeline's ``acknowledged``)."""
        newest = write_time(batch.last_log_id) if batch.last_log_id else None
        if newest is None:
            return
        if self._newest is not None and newest < self._newest - self._window:
            return  # all of it too old to be read again: no need to open it
        self.add(batch.log_ids())

    def add(self, log_ids: list[str] | set[str]) -> None:
        for log_id in log_ids:
            written = write_time(log_id)
            if written is not None:
                self._written[log_id] = written
                if self._newest is None or written > self._newest:
                    self._newest = written
        self._prune()

    def ids(self) -> set[str]:
        return set(self._written)

    def __len__(self) -> int:
        return len(self._written)

    def _prune(self) -> None:
        if self._newest is None:
            return
        oldest = self._newest - self._window - timedelta(seconds=5)
        for log_id in [key for key, written in self._written.items() if written < oldest]:
            del self._written[log_id]


def caught_up(state: RunState, pipeline: Pipeline) -> None:
    """Record up to when every log was read and acknowledged: when the open range was last
    read to its end, or, every range of a bounded run done, its end."""
    if pipeline.caught_up_at is not None:
        state.caught_up_through = iso(pipeline.caught_up_at)
    elif state.ranges and all(item.done for item in state.ranges):
        ends = [parse_record_date(item.end) for item in state.ranges if item.end]
        reached = max((end for end in ends if end is not None), default=None)
        if reached is not None:
            state.caught_up_through = iso(min(reached, utcnow()))


class Follower:
    """The polls of one tenant, after its history run."""

    def __init__(
        self,
        request: JobRequest,
        services: Services,
        plan: Plan,
        saver: state_file.Saver | None,
        figures: TenantFigures,
        recent: RecentIds,
        notes: Notes,
        budget: TenantBudget | None = None,
    ) -> None:
        self.request = request
        self.services = services
        self.plan = plan
        self.saver = saver
        self.figures = figures
        self.recent = recent
        self.notes = notes
        self.budget = budget
        settings = request.settings
        self.interval = settings.poll_interval
        self.window = timedelta(seconds=settings.late_margin_seconds)
        self.floor: str | None = None  # ids up to here may be another process's: not re-read
        self.polls = 0

    async def run(self) -> str:
        """Poll until stopped; the outcome ("stopped"). Raises what no pause changes."""
        await self._seed()
        failures = 0
        began = time.monotonic()  # the history's end: the first poll an interval after it
        while True:
            # A poll every interval, start to start: its own time is not added to the wait.
            pause = pause_after(self.interval, failures) - (time.monotonic() - began)
            if await self.request.stopper.wait(pause):
                return "stopped"
            began = time.monotonic()
            try:
                await self._survey()
                await self._poll()
            except Interrupted:
                return "stopped"
            except RetriesExhaustedError as error:  # an outage: pause, longer each time
                failures += 1
                self.figures.failures += 1
                log.warning(
                    "follow poll_failed failures=%d next_in=%s reason=%r",
                    failures,
                    humanize(pause_after(self.interval, failures)),
                    str(error),
                )
                continue
            failures = 0

    async def _seed(self) -> None:
        """After a restart: what the window behind the cursor already holds, asked of Tinybird
        when the token can read; else the window starts at this cursor (a log made visible late
        around a restart then waits for a later backfill: said in the notes)."""
        tail = _open_range(self.plan.state)
        if tail is None or tail.cursor is None:
            return
        written = write_time(tail.cursor)
        if written is None:
            return
        query = self.plan.query
        if query is None:
            self.floor = tail.cursor
            self.notes.add(
                "Following without read access: a log made visible after newer ones is caught "
                "only after this process's first poll (Tinybird cannot be asked what landed "
                "before it)."
            )
            return
        first = max(synthesize(written - self.window), tail.start_after, key=order_key)
        self.recent.add(await query.landed_between(first, tail.cursor, None, None))

    async def _survey(self) -> None:
        """Now and then: the data source still exists, and no Log Stream feeds it."""
        self.polls += 1
        if self.polls % SURVEY_EVERY:
            return
        access = await survey.tinybird(self.services, Notes())
        feeding = await survey.streams(self.services)
        await survey.refuse_overlap_with_streams(
            access, feeding, self.plan.state, self.request.settings, Notes()
        )

    async def _poll(self) -> None:
        plan, state = self.plan, self.plan.state
        step = self.request.stopper.child()
        options = replace(plan.options, rewind=self.window, rewind_floor=self.floor)
        pipeline = Pipeline(
            source=self.services.auth0,
            sink=plan.sink,
            state=state,
            save=self.saver.submit if self.saver else _unsaved,
            durable=self.saver.durable if self.saver else None,
            options=options,
            stopper=step,
            landed_between=plan.landed_between,
            reread=self.recent.ids(),
            acknowledged=self.recent.note,
            budget=self.budget,
        )
        self.figures.pipeline = pipeline
        try:
            counts = await pipeline.run()
        finally:
            self.figures.pipeline_done()
            self.figures.polls += 1
            self.figures.last_poll = time.time()
        caught_up(state, pipeline)
        self.figures.caught_up_through = parse_record_date(state.caught_up_through)
        if self.saver is not None:
            self.saver.submit(state)
        if counts.rows_sent or self.polls % SURVEY_EVERY == 0:  # what came, or a heartbeat
            lag = utcnow() - (self.figures.caught_up_through or utcnow())
            log.info(
                "follow poll rows=%d caught_up_through=%s lag=%s polls=%d",
                counts.rows_sent,
                state.caught_up_through,
                humanize(lag.total_seconds()),
                self.polls,
            )


def _open_range(state: RunState) -> RangeState | None:
    return next((item for item in state.ranges if not item.bounded and not item.done), None)


def _unsaved(snapshot: RunState) -> None:
    """No state file (a dry run, --resume-from-tinybird): nothing is kept."""
