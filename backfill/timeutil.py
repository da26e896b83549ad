"""Dates as the job reads and writes them: ISO 8601, UTC unless an offset says otherwise."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backfill.errors import ConfigError, given

# Auth0's log dates (and the write times in its log_ids) lie in the Unix era; a WHEN outside
# these bounds is a typo, and near year 1 or 9999 the date arithmetic of a run would overflow.
EARLIEST_WHEN = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_WHEN = datetime(3000, 1, 1, tzinfo=UTC)


def parse_when(value: str, *, name: str) -> datetime:
    """Parse a user-given ``WHEN``: an ISO 8601 date or date-time; no offset means UTC."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        parsed = parsed.astimezone(UTC)
    except ValueError:
        raise ConfigError(
            f"{name} {given(value)} is not an ISO 8601 date or date-time.",
            hint="Write it like 2026-11-01 or 2026-11-01T08:30:00Z (no offset means UTC).",
        ) from None
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00, before year 1 once in UTC
        parsed = EARLIEST_WHEN - timedelta(days=1)
    if not EARLIEST_WHEN <= parsed < LATEST_WHEN:
        raise ConfigError(
            f"{name} {given(value)} is out of range: dates go from 1970-01-01 to 2999-12-31.",
            hint="Leave --from-date out to start at the oldest log Auth0 still has, and "
            "--until-date out to copy until caught up.",
        )
    return parsed


def parse_record_date(value: object) -> datetime | None:
    """The ``date`` of an Auth0 record, or None when it is missing or not a date."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def stamp(value: object) -> str | None:
    """A record's ``date`` as a canonical stamp (``iso``'s format), or None if it is no date.

    Auth0 writes every date that way already; the fast path only checks it does.
    """
    if (
        isinstance(value, str)
        and len(value) == 24
        and value[10] == "T"
        and value[19] == "."
        and value[23] == "Z"
    ):
        return value
    parsed = parse_record_date(value)
    return iso(parsed) if parsed is not None else None


def iso(moment: datetime) -> str:
    """The format Auth0 uses for ``date``: UTC with milliseconds and a Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    return datetime.now(UTC)


def humanize(delta: timedelta | float) -> str:
    """``1d 3h``, ``4m 05s``: durations for people."""
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    seconds = max(seconds, 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
