"""One import, top to bottom: the checkpoint it resumes, what Tinybird and the Log Streams say,
reading every source into the staging database, the refusals, then sending with the checkpoint.
The report is built once, at the end, whatever happened."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from backfill import __version__
from backfill.archive import checkpoint, start
from backfill.archive.checkpoint import ImportState
from backfill.archive.progress import ImportProgress
from backfill.archive.reading import Reader, Rules
from backfill.archive.rejects import Rejects
from backfill.archive.report import ImportReport
from backfill.archive.send import Sender, recover
from backfill.archive.sources import STDIN, Source, expand, fingerprints
from backfill.archive.staging import Staging
from backfill.clients import http_client, retry_policy, tinybird_events
from backfill.config.settings import Settings
from backfill.errors import BackfillError, ConfigError, Interrupted
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy
from backfill.records.batches import BatchBuilder, BatchLimits
from backfill.run.mirror import Mirror
from backfill.run.options import Sink
from backfill.run.refused import refused_error
from backfill.run.request import Notes
from backfill.run.stopper import Stopper
from backfill.run.survey import TinybirdAccess
from backfill.state.file import exclusive
from backfill.state.model import LeftOut
from backfill.timeutil import iso, parse_record_date, utcnow

log = logging.getLogger("backfill.import")


@dataclass
class ImportRequest:
    """What the operator asked for."""

    settings: Settings
    sources: tuple[str, ...]
    stopper: Stopper
    restart: bool = False
    dry_run: bool = False
    output: IO[bytes] | None = None
    quiet: bool = False
    skip_existing: bool = False
    allow_duplicates: bool = False
    max_rejects: int = 0
    rejects: Path | None = None
    tenant: str | None = None
    skip_log_ids: tuple[str, ...] = ()

    @property
    def state_path(self) -> Path:
        return self.settings.import_state

    @property
    def rejects_path(self) -> Path:
        path = self.state_path
        return self.rejects or path.with_name(path.name.removesuffix(".json") + ".rejects.ndjson")


async def run_import(request: ImportRequest) -> ImportReport:
    started = time.monotonic()
    notes = Notes()
    report = ImportReport(datasource=request.settings.datasource, state=str(request.state_path))
    try:
        with _lock(request):
            await _import(request, report, notes)
        report.exit_code = 0
    except BackfillError as failure:
        report.error, report.exit_code = str(failure), failure.exit_code
        report.outcome = "interrupted" if isinstance(failure, Interrupted) else "failed"
        log.error("%s exit_code=%d: %s", report.outcome, failure.exit_code, failure)
    report.seconds = time.monotonic() - started
    report.notes = list(notes)
    return report


def _lock(request: ImportRequest) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext() if request.dry_run else exclusive(request.state_path)


async def _import(request: ImportRequest, report: ImportReport, notes: Notes) -> None:
    settings = request.settings
    if not request.dry_run:
        settings.require_tinybird()
    if settings.tinybird_host_warning:
        notes.add(settings.tinybird_host_warning)
    sources = expand(request.sources)
    bound = start.binding(settings, request.sources, request.tenant)
    state = None
    if not request.dry_run:
        state = start.existing(settings, bound, sources, restart=request.restart)
    if state is not None and state.done:
        notes.add(f"This import is complete ({state.rows_sent:,} rows sent); nothing to do.")
        report.outcome, report.rows_sent_total = "nothing_to_do", state.rows_sent
        return
    async with http_client(settings) as http:
        retry = retry_policy(settings, request.stopper.sleep)
        recorded = state.started_with.get("mirror") if state else None
        looked = await start.look(
            settings, http, retry, recorded, notes, tinybird=not request.dry_run
        )
        report.type_filter = (
            looked.mirrored.describe_types() if looked.mirrored.type_filter else None
        )
        report.pii = looked.mirrored.describe_pii()
        report.exactly_once = bool(looked.access and looked.access.can_read)
        with _staging(request, sources) as (staging, progress):
            await _read(request, report, staging, progress, sources, looked.mirrored, state)
            if request.dry_run:
                _write(request, staging)
                report.outcome = "dry_run"
                return
            state = await _checkpoint(request, report, staging, looked, sources, state, notes)
            if state is None:
                return
            await _send(request, report, staging, progress, state, http, retry, looked.access)


@contextlib.contextmanager
def _staging(
    request: ImportRequest, sources: list[Source]
) -> Iterator[tuple[Staging, ImportProgress]]:
    sizes = [source.size for source in sources]
    total = sum(size for size in sizes if size is not None) if None not in sizes else None
    progress = ImportProgress.choose(
        quiet=request.quiet, interval=request.settings.progress_interval, total_bytes=total
    )
    staging = Staging.scratch() if request.dry_run else Staging.create(request.state_path)
    try:
        yield staging, progress
    finally:
        staging.close()
        progress.close()


async def _read(
    request: ImportRequest,
    report: ImportReport,
    staging: Staging,
    progress: ImportProgress,
    sources: list[Source],
    mirrored: Mirror,
    state: ImportState | None,
) -> None:
    settings = request.settings
    rules = Rules(
        low=start.window_moment(settings.from_date),
        high=start.window_moment(settings.until_date),
        keep_type=mirrored.type_filter,
        pii_fields=mirrored.pii_fields or None,
        tenant=request.tenant,
        skip=frozenset(request.skip_log_ids),
    )
    rejects = Rejects(request.rejects_path, request.max_rejects)
    stop = threading.Event()
    request.stopper.on_stop(stop.set)
    reader = Reader(
        staging, rules, rejects, stop=stop, signum=lambda: request.stopper.signum,
        progress=progress.reading,
    )  # fmt: skip
    began = time.monotonic()
    try:
        counts = await asyncio.to_thread(reader.read, sources)
    finally:
        report.read = reader.counts
        report.reading_seconds = time.monotonic() - began
        rejects.close()
        if rejects.count:
            report.rejects_file = str(rejects.path)
    report.staged, report.copies = staging.count(), staging.copies
    log.info(
        "read sources=%d records=%d staged=%d duplicates=%d rejected=%d seconds=%.1f",
        counts.sources, counts.items, report.staged, report.copies, counts.rejected,
        report.reading_seconds,
    )  # fmt: skip
    if state is not None:
        start.same_stdin(
            request.state_path, counts.stdin_digest, checkpoint.load_sources(request.state_path)
        )
    found = start.one_tenant(staging, request.tenant)
    report.tenants = {name or "": count for name, count in found.items()}


def _write(request: ImportRequest, staging: Staging) -> None:
    output = request.output or sys.stdout.buffer
    for rows in staging.rows_after(None):
        output.write(b"".join(row[4] for row in rows))
    output.flush()


async def _checkpoint(
    request: ImportRequest,
    report: ImportReport,
    staging: Staging,
    looked: start.Survey,
    sources: list[Source],
    state: ImportState | None,
    notes: Notes,
) -> ImportState | None:
    """The checkpoint to send with: the one resumed, or a new one once the refusals passed
    (None: nothing to send, and no checkpoint left behind)."""
    settings, access = request.settings, looked.access
    assert access is not None
    if request.skip_existing and not access.can_read:
        raise ConfigError(
            "--skip-existing asks Tinybird which logs it already holds, and the token cannot "
            "read the data source.",
            hint="Set TINYBIRD_READ_TOKEN to a token with DATASOURCES:READ on it.",
        )
    if state is not None:
        state.staged_rows = report.staged
        return state
    span = staging.span()
    if span is None:
        notes.add("The archive holds no log to send (in the window, of the types sent).")
        report.outcome = "nothing_to_do"
        return None
    if not (request.skip_existing or request.allow_duplicates):
        await start.refuse_overlaps(looked, span, settings, notes)
    state = ImportState(
        datasource=settings.datasource,
        tinybird_host=settings.tinybird_host,
        started_with={**start.binding(settings, request.sources, request.tenant),
                      "mirror": looked.mirrored.recorded()},
        sources=len(sources),
        staged_rows=report.staged,
    )  # fmt: skip
    recorded = fingerprints(sources)
    for item in recorded:
        if item["name"] == STDIN:
            item["sha256"] = report.read.stdin_digest
    checkpoint.save_sources(request.state_path, recorded)
    checkpoint.save(request.state_path, state)
    return state


async def _send(
    request: ImportRequest,
    report: ImportReport,
    staging: Staging,
    progress: ImportProgress,
    state: ImportState,
    http: HttpClient,
    retry: RetryPolicy,
    access: TinybirdAccess | None,
) -> None:
    settings, stopper, path = request.settings, request.stopper, request.state_path
    query = access.query if access is not None and access.can_read else None
    sink = tinybird_events(
        settings,
        http=http,
        retry=retry,
        landed=query.landed_in if query else None,
        check_first=request.skip_existing,
    )
    skip = frozenset(request.skip_log_ids)
    _record_skipped(state, report, skip)
    await _retry_refused(state, staging, sink, skip, path)

    async def settle() -> None:
        saved = parse_record_date(state.saved_at)
        since = (utcnow() - saved).total_seconds() if saved else 0.0
        if settings.resume_settle - since > 0:
            await stopper.sleep(settings.resume_settle - since)

    landed = await recover(state, query.landed_between if query else None, settle=settle)
    done_before = state.staged_rows - staging.count_after(state.cursor)
    progress.start_sending(state.staged_rows)
    sender = Sender(
        staging=staging,
        state=state,
        save=checkpoint.Saver(path).save,
        sink=sink,  # --skip-log-id's logs were left out while reading
        limits=BatchLimits(settings.max_rows, settings.max_bytes, settings.max_months),
        in_flight=settings.in_flight,
        stopper=stopper,
        landed=landed,
        shutdown_grace=settings.shutdown_grace(follow=False),
        progress=lambda counts: progress.sending(counts, done_before),
    )
    outcome = "failed"
    try:
        await sender.run()
        state.done, outcome = True, "done"
    except Interrupted:
        outcome = "interrupted"
        raise
    finally:
        report.sent = sender.counts
        report.query_api_calls = query.calls if query else 0
        state.last_run = {
            "finished_at": iso(utcnow()),
            "outcome": outcome,
            "rows_sent": sender.counts.rows_sent,
            "version": __version__,
        }
        with contextlib.suppress(BackfillError):
            checkpoint.save(path, state)
        report.rows_sent_total = state.rows_sent
        report.outcome = outcome


def _record_skipped(state: ImportState, report: ImportReport, skip: frozenset[str]) -> None:
    """Logs left out with --skip-log-id, recorded in the checkpoint (once each)."""
    known = {entry.log_id for entry in state.skipped}
    at = iso(utcnow())
    for log_id, date in report.read.skipped:
        if log_id not in known:
            state.skipped.append(LeftOut(log_id, date, "left out with --skip-log-id", at))
    state.refused = [entry for entry in state.refused if entry.log_id not in skip]


async def _retry_refused(
    state: ImportState, staging: Staging, sink: Sink, skip: frozenset[str], path: Path
) -> None:
    """A log Tinybird refused as too large before is tried once more, alone; refused again,
    the import stops there (exit 9) naming it, and ``--skip-log-id`` gets past it."""
    for entry in list(state.refused):
        found = staging.line_of(entry.log_id)
        if found is None or entry.log_id in skip:
            state.refused.remove(entry)
            continue
        builder = BatchBuilder(BatchLimits(max_rows=1), range_id=-1)
        builder.add_line(found[1], entry.log_id, found[0])
        result = await sink.append(builder.close(None, seq=-1))
        if result.left_out:
            raise refused_error([entry.log_id])
        state.refused.remove(entry)
        state.rows_sent += result.successful_rows + result.quarantined_rows
        checkpoint.save(path, state)
