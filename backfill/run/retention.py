"""A checkpoint that aged out of Auth0's retention: how to tell, and what the operator is told.

Auth0 deletes logs older than the plan keeps (1 to 30 days). A range whose checkpoint is older
than the oldest log Auth0 still holds has lost what lay between them. That is checked before
paging (``aged_out``, against the oldest log), not only when Auth0 answers 400 to the
checkpoint, which it does not document.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from backfill.auth0.log_ids import order_key, write_time
from backfill.errors import CheckpointExpiredError
from backfill.state.model import Gap, RangeState
from backfill.timeutil import humanize, iso, parse_record_date

log = logging.getLogger("backfill.pipeline")

RETENTION_TABLE = (
    "Auth0 keeps logs for: Starter/free 1 day, Essentials 5 days, Professional 10 days, "
    "Enterprise 30 days."
)


def aged_out(item: RangeState, oldest: dict[str, Any]) -> bool:
    """Whether logs the range still has to read may be gone: its checkpoint (or, not started,
    its start) lies before the oldest log Auth0 holds."""
    if item.done:
        return False
    if item.cursor is not None:
        return order_key(item.cursor) < order_key(str(oldest["log_id"]))
    begins, _ = item.span()  # its date bound, or where its first log_id points, the later
    oldest_date = parse_record_date(oldest.get("date"))
    if begins is None or oldest_date is None:
        return order_key(item.start_after) < order_key(str(oldest["log_id"]))
    return begins < oldest_date


def expired_error(
    position: str, known_date: str | None, oldest: dict[str, Any], now: datetime
) -> CheckpointExpiredError:
    then = write_time(position) or (parse_record_date(known_date) if known_date else None)
    age = f"{humanize(now - then)} old" if then else "of unknown age"
    return CheckpointExpiredError(
        f"The checkpoint {position} ({iso(then) if then else 'date unknown'}, {age}) is "
        f"older than the oldest log Auth0 still retains ({oldest.get('date')}): the logs "
        f"between them are gone. {RETENTION_TABLE}",
        hint="Run again with --restart-from-oldest to accept the gap and go on from the "
        "oldest retained log (the gap is recorded and reported), or start over with "
        "--restart.",
    )


def gap_to_oldest(
    range_id: int, position: str, known_date: str | None, oldest: dict[str, Any]
) -> Gap:
    """With --restart-from-oldest: what was lost between the checkpoint and the oldest log
    Auth0 still holds, recorded and reported."""
    then = write_time(position) or (parse_record_date(known_date) if known_date else None)
    oldest_date = parse_record_date(oldest.get("date"))
    seconds = (oldest_date - then).total_seconds() if then and oldest_date else 0.0
    gap = Gap(
        after_log_id=position,
        after_date=iso(then) if then else None,
        resumed_at_date=oldest.get("date"),
        seconds=max(seconds, 0.0),
    )
    log.warning(
        "checkpoint_expired range=%d gap=%s from=%s to=%s action=restart_from_oldest",
        range_id,
        humanize(gap.seconds),
        gap.after_date,
        gap.resumed_at_date,
    )
    return gap
