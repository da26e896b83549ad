"""``verify`` against Auth0: per UTC hour (or day), the logs Auth0 holds against the rows
Tinybird holds, by log_id, so a hole a stream left (a pause, an outage, a rotated token) is
visible to the hour, and so is every duplicate.

It reads Auth0's logs of the window by checkpoint (one request per 100 logs, paced like a run)
and asks Tinybird two queries per day (the data source and its quarantine), one day at a time so
memory holds one day's log_ids. Logs of types the data source does not receive (the stream's
filter, or the run's) are not counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backfill.auth0.source import Auth0Logs
from backfill.checks import table
from backfill.errors import TinybirdNotFoundError, TinybirdRequestError
from backfill.run.plan import find_start
from backfill.timeutil import iso, parse_record_date
from backfill.tinybird.query import TinybirdQuery
from backfill.tinybird.sql import QUARANTINED_DATE, datetime_literal

log = logging.getLogger("backfill.checks.verify")

MARGIN = timedelta(seconds=60)  # ids are written up to seconds after their date
SHOWN_IDS = 20  # missing log_ids listed per bucket in --json


@dataclass
class Bucket:
    start: str  # the hour or day, UTC: 2026-11-03T05 or 2026-11-03
    auth0: int = 0  # logs Auth0 holds (of the types the data source receives)
    rows: int = 0  # count() in the data source
    unique: int = 0  # uniqExact(log_id)
    quarantined: int = 0  # of Auth0's logs, in the quarantine (sent, did not fit the schema)
    missing: int = 0  # Auth0's logs in neither
    missing_log_ids: list[str] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return max(self.rows - self.unique, 0)


@dataclass
class Holes:
    datasource: str
    by: str  # "hour" or "day"
    low: datetime
    high: datetime
    types: str  # which types are counted, and why
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return sum(bucket.missing for bucket in self.buckets)

    @property
    def duplicates(self) -> int:
        return sum(bucket.duplicates for bucket in self.buckets)

    def to_json(self) -> dict[str, Any]:
        return {
            "datasource": self.datasource,
            "compared_with": "auth0",
            "by": self.by,
            "from": iso(self.low),
            "until": iso(self.high),
            "types": self.types,
            self.by + "s": [
                {
                    self.by: bucket.start,
                    "auth0": bucket.auth0,
                    "rows": bucket.rows,
                    "unique": bucket.unique,
                    "quarantined": bucket.quarantined,
                    "duplicates": bucket.duplicates,
                    "missing": bucket.missing,
                    "missing_log_ids": bucket.missing_log_ids,
                }
                for bucket in self.buckets
            ],
            "auth0": sum(bucket.auth0 for bucket in self.buckets),
            "rows": sum(bucket.rows for bucket in self.buckets),
            "unique": sum(bucket.unique for bucket in self.buckets),
            "missing": self.missing,
            "duplicates": self.duplicates,
            "dedup_query": f"SELECT * FROM {self.datasource} ORDER BY date LIMIT 1 BY log_id",
            "ok": self.missing == 0 and self.duplicates == 0,
        }

    def table(self) -> str:
        header = (
            self.by,
            "in Auth0",
            "in Tinybird",
            "unique",
            "quarantined",
            "duplicates",
            "missing",
        )
        shown = [
            bucket
            for bucket in self.buckets
            if len(self.buckets) <= 48 or bucket.missing or bucket.duplicates
        ]
        rows = [header] + [
            (
                bucket.start,
                f"{bucket.auth0:,}",
                f"{bucket.rows:,}",
                f"{bucket.unique:,}",
                f"{bucket.quarantined:,}",
                f"{bucket.duplicates:,}",
                f"{bucket.missing:,}",
            )
            for bucket in shown
        ]
        totals = self.to_json()
        rows.append(
            (
                "total",
                f"{totals['auth0']:,}",
                f"{totals['rows']:,}",
                f"{totals['unique']:,}",
                f"{sum(bucket.quarantined for bucket in self.buckets):,}",
                f"{self.duplicates:,}",
                f"{self.missing:,}",
            )
        )
        lines = table.render(rows)
        if len(shown) < len(self.buckets):
            lines.append(
                f"({len(self.buckets) - len(shown)} {self.by}s agree and are not shown; "
                "--json lists every one.)"
            )
        lines.append("")
        lines.append(
            f"Compared with Auth0's logs from {iso(self.low)} to {iso(self.high)}: {self.types}."
        )
        if self.missing:
            lines.append(
                f"Missing: {self.missing:,}. Send them with: auth0-backfill run --skip-existing "
                f"--from-date {iso(self.low)} --until-date {iso(self.high)} --state <a new file>"
            )
        else:
            lines.append("Missing: none.")
        if self.duplicates:
            lines.append(
                f"Duplicates: {self.duplicates:,}. Read without them: "
                f"{totals['dedup_query']} (or count with uniqExact(log_id))."
            )
        else:
            lines.append("Duplicates: none.")
        return "\n".join(lines)


async def find_holes(
    logs: Auth0Logs,
    query: TinybirdQuery,
    *,
    low: datetime,
    high: datetime,
    by: str,
    keep: Callable[[object], bool] | None,
    types: str,
    workers: int,
) -> Holes:
    """Auth0's logs against Tinybird's rows in ``[low, high)``, a day at a time."""
    days = []
    day = low
    while day < high:
        following = min(
            (day + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0), high
        )
        days.append((day, following))
        day = following
    at_once = asyncio.Semaphore(max(1, min(workers, len(days) or 1)))

    async def one(span: tuple[datetime, datetime]) -> list[Bucket]:
        async with at_once:
            return await _day(logs, query, span[0], span[1], by, keep)

    results = await asyncio.gather(*(one(span) for span in days))
    holes = Holes(query.datasource, by, low, high, types)
    for buckets in results:
        holes.buckets.extend(buckets)
    return holes


async def _day(
    logs: Auth0Logs,
    query: TinybirdQuery,
    low: datetime,
    high: datetime,
    by: str,
    keep: Callable[[object], bool] | None,
) -> list[Bucket]:
    width = 13 if by == "hour" else 10  # 2026-11-03T05 / 2026-11-03
    in_auth0 = await _auth0_logs(logs, low, high, keep)
    rows = await query.sql(
        f"SELECT log_id, substring(toString(date), 1, {width}) AS bucket, count() AS rows "
        f"FROM {query.datasource} WHERE date >= {datetime_literal(low)} "
        f"AND date < {datetime_literal(high)} GROUP BY log_id, bucket"
    )
    quarantined = await _quarantined(query, low, high)
    buckets: dict[str, Bucket] = {}

    def bucket(key: str) -> Bucket:
        key = key.replace(" ", "T")
        return buckets.setdefault(key, Bucket(key))

    held: set[str] = set()
    for row in rows:
        found = bucket(str(row["bucket"]))
        found.rows += int(row["rows"])
        found.unique += 1
        held.add(str(row["log_id"]))
    for log_id, date in in_auth0.items():
        found = bucket(date[:width])
        found.auth0 += 1
        if log_id in held:
            continue
        if log_id in quarantined:
            found.quarantined += 1
            continue
        found.missing += 1
        if len(found.missing_log_ids) < SHOWN_IDS:
            found.missing_log_ids.append(log_id)
    log.info("verify day=%s auth0=%d tinybird=%d", low.date(), len(in_auth0), len(held))
    return [buckets[key] for key in sorted(buckets)]


async def _auth0_logs(
    logs: Auth0Logs, low: datetime, high: datetime, keep: Callable[[object], bool] | None
) -> dict[str, str]:
    """log_id -> date of Auth0's logs dated in ``[low, high)`` (of the kept types)."""
    start = await find_start(
        logs, from_date=low, from_log_id=None, margin=MARGIN, notes=lambda _: None
    )
    if start is None:
        return {}
    found: dict[str, str] = {}
    lower, upper, stop = iso(low), iso(high), iso(high + MARGIN)
    position: str | None = start.start_after
    if start.lead:
        lead = await logs.get(start.lead)
        if lead is not None:
            _keep(found, lead, lower, upper, keep)
    while position is not None:
        page = await logs.page_after(position)
        for record in page:
            date = _stamp(record)
            if date is not None and date >= stop:
                return found
            _keep(found, record, lower, upper, keep)
        position = str(page[-1]["log_id"]) if len(page) == 100 else None
    return found


def _keep(
    found: dict[str, str],
    record: dict[str, Any],
    lower: str,
    upper: str,
    keep: Callable[[object], bool] | None,
) -> None:
    date = _stamp(record)
    if date is None or not lower <= date < upper:
        return
    if keep is None or keep(record.get("type")):
        found[str(record["log_id"])] = date


def _stamp(record: dict[str, Any]) -> str | None:
    moment = parse_record_date(record.get("date"))
    return iso(moment) if moment else None


async def _quarantined(query: TinybirdQuery, low: datetime, high: datetime) -> set[str]:
    # The quarantine's dates are text as the row had it: parsed, as the stream checks do.
    try:
        rows = await query.sql(
            f"SELECT log_id FROM {query.datasource}_quarantine WHERE log_id IS NOT NULL "
            f"AND {QUARANTINED_DATE} >= {datetime_literal(low)} "
            f"AND {QUARANTINED_DATE} < {datetime_literal(high)}"
        )
    except (TinybirdRequestError, TinybirdNotFoundError):
        return set()  # no quarantine yet: nothing ever went there
    return {str(row["log_id"]) for row in rows}
