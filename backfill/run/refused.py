"""Logs that are not in Tinybird on purpose, and the one command that gets past one.

A row Tinybird refuses as too large even alone (413) cannot be sent through the Events API. The
sink leaves it out of its batch (``events.LeftOutRow``), so every other row of the batch still
lands; the in-order commit records the batch as usual and the row in the state's ``refused``
list, then stops the run (exit 9) naming it. Every acknowledged batch is recorded, so nothing is
ever sent twice, and the checkpoint moves on past the refused row instead of stopping before it.

The next run first tries each refused row once more, alone (a 413 that was not the record's
fault, such as a proxy's limit, passes then). ``--skip-log-id ID`` instead records it as skipped,
knowingly, and the run goes on. ``--skip-log-id`` also leaves that log out of any batch that
carries it (``LeaveOut``): without a state file (``--resume-from-tinybird``), where the sink
stops before a refused row, that is how a run gets past it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

from backfill.auth0.log_ids import order_key
from backfill.errors import DataError, RowsRefusedError, listed
from backfill.records.batches import Batch, BatchBuilder, BatchLimits
from backfill.records.envelope import serialize, to_envelope
from backfill.records.pii import drop_pii
from backfill.state.model import Acknowledged, LeftOut, RunState
from backfill.timeutil import iso, stamp, utcnow
from backfill.tinybird.events import AppendResult, LeftOutRow

log = logging.getLogger("backfill.job")

REFUSED = "Tinybird refused it as too large (413), even alone"
FLAGS_SHOWN = 3  # past this many refused logs, the message names no --skip-log-id command
SKIPPED = "left out with --skip-log-id"


class Sink(Protocol):
    async def append(self, batch: Batch) -> AppendResult: ...


class OneLog(Protocol):
    async def get(self, log_id: str) -> dict[str, Any] | None: ...


def refused_error(log_ids: list[str]) -> RowsRefusedError:
    """Exit 9, naming the refused logs and the one command that goes on without them."""
    many = len(log_ids) > 1
    it = "them" if many else "it"
    if len(log_ids) <= FLAGS_SHOWN:
        flags = " ".join(f"--skip-log-id {log_id}" for log_id in log_ids)
        way = f"run the same command with {flags} (recorded in the state, shown by status)"
    else:  # that many refused rows: something between here and Tinybird limits every request
        way = (
            "check first whether a proxy limits request sizes; else pass --skip-log-id for "
            "each (auth0-backfill status --json lists them)"
        )
    return RowsRefusedError(
        f"Tinybird refused {len(log_ids):,} log{'s' if many else ''} as too large (413), even "
        f"alone: {listed(log_ids, 3)}. {'They' if many else 'It'} cannot be sent through the "
        f"Events API. Every other row was sent and recorded; the state file holds {it} as "
        "refused.",
        log_ids=log_ids,
        hint=f"To go on without {it}, {way}. A run without {it} tries {it} once more first.",
    )


class LeftOutLists(Protocol):
    """Where a checkpoint keeps the logs left out on purpose (``RunState``, an import's)."""

    refused: list[LeftOut]
    skipped: list[LeftOut]


def record_left_out(state: LeftOutLists, rows: list[LeftOutRow], days: dict[str, int]) -> list[str]:
    """Note a committed batch's left-out rows in the state; take them off its day counts.
    The log_ids that were refused (the run must stop)."""
    at = iso(utcnow())
    for row in rows:
        day = row.date[:10] if row.date else "unknown"
        if days.get(day, 0) > 0:
            days[day] -= 1
            if not days[day]:
                del days[day]
        target = state.refused if row.why == "refused" else state.skipped
        target.append(
            LeftOut(row.log_id, row.date, REFUSED if row.why == "refused" else SKIPPED, at)
        )
    return [row.log_id for row in rows if row.why == "refused"]


class LeaveOut:
    """A sink that sends every batch without the logs ``--skip-log-id`` names."""

    def __init__(self, sink: Sink, log_ids: frozenset[str]) -> None:
        self._sink = sink
        self._ids = log_ids
        self._keys = [order_key(log_id) for log_id in log_ids]

    async def append(self, batch: Batch) -> AppendResult:
        found = self._carried(batch)
        if not found:
            return await self._sink.append(batch)
        for log_id, _ in found:
            log.warning("row_skipped log_id=%s reason=--skip-log-id", log_id)
        rest = batch.without({log_id for log_id, _ in found})
        result = await self._sink.append(rest) if rest.rows else AppendResult()
        result.left_out.extend(LeftOutRow(log_id, date, "skipped") for log_id, date in found)
        return result

    def _carried(self, batch: Batch) -> list[tuple[str, str | None]]:
        if batch.first_log_id is None or batch.last_log_id is None:
            return []
        low, high = order_key(batch.first_log_id), order_key(batch.last_log_id)
        if not any(low <= key <= high for key in self._keys):
            return []  # the common case: no need to open the batch
        found = []
        for line in batch.lines():
            envelope = json.loads(line)
            if envelope["log_id"] in self._ids:
                data = envelope.get("data")
                date = stamp(data.get("date")) if isinstance(data, dict) else None
                found.append((envelope["log_id"], date))
        return found


async def settle_refused(
    state: RunState,
    *,
    skip: frozenset[str],
    source: OneLog,
    sink: Sink,
    save: Callable[[RunState], None],
    note: Callable[[str], None],
    preview: bool,
    pii_fields: frozenset[str] | None = None,
) -> None:
    """Before the run: each refused log is skipped (``--skip-log-id`` names it) or tried once
    more, alone. Refused again, the run stops there (exit 9) and the state is left as it was."""
    for entry in list(state.refused):
        if entry.log_id in skip:
            state.refused.remove(entry)
            state.skipped.append(
                LeftOut(entry.log_id, entry.date, f"{REFUSED}; {SKIPPED}", iso(utcnow()))
            )
            note(f"Log {entry.log_id}, which Tinybird refused as too large, is left out as asked.")
            if not preview:
                save(state)
            continue
        if preview:
            note(
                f"Log {entry.log_id} was refused by Tinybird as too large: "
                "a run tries it again first."
            )
            continue
        record = await source.get(entry.log_id)
        if record is None:
            raise DataError(
                f"Log {entry.log_id}, which Tinybird refused as too large, is no longer in Auth0 "
                "(it aged out of retention): it cannot be tried again.",
                hint=f"Run the same command with --skip-log-id {entry.log_id} to record it as "
                "skipped and go on.",
            )
        batch = _alone(record, pii_fields)
        result = await sink.append(batch)
        if result.left_out:
            raise refused_error([entry.log_id])
        state.refused.remove(entry)
        state.add(
            Acknowledged(
                rows=result.successful_rows + result.quarantined_rows,
                quarantined_rows=result.quarantined_rows,
                already_in_tinybird=result.already_in_tinybird,
                batches=1,
            ),
            batch.days,
        )
        note(f"Log {entry.log_id}, refused before as too large, was accepted this time.")
        save(state)


def _alone(record: dict[str, Any], pii_fields: frozenset[str] | None) -> Batch:
    """The record as the run sends it (its personal data dropped with --pii drop)."""
    builder = BatchBuilder(BatchLimits(max_rows=1), range_id=-1)
    envelope = to_envelope(record)
    if pii_fields:
        envelope["data"] = drop_pii(envelope["data"], pii_fields)
    builder.add_line(serialize(envelope), envelope["log_id"], stamp(record.get("date")))
    return builder.close(None, seq=-1)
