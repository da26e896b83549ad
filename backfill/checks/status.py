"""``status``: where a checkpoint stands, read off the state file alone (no service is asked)."""

from __future__ import annotations

from typing import Any

from backfill.config.settings import Settings
from backfill.state.model import RunState
from backfill.timeutil import humanize, parse_record_date, utcnow

SHOWN = 5  # refused or skipped logs listed one a line; the rest counted


def status_summary(settings: Settings, current: RunState) -> dict[str, Any]:
    newest_id, newest_date = current.newest()
    open_ranges = [item for item in current.ranges if not item.bounded]
    bounded = [item for item in current.ranges if item.bounded]
    return {
        "state": str(settings.state),
        "exists": True,
        "tenant": current.tenant,
        "datasource": current.datasource,
        "tinybird_host": current.tinybird_host,
        "started_with": {
            key: value for key, value in current.started_with.items() if key != "mirror"
        },
        "types": _types(current.started_with.get("mirror")),
        "pii": _pii(current.started_with.get("mirror")),
        "created_at": current.created_at,
        "newest_log_id": newest_id,
        "newest_date": newest_date,
        "rows_sent": current.rows_sent,
        "batches": current.batches,
        "quarantined_rows": current.quarantined_rows,
        "already_in_tinybird": current.already_landed_rows,
        "ranges": len(current.ranges),
        "ranges_done": sum(1 for item in bounded if item.done),
        "ranges_bounded": len(bounded),
        "open_tail": bool(open_ranges),
        "pending_appends": len(current.pending),
        "unclean_stop": current.running,
        "gaps": [gap.__dict__ for gap in current.gaps],
        "gap_seconds": sum(gap.seconds for gap in current.gaps),
        "refused": [entry.__dict__ for entry in current.refused],
        "skipped": [entry.__dict__ for entry in current.skipped],
        "last_run": current.last_run,
        "caught_up_through": current.caught_up_through,
        "lag_seconds": _lag(current.caught_up_through),
    }


def _lag(caught_up_through: str | None) -> float | None:
    """Seconds from when everything was read and acknowledged to now."""
    moment = parse_record_date(caught_up_through)
    return max((utcnow() - moment).total_seconds(), 0.0) if moment else None


def render_status(summary: dict[str, Any]) -> str:
    started = ", ".join(
        f"{key.replace('_', '-')} {value}"
        for key, value in summary["started_with"].items()
        if value not in (None, [], "")
    )
    last = summary["last_run"] or {}
    lines = [
        f"State file:      {summary['state']}",
        f"Tenant:          {summary['tenant']} -> data source {summary['datasource']} at "
        f"{summary['tinybird_host']}",
        f"Started with:    {started or 'no start flags (oldest retained log)'}",
        f"Newest log_id:   {summary['newest_log_id'] or '-'} ({summary['newest_date'] or '-'})",
        f"Rows sent:       {summary['rows_sent']:,} in {summary['batches']:,} batches "
        f"({summary['quarantined_rows']:,} quarantined, {summary['already_in_tinybird']:,} "
        "already in Tinybird)",
        f"Types:           {summary['types']}",
        f"Ranges:          {summary['ranges_done']}/{summary['ranges_bounded']} done"
        + (" + an open tail (until caught up)" if summary["open_tail"] else ""),
        f"Last run:        {last.get('started_at', '-')} -> {last.get('finished_at', '-')}, "
        f"{last.get('outcome', '-')}, {last.get('rows_sent', 0):,} rows",
        "Caught up:       "
        + (
            f"through {summary['caught_up_through']} ({humanize(summary['lag_seconds'])} ago)"
            if summary["caught_up_through"]
            else "not yet (the run has not reached the end of its logs)"
        ),
    ]
    if summary["pii"]:
        lines.append(f"PII:             {summary['pii']}")
    if summary["pending_appends"] or summary["unclean_stop"]:
        lines.append(
            f"Unclean stop:    {summary['pending_appends']} appends in flight; the next run "
            "checks which of their rows landed"
        )
    if summary["gaps"]:
        hours = summary["gap_seconds"] / 3600
        lines.append(f"Gaps:            {len(summary['gaps'])}, {hours:.1f} h of history skipped")
    for entry in summary["refused"][:SHOWN]:
        lines.append(
            f"Refused:         {entry['log_id']} ({entry['date'] or 'no date'}): too large for "
            f"Tinybird; the next run tries it again, or skip it: --skip-log-id {entry['log_id']}"
        )
    lines.extend(_more("Refused", summary["refused"]))
    for entry in summary["skipped"][:SHOWN]:
        lines.append(
            f"Skipped:         {entry['log_id']} ({entry['date'] or 'no date'}): {entry['reason']}"
        )
    lines.extend(_more("Skipped", summary["skipped"]))
    return "\n".join(lines)


def _more(label: str, entries: list[Any]) -> list[str]:
    """A line for the entries past the first few: status --json lists them all."""
    if len(entries) <= SHOWN:
        return []
    return [f"{label + ':':<17}... and {len(entries) - SHOWN:,} more (status --json lists them)"]


def _types(mirror: dict[str, Any] | None) -> str:
    """Which types the checkpoint's runs send, and where that came from."""
    if not mirror or not mirror.get("source"):
        return "every type" if mirror else "not recorded (a checkpoint of 0.1.0): see Started with"
    given = ", ".join(mirror.get("given") or []) or "every type"
    return f"{given} (from {mirror['source']})"


def _pii(mirror: dict[str, Any] | None) -> str | None:
    if not mirror or not mirror.get("pii"):
        return None
    if mirror["pii"] == "drop":
        return f"dropped {', '.join(mirror.get('pii_fields') or [])} (--pii drop)"
    return "raw values sent (--pii keep)"
