"""Instants as the sandbox handles them: integer microseconds since the UNIX epoch, UTC.

Integers keep the tenant index compact and exact; these helpers convert at the edges (CLI options,
control payloads, Lucene dates, record `date` strings).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

MICROS = 1_000_000
_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def now_us() -> int:
    return time.time_ns() // 1000


def to_us(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * MICROS + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def iso_millis(us: int) -> str:
    """Auth0's `date` format: `2026-11-03T03:06:05.696Z` (truncated to the millisecond)."""
    seconds, micros = divmod(us, MICROS)
    parts = time.gmtime(seconds)
    return (
        f"{parts.tm_year:04d}-{parts.tm_mon:02d}-{parts.tm_mday:02d}T"
        f"{parts.tm_hour:02d}:{parts.tm_min:02d}:{parts.tm_sec:02d}.{micros // 1000:03d}Z"
    )


def compact_utc(us: int) -> str:
    """`YYYYMMDDhhmmss` + 6 sub-second digits, the write-time part of an Auth0 log_id."""
    seconds, micros = divmod(us, MICROS)
    p = time.gmtime(seconds)
    return (
        f"{p.tm_year:04d}{p.tm_mon:02d}{p.tm_mday:02d}"
        f"{p.tm_hour:02d}{p.tm_min:02d}{p.tm_sec:02d}{micros:06d}"
    )


def parse_instant(text: str) -> datetime:
    """ISO 8601 date or date-time; a naive value is UTC. Raises ValueError."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    moment = datetime.fromisoformat(cleaned)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_when(text: str, now: datetime | None = None) -> datetime:
    """A CLI or control-payload instant: ISO 8601, `now`, or relative like `-3d`, `-12h`, `-30m`."""
    reference = now or datetime.now(UTC)
    cleaned = text.strip().lower()
    if cleaned == "now":
        return reference
    relative = _RELATIVE.match(cleaned)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return reference - timedelta(seconds=amount * _UNIT_SECONDS[unit])
    return parse_instant(text)
