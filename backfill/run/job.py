"""One backfill for one tenant (``run_job``), or several at once (``run_tenants``): start the run
(``start``), drive the pipeline, and build the report once, at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from backfill import __version__, logsetup
from backfill.clients import Services, open_services
from backfill.errors import BackfillError, Interrupted, StateError
from backfill.run.pipeline import Pipeline
from backfill.run.progress import Coverage, ProgressReporter
from backfill.run.refused import LeaveOut, settle_refused
from backfill.run.report import Counts, Report
from backfill.run.request import JobRequest, Notes
from backfill.run.start import NothingToDo, Plan, start
from backfill.state import file as state_file
from backfill.state.model import RunState
from backfill.timeutil import iso, utcnow

log = logging.getLogger("backfill.job")

__all__ = ["JobRequest", "Report", "Runner", "run_job", "run_requests", "run_tenants"]

Runner = Callable[[list[JobRequest], bool], Awaitable[list[Report]]]


async def run_requests(requests: list[JobRequest], single: bool) -> list[Report]:
    """What ``run`` does with its requests (tests of the command line give it another)."""
    return [await run_job(requests[0])] if single else await run_tenants(requests)


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
        async with in_flight:
            try:
                if request.stopper.signum is not None:  # stopped before its turn: not started
                    raise Interrupted(request.stopper.signum)
                return await run_job(request)
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


async def run_job(request: JobRequest) -> Report:
    settings = request.settings
    settings.require(tinybird=not request.dry_run)
    started = time.monotonic()
    notes = Notes()
    if settings.tinybird_host_warning:
        log.warning("tinybird_host=%s mismatch=yes", settings.tinybird_host)
        notes.add(settings.tinybird_host_warning)
    services: Services | None = None
    plan: Plan | NothingToDo | None = None
    pipeline: Pipeline | None = None
    outcome, exit_code, error = "failed", 1, None
    try:
        async with _services(request) as services:
            plan = await start(request, services, notes)
            if isinstance(plan, NothingToDo):
                outcome, exit_code = "nothing_to_do", 0
            else:
                saver = state_file.Saver(settings.state) if plan.persist else None
                await _left_out(request, services, plan, notes, saver)
                progress = _progress(request, plan)
                pipeline = Pipeline(
                    source=services.auth0,
                    sink=plan.sink,
                    state=plan.state,
                    save=saver.submit if saver else _unsaved,
                    durable=saver.durable if saver else None,
                    options=plan.options,
                    stopper=request.stopper,
                    progress=progress,
                    landed_between=plan.landed_between,
                    already_in_tinybird=plan.already_in_tinybird,
                    known=plan.known,
                )
                outcome = await _execute(plan, pipeline, progress, saver)
                exit_code = 0
    except BackfillError as failure:
        error, exit_code = str(failure), failure.exit_code
        outcome = "interrupted" if isinstance(failure, Interrupted) else "failed"
        log.error("%s exit_code=%d: %s", outcome, failure.exit_code, failure)
    state = plan.state if isinstance(plan, Plan) else None
    return Report.build(
        tenant=settings.tenant_name or settings.auth0_domain,
        datasource=settings.datasource,
        state_path=str(settings.state),
        outcome=outcome,
        exit_code=exit_code,
        error=error,
        counts=pipeline.counts if pipeline else Counts(),
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
    except Interrupted:
        outcome = "interrupted"
        raise
    finally:
        if progress is not None:
            progress.close()
        current.last_run = {
            "started_at": run_started,
            "finished_at": iso(utcnow()),
            "outcome": outcome,
            "rows_sent": pipeline.counts.rows_sent,
            "version": __version__,
        }
        if saver is not None:
            saver.submit(current)
            with contextlib.suppress(StateError):  # the run's own error says more
                await saver.durable()
    return outcome
