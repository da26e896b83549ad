"""What an import decides before it sends: which checkpoint it resumes (and whether its sources
are still the same), what Tinybird and the tenant's Log Streams say (``Survey``), and the
refusals once the archive is read: several tenants, a window that reaches past what a feeding
stream delivered, rows already there. Each returns a value or raises; ``job`` calls them in
order."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from backfill.archive import checkpoint
from backfill.archive.checkpoint import ImportState
from backfill.archive.sources import STDIN, Source, changed, fingerprints
from backfill.archive.staging import Staging
from backfill.auth0.pacer import Pacer
from backfill.auth0.streams import LogStream
from backfill.clients import Services, auth0_logs
from backfill.config.settings import Settings
from backfill.errors import RefusedError, StateError, listed
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy
from backfill.run import stream, survey
from backfill.run.mirror import BACKLOG, Mirror, mirror
from backfill.run.request import Notes
from backfill.state.file import set_aside
from backfill.timeutil import iso, parse_record_date

log = logging.getLogger("backfill.import")

NO_AUTH0 = (
    "No Auth0 settings: the Log Streams feeding the data source could not be looked up, so the "
    "import cannot mirror a stream's category filters or PII settings. If your stream filters "
    "or masks, say so with --types and --pii (or set AUTH0_DOMAIN and credentials)."
)


def binding(settings: Settings, arguments: tuple[str, ...], tenant: str | None) -> dict[str, Any]:
    """What a checkpoint is bound to (``checkpoint.BINDING``)."""
    return {
        "sources": list(arguments),
        "from_date": iso(settings.from_date) if settings.from_date else None,
        "until_date": iso(settings.until_date) if settings.until_date else None,
        "types": list(settings.types),
        "exclude_types": list(settings.exclude_types),
        "pii": settings.pii,
        "tenant": tenant,
    }


def existing(
    settings: Settings, bound: dict[str, Any], sources: list[Source], *, restart: bool
) -> ImportState | None:
    """The checkpoint this import resumes, None for a new one; refused when it belongs to
    another import or its sources changed since."""
    path = settings.import_state
    if restart:
        _discard(path)
        return None
    state = checkpoint.load(path)
    if state is None:
        return None
    checkpoint.check_binding(
        state,
        path,
        datasource=settings.datasource,
        tinybird_host=settings.tinybird_host,
        binding=bound,
    )
    names = changed(checkpoint.load_sources(path), fingerprints(sources))
    if names:
        raise checkpoint.changed_error(path, names)
    return state


def _discard(path: Path) -> None:
    """--restart: the checkpoint (a damaged one kept beside) and its list of sources go."""
    try:
        checkpoint.load(path)
    except StateError:
        kept = set_aside(path)
        log.warning("state_set_aside path=%s", kept)
    for stale in (path, checkpoint.sources_path(path)):
        stale.unlink(missing_ok=True)


@dataclass
class Survey:
    access: survey.TinybirdAccess | None  # None: a dry run, which does not talk to Tinybird
    feeding: list[LogStream] | None  # None: could not look
    mirrored: Mirror


async def look(
    settings: Settings,
    http: HttpClient,
    retry: RetryPolicy,
    recorded: dict[str, Any] | None,
    notes: Notes,
    *,
    tinybird: bool,
) -> Survey:
    """Tinybird (the data source, read access) and Auth0 (the feeding streams, when its settings
    are given), at the same time."""

    async def streams() -> list[LogStream] | None:
        if settings.missing_auth0():
            return None
        logs = auth0_logs(settings, http=http, retry=retry, pacer=Pacer())
        return await survey.streams(Services(settings, http, retry, Pacer(), logs))

    found = Notes()
    access, feeding = await asyncio.gather(
        survey.tinybird_access(settings, http, retry, found) if tinybird else _none(),
        streams(),
    )
    notes.extend(found)
    if feeding is None and settings.missing_auth0():
        notes.add(NO_AUTH0)
        mirrored = mirror(settings, [], recorded, notes.add)
    else:
        mirrored = mirror(settings, feeding, recorded, notes.add)
    return Survey(access, feeding, mirrored)


async def _none() -> None:
    return None


# -- after reading ---------------------------------------------------------------------------


def same_stdin(path: Path, digest: str | None, recorded: list[dict[str, Any]]) -> None:
    """Standard input has no size or time to compare before reading: its digest, after."""
    before = next((item for item in recorded if item.get("name") == STDIN), None)
    if before is not None and digest is not None and before.get("sha256") != digest:
        raise checkpoint.changed_error(path, [f"{STDIN} (standard input, changed)"])


def one_tenant(staging: Staging, tenant: str | None) -> dict[str | None, int]:
    """The tenants the staged logs belong to (by ``tenant_name``); several without ``--tenant``
    are refused, before anything is sent."""
    found = staging.tenants()
    named = {name: count for name, count in found.items() if name is not None}
    if tenant is None and len(named) > 1:
        shown = [f"{name} ({count:,})" for name, count in sorted(named.items())]
        unnamed = found.get(None, 0)
        raise RefusedError(
            f"The archive holds logs of {len(named)} tenants: {listed(shown, 6)}"
            + (f", and {unnamed:,} logs without tenant_name" if unnamed else "")
            + ". One data source is one tenant's. Nothing was sent.",
            hint="Pick one with --tenant NAME (logs without tenant_name, from before Auth0 added "
            "the field, go with it).",
        )
    return found


async def refuse_overlaps(
    looked: Survey, span: tuple[str, str], settings: Settings, notes: Notes
) -> None:
    """A new import's window (its first to its last log) against the data source: past the
    newest row a feeding stream delivered, the stream writes those logs too; rows already
    there would be there twice. Both refused before sending (exit 5); the caller lets
    ``--skip-existing`` and ``--allow-duplicates`` through."""
    access = looked.access
    assert access is not None
    low = parse_record_date(span[0])
    high = parse_record_date(span[1])
    assert low is not None and high is not None
    window = f"{span[0]} to {span[1]}"
    if looked.feeding:
        names = ", ".join(repr(item.name) for item in looked.feeding)
        held = any(item.status != "active" for item in looked.feeding)
        rows = await stream.rows_span(access.query) if access.can_read else None
        if rows is None or high > rows[1]:
            newest = f"its newest row is at {iso(rows[1])}" if rows else "it holds no row yet"
            raise RefusedError(
                f"Log Stream {names} feeds {settings.datasource} ({newest}), and this import's "
                f"logs reach {span[1]}: the stream writes those too, so they would be there "
                "twice. Nothing was sent." + (f" {BACKLOG}" if held else ""),
                hint="Give --until-date at or before the stream's first row, or --skip-existing "
                "to send only what the data source does not hold.",
            )
    if not access.can_read:
        notes.add(
            "Could not check whether the data source already holds rows in this import's "
            "window (no read access): if it does, they will be there twice."
        )
        return
    count = await survey.rows_in_window(
        access.query, low, high + timedelta(milliseconds=1), looked.mirrored
    )
    if count:
        raise RefusedError(
            f"{settings.datasource} already holds {count:,} rows in this import's window "
            f"({window}): the live stream's, an earlier run's or import's. Sending the archive "
            "would duplicate them. Nothing was sent.",
            hint="Run again with --skip-existing to send only the logs Tinybird does not hold, "
            "or --allow-duplicates to send everything anyway; or narrow the window with "
            "--from-date / --until-date.",
        )


def window_moment(value: datetime | None) -> str | None:
    return iso(value) if value is not None else None
