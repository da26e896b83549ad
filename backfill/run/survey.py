"""What the services hold before a run sends anything: the data source and whether we may read
it, the Log Stream(s) feeding it, where the stream began, and rows already in a window."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from backfill.auth0.streams import LogStream, feeding
from backfill.clients import Services, tinybird_query
from backfill.config.settings import Settings
from backfill.errors import RefusedError, TinybirdAuthError, TinybirdNotFoundError
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy
from backfill.run import stream
from backfill.run.mirror import BACKLOG, Mirror
from backfill.run.request import Notes
from backfill.state.model import RunState
from backfill.timeutil import iso, parse_record_date, utcnow
from backfill.tinybird.query import TinybirdQuery
from backfill.tinybird.region import region_hint
from backfill.tinybird.sql import datetime_literal, string_literal

log = logging.getLogger("backfill.job")


@dataclass
class TinybirdAccess:
    query: TinybirdQuery
    can_read: bool

    def require_read(self, why: str) -> TinybirdQuery:
        if not self.can_read:
            raise TinybirdAuthError(
                why, hint="Set TINYBIRD_READ_TOKEN to a token with DATASOURCES:READ on it."
            )
        return self.query


async def tinybird(services: Services, notes: Notes) -> TinybirdAccess:
    """Before reading anything: the data source exists, and can we read it (for exactly once)?"""
    return await tinybird_access(services.settings, services.http, services.retry, notes)


async def tinybird_access(
    settings: Settings, http: HttpClient, retry: RetryPolicy, notes: Notes
) -> TinybirdAccess:
    """``tinybird``, for a command that reads no Auth0 logs (``import``)."""
    query = tinybird_query(settings, http=http, retry=retry)
    try:
        found = await query.describe()
    except TinybirdAuthError:
        found = {}  # this token cannot read metadata; the first append will tell
        log.info("preflight datasource=unchecked reason='token cannot read data source details'")
    if found is None:
        raise TinybirdNotFoundError(
            f"Tinybird at {settings.tinybird_host} has no data source {settings.datasource!r}.",
            hint="Create it from tinybird/datasources/auth0.datasource (the job never creates "
            "it: the Events API would guess another schema), or set TINYBIRD_DATASOURCE. "
            + region_hint(settings.tinybird_host),
        )
    try:
        await query.sql(f"SELECT log_id FROM {settings.datasource} LIMIT 0")
    except TinybirdAuthError:
        log.warning("exactly_once=off reason=no_read_access")
        notes.append(
            "No read access to Tinybird (set TINYBIRD_READ_TOKEN, or use an append token that "
            "can also read): exactly-once is off, so a crash may send a batch's rows twice."
        )
        return TinybirdAccess(query, can_read=False)
    return TinybirdAccess(query, can_read=True)


async def streams(services: Services) -> list[LogStream] | None:
    """The Log Streams feeding the data source; None when the token may not list them."""
    settings = services.settings
    listed = await services.auth0.log_streams()
    if listed is None:
        return None
    found = feeding(listed, tinybird_host=settings.tinybird_host, datasource=settings.datasource)
    for item in found:
        log.info("log_stream feeds=%s %s", settings.datasource, item.describe())
    return found


async def stream_start(
    access: TinybirdAccess, feeding_streams: list[LogStream] | None, notes: Notes
) -> datetime | None:
    """The earliest date already in the data source: where the live stream began."""
    query = access.require_read(
        "--until-stream-start needs to read the data source, and the token cannot."
    )
    first = await stream.stream_began(query)
    held = [item for item in feeding_streams or [] if item.status != "active"]
    if first is None:
        if feeding_streams:
            names = ", ".join(repr(item.name) for item in feeding_streams)
            raise RefusedError(
                f"--until-stream-start refused: Log Stream {names} feeds the data source, which "
                "holds no row yet, so where the stream's data begins is unknown; going until "
                "caught up would write what the stream is about to deliver."
                + (f" {BACKLOG}" if held else ""),
                hint="Give the end yourself with --until-date (when the stream was created), or "
                "run again once the stream has delivered.",
            )
        notes.add("The data source is empty: no live stream yet, going until caught up.")
        return None
    notes.add(
        f"The live stream's first event in Tinybird is at {iso(first)}: "
        "backfilling up to it (exclusive)."
    )
    for item in held:
        notes.add(
            f"Log Stream {item.name!r} is {item.status}. {BACKLOG} Logs it never delivers "
            "(a stream paused longer than Auth0 keeps logs) leave holes after its start: find "
            "them with verify --by hour and fill them with run --skip-existing."
        )
    return first


async def refuse_overlap_with_streams(
    access: TinybirdAccess,
    feeding_streams: list[LogStream] | None,
    state: RunState,
    settings: Settings,
    notes: Notes,
) -> None:
    """A Log Stream that feeds the data source, whatever its status, still writes every log
    after the newest row it delivered (an active one as they come, a paused or suspended one
    as its backlog when resumed): a run whose window reaches past that row would write them
    twice. Refused unless the run ends at or before it (rows already there inside the window
    are the rows check's, ``refuse_rows_already_there``); the caller lets ``--skip-existing``
    and ``--allow-duplicates`` through, knowingly."""
    if not feeding_streams or state.started_with.get("until_stream_start"):
        return  # --until-stream-start ends there itself, and skips what the stream delivered
    names = _names(feeding_streams)
    held = any(item.status != "active" for item in feeding_streams)
    end = run_end(state)
    span = await stream.rows_span(access.query) if access.can_read else None
    if end is not None and span is None:
        notes.add(
            f"Log Stream {names} feeds {settings.datasource}, which "
            + ("holds no row yet" if access.can_read else "this token cannot read")
            + f": this run ends at {iso(end)}, and any log the stream delivers dated before "
            "that will be there twice."
        )
        return
    if end is not None and span is not None and end <= span[1]:
        return
    if span is not None:
        where = f"its first row in {settings.datasource} is at {iso(span[0])}"
        until = f"--until-date {iso(span[0])} (its first row)"
    else:
        where = (
            f"{settings.datasource} holds no row of it yet"
            if access.can_read
            else "where its rows begin cannot be read with this token"
        )
        until = "--until-date <when the stream was created>"
    reach = (
        f"ends at {iso(end)}, past the newest row there ({iso(span[1])})"
        if end is not None and span is not None
        else "goes until caught up"
    )
    raise RefusedError(
        f"Log Stream {names} feeds {settings.datasource} ({where}), and this run {reach}: "
        "it would send logs the stream writes too, twice. Nothing was sent."
        + (f" {BACKLOG}" if held else ""),
        hint=f"Give {until}, or use --until-stream-start, to end before the stream's rows; or "
        "--skip-existing to send only what the data source does not hold yet.",
    )


def run_end(state: RunState) -> datetime | None:
    """Where a run's window ends (its last range's date bound), None when it reads until caught
    up."""
    pending = [item for item in state.ranges if not item.done] or state.ranges
    if any(not item.bounded for item in pending):
        return None
    ends = [parse_record_date(item.end) for item in state.ranges if item.end]
    found = [end for end in ends if end is not None]
    return max(found) if found else None


def _names(streams: list[LogStream]) -> str:
    return ", ".join(
        repr(item.name) + (f" (now {item.status})" if item.status != "active" else "")
        for item in streams
    )


async def streamed_near_its_start(
    access: TinybirdAccess, state: RunState, settings: Settings
) -> set[str]:
    """A run that ends where the stream began reads past it by the late-id margin: what the
    stream delivered in that window is not sent again."""
    began = parse_record_date(state.started_with.get("until_stream_start"))
    if began is None:
        return set()
    margin = timedelta(seconds=settings.late_margin_seconds)
    found = await stream.ids_dated_between(access.query, began - margin, began + margin)
    log.info("until_stream_start stream_began=%s rows_in_overlap=%d", iso(began), len(found))
    return found


async def rows_already_there(query: TinybirdQuery, state: RunState, mirrored: Mirror) -> int:
    """Rows the data source holds in the new run's window, of the types it would send."""
    low = parse_record_date(state.ranges[0].start) if state.ranges else None
    ends = [parse_record_date(item.end) for item in state.ranges]
    high = None if None in ends else max(end for end in ends if end is not None)
    return await rows_in_window(query, low, high, mirrored)


async def rows_in_window(
    query: TinybirdQuery, low: datetime | None, high: datetime | None, mirrored: Mirror
) -> int:
    """Rows the data source holds dated in ``[low, high)`` (to now when open), of the types
    ``mirrored`` sends."""
    where = [f"date < {datetime_literal(high or utcnow() + timedelta(hours=1))}"]
    if low is not None:
        where.append(f"date >= {datetime_literal(low)}")
    kept = mirrored.type_filter
    if kept is not None and kept.wanted is not None:
        where.append(f"type IN ({', '.join(string_literal(code) for code in sorted(kept.wanted))})")
    if kept is not None and kept.unwanted:
        where.append(
            f"type NOT IN ({', '.join(string_literal(code) for code in sorted(kept.unwanted))})"
        )
    rows = await query.sql(
        f"SELECT count() AS rows FROM {query.datasource} WHERE {' AND '.join(where)}"
    )
    return int(rows[0]["rows"]) if rows else 0


def refuse_rows_already_there(count: int, settings: Settings, window: str) -> None:
    if count:
        raise RefusedError(
            f"{settings.datasource} already holds {count:,} rows in this run's window "
            f"({window}), and no checkpoint at {settings.state} says this job sent them (a new "
            "or mistyped --state, a lost state file, or a Log Stream's rows): sending the "
            "window would duplicate them. Nothing was sent.",
            hint="Run again with --skip-existing to send only the logs Tinybird does not hold, "
            "or --allow-duplicates to send everything anyway; or point --state at the run's "
            "state file.",
        )
