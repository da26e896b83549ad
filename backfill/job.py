"""One backfill for one tenant: wire the source, the sink and the state, plan, run, report.

The CLI calls ``run_job`` once per tenant; everything it needs arrives in ``JobRequest``, and
everything the operator is told comes back in a ``Report``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import httpx

from backfill import __version__, live_stream, logsetup
from backfill import state as state_file
from backfill.auth0_source import Auth0Logs, ClientCredentialsToken, StaticToken, TokenSource
from backfill.batches import Batch, BatchLimits
from backfill.errors import (
    BackfillError,
    Interrupted,
    StateError,
    TinybirdAuthError,
    TinybirdNotFoundError,
)
from backfill.event_types import type_filter
from backfill.lean_http import LeanGetClient
from backfill.log_ids import write_time
from backfill.pacer import Pacer
from backfill.pipeline import Pipeline, RunOptions, RunTotals, Stopper
from backfill.planner import estimate_logs, find_start, resplit_tail, split, tail_behind
from backfill.progress import Coverage, ProgressReporter
from backfill.retry import RetryPolicy
from backfill.settings import Settings
from backfill.state import PendingAppend, RangeState, RunState
from backfill.timeutil import iso, parse_record_date, utcnow
from backfill.tinybird_sink import (
    AppendResult,
    TinybirdEvents,
    TinybirdQuery,
    landed_log_ids,
    log_ids_between,
    region_hint,
)

USER_AGENT = f"auth0-backfill/{__version__}"

log = logging.getLogger("backfill.job")


@dataclass
class JobRequest:
    settings: Settings
    stopper: Stopper
    restart: bool = False
    restart_from_oldest: bool = False
    dry_run: bool = False
    output: IO[bytes] | None = None
    quiet: bool = False
    progress: str = "auto"  # "auto": a bar on a terminal, else lines; "lines"
    until_stream_start: bool = False
    resume_from_tinybird: bool = False


@dataclass
class Report:
    """What happened, for the summary line, ``--json`` and the exit code."""

    tenant: str
    datasource: str
    state: str
    outcome: str = "failed"
    exit_code: int = 1
    error: str | None = None
    rows_sent: int = 0
    batches: int = 0
    quarantined_rows: int = 0
    already_in_tinybird: int = 0
    filtered: int = 0
    outside_range: int = 0
    records_read: int = 0
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    logs_per_second: float = 0.0
    newest_log_id: str | None = None
    newest_date: str | None = None
    ranges: int = 0
    ranges_done: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    exactly_once: bool = True
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary on stdout."""
        head = {
            "caught_up": "caught up",
            "reached_until": "reached --until-date",
            "nothing_to_do": "nothing to do",
            "dry_run": "dry run",
            "interrupted": "interrupted",
        }.get(self.outcome, "FAILED")
        parts = [f"auth0-backfill {self.tenant} -> {self.datasource}: {head}"]
        parts.append(
            f"{self.rows_sent:,} rows sent in {self.batches:,} batches"
            if self.outcome != "dry_run"
            else f"{self.rows_sent:,} envelopes written"
        )
        if self.quarantined_rows:
            parts.append(f"{self.quarantined_rows:,} quarantined by Tinybird")
        if self.already_in_tinybird:
            parts.append(f"{self.already_in_tinybird:,} already in Tinybird, not resent")
        if self.filtered:
            parts.append(f"{self.filtered:,} left out by type")
        if self.newest_log_id:
            parts.append(f"newest {self.newest_log_id} ({self.newest_date})")
        parts.append(f"{self.logs_per_second:,.0f} logs/s over {self.seconds:.1f}s")
        if self.rate_limited:
            parts.append(f"{self.rate_limited} rate-limited requests")
        if self.gaps:
            total = sum(gap["seconds"] for gap in self.gaps)
            parts.append(f"GAP of {total / 3600:.1f} h skipped (aged out of Auth0)")
        if not self.exactly_once and self.outcome != "dry_run":
            parts.append("at-least-once (no read access to Tinybird)")
        if self.error:
            parts.append(f"error: {self.error}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items()}


def run_tenants(requests: list[JobRequest]) -> list[Report]:
    """Several tenants at once, each with its own clients and pacer; one failing stops no other."""
    reports: list[Report | None] = [None] * len(requests)

    def one(index: int) -> None:
        request = requests[index]
        logsetup.set_tenant(request.settings.tenant_name)
        try:
            reports[index] = run_job(request)
        except BackfillError as error:  # settings problems found late (e.g. missing secret)
            reports[index] = _failed(request, error)

    threads = [
        threading.Thread(target=one, args=(index,), name=f"tenant-{index}")
        for index in range(len(requests))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [report for report in reports if report is not None]


def collect_garbage_less_often() -> None:
    """Tune the cycle collector for paging, once start-up is done.

    Every page makes a few hundred containers that die with it; at the default threshold (700) a
    collection ran every other page, and the full ones walked every imported module: about 8% of
    the job's CPU at Auth0's fastest rate. Freezing what start-up built takes it out of every
    collection, and a higher threshold collects a few times a minute instead of every second.
    The garbage that needs the collector is freed after each append (``_CollectAfterAppend``).
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


class _CollectAfterAppend:
    """The Tinybird sink, followed by a full collection once each append is answered.

    An httpx response holds itself in a reference cycle (``Response`` and its bound stream), and
    with it the request and its body, a compressed batch: only the cycle collector frees them.
    At the thresholds above that took so long that a 1,000,000-log run peaked at 169 MiB (97 with
    this). A collection per batch frees each body as soon as its answer is in, for a few
    milliseconds of CPU every few thousand logs.
    """

    def __init__(self, sink: TinybirdEvents) -> None:
        self._sink = sink

    def append(self, batch: Batch) -> AppendResult:
        try:
            return self._sink.append(batch)
        finally:
            gc.collect()


def _failed(request: JobRequest, error: BackfillError) -> Report:
    settings = request.settings
    return Report(
        tenant=settings.tenant_name or str(settings.auth0_base_url),
        datasource=settings.datasource,
        state=str(settings.state),
        error=str(error),
        exit_code=error.exit_code,
    )


def run_job(request: JobRequest) -> Report:
    settings = request.settings
    settings.require_auth0()
    if not request.dry_run:
        settings.require_tinybird()
    report = Report(
        tenant=settings.tenant_name or settings.auth0_domain,
        datasource=settings.datasource,
        state=str(settings.state),
    )
    started = time.monotonic()
    try:
        if request.dry_run:
            _dry_run(request, report)
        else:
            with state_file.exclusive(settings.state):
                _backfill(request, report)
    except BackfillError as error:
        report.error = str(error)
        report.exit_code = error.exit_code
        report.outcome = "interrupted" if isinstance(error, Interrupted) else "failed"
        log.error("%s exit_code=%d: %s", report.outcome, error.exit_code, error)
    finally:
        report.seconds = time.monotonic() - started
        if report.seconds > 0:
            report.logs_per_second = report.records_read / report.seconds
    return report


# -- wiring -------------------------------------------------------------------------------------


@dataclass
class _Clients:
    logs: Auth0Logs | None  # None without Auth0 settings (verify needs none)
    pacer: Pacer
    retry: RetryPolicy
    http: httpx.Client
    events: TinybirdEvents | None = None
    query: TinybirdQuery | None = None
    can_read: bool = False

    @property
    def auth0(self) -> Auth0Logs:
        assert self.logs is not None, "require_auth0() runs before any Auth0 call"
        return self.logs


def _clients(request: JobRequest) -> contextlib.AbstractContextManager[_Clients]:
    return open_clients(request.settings, request.stopper)


@contextlib.contextmanager
def open_clients(settings: Settings, stopper: Stopper) -> Iterator[_Clients]:
    """Auth0 and Tinybird clients sharing one HTTP pool, retry policy and pacer."""
    retry = RetryPolicy(
        max_attempts=settings.retry_attempts,
        max_seconds=settings.retry_seconds,
        sleep=stopper.sleep,
    )
    pacer = Pacer()
    stopper.on_stop(pacer.stop)
    http = httpx.Client(
        timeout=httpx.Timeout(settings.http_timeout),
        limits=httpx.Limits(
            max_connections=settings.concurrency + settings.in_flight + 4,
            max_keepalive_connections=settings.concurrency + settings.in_flight + 4,
        ),
        headers={"User-Agent": USER_AGENT},
    )
    lean: LeanGetClient | None = None
    logs: Auth0Logs | None = None
    if settings.auth0_base_url and settings.auth0_audience:
        tokens: TokenSource | None = None
        if settings.auth0_token:
            tokens = StaticToken(settings.auth0_token)
        elif settings.auth0_client_id and settings.auth0_client_secret:
            tokens = ClientCredentialsToken(
                base_url=settings.auth0_base_url,
                client_id=settings.auth0_client_id,
                client_secret=settings.auth0_client_secret,
                audience=settings.auth0_audience,
                timeout=settings.http_timeout,
                retry=retry,
            )
        if tokens is not None:
            # httpx's request path was the largest share of the job's CPU at Auth0's fastest
            # rate: the pages go over http.client unless a proxy applies (lean_http).
            lean = LeanGetClient.for_origin(
                settings.auth0_base_url,
                timeout=settings.http_timeout,
                headers={"User-Agent": USER_AGENT},
            )
            logs = Auth0Logs(
                base_url=settings.auth0_base_url,
                tokens=tokens,
                http=lean or http,
                retry=retry,
                pacer=pacer,
            )
    clients = _Clients(logs=logs, pacer=pacer, retry=retry, http=http)
    try:
        if settings.tinybird_token:
            read_token = settings.tinybird_read_token or settings.tinybird_token
            clients.query = TinybirdQuery(
                host=settings.tinybird_host, token=read_token, http=http, retry=retry
            )
        yield clients
    finally:
        http.close()
        if lean is not None:
            lean.close()


def _attach_sink(clients: _Clients, settings: Settings) -> None:
    assert settings.tinybird_token is not None and clients.query is not None
    query = clients.query
    landed: Callable[[Batch], set[str]] | None = None
    if clients.can_read:

        def landed(batch: Batch) -> set[str]:
            return landed_log_ids(query, settings.datasource, batch)

    clients.events = TinybirdEvents(
        host=settings.tinybird_host,
        token=settings.tinybird_token,
        datasource=settings.datasource,
        http=clients.http,
        retry=clients.retry,
        landed=landed,
        settle=settings.resume_settle,
    )


def _preflight_tinybird(clients: _Clients, settings: Settings, report: Report) -> None:
    """Before reading anything: the data source exists, and can we read it (for exactly once)?"""
    assert clients.query is not None
    try:
        found = clients.query.datasource(settings.datasource)
    except TinybirdAuthError:
        found = {}  # this token cannot read metadata; the first append will tell
        log.info("preflight datasource=unchecked reason='token cannot read data source details'")
    if found is None:
        raise _missing_datasource(settings)
    try:
        clients.query.sql(f"SELECT log_id FROM {settings.datasource} LIMIT 0")
        clients.can_read = True
    except TinybirdAuthError:
        clients.can_read = False
        note = (
            "No read access to Tinybird (set TINYBIRD_READ_TOKEN, or use an append token that "
            "can also read): exactly-once is off, so a crash may send a batch's rows twice."
        )
        report.notes.append(note)
        log.warning("exactly_once=off reason=no_read_access")
    report.exactly_once = clients.can_read


def _missing_datasource(settings: Settings) -> BackfillError:
    return TinybirdNotFoundError(
        f"Tinybird at {settings.tinybird_host} has no data source {settings.datasource!r}.",
        hint="Create it from tinybird/datasources/auth0.datasource (the Log Stream's schema), or "
        "set TINYBIRD_DATASOURCE. The backfill never creates it: the Events API would guess a "
        "schema the live stream does not use. " + region_hint(settings.tinybird_host),
    )


# -- the real run -------------------------------------------------------------------------------


def _started_with(settings: Settings) -> dict[str, Any]:
    return {
        "from_date": iso(settings.from_date) if settings.from_date else None,
        "from_log_id": settings.from_log_id,
        "until_date": iso(settings.until_date) if settings.until_date else None,
        "types": list(settings.types),
        "exclude_types": list(settings.exclude_types),
    }


def _check_same_flags(existing: RunState, settings: Settings, path: Path) -> None:
    given = _started_with(settings)
    differing = []
    for key, value in given.items():
        if value in (None, []):
            continue  # not given this time: resume as started
        if existing.started_with.get(key) != value:
            before = existing.started_with.get(key)
            differing.append(f"{key.replace('_', '-')} {value} (started with {before})")
    if differing:
        raise StateError(
            f"State file {path} holds a run started with other settings: "
            + "; ".join(differing)
            + ".",
            hint=f"Repeat the original flags (or none) to resume it, use another --state for a "
            f"different range, or add --restart to discard {path} and start over.",
        )


def _load_state(request: JobRequest) -> RunState | None:
    settings = request.settings
    path = settings.state
    try:
        existing = state_file.load(path)
    except StateError:
        if not request.restart or _foreign(path):
            raise
        kept = state_file.set_aside(path)
        log.warning("state_restart damaged_state_kept_at=%s", kept)
        return None
    if existing is None:
        return None
    if request.restart:
        log.warning(
            "state_restart discarded=%s rows_already_sent=%d note='rows sent before are not "
            "checked again; they may be duplicated'",
            path,
            existing.rows_sent,
        )
        return None
    state_file.check_binding(
        existing, path=path, tenant=settings.auth0_domain, datasource=settings.datasource
    )
    _check_same_flags(existing, settings, path)
    return existing


def _foreign(path: Path) -> bool:
    """A readable JSON file that is not ours: never overwrite it, not even with --restart."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return not (isinstance(document, dict) and document.get("format") == state_file.STATE_FORMAT)


def _backfill(request: JobRequest, report: Report) -> None:
    settings = request.settings
    if request.resume_from_tinybird:
        with _clients(request) as clients:
            _preflight_tinybird(clients, settings, report)
            _attach_sink(clients, settings)
            current = _from_tinybird(clients, settings, report)
            if current is not None:
                _execute(request, report, clients, current, persist=False)
        return
    existing = _load_state(request)
    with _clients(request) as clients:
        _preflight_tinybird(clients, settings, report)
        _attach_sink(clients, settings)
        if existing is not None:
            current = existing
            now = utcnow()
            tail = tail_behind(current.ranges, now)
            expected = None
            if tail is not None and settings.concurrency > 1:
                behind = write_time(tail.position)
                assert behind is not None
                probe = clients.auth0.page_after(tail.position)
                expected = estimate_logs(probe, now - behind)
            current.ranges = resplit_tail(
                current.ranges,
                now=now,
                cursors=settings.concurrency,
                margin=timedelta(seconds=settings.late_margin_seconds),
                expected_logs=expected,
            )
        else:
            end = settings.until_date
            extra: dict[str, Any] = {}
            if request.until_stream_start:
                first = _stream_start(clients, settings, report)
                # Read past the stream's first event by the late-id margin: logs dated just
                # before it may have been written after the stream began (and streamed), or not.
                # What Tinybird already has in that window is skipped (see _execute).
                end = first + timedelta(seconds=settings.late_margin_seconds) if first else None
                extra = {
                    "until_stream_start": iso(first) if first else None,
                    "until_date": iso(end) if end else None,
                }
            fresh = _fresh_state(clients, settings, report, end=end, cursors=settings.concurrency)
            if fresh is None:
                return
            current = fresh
            current.started_with.update(extra)
        _execute(request, report, clients, current)


def _fresh_state(
    clients: _Clients, settings: Settings, report: Report, *, end: datetime | None, cursors: int
) -> RunState | None:
    """A new run: where it starts, and its ranges. None when the tenant has no logs at all."""
    now = utcnow()
    margin = timedelta(seconds=settings.late_margin_seconds)
    start = find_start(
        clients.auth0,
        from_date=settings.from_date,
        from_log_id=settings.from_log_id,
        margin=margin,
        notes=lambda note: _note(report, note),
    )
    if start is None:
        report.outcome, report.exit_code = "nothing_to_do", 0
        _note(report, "The tenant has no logs at all.")
        return None
    expected = None
    if start.shaped and cursors > 1:
        # One page tells the tenant's density: enough to size the ranges.
        probe = clients.auth0.page_after(start.start_after)
        expected = estimate_logs(probe, (end or now) - start.moment)
    current = state_file.new_state(
        tenant=settings.auth0_domain,
        datasource=settings.datasource,
        tinybird_host=settings.tinybird_host,
        started_with=_started_with(settings),
    )
    current.ranges = split(
        start, end=end, now=now, cursors=cursors, margin=margin, expected_logs=expected
    )
    log.info("plan ranges=%d expected_logs=%s", len(current.ranges), expected)
    return current


def _execute(
    request: JobRequest,
    report: Report,
    clients: _Clients,
    current: RunState,
    *,
    persist: bool = True,
) -> None:
    settings = request.settings

    def save(snapshot: RunState) -> None:
        if persist:
            state_file.save(settings.state, snapshot)

    assert clients.events is not None and clients.query is not None
    query = clients.query

    def landed_between(pending: PendingAppend) -> set[str]:
        if pending.first_log_id is None or pending.last_log_id is None:
            return set()
        return log_ids_between(
            query,
            settings.datasource,
            pending.first_log_id,
            pending.last_log_id,
            parse_record_date(pending.min_date),
            parse_record_date(pending.max_date),
        )

    already_there: set[str] = set()
    stream_start = parse_record_date(current.started_with.get("until_stream_start"))
    if stream_start is not None:
        margin = timedelta(seconds=settings.late_margin_seconds)
        already_there = live_stream.ids_dated_between(
            query, settings.datasource, stream_start - margin, stream_start + margin
        )
        log.info(
            "until_stream_start stream_began=%s rows_in_overlap=%d",
            iso(stream_start),
            len(already_there),
        )
    coverage = Coverage(current.ranges)
    progress = ProgressReporter.choose(
        coverage,
        quiet=request.quiet,
        interval=settings.progress_interval,
        lines=request.progress == "lines",
    )
    run_started = iso(utcnow())
    pipeline = Pipeline(
        source=clients.auth0,
        sink=_CollectAfterAppend(clients.events),
        state=current,
        save=save,
        options=_options(request, clients.pacer),
        stopper=request.stopper,
        progress=progress,
        landed_between=landed_between if clients.can_read else None,
        already_there=already_there,
    )
    outcome = "failed"
    try:
        totals = pipeline.run()
        outcome = "reached_until" if current.finished() and _bounded(current) else "caught_up"
    except Interrupted:
        outcome = "interrupted"
        raise
    finally:
        progress.close()
        _fill(report, pipeline.totals, current, clients)
        current.last_run = {
            "started_at": run_started,
            "finished_at": iso(utcnow()),
            "outcome": outcome,
            "rows_sent": pipeline.totals.rows_sent,
            "version": __version__,
        }
        with contextlib.suppress(OSError):
            save(current)
    report.outcome = outcome
    report.exit_code = 0
    del totals


def _bounded(current: RunState) -> bool:
    return all(item.end is not None for item in current.ranges)


def _fill(report: Report, totals: RunTotals, current: RunState, clients: _Clients) -> None:
    report.rows_sent = totals.rows_sent
    report.batches = totals.batches
    report.quarantined_rows = totals.quarantined
    report.already_in_tinybird = totals.already_landed
    report.filtered = totals.filtered
    report.outside_range = totals.outside
    report.records_read = totals.records_read
    report.retries = clients.retry.retries
    report.rate_limited = clients.pacer.throttled
    report.newest_log_id, report.newest_date = current.newest()
    report.ranges = len(current.ranges)
    report.ranges_done = sum(1 for item in current.ranges if item.done)
    report.gaps = [gap.__dict__ for gap in current.gaps]
    if totals.undated:
        _note(report, f"{totals.undated} records had no readable date.")


def _options(request: JobRequest, pacer: Pacer | None = None) -> RunOptions:
    settings = request.settings
    # With the data source as the checkpoint, rows must land strictly in order, each append in
    # one monthly partition (so it lands whole): one cursor, one append at a time.
    sequential = request.dry_run or request.resume_from_tinybird
    return RunOptions(
        limits=BatchLimits(
            max_rows=settings.max_rows,
            max_bytes=settings.max_bytes,
            max_months=1 if request.resume_from_tinybird else settings.max_months,
        ),
        concurrency=1 if sequential else settings.concurrency,
        in_flight=1 if sequential else settings.in_flight,
        late_margin=timedelta(seconds=settings.late_margin_seconds),
        keep_type=type_filter(settings.types, settings.exclude_types),
        restart_from_oldest=request.restart_from_oldest,
        shutdown_grace=settings.shutdown_grace,
        resume_settle=settings.resume_settle,
        flush_seconds=settings.flush_seconds,
        rate_limited=(lambda: pacer.saturated) if pacer is not None else (lambda: False),
    )


def _note(report: Report, note: str) -> None:
    report.notes.append(note)
    log.info("note %r", note)


def _stream_start(clients: _Clients, settings: Settings, report: Report) -> datetime | None:
    """The earliest date already in the data source: where the live stream began."""
    assert clients.query is not None
    if not clients.can_read:
        raise TinybirdAuthError(
            "--until-stream-start needs to read the data source, and the token cannot.",
            hint="Set TINYBIRD_READ_TOKEN to a token with DATASOURCES:READ on it.",
        )
    first = live_stream.stream_began(clients.query, settings.datasource)
    if first is None:
        _note(report, "The data source is empty: no live stream yet, going until caught up.")
        return None
    _note(
        report,
        f"The live stream's first event in Tinybird is at {iso(first)}: "
        "backfilling up to it (exclusive).",
    )
    return first


# -- resume from the data itself ---------------------------------------------------------------


def _from_tinybird(clients: _Clients, settings: Settings, report: Report) -> RunState | None:
    """A run whose start is the greatest log_id already in the data source."""
    query = clients.query
    assert query is not None
    if not clients.can_read:
        raise TinybirdAuthError(
            "--resume-from-tinybird reads the resume point from the data source, and the token "
            "cannot read it.",
            hint="Set TINYBIRD_READ_TOKEN to a token with DATASOURCES:READ on it.",
        )
    last = live_stream.greatest_log_id(query, settings.datasource)
    if last is None:
        _note(report, "The data source is empty: starting as flags say (or from the oldest log).")
        return _fresh_state(clients, settings, report, end=settings.until_date, cursors=1)
    live_stream.refuse_unless_own_rows(clients.auth0, query, settings)
    _note(report, f"Resuming after {last}, the greatest log_id in {settings.datasource}.")
    current = state_file.new_state(
        tenant=settings.auth0_domain,
        datasource=settings.datasource,
        tinybird_host=settings.tinybird_host,
        started_with=_started_with(settings),
    )
    end = settings.until_date
    current.ranges = [
        RangeState(
            id=0,
            start=iso(settings.from_date) if settings.from_date else None,
            end=iso(end) if end else None,
            start_after=last,
        )
    ]
    return current


# -- dry run ------------------------------------------------------------------------------------


class _NdjsonWriter:
    """A sink that writes the envelopes instead of sending them."""

    def __init__(self, output: IO[bytes]) -> None:
        self._output = output

    def append(self, batch: Batch) -> AppendResult:
        for line in batch.lines():
            self._output.write(line)
        self._output.flush()
        return AppendResult(successful_rows=batch.rows)


def _dry_run(request: JobRequest, report: Report) -> None:
    settings = request.settings
    existing = state_file.load(settings.state)
    if existing is not None:
        state_file.check_binding(
            existing,
            path=settings.state,
            tenant=settings.auth0_domain,
            datasource=settings.datasource,
        )
    report.exactly_once = False
    output = request.output or sys.stdout.buffer
    with _clients(request) as clients:
        if existing is not None and not request.restart:
            current = existing
        else:
            fresh = _fresh_state(clients, settings, report, end=settings.until_date, cursors=1)
            if fresh is None:
                return
            current = fresh
        current.pending = []
        pipeline = Pipeline(
            source=clients.auth0,
            sink=_NdjsonWriter(output),
            state=current,
            save=lambda snapshot: None,  # a dry run never touches the checkpoint
            options=_options(request),
            stopper=request.stopper,
        )
        try:
            pipeline.run()
        finally:
            _fill(report, pipeline.totals, current, clients)
        report.outcome, report.exit_code = "dry_run", 0
