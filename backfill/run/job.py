"""One backfill for one tenant (``run_job``), or several at once (``run_tenants``): start the run
(``start``), drive the pipeline, and build the report once, at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

from backfill import __version__, logsetup
from backfill.clients import Services, open_services
from backfill.errors import BackfillError, Interrupted, RetriesExhaustedError, StateError
from backfill.http.client import origin
from backfill.run.budget import TenantBudget
from backfill.run.figures import TenantFigures
from backfill.run.follow import Follower, RecentIds, caught_up, pause_after
from backfill.run.pipeline import Pipeline
from backfill.run.progress import Coverage, ProgressReporter
from backfill.run.refused import LeaveOut, settle_refused
from backfill.run.report import Report
from backfill.run.request import JobRequest, Notes
from backfill.run.start import NothingToDo, Plan, start
from backfill.state import file as state_file
from backfill.state.model import RunState
from backfill.timeutil import humanize, iso, parse_record_date, utcnow

log = logging.getLogger("backfill.job")

__all__ = ["JobRequest", "Report", "Runner", "run_job", "run_requests", "run_tenants"]

Runner = Callable[[list[JobRequest], bool], Awaitable[list[Report]]]


async def run_requests(requests: list[JobRequest], single: bool) -> list[Report]:
    """What ``run`` does with its requests (tests of the command line give it another)."""
    return [await run_job(requests[0])] if single else await run_tenants(requests)


class Turn:
    """A tenant's turn among the ``tenants_in_flight`` that read at once: held while it reads
    its history, handed on once it is caught up, since a follow's polls are light (else a
    follow of more tenants than that would never start the others)."""

    def __init__(self, gate: asyncio.Semaphore | None = None) -> None:
        self._gate = gate
        self._held = False

    async def __aenter__(self) -> Turn:
        if self._gate is not None:
            await self._gate.acquire()
            self._held = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.hand_on()

    def hand_on(self) -> None:
        if self._held and self._gate is not None:
            self._held = False
            self._gate.release()


async def run_tenants(requests: list[JobRequest]) -> list[Report]:
    """Several tenants at once, each with its own clients and pacer; one failing stops no other.

    At most ``[run] tenants_in_flight`` of them at a time, each started as another finishes.
    They share the process's one event loop: a tenant costs its tasks and its buffers, no
    thread of its own.
    """
    if not requests:
        return []
    in_flight = asyncio.Semaphore(max(1, requests[0].settings.tenants_in_flight))

    async def one(request: JobRequest) -> Report:
        settings = request.settings
        logsetup.set_tenant(settings.tenant_name)
        async with Turn(in_flight) as turn:
            try:
                if request.stopper.signum is not None:  # stopped before its turn: not started
                    raise Interrupted(request.stopper.signum)
                return await run_job(request, turn)
            except BackfillError as error:  # settings problems found late (a missing secret)
                return Report.build(
                    tenant=settings.tenant_name or str(settings.auth0_base_url),
                    datasource=settings.datasource,
                    state_path=str(settings.state),
                    outcome="interrupted" if isinstance(error, Interrupted) else "failed",
                    exit_code=error.exit_code,
                    error=str(error),
                )

    return list(await asyncio.gather(*(one(request) for request in requests)))


async def run_job(request: JobRequest, turn: Turn | None = None) -> Report:
    settings = request.settings
    settings.require(tinybird=not request.dry_run)
    started = time.monotonic()
    notes = Notes()
    if settings.tinybird_host_warning:
        log.warning("tinybird_host=%s mismatch=yes", settings.tinybird_host)
        notes.add(settings.tinybird_host_warning)
    services: Services | None = None
    plan: Plan | NothingToDo | None = None
    figures = _figures(request)
    budget = request.budget.tenant(figures.name) if request.budget else None
    figures.budget = budget
    outcome, exit_code, error = "failed", 1, None
    try:
        async with _services(request) as services:
            figures.services = services
            turn = turn or Turn()
            plan = await _start(request, services, notes, turn)
            if isinstance(plan, NothingToDo):
                outcome, exit_code = "nothing_to_do", 0
            else:
                outcome = await _backfill(request, services, plan, notes, figures, turn, budget)
                exit_code = 0
    except Interrupted as stop:
        if request.follow:  # how a supervisor stops a service: a clean stop, exit 0
            outcome, exit_code = "stopped", 0
        else:
            error, exit_code, outcome = str(stop), stop.exit_code, "interrupted"
            log.error("interrupted exit_code=%d: %s", stop.exit_code, stop)
    except BackfillError as failure:
        error, exit_code, outcome = str(failure), failure.exit_code, "failed"
        log.error("failed exit_code=%d: %s", failure.exit_code, failure)
    figures.last_poll = time.time()
    state = plan.state if isinstance(plan, Plan) else None
    return Report.build(
        tenant=settings.tenant_name or settings.auth0_domain,
        datasource=settings.datasource,
        state_path=str(settings.state),
        outcome=outcome,
        exit_code=exit_code,
        error=error,
        counts=figures.counts(),
        state=state,
        retries=services.retry.retries if services else 0,
        rate_limited=services.pacer.throttled if services else 0,
        seconds=time.monotonic() - started,
        exactly_once=plan.exactly_once if isinstance(plan, Plan) else not request.dry_run,
        notes=notes,
        type_filter=_types_note(plan),
        pii=plan.mirrored.describe_pii() if isinstance(plan, Plan) else None,
        query_api_calls=plan.query.calls if isinstance(plan, Plan) and plan.query else 0,
        skip_existing=request.skip_existing,
    )


async def _start(
    request: JobRequest, services: Services, notes: Notes, turn: Turn
) -> Plan | NothingToDo:
    """The run's start. Following, again until it can: a tenant that has no logs yet, every
    poll until it has; an outage of either service, after a pause that grows (each time its
    turn handed on)."""
    failures = 0
    while True:
        try:
            plan = await start(request, services, notes)
        except RetriesExhaustedError as error:
            if not request.follow:
                raise
            failures += 1
            pause = pause_after(request.settings.poll_interval, failures)
            log.warning(
                "follow start_failed failures=%d next_in=%s reason=%r",
                failures,
                humanize(pause),
                str(error),
            )
        else:
            if not (request.follow and isinstance(plan, NothingToDo)):
                return plan
            pause = request.settings.poll_interval
        turn.hand_on()
        if await request.stopper.wait(pause):
            raise Interrupted(request.stopper.signum or 15)


async def _backfill(
    request: JobRequest,
    services: Services,
    plan: Plan,
    notes: Notes,
    figures: TenantFigures,
    turn: Turn,
    budget: TenantBudget | None,
) -> str:
    """The history, then (``--follow``) the new logs as they come; the outcome."""
    settings = request.settings
    saver = state_file.Saver(settings.state) if plan.persist else None
    figures.state = plan.state
    figures.caught_up_through = parse_record_date(plan.state.caught_up_through)
    await _left_out(request, services, plan, notes, saver)
    recent = RecentIds(timedelta(seconds=settings.late_margin_seconds))
    progress = _progress(request, plan)
    pipeline = Pipeline(
        source=services.auth0,
        sink=plan.sink,
        state=plan.state,
        save=saver.submit if saver else _unsaved,
        durable=saver.durable if saver else None,
        options=plan.options,
        # Following, the history is a step: its failure (an outage) ends it, not the follow.
        stopper=request.stopper.child() if request.follow else request.stopper,
        progress=progress,
        landed_between=plan.landed_between,
        already_in_tinybird=plan.already_in_tinybird,
        known=plan.known,
        acknowledged=recent.note if request.follow else None,
        budget=budget,
    )
    figures.pipeline = pipeline
    try:
        outcome = await _execute(plan, pipeline, progress, saver, figures)
    except RetriesExhaustedError as error:
        if not request.follow:
            raise
        # An outage during the history ends a poll, not the follow: the polls read on from
        # the checkpoint, every range left included.
        figures.failures += 1
        log.warning(
            "follow history_failed reason=%r next_in=%s",
            str(error),
            humanize(settings.poll_interval),
        )
        outcome = "paused"
    if not request.follow or outcome not in {"caught_up", "paused"}:
        return outcome
    if outcome == "caught_up":
        log.info(
            "follow caught_up=yes caught_up_through=%s poll_interval=%s",
            plan.state.caught_up_through,
            humanize(settings.poll_interval),
        )
    turn.hand_on()
    follower = Follower(request, services, plan, saver, figures, recent, notes, budget)
    return await follower.run()


def _figures(request: JobRequest) -> TenantFigures:
    """The tenant's live figures, in the process's metrics when there are any."""
    settings = request.settings
    name = settings.tenant_name or (settings.auth0_domain if settings.auth0_base_url else "-")
    figures = request.metrics.figures.tenant(name) if request.metrics else TenantFigures(name)
    figures.auth0_origin = origin(settings.auth0_base_url) if settings.auth0_base_url else ""
    figures.tinybird_origin = origin(settings.tinybird_host)
    return figures


def _types_note(plan: Plan | NothingToDo | None) -> str | None:
    if not isinstance(plan, Plan) or plan.mirrored.type_filter is None:
        return None
    return plan.mirrored.describe_types()


async def _left_out(
    request: JobRequest,
    services: Services,
    plan: Plan,
    notes: Notes,
    saver: state_file.Saver | None,
) -> None:
    """Logs Tinybird refused before: skipped as asked, or tried once more (``refused``); and the
    sink leaves out whatever ``--skip-log-id`` names."""
    skip = frozenset(request.skip_log_ids)
    await settle_refused(
        plan.state,
        skip=skip,
        source=services.auth0,
        sink=plan.sink,
        save=saver.submit if saver else _unsaved,
        note=notes.add,
        preview=plan.dry_run,
        pii_fields=plan.options.pii_fields,
    )
    if skip:
        plan.sink = LeaveOut(plan.sink, skip)


def _lock(request: JobRequest) -> contextlib.AbstractContextManager[None]:
    """A dry run touches no checkpoint; every other run holds the state file's lock."""
    if request.dry_run:
        return contextlib.nullcontext()
    return state_file.exclusive(request.settings.state)


@contextlib.asynccontextmanager
async def _services(request: JobRequest) -> AsyncIterator[Services]:
    """The state file's lock first (a second run on it leaves at once), then the clients."""
    stopper = request.stopper
    with _lock(request):
        async with open_services(
            request.settings, sleep=stopper.sleep, on_stop=stopper.on_stop
        ) as services:
            yield services


def _unsaved(snapshot: RunState) -> None:
    """No state file (a dry run, --resume-from-tinybird): nothing is kept."""


def _progress(request: JobRequest, plan: Plan) -> ProgressReporter | None:
    if plan.dry_run:
        return None
    return ProgressReporter.choose(
        Coverage(plan.state.ranges),
        quiet=request.quiet,
        interval=request.settings.progress_interval,
        lines=request.progress == "lines",
    )


async def _execute(
    plan: Plan,
    pipeline: Pipeline,
    progress: ProgressReporter | None,
    saver: state_file.Saver | None,
    figures: TenantFigures,
) -> str:
    """Run the pipeline; the outcome. The state records how the run ended, whatever happened."""
    if plan.dry_run:
        await pipeline.run()
        return "dry_run"
    current = plan.state
    run_started = iso(utcnow())
    outcome = "failed"
    try:
        await pipeline.run()
        bounded = all(item.bounded for item in current.ranges)
        outcome = "reached_until" if current.finished() and bounded else "caught_up"
        caught_up(current, pipeline)
        figures.caught_up_through = parse_record_date(current.caught_up_through)
    except Interrupted:
        outcome = "interrupted"
        raise
    finally:
        if progress is not None:
            progress.close()
        figures.pipeline_done()
        current.last_run = {
            "started_at": run_started,
            "finished_at": iso(utcnow()),
            "outcome": outcome,
            "rows_sent": figures.rows(),
            "version": __version__,
        }
        if saver is not None:
            saver.submit(current)
            with contextlib.suppress(StateError):  # the run's own error says more
                await saver.durable()
    return outcome
