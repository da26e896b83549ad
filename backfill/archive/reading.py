"""The first phase: every source read, every item turned into the row ``run`` would send for the
same log, and staged once (``staging``). Nothing is sent while reading, so what stops an import
(a bad item past ``--max-rejects``, a cut-short gzip) stops it before any row leaves.

Each item is classified (``shapes``), kept or left out by the window (``--from-date`` /
``--until-date``), by type (the Log Stream's filters or ``--types``), by tenant (``--tenant``)
and by ``--skip-log-id``, then made into the envelope exactly as ``run`` makes it
(``to_envelope``, ``drop_pii`` with ``--pii drop``, ``serialize``). Runs in a worker thread of
its own (object stores' fsspec clients keep an event loop of their own, and SQLite inserts run
in a third thread), and stops between two chunks when asked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson

from backfill.archive import compression, layouts
from backfill.archive.rejects import Rejects, Where
from backfill.archive.shapes import Found, classify
from backfill.archive.sources import STDIN, Counted, Source
from backfill.archive.staging import Row, Staging
from backfill.auth0.event_types import is_known
from backfill.errors import Interrupted
from backfill.records.envelope import serialize, to_envelope
from backfill.records.pii import drop_pii

CHUNK_ROWS = 2000  # rows handed to the staging writer at a time


@dataclass(frozen=True)
class Rules:
    """What is kept, and how rows are made: the import's flags and the stream it mirrors."""

    low: str | None = None  # --from-date, a canonical stamp (inclusive)
    high: str | None = None  # --until-date (exclusive)
    keep_type: Callable[[object], bool] | None = None
    pii_fields: frozenset[str] | None = None
    tenant: str | None = None  # --tenant: keep this tenant_name (and records without one)
    skip: frozenset[str] = frozenset()  # --skip-log-id


@dataclass
class ReadCounts:
    """What reading found, for the summary."""

    sources: int = 0
    bytes_read: int = 0  # as stored (compressed)
    bytes_decompressed: int = 0
    items: int = 0
    rejected: int = 0
    outside_window: int = 0
    filtered: int = 0
    unknown_types: dict[str, int] = field(default_factory=dict)
    other_tenants: dict[str, int] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (log_id, date)
    shapes: dict[str, int] = field(default_factory=dict)
    layouts: dict[str, int] = field(default_factory=dict)  # files per layout
    stdin_digest: str | None = None


class Reader:
    def __init__(
        self,
        staging: Staging,
        rules: Rules,
        rejects: Rejects,
        *,
        stop: threading.Event,
        signum: Callable[[], int | None],
        progress: Callable[[ReadCounts], None] = lambda counts: None,
    ) -> None:
        self.staging = staging
        self.rules = rules
        self.rejects = rejects
        self.counts = ReadCounts()
        self._stop = stop
        self._signum = signum
        self._progress = progress
        self._rows: list[Row] = []

    def read(self, sources: list[Source]) -> ReadCounts:
        """Read every source into the staging database, then seal it."""
        for source in sources:
            self._source(source)
        self.staging.add(self._rows)
        self._rows = []
        self.staging.seal()
        return self.counts

    def _source(self, source: Source) -> None:
        counts = self.counts
        raw = Counted(source.open(), digest=source.name == STDIN)
        before = counts.bytes_read
        try:
            layout, found = layouts.items(self._decompressed(raw, source.name))
            counts.layouts[layout] = counts.layouts.get(layout, 0) + 1
            for item in found:
                if item.error is not None:
                    self._reject(source, item, item.error)
                    continue
                self._item(source, item)
        finally:
            counts.bytes_read = before + raw.bytes
        counts.sources += 1
        if source.name == STDIN:
            counts.stdin_digest = raw.digest()
        self._progress(counts)

    def _decompressed(self, raw: Counted, name: str) -> Iterator[bytes]:
        counts = self.counts
        before = counts.bytes_read
        for chunk in compression.chunks(raw, name):
            counts.bytes_decompressed += len(chunk)
            counts.bytes_read = before + raw.bytes
            self._progress(counts)
            if self._stop.is_set():
                raise Interrupted(self._signum() or 2)
            yield chunk

    def _item(self, source: Source, item: layouts.Item) -> None:
        counts = self.counts
        counts.items += 1
        found = classify(item.value)
        if not isinstance(found, Found):
            self._reject(source, item, found.reason)
            return
        counts.shapes[found.shape] = counts.shapes.get(found.shape, 0) + 1
        rules = self.rules
        date = found.date
        if (rules.low is not None and date < rules.low) or (
            rules.high is not None and date >= rules.high
        ):
            counts.outside_window += 1
            return
        record = found.record
        if rules.keep_type is not None and not rules.keep_type(record.get("type")):
            counts.filtered += 1
            code = record.get("type")
            if not is_known(code):
                counts.unknown_types[str(code)] = counts.unknown_types.get(str(code), 0) + 1
            return
        tenant = record.get("tenant_name")
        tenant = tenant if isinstance(tenant, str) else None
        if rules.tenant is not None and tenant is not None and tenant != rules.tenant:
            counts.other_tenants[tenant] = counts.other_tenants.get(tenant, 0) + 1
            return
        if found.log_id in rules.skip:
            counts.skipped.append((found.log_id, date))
            return
        envelope = to_envelope(record)
        if rules.pii_fields:
            envelope["data"] = drop_pii(envelope["data"], rules.pii_fields)
        self._rows.append((found.log_id, date[:7], date, tenant, serialize(envelope)))
        if len(self._rows) >= CHUNK_ROWS:
            self.staging.add(self._rows)
            self._rows = []

    def _reject(self, source: Source, item: layouts.Item, reason: str) -> None:
        self.counts.rejected += 1
        raw = item.raw
        if not raw and item.value is not None:
            raw = orjson.dumps(item.value)
        self.rejects.add(Where(source.name, item.line, item.number), reason, raw)
