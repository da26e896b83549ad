"""Tinybird emulator: the Events API, the Query API and the data source endpoints.

Status codes follow the reference: 400 malformed request, 403 invalid token or missing scope, 404
for a token of another region and for an unknown data source (no auto-creation here), 413 over
`max_body_bytes` uncompressed, 429 over `requests_per_second` per data source (with Retry-After
and X-RateLimit-*), 422 only when a failed materialized view is simulated. `wait=true` answers
200 after the acknowledgement latency; `wait=false` answers 202. `GET /v0/datasources` and
`GET /v0/datasources/<name>` answer as Tinybird's reference shows (`tinybird_datasources.py`).
"""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs

from backfill.sandbox.credentials import (
    OTHER_REGION_HOST,
    SANDBOX_REGION,
    TinybirdCredentials,
    TinybirdRole,
    TinybirdToken,
)
from backfill.sandbox.faults import FaultSchedule
from backfill.sandbox.httpbase import (
    ADMITTED,
    Admission,
    Request,
    Response,
    Service,
    json_payload,
    json_response,
)
from backfill.sandbox.latency import Latency, LatencyRange
from backfill.sandbox.livestream import LogStreams
from backfill.sandbox.ratelimit import TokenBucket
from backfill.sandbox.timeparse import parse_when
from backfill.sandbox.tinybird_datasources import described, listed
from backfill.sandbox.tinybird_store import StoreError, TinybirdStore
from backfill.tinybird.datafile import DatafileError, parse_datafile

_DATASOURCE_PATH = re.compile(r"^/v0/datasources/([A-Za-z0-9_]+?)(\.datasource)?$")
_DATASOURCES_PATHS = ("/v0/datasources", "/v0/datasources/")
_READ_ONLY_SQL = re.compile(r"^\s*\(*\s*(SELECT|WITH|DESCRIBE|DESC)\b", re.IGNORECASE)
_SQL_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)
_WRITES_FILES = re.compile(r"\bINTO\s+OUTFILE\b", re.IGNORECASE)
_FORMAT_CLAUSE = re.compile(r"\bFORMAT\s+([A-Za-z]+)\s*;?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class TinybirdSettings:
    """What `POST /__sandbox/config` can change while the emulator runs."""

    max_body_bytes: int = 10 * 1024 * 1024
    requests_per_second: int = 100
    mv_failure_rate: float = 0.0


class PayloadTooLarge(ValueError):
    pass


def error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return json_response(status, {"error": message}, headers or [])


class TinybirdEmulator(Service):
    def __init__(
        self,
        store: TinybirdStore,
        credentials: TinybirdCredentials,
        settings: TinybirdSettings,
        faults: FaultSchedule,
        latency: Latency,
        ack_latency: Latency,
        seed: int,
        stopping: threading.Event,
    ) -> None:
        super().__init__(faults, latency, stopping)
        self.store = store
        self.credentials = credentials
        self.ack_latency = ack_latency
        self.base_url = ""
        self.streams: LogStreams | None = None
        """Set by the runner: the Auth0 tenant's Log Streams (`/__sandbox/stream`)."""
        self._settings = settings
        self._buckets: dict[str, TokenBucket] = {}
        self._buckets_lock = threading.Lock()
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self._imports = itertools.count(1)

    @property
    def settings(self) -> TinybirdSettings:
        return self._settings

    # -- plumbing -----------------------------------------------------------------------------
    def route_name(self, request: Request) -> str:
        match = _DATASOURCE_PATH.match(request.path)
        if match:
            return "/v0/datasources/{name}" + (match.group(2) or "")
        if request.path in ("/v0/events", "/v0/sql"):
            return request.path
        if request.path in _DATASOURCES_PATHS:
            return "/v0/datasources"
        return "other"

    def admit(self, request: Request) -> Admission:
        if request.path != "/v0/events":
            return ADMITTED
        decision = self._bucket(request.param("name") or "").take()
        reset = max(1, math.ceil(decision.seconds_to_next_token))
        headers = [
            ("X-RateLimit-Limit", str(decision.limit)),
            ("X-RateLimit-Remaining", str(decision.remaining)),
            ("X-RateLimit-Reset", str(reset)),
        ]
        if decision.allowed:
            return Admission(headers=headers)
        self.counters.add("status_429")
        headers.append(("Retry-After", str(reset)))
        message = f"Too many requests: retry after {reset} seconds"
        return Admission(refusal=error(429, message, headers))

    def rate_limited_response(self, request: Request) -> Response:
        limit = str(self._settings.requests_per_second)
        headers = [
            ("Retry-After", "1"),
            ("X-RateLimit-Limit", limit),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", "1"),
        ]
        return error(429, "Too many requests: retry after 1 seconds", headers)

    def _bucket(self, name: str) -> TokenBucket:
        with self._buckets_lock:
            bucket = self._buckets.get(name)
            if bucket is None:
                rate = self._settings.requests_per_second
                bucket = self._buckets[name] = TokenBucket(rate, float(rate))
            return bucket

    def handle(self, request: Request) -> Response:
        token = self._token(request)
        if token is None:
            return error(403, "Invalid token: use a token of this workspace with the needed scope")
        if token.region != SANDBOX_REGION:
            return error(
                404,
                "Workspace not found in this region: this token belongs to a workspace on "
                f"{OTHER_REGION_HOST}; send it to that host",
            )
        if request.path == "/v0/events" and request.method == "POST":
            return self._events(request, token)
        if request.path == "/v0/sql" and request.method in ("GET", "POST"):
            return self._sql(request, token)
        match = _DATASOURCE_PATH.match(request.path)
        if match and request.method == "GET":
            return self._describe_datasource(match.group(1), bool(match.group(2)), token)
        if request.path in _DATASOURCES_PATHS and request.method == "GET":
            return self._list_datasources(request, token)
        return error(404, f"Not found: {request.method} {request.path}")

    def _token(self, request: Request) -> TinybirdToken | None:
        authorization = request.header("authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return self.credentials.check(value.strip())
        in_url = request.param("token")
        if in_url:
            # Works, as on Tinybird, but such a token ends up in access logs: counted.
            self.counters.add("tokens_in_url")
            return self.credentials.check(in_url)
        return None

    # -- Events API ---------------------------------------------------------------------------
    def _events(self, request: Request, token: TinybirdToken) -> Response:
        name = request.param("name")
        if not name:
            return error(400, "The 'name' query parameter (the data source) is required")
        if self.store.datasource(name) is None:
            return error(
                404,
                f"Data Source '{name}' not found. The sandbox does not create data sources on "
                "append: create it first (datasource_file option or POST /__sandbox/datasources).",
            )
        if not _may(token, TinybirdRole.APPEND, name):
            return error(
                403, f"Forbidden: this token lacks the DATASOURCES:APPEND scope on '{name}'"
            )
        settings = self._settings
        try:
            body = _decoded_body(request, settings.max_body_bytes)
        except PayloadTooLarge as too_large:
            self.counters.add("status_413")
            return error(413, str(too_large))
        except ValueError as malformed:
            return error(400, str(malformed))
        import_id = f"import_{next(self._imports):08d}"
        result = self.store.append_lines(name, body.split(b"\n"), import_id)
        self.counters.add("rows_stored", result.successful_rows)
        self.counters.add("rows_quarantined", result.quarantined_rows)
        answer = {
            "successful_rows": result.successful_rows,
            "quarantined_rows": result.quarantined_rows,
        }
        if self._draw() < settings.mv_failure_rate:
            self.counters.add("status_422")
            return error(
                422,
                "The rows were written to the data source, but a materialized view failed "
                "(simulated). Retrying may duplicate data.",
            )
        if _flag(request.param("wait")):
            self.pause(self.ack_latency.sample())
            return json_response(200, answer)
        return json_response(202, answer)

    def _draw(self) -> float:
        with self._random_lock:
            return self._random.random()

    # -- Query API ----------------------------------------------------------------------------
    def _sql(self, request: Request, token: TinybirdToken) -> Response:
        if not _may(token, TinybirdRole.READ, None):
            return error(403, "Forbidden: the Query API needs a token with read access")
        sql = request.param("q") if request.method == "GET" else _posted_sql(request)
        if not sql or not sql.strip():
            return error(400, "The 'q' parameter (the SQL query) is required")
        statement = _SQL_COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
        read_only = _READ_ONLY_SQL.match(statement) and not _WRITES_FILES.search(statement)
        if not read_only or ";" in statement:
            return error(400, "Only SELECT, WITH and DESCRIBE queries are allowed in the Query API")
        format_clause = _FORMAT_CLAUSE.search(statement)
        output_format = format_clause.group(1) if format_clause else "JSON"
        try:
            data = self.store.query(statement, output_format)
        except StoreError as failure:
            return error(400, f"[Error] {failure}")
        content_type = (
            "application/json" if output_format.upper().startswith("JSON") else "text/plain"
        )
        return Response(200, data, content_type=f"{content_type}; charset=utf-8")

    # -- data sources -------------------------------------------------------------------------
    def _describe_datasource(self, name: str, as_datafile: bool, token: TinybirdToken) -> Response:
        if not _may(token, TinybirdRole.READ, name):
            return error(403, f"Forbidden: this token lacks the DATASOURCES:READ scope on '{name}'")
        datasource = self.store.datasource(name)
        if datasource is None:
            return error(404, f"Data Source '{name}' not found")
        if as_datafile:
            text = datasource.datafile.text
            return Response(200, text.encode(), content_type="text/plain; charset=utf-8")
        return json_response(200, described(datasource, self.store.statistics(name)))

    def _list_datasources(self, request: Request, token: TinybirdToken) -> Response:
        """Every data source this token can read (none for an append-only token)."""
        attrs = request.param("attrs")
        wanted = attrs.split(",") if attrs else None
        items = []
        for name in self.store.names():
            datasource = self.store.datasource(name)
            if datasource is None or not _may(token, TinybirdRole.READ, name):
                continue
            counted = wanted is not None and "quarantine_rows" in wanted
            quarantined = self.store.row_count(datasource.quarantine) if counted else 0
            items.append(listed(datasource, self.store.statistics(name), wanted, quarantined))
        return json_response(200, {"datasources": items})

    # -- control plane ------------------------------------------------------------------------
    def control(self, request: Request) -> Response:
        path, method = request.path, request.method
        try:
            if path == "/__sandbox/stats" and method == "GET":
                return json_response(200, self.stats())
            if path == "/__sandbox/received" and method == "GET":
                return self._control_received(request.param("name"))
            if path == "/__sandbox/config":
                if method == "POST":
                    self.configure(json_payload(request))
                return json_response(200, self.describe_config())
            if path == "/__sandbox/stream" and method == "POST":
                return self._control_stream(json_payload(request))
            if path == "/__sandbox/reset" and method == "POST":
                self.store.truncate()
                return json_response(200, {"reset": True})
            if path == "/__sandbox/datasources" and method == "POST":
                return self._control_create(json_payload(request))
            if path == "/__sandbox/delete" and method == "POST":
                return self._control_delete(json_payload(request))
        except (ValueError, DatafileError, StoreError) as failure:
            return json_response(400, {"error": str(failure)})
        return json_response(404, {"error": f"no control endpoint {method} {path}"})

    def stats(self) -> dict[str, Any]:
        snapshot = self.counters.snapshot()
        for name in ("rows_stored", "rows_quarantined", "rows_streamed", "status_413",
                     "status_429", "status_422", "tokens_in_url"):  # fmt: skip
            snapshot.setdefault(name, 0)
        snapshot.setdefault("faults", {})
        snapshot["datasources"] = {
            name: {
                "rows": self.store.row_count(name),
                "quarantined": self.store.row_count(f"{name}_quarantine"),
            }
            for name in self.store.names()
        }
        return snapshot

    def configure(self, payload: dict[str, Any]) -> None:
        """Apply `{"faults", "latency", "ack_latency", "max_body_bytes", "requests_per_second",
        "mv_failure_rate", "record_raw"}` (any subset)."""
        settings = self._settings
        if "max_body_bytes" in payload:
            settings = replace(settings, max_body_bytes=int(payload["max_body_bytes"]))
        if "requests_per_second" in payload:
            rate = int(payload["requests_per_second"])
            if rate < 1:
                raise ValueError("requests_per_second must be >= 1")
            settings = replace(settings, requests_per_second=rate)
        if "mv_failure_rate" in payload:
            settings = replace(settings, mv_failure_rate=float(payload["mv_failure_rate"]))
        if "latency" in payload:
            self.latency.spec = LatencyRange.parse(payload["latency"])
        if "ack_latency" in payload:
            self.ack_latency.spec = LatencyRange.parse(payload["ack_latency"])
        if "faults" in payload:
            self.faults.settings = self.faults.settings.updated(dict(payload["faults"]))
        if "record_raw" in payload:
            self.store.record_raw = bool(payload["record_raw"])
        if settings.requests_per_second != self._settings.requests_per_second:
            with self._buckets_lock:
                self._buckets.clear()
        self._settings = settings

    def describe_config(self) -> dict[str, Any]:
        settings = self._settings
        return {
            "max_body_bytes": settings.max_body_bytes,
            "requests_per_second": settings.requests_per_second,
            "mv_failure_rate": settings.mv_failure_rate,
            "latency": self.latency.spec.describe(),
            "ack_latency": self.ack_latency.spec.describe(),
            "faults": self.faults.settings.describe(),
            "record_raw": self.store.record_raw,
        }

    def _control_received(self, name: str | None) -> Response:
        if not self.store.record_raw:
            return json_response(
                409, {"error": "raw envelopes are not recorded: start with record_raw on"}
            )
        lines = self.store.received(name or "")
        return Response(200, content_type="application/x-ndjson", chunks=_joined(lines))

    def _control_stream(self, payload: dict[str, Any]) -> Response:
        """The stream into the default data source: created and started at `since` if there
        is none, else changed (`since`, `status`, `filters`, `pii_config`); answers the rows it
        delivered. `/__sandbox/streams` on the Auth0 side manages every stream."""
        if self.streams is None:
            return json_response(409, {"error": "no Auth0 tenant is attached to this emulator"})
        answer = self.streams.control_default(payload)
        return json_response(200, {"rows": answer["rows"], "stream": answer["stream"]["id"]})

    def _control_delete(self, payload: dict[str, Any]) -> Response:
        """`{"name", "from_date", "until_date", "log_ids"}`: holes in a data source."""
        name = str(payload.get("name", ""))
        if self.store.datasource(name) is None:
            return json_response(404, {"error": f"no data source {name!r}"})
        log_ids = payload.get("log_ids") or []
        if not isinstance(log_ids, list):
            raise ValueError('"log_ids" must be a list of log_id strings')
        low, high = payload.get("from_date"), payload.get("until_date")
        deleted = self.store.delete_rows(
            name,
            parse_when(str(low)) if low else None,
            parse_when(str(high)) if high else None,
            [str(log_id) for log_id in log_ids],
        )
        return json_response(200, {"deleted": deleted})

    def _control_create(self, payload: dict[str, Any]) -> Response:
        name = str(payload.get("name", ""))
        datafile = parse_datafile(str(payload.get("datafile", "")))
        self.store.create_datasource(name, datafile, replace=bool(payload.get("replace", False)))
        return json_response(200, {"name": name, "columns": len(datafile.columns)})


def _may(token: TinybirdToken, role: TinybirdRole, datasource: str | None) -> bool:
    if token.role is TinybirdRole.ADMIN:
        return True
    if token.role is not role:
        return False
    return datasource is None or token.datasource == datasource


def _flag(text: str | None) -> bool:
    return (text or "").lower() in ("true", "1")


def _decoded_body(request: Request, limit: int) -> bytes:
    encoding = (request.header("content-encoding") or "identity").strip().lower()
    if encoding in ("identity", ""):
        body = request.body
    elif encoding == "gzip":
        body = _gunzip(request.body, limit)
    else:
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    if len(body) > limit:
        raise PayloadTooLarge(
            f"Request entity too large: the body is {len(body)} bytes uncompressed and the "
            f"limit is {limit} bytes; split it"
        )
    return body


def _gunzip(data: bytes, limit: int) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        # Stop just past the limit: a small compressed body can expand enormously.
        body = decompressor.decompress(data, limit + 1)
    except zlib.error as failure:
        raise ValueError(f"The body is not valid gzip: {failure}") from None
    if len(body) > limit:
        return body
    if not decompressor.eof:
        raise ValueError("The body is not valid gzip: the stream is truncated")
    return body


def _posted_sql(request: Request) -> str | None:
    content_type = request.header("content-type") or ""
    text = request.body.decode("utf-8", errors="replace")
    if "application/x-www-form-urlencoded" in content_type:
        values = parse_qs(text).get("q")
        return values[0] if values else None
    if "json" in content_type:
        try:
            payload = json_payload(request)
        except ValueError:
            return None
        query = payload.get("q")
        return query if isinstance(query, str) else None
    return request.param("q") or text


def _joined(lines: list[bytes], batch: int = 2000) -> Iterator[bytes]:
    for start in range(0, len(lines), batch):
        yield b"\n".join(lines[start : start + batch]) + b"\n"
