"""What a checkpoint holds: every range of the run and its cursor, the appends in flight, the
ledger of rows sent per day, what the run was started with, and the logs left out on purpose.
``file`` keeps it on disk."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from backfill import __version__
from backfill.auth0.log_ids import write_time
from backfill.timeutil import iso, parse_record_date, utcnow

STATE_FORMAT = "auth0-backfill-state"
# 2 (0.2.0): adds the stream mirror in started_with, refused and skipped rows, and ranges that
# end at a log_id (``end_id``). Version 1 files load; a version 1 job would read past such an
# end, so it refuses version 2 files as newer.
STATE_VERSION = 2


@dataclass
class RangeState:
    """A part of the run, read by its own checkpoint cursor: the logs dated in ``[start, end)``
    whose log_id lies in ``(start_after, end_id]``.

    Ranges cut by this version share the run's dates and are told apart by log_id alone (every
    log has exactly one, so they cannot overlap and need no margin between them). Ranges cut by
    date (version 1 files) keep their dates, and a log_id cut inside one splits those dates' logs
    exactly as well.
    """

    id: int
    start: str | None  # inclusive lower bound on date; None: everything after start_after
    end: str | None  # exclusive upper bound on date; None: no bound on date
    start_after: str  # the log_id paging begins after (Auth0's ``from`` is exclusive)
    lead: str | None = None  # a log_id to emit before paging: the oldest log, which from skips
    cursor: str | None = None  # last acknowledged position; None: not started
    cursor_date: str | None = None
    done: bool = False
    rows: int = 0
    end_id: str | None = None  # inclusive upper bound on log_id; None: no bound on log_id

    @property
    def position(self) -> str:
        return self.cursor or self.start_after

    @property
    def bounded(self) -> bool:
        """It ends (at a date or a log_id); else it reads until caught up: the open tail."""
        return self.end is not None or self.end_id is not None

    def span(self) -> tuple[datetime | None, datetime | None]:
        """Where the range lies in time: from its start (its date bound, or the write time its
        first log_id carries, whichever is later) to its end (the write time ``end_id``
        carries, or its date bound); None where unknown or open."""
        low = _date(self.start)
        begins = write_time(self.start_after)
        if begins is not None and (low is None or begins > low):
            low = begins
        high = write_time(self.end_id) if self.end_id else None
        dated = _date(self.end)
        if dated is not None and (high is None or dated < high):
            high = dated
        return low, high


@dataclass
class PendingAppend:
    """An append that was (or was about to be) in flight: which rows it carries."""

    range: int
    seq: int
    rows: int
    first_log_id: str | None
    last_log_id: str | None
    min_date: str | None
    max_date: str | None
    digest: str
    cursor_after: str | None
    registered_at: float | None = None  # UNIX time it was handed to a sender


@dataclass
class Gap:
    """History knowingly skipped (``--restart-from-oldest`` after the checkpoint aged out)."""

    after_log_id: str
    after_date: str | None
    resumed_at_date: str | None
    seconds: float


@dataclass
class LeftOut:
    """A log that is not in Tinybird on purpose: ``refused`` as too large even alone (the run
    stopped; the next one tries it again), or ``skipped`` with ``--skip-log-id``."""

    log_id: str
    date: str | None
    reason: str
    at: str  # when it was recorded


@dataclass(frozen=True)
class Acknowledged:
    """What Tinybird acknowledged for one batch; added to the state's totals and the run's."""

    rows: int  # written, quarantined rows included
    quarantined_rows: int
    already_in_tinybird: int  # found there before sending: not sent again
    batches: int


@dataclass
class RunState:
    tenant: str
    datasource: str
    tinybird_host: str
    started_with: dict[str, Any]
    created_at: str = field(default_factory=lambda: iso(utcnow()))
    ranges: list[RangeState] = field(default_factory=list)
    pending: list[PendingAppend] = field(default_factory=list)
    ledger: dict[str, int] = field(default_factory=dict)
    rows_sent: int = 0
    quarantined_rows: int = 0
    already_landed_rows: int = 0
    batches: int = 0
    gaps: list[Gap] = field(default_factory=list)
    refused: list[LeftOut] = field(default_factory=list)
    skipped: list[LeftOut] = field(default_factory=list)
    running: bool = False  # True while a run holds it: still True after a crash
    saved_at: float = 0.0  # UNIX time of the last save: when its run was last known alive
    last_run: dict[str, Any] = field(default_factory=dict)
    # Up to when every log was read and acknowledged (``status --max-lag``, the lag metric):
    # set when a run or a follow's poll reads its open range to the end, a bounded run its end.
    caught_up_through: str | None = None

    def add(self, acknowledged: Acknowledged, days: dict[str, int]) -> None:
        self.rows_sent += acknowledged.rows
        self.quarantined_rows += acknowledged.quarantined_rows
        self.already_landed_rows += acknowledged.already_in_tinybird
        self.batches += acknowledged.batches
        for day, count in days.items():
            self.ledger[day] = self.ledger.get(day, 0) + count

    # -- views for status and the summary ----------------------------------------------------

    def newest(self) -> tuple[str | None, str | None]:
        """The newest acknowledged position: (log_id, date)."""
        best: RangeState | None = None
        for item in self.ranges:
            if item.cursor and (best is None or _key(item.cursor) > _key(best.cursor or "")):
                best = item
        return (best.cursor, best.cursor_date) if best else (None, None)

    def finished(self) -> bool:
        return all(item.done for item in self.ranges if item.bounded)

    def to_json(self) -> dict[str, Any]:
        document = {"format": STATE_FORMAT, "version": STATE_VERSION, "written_by": __version__}
        document.update(asdict(self))
        return document


def _key(log_id: str) -> tuple[int, str]:
    return (len(log_id), log_id)


def new_state(
    *, tenant: str, datasource: str, tinybird_host: str, started_with: dict[str, Any]
) -> RunState:
    return RunState(
        tenant=tenant, datasource=datasource, tinybird_host=tinybird_host, started_with=started_with
    )


def _date(value: str | None) -> datetime | None:
    return parse_record_date(value) if value else None
