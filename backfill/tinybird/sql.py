"""The SQL the job sends to Tinybird's Query API: its literals and the quarantine's date, in one
place. Values are never interpolated raw: strings through ``string_literal``, moments through
``datetime_literal``; and dates come back as ``parse_datetime`` reads them."""

from __future__ import annotations

from datetime import UTC, datetime

from backfill.timeutil import parse_record_date

# A quarantined row's date, as the data source's column (quarantine columns are strings).
QUARANTINED_DATE = "parseDateTime64BestEffortOrNull(toString(date), 3, 'UTC')"


def string_literal(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def datetime_literal(moment: datetime) -> str:
    """A DateTime64(3) literal."""
    moment = moment.astimezone(UTC)
    stamp = moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    return f"toDateTime64('{stamp}', 3, 'UTC')"


def parse_datetime(value: object) -> datetime | None:
    """A DateTime64 as Tinybird's JSON answers carry it (``2026-11-03 03:06:05.696``, UTC)."""
    return parse_record_date(str(value).replace(" ", "T") + "Z") if value else None
