"""What an import did, for the summary line on stdout, ``--json`` and the exit code. Built once,
at the end, from what reading and sending counted and what the checkpoint holds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backfill.archive.progress import size
from backfill.archive.reading import ReadCounts
from backfill.archive.send import SendCounts
from backfill.errors import given_text, listed

OUTCOMES = {
    "done": "done",
    "nothing_to_do": "nothing to do",
    "dry_run": "dry run",
    "interrupted": "interrupted",
}


@dataclass
class ImportReport:
    datasource: str
    state: str
    outcome: str = "failed"
    exit_code: int = 1
    error: str | None = None
    read: ReadCounts = field(default_factory=ReadCounts)
    sent: SendCounts = field(default_factory=SendCounts)
    staged: int = 0  # distinct logs kept
    copies: int = 0  # copies of a log already staged: the archive's duplicates
    rejects_file: str | None = None
    seconds: float = 0.0
    reading_seconds: float = 0.0
    exactly_once: bool = True
    notes: list[str] = field(default_factory=list)
    type_filter: str | None = None
    pii: str | None = None
    tenants: dict[str, int] = field(default_factory=dict)
    rows_sent_total: int = 0  # over every run of this checkpoint
    query_api_calls: int = 0

    @property
    def records_per_second(self) -> float:
        return self.read.items / self.seconds if self.seconds > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.read.bytes_decompressed / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        read, sent = self.read, self.sent
        head = OUTCOMES.get(self.outcome, "FAILED")
        parts = [f"auth0-backfill import -> {self.datasource}: {head}"]
        parts.append(
            f"{read.items:,} records read from {read.sources:,} sources "
            f"({size(read.bytes_decompressed)})"
        )
        if self.copies:
            parts.append(f"{self.copies:,} duplicates dropped")
        if read.rejected:
            where = f" (in {self.rejects_file})" if self.rejects_file else ""
            parts.append(f"{read.rejected:,} rejected{where}")
        if read.outside_window:
            parts.append(f"{read.outside_window:,} outside the window")
        if read.filtered:
            parts.append(f"{read.filtered:,} left out by type")
        if read.unknown_types:
            unknown = [
                f"{given_text(code)} x{n:,}" for code, n in sorted(read.unknown_types.items())
            ]
            parts.append(f"of which of types not in the table: {listed(unknown)}")
        if read.other_tenants:
            others = [
                f"{given_text(name)} x{n:,}" for name, n in sorted(read.other_tenants.items())
            ]
            parts.append(f"other tenants left out: {listed(others)}")
        if read.skipped:
            parts.append(f"{len(read.skipped):,} left out with --skip-log-id")
        if self.outcome == "dry_run":
            parts.append(f"{self.staged:,} envelopes written")
        else:
            parts.append(f"{sent.rows_sent:,} rows sent in {sent.batches:,} batches")
        if sent.quarantined_rows:
            parts.append(f"{sent.quarantined_rows:,} quarantined by Tinybird")
        if sent.already_in_tinybird:
            parts.append(f"{sent.already_in_tinybird:,} already in Tinybird, not resent")
        if self.type_filter:
            parts.append(f"types: {self.type_filter}")
        if self.pii:
            parts.append(f"PII {self.pii}")
        parts.append(
            f"{self.records_per_second:,.0f} records/s ({self.megabytes_per_second:,.1f} MB/s) "
            f"over {self.seconds:.1f}s"
        )
        if not self.exactly_once and self.outcome not in ("dry_run", "nothing_to_do"):
            parts.append("at-least-once (no read access to Tinybird)")
        if self.error:
            parts.append(f"error: {self.error}")
        return "; ".join(parts)

    def to_json(self) -> dict[str, Any]:
        read, sent = self.read, self.sent
        return {
            "command": "import",
            "datasource": self.datasource,
            "state": self.state,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "error": self.error,
            "sources": read.sources,
            "bytes_read": read.bytes_read,
            "bytes_decompressed": read.bytes_decompressed,
            "records_read": read.items,
            "layouts": dict(read.layouts),
            "shapes": dict(read.shapes),
            "rejected": read.rejected,
            "rejects_file": self.rejects_file,
            "duplicates": self.copies,
            "outside_window": read.outside_window,
            "filtered": read.filtered,
            "unknown_types": dict(read.unknown_types),
            "other_tenants": dict(read.other_tenants),
            "tenants": dict(self.tenants),
            "skipped": [log_id for log_id, _ in read.skipped],
            "staged": self.staged,
            "rows_sent": sent.rows_sent,
            "rows_sent_total": self.rows_sent_total,
            "batches": sent.batches,
            "quarantined_rows": sent.quarantined_rows,
            "already_in_tinybird": sent.already_in_tinybird,
            "refused": list(sent.refused),
            "seconds": self.seconds,
            "reading_seconds": self.reading_seconds,
            "records_per_second": self.records_per_second,
            "megabytes_per_second": self.megabytes_per_second,
            "exactly_once": self.exactly_once,
            "notes": self.notes,
            "type_filter": self.type_filter,
            "pii": self.pii,
            "query_api_calls": self.query_api_calls,
        }
