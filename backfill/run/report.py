"""What a run did, counted once, and the report the operator reads: the summary line and
``--json``.

The pipeline keeps the run's ``Counts``; everything else the report says (where the checkpoint
stands, gaps, ranges) is read off the state when the report is built, once, at the end.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from backfill.errors import SomeTenantsFailedError, given_text, listed
from backfill.state.model import Acknowledged, RunState


@dataclass
class Counts:
    """This run's counts (the state file keeps the totals over every run)."""

    records_read: int = 0
    rows_sent: int = 0  # acknowledged by Tinybird, quarantined rows included
    batches: int = 0
    quarantined_rows: int = 0
    already_in_tinybird: int = 0  # found in Tinybird before sending, not sent again
    filtered: int = 0  # left out by --types / --exclude-types
    outside_range: int = 0  # read past a range's edge: another range's, not sent twice
    undated: int = 0  # records without a readable date
    unknown_types: dict[str, int] = field(default_factory=dict)  # left out: codes not in the table

    def add(self, acknowledged: Acknowledged) -> None:
        self.rows_sent += acknowledged.rows
        self.quarantined_rows += acknowledged.quarantined_rows
        self.already_in_tinybird += acknowledged.already_in_tinybird
        self.batches += acknowledged.batches

    def __iadd__(self, other: Counts) -> Counts:
        """Another pipeline's counts (a follow's polls) added to these."""
        for name in (
            "records_read",
            "rows_sent",
            "batches",
            "quarantined_rows",
            "already_in_tinybird",
            "filtered",
            "outside_range",
            "undated",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for code, seen in other.unknown_types.items():
            self.unknown_types[code] = self.unknown_types.get(code, 0) + seen
        return self


OUTCOMES = {
    "caught_up": "caught up",
    "reached_until": "reached --until-date",
    "nothing_to_do": "nothing to do",
    "dry_run": "dry run",
    "interrupted": "interrupted",
    "stopped": "stopped following",
}


@dataclass
class Report:
    """What happened, for the summary line, ``--json`` and the exit code."""

    tenant: str
    datasource: str
    state: str
    outcome: str = "failed"
    exit_code: int = 1
    error: str | None = None
    counts: Counts = field(default_factory=Counts)
    retries: int = 0
    rate_limited: int = 0
    seconds: float = 0.0
    newest_log_id: str | None = None
    newest_date: str | None = None
    ranges: int = 0
    ranges_done: int = 0
    gaps: list[dict[str, Any]] = field(default_factory=list)
    exactly_once: bool = True
    notes: list[str] = field(default_factory=list)
    type_filter: str | None = None  # which types were sent, and where that came from
    pii: str | None = None  # what was done with personal data a stream hides
    query_api_calls: int = 0
    skip_existing: bool = False

    @classmethod
    def build(
        cls,
        *,
        tenant: str,
        datasource: str,
        state_path: str,
        outcome: str,
        exit_code: int,
        error: str | None = None,
        counts: Counts | None = None,
        state: RunState | None = None,
        retries: int = 0,
        rate_limited: int = 0,
        seconds: float = 0.0,
        exactly_once: bool = True,
        notes: list[str] | None = None,
        type_filter: str | None = None,
        pii: str | None = None,
        query_api_calls: int = 0,
        skip_existing: bool = False,
    ) -> Report:
        counts = counts or Counts()
        notes = list(notes or [])
        if counts.undated:
            notes.append(f"{counts.undated} records had no readable date.")
        report = cls(
            tenant=tenant,
            datasource=datasource,
            state=state_path,
            outcome=outcome,
            exit_code=exit_code,
            error=error,
            counts=counts,
            retries=retries,
            rate_limited=rate_limited,
            seconds=seconds,
            exactly_once=exactly_once,
            notes=notes,
            type_filter=type_filter,
            pii=pii,
            query_api_calls=query_api_calls,
            skip_existing=skip_existing,
        )
        if state is not None:
            report.newest_log_id, report.newest_date = state.newest()
            report.ranges = len(state.ranges)
            report.ranges_done = sum(1 for item in state.ranges if item.done)
            report.gaps = [asdict(gap) for gap in state.gaps]
        return report

    @property
    def logs_per_second(self) -> float:
        return self.counts.records_read / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        """The one-line summary on stdout."""
        counts = self.counts
        head = OUTCOMES.get(self.outcome, "FAILED")
        parts = [f"auth0-backfill {self.tenant} -> {self.datasource}: {head}"]
        parts.append(
            f"{counts.rows_sent:,} rows sent in {counts.batches:,} batches"
            if self.outcome != "dry_run"
            else f"{counts.rows_sent:,} envelopes written"
        )
        if counts.quarantined_rows:
            parts.append(f"{counts.quarantined_rows:,} quarantined by Tinybird")
        if counts.already_in_tinybird:
            parts.append(f"{counts.already_in_tinybird:,} already in Tinybird, not resent")
        if counts.filtered:
            parts.append(f"{counts.filtered:,} left out by type")
        if counts.unknown_types:
            unknown = listed(
                [
                    f"{given_text(code)} x{seen:,}"
                    for code, seen in sorted(counts.unknown_types.items())
                ]
            )
            parts.append(f"of which of types not in the table: {unknown}")
        if self.type_filter:
            parts.append(f"types: {self.type_filter}")
        if self.pii:
            parts.append(f"PII {self.pii}")
        if self.skip_existing:
            parts.append(f"{self.query_api_calls:,} Query API calls")
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
        counts = self.counts
        return {
            "tenant": self.tenant,
            "datasource": self.datasource,
            "state": self.state,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "error": self.error,
            "rows_sent": counts.rows_sent,
            "batches": counts.batches,
            "quarantined_rows": counts.quarantined_rows,
            "already_in_tinybird": counts.already_in_tinybird,
            "filtered": counts.filtered,
            "outside_range": counts.outside_range,
            "records_read": counts.records_read,
            "retries": self.retries,
            "rate_limited": self.rate_limited,
            "seconds": self.seconds,
            "logs_per_second": self.logs_per_second,
            "newest_log_id": self.newest_log_id,
            "newest_date": self.newest_date,
            "ranges": self.ranges,
            "ranges_done": self.ranges_done,
            "gaps": self.gaps,
            "exactly_once": self.exactly_once,
            "notes": self.notes,
            "type_filter": self.type_filter,
            "unknown_types": dict(counts.unknown_types),
            "pii": self.pii,
            "query_api_calls": self.query_api_calls,
        }


def exit_code_of(reports: list[Report], *, single: bool) -> int:
    """One tenant: its code. Several: theirs when they agree, else 11 when only some failed."""
    codes = {report.exit_code for report in reports}
    if len(codes) == 1 or single:
        return max(codes)
    failed = [report for report in reports if report.exit_code]
    if not failed:
        return 0
    return SomeTenantsFailedError.exit_code if len(failed) < len(reports) else failed[0].exit_code
