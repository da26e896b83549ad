"""The tenant's Auth0 Log Streams: listed by `GET /api/v2/log-streams`, and the `http` ones that
point at the Tinybird emulator delivering into it, as in the seed integration.

What Auth0 documents and the emulation keeps:
- a stream has a `status`, `active`, `paused` or `suspended`; only an active one delivers. Auth0
  pauses a stream after days of failed deliveries, and a stream resumed later delivers what it
  had not delivered: here, every log due since it stopped (its backlog), at once;
- `filters` (`[{"type": "category", "name": "auth.login.fail"}, ...]`) limit what it sends to
  those categories (from `backfill/auth0/event_types.tsv`, or given when a log of an unknown code is
  appended); no filter sends everything;
- `pii_config` masks or hashes personal data (`obfuscation.py`: the sandbox's approximation);
- an `http` stream's `sink.httpEndpoint` is the Events API URL with the token in it
  (`...?name=auth0&token=...`), as the seed's guide has users write it.

`GET /api/v2/log-streams` lists each stream as Auth0 documents it (the Management API reference's
sample answer; the response schemas of its OpenAPI, as auth0-python's generated models check
them): `id`, `name`, `type`, `status`, a `sink` holding every field the type's schema requires,
secrets in clear (`datadogApiKey`, `splunkToken`, `segmentWriteKey`, `httpAuthorization`: so do
recorded answers of a real tenant) but the Mixpanel password, which Auth0 masks as `********`;
`filters` only when the stream has some (a real tenant leaves the key out otherwise);
`pii_config` when set. Not known: whether Auth0 sends `isPriority` for a stream that is not a
priority one (the sandbox sends `false`), and what its other types' sinks hold beyond the
documented fields.

A stream delivering into a data source sends the envelope (`{"log_id", "data"}`, `data` the
record without `_id`, `id` and `isMobile`, `scope` as Auth0 sent it) of every log dated at or
after its start, in write order, then of each log the tenant appends while it is active. Other
types (`datadog`, `splunk` ...) and http streams to other endpoints are listed and deliver
nowhere this sandbox can see.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from backfill.sandbox.categories import catalogue_categories, check_category
from backfill.sandbox.generator import MIN_LAG_US, Tenant
from backfill.sandbox.obfuscation import PiiConfig, obfuscate
from backfill.sandbox.stats import Counters
from backfill.sandbox.timeparse import iso_millis, parse_when, to_us
from backfill.sandbox.tinybird_store import TinybirdStore

_BATCH = 5_000
STATUSES = ("active", "paused", "suspended")
# What Auth0 answers in `sink` for each type: every field its OpenAPI marks required, secrets
# included. Auth0 returns API keys and tokens in clear (recorded answers of a real tenant in
# auth0/terraform-provider-auth0); the Mixpanel password alone comes back masked. The values
# here are fake, and SINK_SECRETS lists them so tests can prove the job never shows them.
_SINKS: dict[str, dict[str, Any]] = {
    "datadog": {"datadogApiKey": "sandbox0datadog0api0key0000000000", "datadogRegion": "us"},
    "splunk": {
        "splunkDomain": "splunk.example.com",
        "splunkPort": "8088",
        "splunkToken": "5a7d0b1e-sand-b0x0-spl0-nk0t0ken0000",
        "splunkSecure": True,
    },
    "eventbridge": {
        "awsAccountId": "123456789012",
        "awsRegion": "us-east-2",
        "awsPartnerEventSource": "aws.partner/auth0.com/sandbox-0a1b2c3d/auth0.logs",
    },
    "sumo": {
        "sumoSourceAddress": "https://endpoint.collection.sumologic.com/receiver/v1/http/"
        "ZaVnC4dhaV0sandbox0sumo0collector0secret"
    },
    "segment": {"segmentWriteKey": "sandbox0segment0write0key"},
    "mixpanel": {
        "mixpanelRegion": "us",
        "mixpanelProjectId": "1234567",
        "mixpanelServiceAccountUsername": "sandbox.0a1b2c.mp-service-account",
        "mixpanelServiceAccountPassword": "********",
    },
    "eventgrid": {
        "azureSubscriptionId": "b69a6835-57c7-4d53-b0d5-1c6ae580b6d5",
        "azureResourceGroup": "auth0-logs",
        "azureRegion": "eastus",
        "azurePartnerTopic": "auth0-logs-sandbox-0a1b2c3d",
    },
}
STREAM_TYPES = ("http", *_SINKS)
OTHER_HTTP_ENDPOINT = "https://logs.example.com/auth0"
OTHER_HTTP_AUTHORIZATION = "Bearer sandbox0webhook0secret"
SINK_SECRETS = (
    str(_SINKS["datadog"]["datadogApiKey"]),
    str(_SINKS["splunk"]["splunkToken"]),
    str(_SINKS["sumo"]["sumoSourceAddress"]),
    str(_SINKS["segment"]["segmentWriteKey"]),
    OTHER_HTTP_AUTHORIZATION,
)
"""Secrets of the sinks (an http stream into Tinybird has its token in `httpEndpoint` too)."""


@dataclass(frozen=True)
class StreamSpec:
    """A Log Stream of the emulated tenant (`SandboxConfig.streams`, `POST /__sandbox/streams`)."""

    name: str = "Tinybird"
    type: str = "http"
    status: str = "active"
    since: datetime | None = None
    """An http stream into Tinybird: live from then (it delivers the logs dated from then)."""
    paused_at: datetime | None = None
    """A paused or suspended stream: it stopped then (logs written before were delivered)."""
    filters: tuple[str, ...] = ()
    """Log Streams categories it sends (`auth.login.fail` ...); none: every category."""
    pii: PiiConfig | None = None
    datasource: str | None = None
    """http: the Tinybird data source it sends to (default: the sandbox's); "" for an http
    stream to another service."""

    def checked(self) -> StreamSpec:
        if self.type not in STREAM_TYPES:
            raise ValueError(f"stream type must be one of {list(STREAM_TYPES)}, got {self.type!r}")
        if self.status not in STATUSES:
            raise ValueError(f"stream status must be one of {list(STATUSES)}")
        if self.paused_at is not None and self.status == "active":
            raise ValueError("paused_at is for a paused or suspended stream")
        if self.paused_at is not None and self.since is None:
            raise ValueError("paused_at needs since: when the stream went live")
        for category in self.filters:
            check_category(category)
        return self


class LiveStream:
    def __init__(self, owner: LogStreams, stream_id: str, spec: StreamSpec) -> None:
        self.id = stream_id
        self.name = spec.name
        self.type = spec.type
        self.status = spec.status
        self.filters = spec.filters
        self.pii = spec.pii
        self.datasource = spec.datasource if spec.type == "http" else None
        self._owner = owner
        self._lock = threading.Lock()
        self._since_us: int | None = None
        self._cursor = 0
        """Every log before this index was settled (delivered, or not due)."""
        self.delivered = 0

    @property
    def delivers(self) -> bool:
        return bool(self.datasource)

    @property
    def since_us(self) -> int | None:
        return self._since_us

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, since_us: int, paused_at_us: int | None = None) -> int:
        """Go live from `since_us` (again, if it was); returns rows delivered now."""
        if not self.delivers:
            raise ValueError(f"stream {self.id} delivers nowhere the sandbox sees: no start")
        with self._lock:
            tenant, visible = self._owner.tenant, self._owner.visible()
            self._since_us = since_us
            self._cursor = tenant.first_written_from(since_us + MIN_LAG_US, visible)
            if self.status == "active":
                return self._deliver_until(self._owner.horizon())
            if paused_at_us is not None:
                return self._deliver_until(tenant.first_written_from(paused_at_us, visible))
            return 0

    def set_status(self, status: str) -> int:
        """Pause, suspend or resume; a resumed stream delivers its backlog (returns rows)."""
        if status not in STATUSES:
            raise ValueError(f"stream status must be one of {list(STATUSES)}")
        with self._lock:
            was = self.status
            self.status = status
            if status == "active" and was != "active" and self._since_us is not None:
                return self._deliver_until(self._owner.horizon())
            return 0

    def appended(self, added: range) -> None:
        with self._lock:
            if self.status == "active" and self._since_us is not None:
                self._deliver_until(added.stop)

    def backlog(self) -> int:
        """Logs due that it has not delivered (all of them are sent when it resumes)."""
        with self._lock:
            if self._since_us is None:
                return 0
            return sum(1 for _ in self._due(range(self._cursor, self._owner.horizon())))

    # -- delivery -----------------------------------------------------------------------------
    def _deliver_until(self, stop: int) -> int:
        if stop <= self._cursor:
            return 0
        indices = range(self._cursor, stop)
        self._cursor = stop
        sent = 0
        for batch in _batches(self._envelope(index) for index in self._due(indices)):
            sent += self._owner.insert(str(self.datasource), batch)
        self.delivered += sent
        return sent

    def _due(self, indices: range) -> Iterator[int]:
        tenant, since = self._owner.tenant, self._since_us or 0
        wanted = frozenset(self.filters)
        for index in indices:
            if tenant.date_us(index) < since:
                continue
            if wanted and self._owner.category(tenant.event_kind(index).code) not in wanted:
                continue
            yield index

    def _envelope(self, index: int) -> dict[str, Any]:
        record = self._owner.tenant.stream_record(index)
        if self.pii is not None:
            record = obfuscate(record, self.pii)
        return {"log_id": record["log_id"], "data": record}

    # -- description --------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """As `GET /api/v2/log-streams` lists it."""
        described: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "status": self.status,
            "sink": self._sink(),
            "isPriority": False,
        }
        if self.filters:  # Auth0 leaves `filters` out when a stream has none
            described["filters"] = [{"type": "category", "name": name} for name in self.filters]
        if self.pii is not None:
            described["pii_config"] = self.pii.describe()
        return described

    def _sink(self) -> dict[str, Any]:
        if self.type != "http":
            return dict(_SINKS[self.type])
        endpoint = self._owner.endpoint(self.datasource) if self.datasource else None
        sink = {
            "httpEndpoint": endpoint or OTHER_HTTP_ENDPOINT,
            "httpContentType": "application/json",
            "httpContentFormat": "JSONLINES",
        }
        if endpoint is None:  # the seed's guide puts Tinybird's token in the URL instead
            sink["httpAuthorization"] = OTHER_HTTP_AUTHORIZATION
        return sink

    def sandbox_state(self) -> dict[str, Any]:
        return {
            "datasource": self.datasource,
            "since": None if self._since_us is None else iso_millis(self._since_us),
            "delivered": self.delivered,
            "backlog": self.backlog(),
        }


class LogStreams:
    """Every stream of the tenant, in creation order; forwards the tenant's appends to them."""

    def __init__(
        self,
        tenant: Tenant,
        store: TinybirdStore,
        default_datasource: str,
        visible: Callable[[], range],
        counters: Counters,
    ) -> None:
        self.tenant = tenant
        self.store = store
        self.default_datasource = default_datasource
        self.visible = visible
        self.endpoint: Callable[[str], str] = lambda datasource: ""
        """Set by the runner once Tinybird is bound: a data source -> the URL a stream posts to."""
        self._counters = counters
        self._streams: list[LiveStream] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(12345)
        self._appended_stop = 0
        tenant.on_append(self._appended)

    def add(self, spec: StreamSpec) -> tuple[LiveStream, int]:
        """Create a stream (started if it has `since`); returns it and the rows it delivered."""
        spec = spec.checked()
        if spec.type == "http" and spec.datasource is None:
            spec = replace(spec, datasource=self.default_datasource)
        if spec.datasource and self.store.datasource(spec.datasource) is None:
            raise ValueError(f"no data source {spec.datasource!r} to stream into")
        if spec.since is not None and not spec.datasource:
            raise ValueError("since is for an http stream into a Tinybird data source")
        stream = LiveStream(self, f"lst_{next(self._ids):016d}", spec)
        with self._lock:
            self._streams.append(stream)
        rows = 0
        if spec.since is not None:
            paused_at = to_us(spec.paused_at) if spec.paused_at else None
            rows = stream.start(to_us(spec.since), paused_at)
        return stream, rows

    def get(self, stream_id: str) -> LiveStream | None:
        with self._lock:
            return next((stream for stream in self._streams if stream.id == stream_id), None)

    def all(self) -> list[LiveStream]:
        with self._lock:
            return list(self._streams)

    def describe(self) -> list[dict[str, Any]]:
        """`GET /api/v2/log-streams`: every stream, whatever its status."""
        return [stream.describe() for stream in self.all()]

    def category(self, code: str) -> str:
        return catalogue_categories().get(code) or self.tenant.extra_categories.get(code, "")

    def horizon(self) -> int:
        """Where a stream catching up stops: the newest log Auth0 shows, or appended."""
        return max(self.visible().stop, self._appended_stop)

    def insert(self, datasource: str, envelopes: list[dict[str, Any]]) -> int:
        result = self.store.append_documents(datasource, envelopes, "log_stream")
        rows = result.successful_rows + result.quarantined_rows
        self._counters.add("rows_streamed", rows)
        return rows

    def _appended(self, added: range) -> None:
        self._appended_stop = max(self._appended_stop, added.stop)
        for stream in self.all():
            stream.appended(added)

    # -- control (`/__sandbox/streams`, and `/__sandbox/stream` on the Tinybird side) ---------
    def control_create(self, payload: dict[str, Any]) -> dict[str, Any]:
        stream, rows = self.add(spec_from_payload(payload))
        return {"stream": _state(stream), "rows": rows}

    def control_update(self, stream: LiveStream, payload: dict[str, Any]) -> dict[str, Any]:
        """`{"name", "filters", "pii_config", "since", "status"}` (any subset), in that order:
        a stream resumed with new filters sends its backlog under the new filters."""
        rows = 0
        if "name" in payload:
            stream.name = str(payload["name"])
        if "filters" in payload:
            stream.filters = parse_filters(payload["filters"])
        if "pii_config" in payload:
            stream.pii = PiiConfig.parse(payload["pii_config"])
        if payload.get("since"):
            rows += stream.start(to_us(parse_when(str(payload["since"]))))
        if "status" in payload:
            rows += stream.set_status(str(payload["status"]))
        return {"stream": _state(stream), "rows": rows}

    def control_default(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The first stream into the default data source, created if there is none."""
        default = next((s for s in self.all() if s.datasource == self.default_datasource), None)
        if default is None:
            if not payload.get("since"):
                raise ValueError('the payload needs "since": an ISO date-time')
            return self.control_create(payload)
        return self.control_update(default, payload)

    def control_list(self) -> dict[str, Any]:
        return {"streams": [_state(stream) for stream in self.all()]}


def spec_from_payload(payload: dict[str, Any]) -> StreamSpec:
    since, paused_at = payload.get("since"), payload.get("paused_at")
    datasource = payload.get("datasource")
    return StreamSpec(
        name=str(payload.get("name", "Tinybird")),
        type=str(payload.get("type", "http")),
        status=str(payload.get("status", "active")),
        since=parse_when(str(since)) if since else None,
        paused_at=parse_when(str(paused_at)) if paused_at else None,
        filters=parse_filters(payload.get("filters") or []),
        pii=PiiConfig.parse(payload.get("pii_config")),
        datasource=None if datasource is None else str(datasource),
    ).checked()


def parse_filters(value: object) -> tuple[str, ...]:
    """Category names, as strings or as the API's `{"type": "category", "name": ...}`."""
    if not isinstance(value, list):
        raise ValueError('"filters" must be a list of category names')
    names = []
    for item in value:
        if isinstance(item, dict):
            if item.get("type", "category") != "category":
                raise ValueError("only filters of type 'category' exist")
            item = item.get("name")
        names.append(check_category(str(item)))
    return tuple(dict.fromkeys(names))


def _state(stream: LiveStream) -> dict[str, Any]:
    return {**stream.describe(), "sandbox": stream.sandbox_state()}


def _batches(envelopes: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for envelope in envelopes:
        batch.append(envelope)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
