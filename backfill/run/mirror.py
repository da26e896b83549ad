"""Rows like the stream's: which event types a run sends and what it does with personal data,
decided from the Log Stream(s) that feed the data source.

- Types: ``--types``/``--exclude-types`` when given; else what the checkpoint was started with;
  else the categories the feeding stream sends; else every type.
- Personal data: when a feeding stream masks or hashes ``pii_config.log_fields``, the run is
  refused (nothing is sent) unless ``--pii drop`` (those values never leave the machine: null in
  the envelope, which keeps its shape) or ``--pii keep`` (the operator accepts raw values).

The decision is recorded with the checkpoint (``started_with["mirror"]``), so a resumed run keeps
the rows it writes alike, and ``status`` can say which filter applied and where it came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from backfill.auth0.event_types import TypeFilter, type_filter
from backfill.auth0.streams import LogStream
from backfill.config.settings import Settings
from backfill.errors import RefusedError
from backfill.records.pii import LOG_FIELDS

log = logging.getLogger("backfill.job")

BACKLOG = (
    "A paused or suspended stream that is resumed delivers what it held back into the data "
    "source: rows this run writes for that time would then be there twice."
)


@dataclass(frozen=True)
class Mirror:
    type_filter: TypeFilter | None  # None: every type
    pii: str | None  # "drop", "keep", or None (nothing to hide)
    pii_fields: frozenset[str]  # dropped before sending, with pii == "drop"

    def recorded(self) -> dict[str, Any]:
        """As kept in the state file (``started_with["mirror"]``)."""
        kept = self.type_filter
        return {
            "types": sorted(kept.wanted) if kept and kept.wanted is not None else None,
            "exclude_types": sorted(kept.unwanted) if kept else [],
            "given": list(kept.given) if kept else [],
            "source": kept.source if kept else None,
            "pii": self.pii,
            "pii_fields": sorted(self.pii_fields),
        }

    def describe_types(self) -> str:
        return self.type_filter.describe() if self.type_filter else "every type"

    def describe_pii(self) -> str | None:
        if self.pii == "drop":
            return f"dropped {', '.join(sorted(self.pii_fields))} (--pii drop)"
        if self.pii == "keep":
            return "raw values sent (--pii keep)"
        return None


def mirror(
    settings: Settings,
    streams: list[LogStream] | None,
    recorded: dict[str, Any] | None,
    note: Callable[[str], None],
) -> Mirror:
    """The run's types and PII handling; ``streams`` is None when they could not be read."""
    if streams is None:
        note(
            "The tenant's Log Streams could not be read (grant read:log_streams to the "
            "application): the backfill cannot mirror a stream's category filters or PII "
            "settings. If your stream filters or masks, say so with --types and --pii."
        )
    feeding = streams or []
    return Mirror(
        type_filter=types_sent(settings, feeding, recorded),
        pii=(pii := _pii_mode(settings, feeding, recorded)),
        pii_fields=_pii_fields(feeding, recorded) if pii == "drop" else frozenset(),
    )


def types_sent(
    settings: Settings, feeding: list[LogStream], recorded: dict[str, Any] | None
) -> TypeFilter | None:
    """The types a run sends (and ``verify`` counts): see the module's docstring."""
    if settings.types or settings.exclude_types:
        return type_filter(settings.types, settings.exclude_types)
    if recorded is not None:
        if recorded.get("source") is None:
            return None
        types = recorded.get("types")
        return TypeFilter(
            wanted=frozenset(types) if types is not None else None,
            unwanted=frozenset(recorded.get("exclude_types") or ()),
            source=str(recorded["source"]),
            given=tuple(recorded.get("given") or ()),
        )
    if not feeding or any(not stream.categories for stream in feeding):
        return None  # no stream, or one that sends every category
    categories = sorted({name for stream in feeding for name in stream.categories})
    names = ", ".join(repr(stream.name) for stream in feeding)
    plural = "s" if len(feeding) > 1 else ""
    return type_filter(categories, (), source=f"Log Stream{plural} {names}")


def _pii_mode(
    settings: Settings, feeding: list[LogStream], recorded: dict[str, Any] | None
) -> str | None:
    chosen = settings.pii or (recorded or {}).get("pii")
    if chosen in ("drop", "keep"):
        return str(chosen)
    hiding = [stream for stream in feeding if stream.obfuscates]
    if not hiding:
        return None
    stream = hiding[0]
    verb = {"mask": "masks", "hash": "hashes"}.get(stream.pii_method or "", "obfuscates")
    raise RefusedError(
        f"Log Stream {stream.name!r} feeding this data source {verb} "
        f"{', '.join(stream.pii_fields)}, and the Management API gives this job the raw "
        "values: sending them would put personal data into rows the stream writes masked. "
        "Nothing was sent.",
        hint="Run again with --pii drop (those values never leave this machine: null in the "
        "envelope) or --pii keep (you accept raw values in Tinybird).",
    )


def _pii_fields(feeding: list[LogStream], recorded: dict[str, Any] | None) -> frozenset[str]:
    if recorded is not None and recorded.get("pii") == "drop" and recorded.get("pii_fields"):
        return frozenset(recorded["pii_fields"])
    fields = {field for stream in feeding for field in stream.pii_fields}
    unknown = sorted(fields - set(LOG_FIELDS))
    if unknown:
        raise RefusedError(
            f"A Log Stream feeding this data source hides {', '.join(unknown)}, which this "
            f"version cannot drop (it knows {', '.join(LOG_FIELDS)}). Nothing was sent.",
            hint="Upgrade auth0-backfill, or run with --pii keep to accept raw values.",
        )
    return frozenset(fields) or frozenset(LOG_FIELDS)
