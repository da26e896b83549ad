"""``verify``: did everything land? Per day, what the job recorded as sent against what Tinybird
holds (``count()`` and ``uniqExact(log_id)`` through the Query API), with quarantine and
duplicates accounted for; per hour (``--by hour``), or without a state file, Auth0's own logs
against Tinybird's rows (``holes``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backfill.auth0.pacer import Pacer
from backfill.auth0.streams import feeding
from backfill.checks import table
from backfill.checks.holes import Holes, find_holes
from backfill.clients import auth0_logs, http_client, retry_policy, tinybird_query
from backfill.config.settings import Settings
from backfill.errors import ConfigError, given_text
from backfill.run.mirror import types_sent
from backfill.state.model import RunState
from backfill.timeutil import parse_record_date, utcnow
from backfill.tinybird.query import TinybirdQuery
from backfill.tinybird.sql import datetime_literal


@dataclass
class DayCheck:
    day: str
    sent: int  # rows the job recorded as acknowledged (its ledger)
    rows: int  # count() in the data source
    unique: int  # uniqExact(log_id)
    quarantined: int  # rows of that day in the quarantine since the run began

    @property
    def duplicates(self) -> int:
        return max(self.rows - self.unique, 0)

    @property
    def missing(self) -> int:
        return max(self.sent - self.quarantined - self.unique, 0)


@dataclass
class Verification:
    datasource: str
    since: str
    days: list[DayCheck] = field(default_factory=list)
    quarantined_since_start: int = 0

    @property
    def missing(self) -> int:
        return sum(day.missing for day in self.days)

    @property
    def duplicates(self) -> int:
        return sum(day.duplicates for day in self.days)

    def dedup_query(self) -> str:
        return f"SELECT * FROM {self.datasource} ORDER BY date LIMIT 1 BY log_id"

    def to_json(self) -> dict[str, Any]:
        days = [
            {**asdict(day), "duplicates": day.duplicates, "missing": day.missing}
            for day in self.days
        ]
        return {
            "datasource": self.datasource,
            "since": self.since,
            "days": days,
            "sent": sum(day.sent for day in self.days),
            "rows": sum(day.rows for day in self.days),
            "unique": sum(day.unique for day in self.days),
            "missing": self.missing,
            "duplicates": self.duplicates,
            "quarantined_since_start": self.quarantined_since_start,
            "dedup_query": self.dedup_query(),
            "ok": self.missing == 0,
        }

    def table(self) -> str:
        header = ("day", "sent", "in Tinybird", "unique", "quarantined", "duplicates", "missing")
        lines = [header]
        for day in self.days:
            lines.append(
                (
                    day.day,
                    f"{day.sent:,}",
                    f"{day.rows:,}",
                    f"{day.unique:,}",
                    f"{day.quarantined:,}",
                    f"{day.duplicates:,}",
                    f"{day.missing:,}",
                )
            )
        totals = self.to_json()
        lines.append(
            (
                "total",
                f"{totals['sent']:,}",
                f"{totals['rows']:,}",
                f"{totals['unique']:,}",
                f"{sum(day.quarantined for day in self.days):,}",
                f"{self.duplicates:,}",
                f"{self.missing:,}",
            )
        )
        rendered = table.render(lines)
        rendered.append("")
        rendered.append(
            f"Quarantined in {self.datasource}_quarantine since the run began ({self.since}): "
            f"{self.quarantined_since_start:,}"
        )
        if self.duplicates:
            rendered.append(
                f"Duplicates: {self.duplicates:,}. Read without them: {self.dedup_query()} "
                "(or count with uniqExact(log_id))."
            )
        else:
            rendered.append("Duplicates: none.")
        rendered.append(
            f"Missing: {self.missing:,}." if self.missing else "Missing: none: everything landed."
        )
        return "\n".join(rendered)


async def verify_state(
    settings: Settings, state: RunState | None, *, by: str = "day"
) -> Verification | Holes:
    """``verify``: by day against what the run recorded as sent (its ledger); by hour, or without
    a state file, against Auth0's own logs (``holes``)."""
    async with http_client(settings) as http:
        retry = retry_policy(settings)
        query = tinybird_query(settings, http=http, retry=retry)
        if by == "day" and state is not None:
            return await verify(
                query, state, from_date=settings.from_date, until_date=settings.until_date
            )
        logs = auth0_logs(settings, http=http, retry=retry, pacer=Pacer(share=settings.rate_share))
        low, high = _window(settings, state, by)
        recorded = state.started_with.get("mirror") if state is not None else None
        listed = None
        if recorded is None and not (settings.types or settings.exclude_types):
            listed = await logs.log_streams()
        streams = feeding(
            listed or [], tinybird_host=settings.tinybird_host, datasource=settings.datasource
        )
        kept = types_sent(settings, streams, recorded)
        return await find_holes(
            logs,
            query,
            low=low,
            high=high,
            by=by,
            keep=kept,
            types=f"types {kept.describe()}" if kept else "every type",
            workers=settings.concurrency,
        )


def _window(settings: Settings, state: RunState | None, by: str) -> tuple[datetime, datetime]:
    """The whole hours (or days) to compare: the flags', else the ledger's days."""
    low, high = settings.from_date, settings.until_date
    days = sorted(day for day in (state.ledger if state else {}) if day != "unknown")
    if low is None and days:
        low = parse_record_date(days[0] + "T00:00:00Z")
    if high is None and days:
        last = parse_record_date(days[-1] + "T00:00:00Z")
        high = last + timedelta(days=1) if last else None
    if low is None:
        found = (
            f"The state file {given_text(str(settings.state))} records no rows sent"
            if state is not None
            else f"There is no state file at {given_text(str(settings.state))}"
        )
        raise ConfigError(
            f"{found}, so verify has no window to compare: it compares a run's ledger with "
            "Tinybird, or without one, Auth0's logs with Tinybird's rows over the dates given.",
            hint="Point --state (or AUTH0_BACKFILL_STATE) at the run's state file, or give "
            "--from-date (and --until-date; default: now) to compare with Auth0 by hour.",
        )
    high = high or utcnow()
    unit = timedelta(hours=1) if by == "hour" else timedelta(days=1)
    floor = low.replace(minute=0, second=0, microsecond=0)
    if by == "day":
        floor = floor.replace(hour=0)
    ceiling = high.replace(minute=0, second=0, microsecond=0)
    if by == "day":
        ceiling = ceiling.replace(hour=0)
    if ceiling < high:
        ceiling += unit
    return floor, ceiling


async def verify(
    query: TinybirdQuery,
    state: RunState,
    *,
    from_date: datetime | None = None,
    until_date: datetime | None = None,
) -> Verification:
    datasource = state.datasource
    ledger = {day: sent for day, sent in state.ledger.items() if day != "unknown"}
    days = sorted(ledger)
    first = parse_record_date(days[0] + "T00:00:00Z") if days else None
    last = parse_record_date(days[-1] + "T00:00:00Z") if days else None
    low = from_date or first
    high = until_date or (last + timedelta(days=1) if last else None)
    result = Verification(datasource=datasource, since=state.created_at)
    if low is None or high is None:
        return result
    # The ledger counts whole days: compare whole days.
    low = low.replace(hour=0, minute=0, second=0, microsecond=0)
    if high.time() != datetime.min.time():
        high = high.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    where = f"date >= {datetime_literal(low)} AND date < {datetime_literal(high)}"
    counted = {
        row["day"]: row
        for row in await query.sql(
            f"SELECT toString(toDate(date, 'UTC')) AS day, count() AS rows, "
            f"uniqExact(log_id) AS unique FROM {datasource} WHERE {where} GROUP BY day"
        )
    }
    since = parse_record_date(state.created_at)
    quarantine_where = (
        f"insertion_date >= toDateTime('{since.strftime('%Y-%m-%d %H:%M:%S')}', 'UTC')"
        if since
        else "1"
    )
    quarantined = {
        row["day"]: int(row["rows"])
        for row in await query.sql(
            f"SELECT substring(toString(date), 1, 10) AS day, count() AS rows "
            f"FROM {datasource}_quarantine WHERE {quarantine_where} GROUP BY day"
        )
    }
    result.quarantined_since_start = sum(quarantined.values())
    low_day, high_day = low.strftime("%Y-%m-%d"), high.strftime("%Y-%m-%d")
    for day in sorted(set(ledger) | set(counted)):
        if not low_day <= day < high_day:
            continue
        row = counted.get(day, {})
        result.days.append(
            DayCheck(
                day=day,
                sent=ledger.get(day, 0),
                rows=int(row.get("rows", 0)),
                unique=int(row.get("unique", 0)),
                quarantined=quarantined.get(day, 0),
            )
        )
    return result
