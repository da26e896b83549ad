"""Where a run starts: the mode is decided once (``start``), and each mode has its function,
which returns a ``Plan`` (the state to run, the options, the sink, what Tinybird already holds)
or ``NothingToDo``.

- ``fresh``: no checkpoint; from ``--from-log-id``, ``--from-date`` or the oldest log.
- ``until_stream_start``: fresh, ending where the live stream's data begins.
- ``resume``: the checkpoint of an earlier run (a tail far behind is cut while it is read).
- ``from_tinybird``: the resume point is the greatest log_id in the data source, no state file.
- ``dry_run``: envelopes to a file instead of Tinybird; the checkpoint is not touched.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import IO, TypeVar

from backfill.auth0.streams import LogStream
from backfill.clients import Services, tinybird_events
from backfill.errors import ConfigError
from backfill.records.batches import Batch
from backfill.run import stream, survey
from backfill.run.checkpoint import load_state
from backfill.run.mirror import Mirror, mirror
from backfill.run.newrun import NewRun, new_run, new_state
from backfill.run.options import RunOptions, Sink
from backfill.run.reader import Record
from backfill.run.request import JobRequest, Notes, run_options
from backfill.run.retention import aged_out, expired_error
from backfill.run.together import together
from backfill.state.model import PendingAppend, RangeState, RunState
from backfill.timeutil import iso, parse_record_date, utcnow
from backfill.tinybird.events import AppendResult
from backfill.tinybird.query import TinybirdQuery

log = logging.getLogger("backfill.job")

T = TypeVar("T")
Feeding = list[LogStream] | None  # the Log Streams feeding the data source; None: not readable


@dataclass
class Plan:
    state: RunState
    options: RunOptions
    sink: Sink
    persist: bool  # the checkpoint is saved as the run goes (not without a state file)
    exactly_once: bool  # Tinybird can be asked what already landed
    mirrored: Mirror  # the types sent and what is done with personal data
    landed_between: Callable[[PendingAppend], Awaitable[set[str]]] | None = None
    already_in_tinybird: set[str] = field(default_factory=set)
    query: TinybirdQuery | None = None  # for the count of Query API calls
    dry_run: bool = False
    known: dict[str, list[Record]] = field(default_factory=dict)  # ``newrun._searched``


class NothingToDo:
    """The tenant has no logs at all."""


async def start(request: JobRequest, services: Services, notes: Notes) -> Plan | NothingToDo:
    """Decide the run's mode, once, and start it. ``notes`` collects what the operator should
    know, also when starting fails."""
    if request.dry_run:
        return await dry_run(request, services, notes)
    if request.resume_from_tinybird:
        return await from_tinybird(request, services, notes)
    existing = load_state(request.settings, restart=request.restart)
    if existing is not None:
        return await resume(request, services, existing, notes)
    if request.until_stream_start:
        return await until_stream_start(request, services, notes)
    return await fresh(request, services, notes)


# -- the modes ------------------------------------------------------------------------------


async def fresh(request: JobRequest, services: Services, notes: Notes) -> Plan | NothingToDo:
    settings = request.settings

    async def auth0_side() -> tuple[Feeding, Mirror, NewRun | None]:
        # The streams are listed while the run is planned: a round trip fewer before reading.
        feeding, planned = await together(
            survey.streams(services),
            new_run(services, notes, end=settings.until_date, cursors=settings.concurrency),
        )
        return feeding, mirror(settings, feeding, None, notes.add), planned

    access, (feeding, mirrored, planned) = await _alongside(
        lambda found: survey.tinybird(services, found), auth0_side, notes
    )
    if planned is None:
        return NothingToDo()
    state = planned.state
    if not (request.skip_existing or request.allow_duplicates):
        await survey.refuse_overlap_with_streams(access, feeding, state, settings, notes)
        if access.can_read:
            window = (
                f"{state.ranges[0].start or 'the oldest log'} to {state.ranges[-1].end or 'now'}"
            )
            count = await survey.rows_already_there(access.query, state, mirrored)
            survey.refuse_rows_already_there(count, settings, window)
        else:
            notes.add(
                "Could not check whether the data source already holds rows in this window "
                "(no read access): if it does, they will be there twice."
            )
    return await _plan(request, services, access, state, mirrored, planned=planned)


async def until_stream_start(
    request: JobRequest, services: Services, notes: Notes
) -> Plan | NothingToDo:
    settings = request.settings
    access, feeding = await _alongside(
        lambda found: survey.tinybird(services, found), lambda: survey.streams(services), notes
    )
    mirrored = mirror(settings, feeding, None, notes.add)
    first = await survey.stream_start(access, feeding, notes)
    # Read past the stream's first event by the late-id margin: logs dated just before it may
    # have been written after the stream began (and streamed), or not. What Tinybird already
    # has in that window is skipped (``_plan``).
    end = first + timedelta(seconds=settings.late_margin_seconds) if first else None
    planned = await new_run(services, notes, end=end, cursors=settings.concurrency)
    if planned is None:
        return NothingToDo()
    state = planned.state
    state.started_with.update(
        {
            "until_stream_start": iso(first) if first else None,
            "until_date": iso(end) if end else None,
        }
    )
    return await _plan(request, services, access, state, mirrored, planned=planned)


async def resume(request: JobRequest, services: Services, existing: RunState, notes: Notes) -> Plan:
    settings = request.settings

    async def auth0_side() -> tuple[Feeding, Mirror, Record | None]:
        feeding, oldest = await together(survey.streams(services), services.auth0.oldest())
        recorded = existing.started_with.get("mirror")
        return feeding, mirror(settings, feeding, recorded, notes.add), oldest

    access, (feeding, mirrored, oldest) = await _alongside(
        lambda found: survey.tinybird(services, found), auth0_side, notes
    )
    if not (request.skip_existing or request.allow_duplicates):
        await survey.refuse_overlap_with_streams(access, feeding, existing, settings, notes)
    if oldest is not None and not request.restart_from_oldest:
        for item in existing.ranges:
            if aged_out(item, oldest):
                raise expired_error(item.position, item.cursor_date, oldest, utcnow())
    # A tail far behind is cut again while it is read, where its logs turn out to be (steal).
    return await _plan(request, services, access, existing, mirrored, oldest=oldest)


async def from_tinybird(
    request: JobRequest, services: Services, notes: Notes
) -> Plan | NothingToDo:
    """The greatest log_id in the data source is the resume point. Rows must then land strictly
    in order, each append in one monthly partition (so it lands whole): one cursor, one append
    at a time."""
    settings = request.settings
    access = await survey.tinybird(services, notes)
    query = access.require_read(
        "--resume-from-tinybird reads the resume point from the data source, and the token "
        "cannot read it."
    )
    feeding = await survey.streams(services)
    # Refused even on an empty data source: a paused stream delivers its backlog when resumed.
    stream.refuse_feeding_streams(feeding, settings)
    mirrored = mirror(settings, feeding, None, notes.add)
    last = await stream.greatest_log_id(query)
    planned: NewRun | None = None
    if last is None:
        notes.add("The data source is empty: starting as flags say (or from the oldest log).")
        planned = await new_run(services, notes, end=settings.until_date, cursors=1)
        if planned is None:
            return NothingToDo()
        state = planned.state
    else:
        await stream.refuse_unless_own_rows(
            services.auth0, query, settings, feeding, mirrored.type_filter
        )
        notes.add(f"Resuming after {last}, the greatest log_id in {settings.datasource}.")
        state = new_state(settings)
        state.ranges = [
            RangeState(
                id=0,
                start=iso(settings.from_date) if settings.from_date else None,
                end=iso(settings.until_date) if settings.until_date else None,
                start_after=last,
            )
        ]
    return await _plan(
        request,
        services,
        access,
        state,
        mirrored,
        persist=False,
        sequential=True,
        max_months=1,
        planned=planned,
    )


async def dry_run(request: JobRequest, services: Services, notes: Notes) -> Plan | NothingToDo:
    """Envelopes as NDJSON to ``--output`` (or stdout); no Tinybird, the checkpoint untouched."""
    settings = request.settings
    # What the run would refuse, the preview refuses (another tenant, data source or host, other
    # flags, a damaged file without --restart); what it would resume, the preview shows.
    existing = load_state(settings, restart=request.restart, touch=False)
    recorded = existing.started_with.get("mirror") if existing is not None else None
    mirrored = mirror(settings, await survey.streams(services), recorded, notes.add)
    known: dict[str, list[Record]] = {}
    if existing is not None:
        state = existing
    else:
        planned = await new_run(services, notes, end=settings.until_date, cursors=1)
        if planned is None:
            return NothingToDo()
        state, known = planned.state, planned.known
    state.pending = []
    return Plan(
        state=state,
        options=run_options(request, mirrored, sequential=True),
        sink=NdjsonWriter(request.output),
        persist=False,
        exactly_once=False,
        mirrored=mirrored,
        dry_run=True,
        known=known,
    )


# -- the pieces every mode shares ----------------------------------------------------------


async def _alongside(
    tinybird: Callable[[Notes], Awaitable[survey.TinybirdAccess]],
    auth0: Callable[[], Awaitable[T]],
    notes: Notes,
) -> tuple[survey.TinybirdAccess, T]:
    """Tinybird's survey while Auth0 is asked. Its notes come first and its error wins."""
    found = Notes()
    surveyed, answer = await together(tinybird(found), auth0())
    notes[0:0] = found
    return surveyed, answer


async def _plan(
    request: JobRequest,
    services: Services,
    access: survey.TinybirdAccess,
    state: RunState,
    mirrored: Mirror,
    *,
    persist: bool = True,
    sequential: bool = False,
    max_months: int | None = None,
    oldest: Record | None = None,
    planned: NewRun | None = None,
) -> Plan:
    """A real run: the sink, and what Tinybird already holds that must not be sent again."""
    settings = services.settings
    if request.skip_existing and not access.can_read:
        raise ConfigError(
            "--skip-existing asks Tinybird which logs it already holds, and the token cannot "
            "read the data source.",
            hint="Set TINYBIRD_READ_TOKEN to a token with DATASOURCES:READ on it.",
        )
    state.started_with["mirror"] = mirrored.recorded()
    query = access.query if access.can_read else None
    sink = tinybird_events(
        settings,
        http=services.http,
        retry=services.retry,
        landed=query.landed_in if query else None,
        check_first=request.skip_existing,
        refuse_alone=persist,  # without a state file to hold a refused row, stop before it
    )
    landed_between = None
    if query is not None:
        reader = query

        async def landed_between(pending: PendingAppend) -> set[str]:
            if pending.first_log_id is None or pending.last_log_id is None:
                return set()
            return await reader.landed_between(
                pending.first_log_id,
                pending.last_log_id,
                parse_record_date(pending.min_date),
                parse_record_date(pending.max_date),
            )

    return Plan(
        state=state,
        options=run_options(
            request,
            mirrored,
            sequential=sequential,
            max_months=max_months,
            cursors_needed=services.pacer.cursors_needed,
            saturated=lambda: services.pacer.saturated,
            horizon=planned.horizon if planned else None,
            oldest=oldest if request.restart_from_oldest else None,
        ),
        sink=sink,
        persist=persist,
        exactly_once=access.can_read,
        mirrored=mirrored,
        landed_between=landed_between,
        already_in_tinybird=await survey.streamed_near_its_start(access, state, settings),
        query=access.query if access.can_read else None,
        known=planned.known if planned else {},
    )


class NdjsonWriter:
    """The dry run's sink: writes the envelopes instead of sending them."""

    def __init__(self, output: IO[bytes] | None) -> None:
        self._output = output

    async def append(self, batch: Batch) -> AppendResult:
        output = self._output or sys.stdout.buffer
        for line in batch.lines():
            output.write(line)
        output.flush()
        return AppendResult(successful_rows=batch.rows)
