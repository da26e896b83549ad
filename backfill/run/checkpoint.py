"""The checkpoint of an earlier run: load it, and refuse it when it is not this run's (another
tenant, data source or Tinybird host, other flags, not ours at all)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from backfill.auth0.log_ids import write_time
from backfill.config.settings import CLOCK_SKEW, Settings
from backfill.errors import StateError
from backfill.state import file as state_file
from backfill.state.model import STATE_FORMAT, RunState
from backfill.timeutil import iso, parse_record_date, utcnow

log = logging.getLogger("backfill.job")


def started_with(settings: Settings) -> dict[str, Any]:
    """The flags a checkpoint is bound to: a resume with other ones is refused."""
    return {
        "from_date": iso(settings.from_date) if settings.from_date else None,
        "from_log_id": settings.from_log_id,
        "until_date": iso(settings.until_date) if settings.until_date else None,
        "types": list(settings.types),
        "exclude_types": list(settings.exclude_types),
        "pii": settings.pii,
    }


def load_state(settings: Settings, *, restart: bool, touch: bool = True) -> RunState | None:
    """The checkpoint to resume, None to start afresh; refused when it is not this run's.

    ``touch=False`` (the dry run): decide the same, but leave a damaged file where it is.
    """
    path = settings.state
    try:
        existing = state_file.load(path)
    except StateError:
        if not restart or _foreign(path):
            raise
        if touch:
            kept = state_file.set_aside(path)
            log.warning("state_restart damaged_state_kept_at=%s", kept)
        return None
    if existing is None:
        return None
    if restart:
        if not touch:
            return None
        log.warning(
            "state_restart discarded=%s rows_already_sent=%d note='rows sent before are not "
            "checked again; they may be duplicated'",
            path,
            existing.rows_sent,
        )
        return None
    check_resumable(existing, settings)
    return existing


def check_resumable(existing: RunState, settings: Settings) -> None:
    """Refuse a checkpoint that is not this run's: another tenant, data source or Tinybird
    host, or other flags. The dry run asks the same, so its preview matches the run."""
    state_file.check_binding(
        existing,
        path=settings.state,
        tenant=settings.auth0_domain,
        datasource=settings.datasource,
        tinybird_host=settings.tinybird_host,
    )
    _check_same_flags(existing, settings, settings.state)
    _check_not_ahead(existing, settings.state)


def _check_not_ahead(existing: RunState, path: Path) -> None:
    """A checkpoint after now (written by a version that took a start in the future) would
    make every run copy nothing."""
    now = utcnow()
    for item in existing.ranges:
        if item.done:
            continue
        moment = parse_record_date(item.start) if item.start else write_time(item.position)
        if moment is not None and moment > now + CLOCK_SKEW:
            raise StateError(
                f"State file {path} holds a checkpoint at {iso(moment)}, after now: a run from "
                "it would copy nothing until then.",
                hint=f"Add --restart with a start in the past to discard {path} and start over "
                "(or check this machine's clock).",
            )


def _check_same_flags(existing: RunState, settings: Settings, path: Path) -> None:
    differing = []
    for key, value in started_with(settings).items():
        if value in (None, []):
            continue  # not given this time: resume as started
        if existing.started_with.get(key) != value:
            before = existing.started_with.get(key)
            differing.append(f"{key.replace('_', '-')} {value} (started with {before})")
    if differing:
        raise StateError(
            f"State file {path} holds a run started with other settings: "
            + "; ".join(differing)
            + ".",
            hint=f"Repeat the original flags (or none) to resume it, use another --state for a "
            f"different range, or add --restart to discard {path} and start over.",
        )


def _foreign(path: Path) -> bool:
    """A readable JSON file that is not ours: never overwrite it, not even with --restart."""
    try:
        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return not (isinstance(document, dict) and document.get("format") == STATE_FORMAT)
