"""The tenant's Log Streams (``GET /api/v2/log-streams``), and which of them feed a data source.

A stream feeds the data source when it is an ``http`` stream whose endpoint is the Events API of
the Tinybird host (any of the host's names) with ``name=<data source>``. Whatever its status:
a paused or suspended stream delivers its backlog when it is resumed. Its endpoint carries a
token (the seed's guide puts it in the URL), so it is never kept, logged or shown.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from backfill.tinybird.region import same_host


@dataclass(frozen=True)
class LogStream:
    id: str
    name: str
    status: str  # active, paused or suspended
    categories: tuple[str, ...]  # the categories it sends; empty: every category
    pii_fields: tuple[str, ...]  # pii_config.log_fields it masks or hashes
    pii_method: str | None  # mask or hash

    @property
    def obfuscates(self) -> bool:
        return bool(self.pii_fields)

    def describe(self) -> str:
        """One line for ``check`` and the logs: never the endpoint."""
        sends = ", ".join(self.categories) if self.categories else "every category"
        pii = (
            f"{self.pii_method or 'obfuscates'} {', '.join(self.pii_fields)}"
            if self.obfuscates
            else "no PII obfuscation"
        )
        return f"{self.name!r} ({self.id}, {self.status}): sends {sends}; {pii}"


def feeding(
    listed: Iterable[dict[str, Any]], *, tinybird_host: str, datasource: str
) -> list[LogStream]:
    """The streams that write into ``datasource`` at ``tinybird_host``."""
    return [
        _stream(item)
        for item in listed
        if item.get("type", "http") == "http" and _sends_to(item, tinybird_host, datasource)
    ]


def _sends_to(item: dict[str, Any], tinybird_host: str, datasource: str) -> bool:
    sink = item.get("sink")
    endpoint = sink.get("httpEndpoint") if isinstance(sink, dict) else None
    if not isinstance(endpoint, str):
        return False
    parts = urllib.parse.urlsplit(endpoint.strip())
    names = urllib.parse.parse_qs(parts.query).get("name", [])
    return (
        parts.path.rstrip("/") == "/v0/events"
        and datasource in names
        and same_host(f"{parts.scheme}://{parts.netloc}", tinybird_host)
    )


def _stream(item: dict[str, Any]) -> LogStream:
    filters = item.get("filters") if isinstance(item.get("filters"), list) else []
    categories = tuple(
        str(entry["name"])
        for entry in filters or []
        if isinstance(entry, dict) and entry.get("type") == "category" and entry.get("name")
    )
    pii = item.get("pii_config") if isinstance(item.get("pii_config"), dict) else {}
    fields = (pii or {}).get("log_fields")
    method = (pii or {}).get("method")
    return LogStream(
        id=str(item.get("id", "?")),
        name=str(item.get("name", "?")),
        status=str(item.get("status", "active")),
        categories=categories,
        pii_fields=tuple(str(field) for field in fields) if isinstance(fields, list) else (),
        pii_method=str(method) if method else None,
    )
