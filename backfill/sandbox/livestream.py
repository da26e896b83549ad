"""A simulated Auth0 Log Stream feeding the Tinybird emulator, as in the seed integration.

Once started at an instant, it inserts the stream envelope (`{"log_id", "data"}` where `data` is
the record without `_id`, `id` and `isMobile`, `scope` as Auth0 sent it) of every visible log
dated at or after that instant, then keeps doing so for logs the tenant appends later. This is
what a backfill finds already in the data source when a stream went live before it ran.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from backfill.sandbox.generator import MIN_LAG_US, Tenant
from backfill.sandbox.stats import Counters
from backfill.sandbox.tinybird_store import TinybirdStore

_BATCH = 5_000


class LiveStream:
    def __init__(
        self,
        tenant: Tenant,
        store: TinybirdStore,
        datasource: str,
        visible: Callable[[], range],
        counters: Counters,
    ) -> None:
        self.tenant = tenant
        self.store = store
        self.datasource = datasource
        self.sink_url = ""
        """The Events API URL the stream posts to; set by the runner once the server is bound."""
        self._visible = visible
        self._counters = counters
        self._since_us: int | None = None
        self._lock = threading.Lock()
        tenant.on_append(self._forward)

    @property
    def since_us(self) -> int | None:
        return self._since_us

    def start(self, since_us: int) -> int:
        """Go live from `since_us`: send every visible log dated from then; returns rows sent."""
        with self._lock:
            self._since_us = since_us
            visible = self._visible()
            first = self.tenant.first_written_from(since_us + MIN_LAG_US, visible)
            return self._send(i for i in range(first, visible.stop) if self._due(i, since_us))

    def _forward(self, added: range) -> None:
        with self._lock:
            since = self._since_us
            if since is not None:
                self._send(i for i in added if self._due(i, since))

    def _due(self, index: int, since_us: int) -> bool:
        return self.tenant.date_us(index) >= since_us

    def _send(self, indices: Iterator[int]) -> int:
        sent = 0
        batch: list[dict[str, Any]] = []
        for index in indices:
            record = self.tenant.stream_record(index)
            batch.append({"log_id": record["log_id"], "data": record})
            if len(batch) >= _BATCH:
                sent += self._insert(batch)
                batch = []
        if batch:
            sent += self._insert(batch)
        return sent

    def _insert(self, envelopes: list[dict[str, Any]]) -> int:
        result = self.store.append_documents(self.datasource, envelopes, "log_stream")
        self._counters.add("rows_streamed", result.successful_rows + result.quarantined_rows)
        return result.successful_rows + result.quarantined_rows

    def describe(self) -> list[dict[str, Any]]:
        """`GET /api/v2/log-streams`: one active HTTP stream once live, else none."""
        if self._since_us is None:
            return []
        return [
            {
                "id": "lst_0000000000012345",
                "name": "Tinybird",
                "type": "http",
                "status": "active",
                "sink": {
                    "httpEndpoint": self.sink_url,
                    "httpContentType": "application/json",
                    "httpContentFormat": "JSONLINES",
                },
                "filters": [],
                "isPriority": False,
            }
        ]
