"""Working alongside the live Log Stream: where its data begins, which rows it already
delivered near that point, and whether a data source holds only this job's rows (the condition
for taking the resume point from the data itself)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from backfill.auth0.source import Auth0Logs
from backfill.auth0.streams import LogStream
from backfill.config.settings import Settings
from backfill.errors import StateError
from backfill.run.mirror import BACKLOG
from backfill.timeutil import iso
from backfill.tinybird.query import TinybirdQuery
from backfill.tinybird.sql import QUARANTINED_DATE, datetime_literal, parse_datetime, string_literal

log = logging.getLogger("backfill.live_stream")

HOLE_SECONDS = 900  # quieter stretches than this are asked about: does Auth0 have logs there?


async def stream_began(query: TinybirdQuery) -> datetime | None:
    """The earliest date in the data source or its quarantine (where the live stream began: its
    first rows may have been quarantined), None when both are empty."""
    span = await rows_span(query)
    return span[0] if span else None


async def rows_span(query: TinybirdQuery) -> tuple[datetime, datetime] | None:
    """The earliest and the latest date in the data source or its quarantine, None when both
    are empty."""
    rows = await query.with_quarantine(
        f"SELECT count() AS rows, toString(min(date)) AS first, toString(max(date)) AS last "
        f"FROM {query.datasource}",
        f"SELECT count() AS rows, toString(min({QUARANTINED_DATE})) AS first, "
        f"toString(max({QUARANTINED_DATE})) AS last FROM {query.datasource}_quarantine "
        f"WHERE {QUARANTINED_DATE} IS NOT NULL",
    )
    held = [row for row in rows if int(row.get("rows") or 0)]
    firsts = [date for row in held if (date := parse_datetime(row.get("first"))) is not None]
    lasts = [date for row in held if (date := parse_datetime(row.get("last"))) is not None]
    if not firsts or not lasts:
        return None
    return min(firsts), max(lasts)


async def greatest_log_id(query: TinybirdQuery) -> str | None:
    """The greatest log_id in the data source (ids order as Auth0's cursor), None when empty."""
    rows = await query.sql(f"SELECT count() AS rows, max(log_id) AS last FROM {query.datasource}")
    if not rows or int(rows[0].get("rows") or 0) == 0:
        return None
    return str(rows[0]["last"])


async def ids_dated_between(query: TinybirdQuery, low: datetime, high: datetime) -> set[str]:
    """log_ids dated in ``[low, high)`` in the data source or its quarantine."""
    low_literal, high_literal = datetime_literal(low), datetime_literal(high)
    rows = await query.with_quarantine(
        f"SELECT log_id FROM {query.datasource} "
        f"WHERE date >= {low_literal} AND date < {high_literal}",
        f"SELECT log_id FROM {query.datasource}_quarantine WHERE log_id IS NOT NULL "
        f"AND {QUARANTINED_DATE} >= {low_literal} AND {QUARANTINED_DATE} < {high_literal}",
    )
    return {str(row["log_id"]) for row in rows if row.get("log_id")}


async def refuse_unless_own_rows(
    logs: Auth0Logs,
    query: TinybirdQuery,
    settings: Settings,
    streams: list[LogStream] | None,
    keep: Callable[[object], bool] | None,
) -> None:
    """The data source must hold only this job's rows, without holes.

    Rows newer than the job's own (a live Log Stream writing to the same data source) would make
    the greatest log_id skip history. Two signs: a stream feeds this data source
    (``refuse_feeding_streams``); or the data has a hole where Auth0 has logs. ``streams``: the
    feeding ones, None when they could not be read.
    """
    refuse_feeding_streams(streams, settings)
    if streams is None:
        log.info("resume_from_tinybird log_streams=unchecked reason='token lacks read:log_streams'")
    gaps = await query.sql(
        "SELECT toString(previous) AS after, toString(date) AS before FROM ("
        "SELECT date, lagInFrame(date) OVER (ORDER BY date ROWS BETWEEN 1 PRECEDING AND "
        "CURRENT ROW) AS previous, row_number() OVER (ORDER BY date) AS position "
        f"FROM {settings.datasource}) WHERE position > 1 "
        f"AND dateDiff('second', previous, date) > {HOLE_SECONDS} "
        "ORDER BY dateDiff('second', previous, date) DESC LIMIT 5"
    )
    for gap in gaps:
        after = parse_datetime(gap["after"])
        before = parse_datetime(gap["before"])
        if after is None or before is None:
            continue
        found = await logs.search(q=f"date:{{{iso(after)} TO {iso(before)}}}", sort="date:1")
        wanted = {
            str(record["log_id"]) for record in found if keep is None or keep(record.get("type"))
        }
        if wanted:
            # Rows Tinybird quarantined are no hole: they were sent.
            listed = ", ".join(string_literal(log_id) for log_id in sorted(wanted))
            quarantined = await query.sql(
                f"SELECT log_id FROM {settings.datasource}_quarantine WHERE log_id IN ({listed})"
            )
            wanted -= {str(row["log_id"]) for row in quarantined}
        if wanted:
            raise StateError(
                f"--resume-from-tinybird refused: {settings.datasource} has no rows between "
                f"{iso(after)} and {iso(before)}, but Auth0 has logs there (e.g. "
                f"{min(wanted)}). Rows after that hole are not this job's own (a live stream, "
                "another writer?), and resuming after the greatest log_id would skip history.",
                hint="Backfill the hole with --from-date/--until-date and a state file, or keep "
                "a state file between runs.",
            )


def refuse_feeding_streams(streams: list[LogStream] | None, settings: Settings) -> None:
    """--resume-from-tinybird: no stream may feed the data source, whatever its status (a
    paused one delivers its backlog when resumed) and whatever the data source holds (an empty
    one included: the stream's rows would arrive after this job's)."""
    for stream in streams or []:
        paused = f" (now {stream.status})" if stream.status != "active" else ""
        raise StateError(
            f"--resume-from-tinybird refused: Auth0 Log Stream {stream.name!r}{paused} sends "
            f"to {settings.datasource} at {settings.tinybird_host}, so the greatest log_id "
            "there is (or will be) the stream's, and resuming after it would skip history or "
            "write the stream's logs twice." + (f" {BACKLOG}" if paused else ""),
            hint="Keep a state file between runs instead (--state on a volume) and end before "
            "the stream's first row (--until-date, or --until-stream-start).",
        )
