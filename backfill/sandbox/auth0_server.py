"""Auth0 emulator: client-credentials tokens and the Management API logs endpoints.

Faithful to the reference on what a backfill depends on: checkpoint paging (`from` exclusive,
log_id order, `take` capped at 100, `Link: rel="next"` repeating `from` on an empty page, 400 for
a `from` older than retention), search mode (Lucene subset, 1,000-result cap), bearer-token
errors (401 expired/invalid, 403 missing scope) and the plan's token bucket with its
`x-ratelimit-*` headers on every `/api/v2/*` answer.

Tokens: the audience is the Management API's identifier, `https://{domain}/api/v2/` (Auth0's
docs; auth0-python's `ManagementClient` and `TokenProvider` default to it). The sandbox answers
plain http, so `http://{host:port}/api/v2/` is taken as well; any other audience is a 403.

Late visibility (`POST /__sandbox/append` with `"late_seconds"`): the first log appended stays
invisible for that long after the newer ones appear, although its log_id comes before theirs, as
a log can in a store fed by several writers. Auth0 does not document whether this happens; a
reader that follows new logs must not lose such a log (docs/sandbox.md).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from backfill.sandbox.categories import catalogue_categories, check_category
from backfill.sandbox.credentials import AccessGrant, Auth0Credentials, TokenProblem
from backfill.sandbox.faults import FaultSchedule
from backfill.sandbox.generator import MAX_LAG_US, MIN_LAG_US, Tenant
from backfill.sandbox.httpbase import (
    ADMITTED,
    Admission,
    Request,
    Response,
    Service,
    json_body,
    json_payload,
    json_response,
)
from backfill.sandbox.latency import Latency, LatencyRange
from backfill.sandbox.livestream import LogStreams
from backfill.sandbox.logquery import QueryError, parse_query, search
from backfill.sandbox.profiles import PlanProfile, plan_profile
from backfill.sandbox.ratelimit import TokenBucket
from backfill.sandbox.timelines import DAY_US
from backfill.sandbox.timeparse import (
    compact_utc,
    iso_millis,
    now_us,
    parse_instant,
    parse_when,
    to_us,
)

_CHECKPOINT = re.compile(r"^\d{1,56}$")
_LOG_PATH = re.compile(r"^/api/v2/logs/([^/]+)$")
DEFAULT_TAKE = 50
MAX_TAKE = 100
MAX_SEARCH_RESULTS = 1000
RENDERED_KEPT = 500_000  # records kept as JSON once built: ~1 KB each
_TOO_MANY_REQUESTS = {
    "statusCode": 429,
    "error": "Too Many Requests",
    "message": "Global limit has been reached",
    "errorCode": "too_many_requests",
}


@dataclass(frozen=True)
class Auth0Settings:
    """What `POST /__sandbox/config` can change while the emulator runs."""

    profile: PlanProfile
    retention_days: float | None
    """Overrides the profile's retention when set."""
    token_ttl: int

    @property
    def effective_retention_days(self) -> float | None:
        return (
            self.retention_days if self.retention_days is not None else self.profile.retention_days
        )


def auth0_error(status: int, error: str, message: str, code: str | None = None) -> Response:
    payload: dict[str, Any] = {"statusCode": status, "error": error, "message": message}
    if code:
        payload["errorCode"] = code
    return json_response(status, payload)


def bad_request(message: str) -> Response:
    return auth0_error(400, "Bad Request", message, "invalid_query_string")


class Auth0Emulator(Service):
    def __init__(
        self,
        tenant: Tenant,
        credentials: Auth0Credentials,
        settings: Auth0Settings,
        faults: FaultSchedule,
        latency: Latency,
        stopping: threading.Event,
    ) -> None:
        super().__init__(faults, latency, stopping)
        self.tenant = tenant
        self.credentials = credentials
        self.base_url = ""
        """Set once the server is bound: the audience and `Link` URLs are built from it."""
        self.streams: LogStreams | None = None
        """Set by the runner: the tenant's Log Streams."""
        self._settings = settings
        self._bucket = _bucket_for(settings.profile)
        # Each record's JSON, kept once built: a tenant is append-only and a record never
        # changes, and the same pages are served many times (ranges read past their edges,
        # resumed runs, the tests' own listings). Bounded, for tenants of millions of logs.
        self._rendered: dict[int, bytes] = {}
        self._span_lock = threading.Lock()
        self._page_span: tuple[float, float] | None = None
        self._late: dict[int, int] = {}  # index -> when it becomes visible (us): ``late_seconds``

    def page_span(self) -> tuple[float, float] | None:
        """When the first checkpoint page was asked for and the last one answered
        (``time.monotonic``), for a benchmark to tell the reading from what surrounds it."""
        with self._span_lock:
            return self._page_span

    def prerender(self) -> None:
        """Build every record's JSON now, so that serving a page only joins bytes. For
        benchmarks: many tenants at their plans' rates would otherwise keep this process's one
        core busy building records; memory grows by a record's size per log."""
        for index in range(len(self.tenant)):
            self._rendered[index] = json_body(self.tenant.record(index))

    def rendered(self, index: int) -> bytes:
        """The record at ``index`` as JSON, built once."""
        body = self._rendered.get(index)
        if body is None:
            body = json_body(self.tenant.record(index))
            if len(self._rendered) < RENDERED_KEPT:
                self._rendered[index] = body
        return body

    def _page_body(self, indices: Sequence[int]) -> bytes:
        self.counters.add("records_served", len(indices))
        return b"[" + b",".join(self.rendered(index) for index in indices) + b"]"

    def _hidden(self, now: int) -> set[int]:
        """Indices appended with ``late_seconds`` that are not visible yet."""
        return {index for index, shown_at in self._late.items() if shown_at > now}

    def _shown(self, candidates: range, take: int, now: int) -> list[int]:
        """Up to ``take`` indices of ``candidates``, in log_id order, without the hidden ones."""
        hidden = self._hidden(now)
        if not hidden:
            return list(candidates[:take])
        shown: list[int] = []
        for index in candidates:
            if index not in hidden:
                shown.append(index)
                if len(shown) == take:
                    break
        return shown

    @property
    def settings(self) -> Auth0Settings:
        return self._settings

    def visible_now(self) -> range:
        return self.tenant.visible(now_us(), self._settings.effective_retention_days)

    # -- plumbing -----------------------------------------------------------------------------
    def route_name(self, request: Request) -> str:
        if _LOG_PATH.match(request.path):
            return "/api/v2/logs/{id}"
        if request.path in ("/oauth/token", "/api/v2/logs", "/api/v2/log-streams"):
            return request.path
        return "other"

    def admit(self, request: Request) -> Admission:
        bucket = self._bucket
        if bucket is None or not request.path.startswith("/api/v2/"):
            return ADMITTED
        decision = bucket.take()
        headers = [
            ("x-ratelimit-limit", str(decision.limit)),
            ("x-ratelimit-remaining", str(decision.remaining)),
            ("x-ratelimit-reset", str(math.ceil(time.time() + decision.seconds_to_next_token))),
        ]
        if decision.allowed:
            return Admission(headers=headers)
        self.counters.add("status_429")
        return Admission(refusal=json_response(429, _TOO_MANY_REQUESTS, headers))

    def rate_limited_response(self, request: Request) -> Response:
        limit = self._settings.profile.burst or 1
        headers = [
            ("x-ratelimit-limit", str(limit)),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", str(math.ceil(time.time()) + 1)),
        ]
        return json_response(429, _TOO_MANY_REQUESTS, headers)

    def handle(self, request: Request) -> Response:
        if request.path == "/oauth/token" and request.method == "POST":
            return self._token(request)
        if not request.path.startswith("/api/v2/") or request.method != "GET":
            return auth0_error(404, "Not Found", "Not Found")
        needed = "read:log_streams" if request.path == "/api/v2/log-streams" else "read:logs"
        refusal = self._authorize(request, needed)
        if refusal is not None:
            return refusal
        if request.path == "/api/v2/logs":
            if "from" in request.query:
                return self._checkpoint_page(request)
            return self._search_page(request)
        single = _LOG_PATH.match(request.path)
        if single:
            return self._one_log(single.group(1))
        if request.path == "/api/v2/log-streams":
            return json_response(200, self.streams.describe() if self.streams else [])
        return auth0_error(404, "Not Found", "Not Found")

    # -- tokens -------------------------------------------------------------------------------
    def _token(self, request: Request) -> Response:
        form = _form(request)
        if form is None:
            return json_response(
                400, {"error": "invalid_request", "error_description": "Unreadable request body"}
            )
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            description = f"Unsupported grant type: {grant_type}"
            return json_response(
                400, {"error": "unsupported_grant_type", "error_description": description}
            )
        client = self.credentials.client_for(
            form.get("client_id", ""), form.get("client_secret", "")
        )
        if client is None:
            return json_response(
                401, {"error": "access_denied", "error_description": "Unauthorized"}
            )
        audience = form.get("audience", "")
        if audience not in self._audiences():
            return json_response(
                403,
                {"error": "access_denied", "error_description": f"Service not found: {audience}"},
            )
        ttl = self._settings.token_ttl
        token = self.credentials.mint(client, audience, f"{self.base_url}/", ttl)
        self.counters.add("token_grants")
        return json_response(
            200,
            {
                "access_token": token,
                "expires_in": ttl,
                "token_type": "Bearer",
                "scope": " ".join(client.scopes),
            },
        )

    def _audiences(self) -> tuple[str, ...]:
        """The Management API's identifier: Auth0 names it `https://{domain}/api/v2/`, which is
        what its SDKs send whatever the scheme they reach the tenant by; the sandbox answers
        plain http, so its own URL (`http://...`) is accepted too."""
        netloc = urlsplit(self.base_url).netloc
        return (f"https://{netloc}/api/v2/", f"http://{netloc}/api/v2/")

    def _authorize(self, request: Request, scope: str) -> Response | None:
        grant = self.credentials.check(request.header("authorization"))
        if isinstance(grant, AccessGrant):
            if scope in grant.scopes:
                return None
            return auth0_error(
                403,
                "Forbidden",
                f"Insufficient scope, expected any of: {scope}",
                "insufficient_scope",
            )
        messages = {
            TokenProblem.MISSING: "Missing authentication",
            TokenProblem.INVALID: "Invalid token",
            TokenProblem.EXPIRED: "Expired token received for JSON Web Token validation",
        }
        payload = {"statusCode": 401, "error": "Unauthorized", "message": messages[grant]}
        if grant is not TokenProblem.MISSING:
            payload["attributes"] = {"error": messages[grant]}
        return json_response(401, payload)

    # -- logs ---------------------------------------------------------------------------------
    def _checkpoint_page(self, request: Request) -> Response:
        checkpoint = request.param("from") or ""
        if not _CHECKPOINT.match(checkpoint):
            return bad_request(
                "Query validation error: 'String does not match pattern ^\\d{1,56}$' "
                "on property from (Log Event Id to start retrieving logs)."
            )
        take = _integer(request.param("take"), DEFAULT_TAKE)
        if take is None or take < 1:
            return bad_request(
                "Query validation error: 'Expected an integer of at least 1' on property take."
            )
        take = min(take, MAX_TAKE)
        now = now_us()
        days = self._settings.effective_retention_days
        if days is not None and int(checkpoint) < _first_id_written_at(now - int(days * DAY_US)):
            return bad_request(
                f"The log_id in 'from' ({checkpoint}) is older than this tenant's log retention "
                f"({days:g} days); it can no longer be used as a checkpoint."
            )
        visible = self.tenant.visible(now, days)
        start = self.tenant.first_after_id(checkpoint, visible)
        page = self._shown(range(start, visible.stop), take, now)
        last = self.tenant.log_id(page[-1]) if page else checkpoint
        next_url = f"{self.base_url}/api/v2/logs?{urlencode({'from': last, 'take': take})}"
        answered = time.monotonic()
        asked = answered - self.paused_seconds()  # its latency was slept before this
        with self._span_lock:
            span = self._page_span or (asked, answered)
            self._page_span = (min(span[0], asked), max(span[1], answered))
        return Response(200, self._page_body(page), headers=[("Link", f'<{next_url}>; rel="next"')])

    def _search_page(self, request: Request) -> Response:
        page = _integer(request.param("page"), 0)
        per_page = _integer(request.param("per_page"), DEFAULT_TAKE)
        if page is None or page < 0:
            return bad_request(
                "Query validation error: 'Expected an integer >= 0' on property page."
            )
        if per_page is None or not 1 <= per_page <= MAX_TAKE:
            return bad_request(
                "Query validation error: 'Too big: must be less than or equal to 100' "
                "on property per_page (Number of results per page)."
            )
        sort = request.param("sort") or "date:-1"
        if sort not in ("date:1", "date:-1"):
            return bad_request(
                f"Query validation error: 'Invalid sort {sort!r}: the sandbox sorts by date:1 "
                "or date:-1' on property sort."
            )
        if page * per_page + per_page > MAX_SEARCH_RESULTS:
            return bad_request(
                f"Requesting page {page + 1} exceeds the allowed maximum of "
                f"{MAX_SEARCH_RESULTS} records: please consider searching by checkpoint"
            )
        try:
            query = parse_query(_search_text(request))
        except QueryError as error:
            return bad_request(str(error))
        with_totals = _flag(request.param("include_totals"), default=False)
        result = search(
            self.tenant,
            self.visible_now(),
            query,
            ascending=sort == "date:1",
            offset=page * per_page,
            limit=per_page,
            count_total=with_totals,
        )
        pick = _field_picker(request.param("fields"), _flag(request.param("include_fields"), True))
        hidden = self._hidden(now_us())
        logs = [pick(self.tenant.record(index)) for index in result.indices if index not in hidden]
        self.counters.add("records_served", len(logs))
        if not with_totals:
            return Response(200, json_body(logs))
        return json_response(
            200,
            {
                "start": page * per_page,
                "limit": per_page,
                "length": len(logs),
                "total": result.total,
                "logs": logs,
            },
        )

    def _one_log(self, log_id: str) -> Response:
        index = self.tenant.find(log_id, self.visible_now())
        if index is None or index in self._hidden(now_us()):
            return auth0_error(404, "Not Found", "Log not found", "inexistent_log")
        return json_response(200, self.tenant.record(index))

    # -- control plane ------------------------------------------------------------------------
    def control(self, request: Request) -> Response:
        try:
            if request.path == "/__sandbox/stats" and request.method == "GET":
                return json_response(200, self.stats())
            if request.path == "/__sandbox/append" and request.method == "POST":
                return self._control_append(json_payload(request))
            if request.path == "/__sandbox/records" and request.method == "GET":
                return self._control_records(request)
            if request.path.startswith("/__sandbox/streams"):
                return self._control_streams(request)
            if request.path == "/__sandbox/config":
                if request.method == "POST":
                    self.configure(json_payload(request))
                return json_response(200, self.describe_config())
        except ValueError as error:
            return json_response(400, {"error": str(error)})
        return json_response(404, {"error": f"no control endpoint {request.method} {request.path}"})

    def stats(self) -> dict[str, Any]:
        snapshot = self.counters.snapshot()
        visible = self.visible_now()
        logs: dict[str, Any] = {"count": len(visible), "generated": len(self.tenant)}
        if visible:
            first, last = visible.start, visible.stop - 1
            logs["oldest_log_id"] = self.tenant.log_id(first)
            logs["oldest_date"] = iso_millis(self.tenant.date_us(first))
            logs["newest_log_id"] = self.tenant.log_id(last)
            logs["newest_date"] = iso_millis(self.tenant.date_us(last))
        snapshot["logs"] = logs
        snapshot.setdefault("token_grants", 0)
        snapshot.setdefault("records_served", 0)
        snapshot.setdefault("status_429", 0)
        snapshot.setdefault("faults", {})
        return snapshot

    def configure(self, payload: dict[str, Any]) -> None:
        """Apply `{"faults", "latency", "profile", "retention_days", "token_ttl"}` (any subset)."""
        settings = self._settings
        if "profile" in payload:
            settings = replace(settings, profile=plan_profile(str(payload["profile"])))
        if "retention_days" in payload:
            days = payload["retention_days"]
            settings = replace(settings, retention_days=None if days is None else float(days))
        if "token_ttl" in payload:
            settings = replace(settings, token_ttl=int(payload["token_ttl"]))
        if "latency" in payload:
            self.latency.spec = LatencyRange.parse(payload["latency"])
        if "faults" in payload:
            self.faults.settings = self.faults.settings.updated(dict(payload["faults"]))
        if settings.profile != self._settings.profile:
            self._bucket = _bucket_for(settings.profile)
        self._settings = settings

    def describe_config(self) -> dict[str, Any]:
        settings = self._settings
        return {
            "profile": settings.profile.name,
            "retention_days": settings.effective_retention_days,
            "token_ttl": settings.token_ttl,
            "latency": self.latency.spec.describe(),
            "faults": self.faults.settings.describe(),
        }

    def _control_append(self, payload: dict[str, Any]) -> Response:
        """`{"count", "until", "type", "category"}`: new logs, of event type `type` if given
        (any code, one the catalogue lacks included; `category` gives such a code its Log
        Streams category, which a filtered stream then applies)."""
        count = int(payload.get("count", 1))
        until = payload.get("until")
        until_us = to_us(parse_when(str(until))) if until else None
        code = payload.get("type")
        category = payload.get("category")
        if code is not None:
            code = str(code)
            if category is not None:
                known = catalogue_categories().get(code)
                if known is not None:
                    raise ValueError(
                        f"{code!r} is in the catalogue (category {known!r}): "
                        '"category" is only for codes it does not know'
                    )
                self.tenant.extra_categories[code] = check_category(str(category))
        elif category is not None:
            raise ValueError('"category" needs "type"')
        late = float(payload.get("late_seconds", 0))
        if late and count < 2:
            raise ValueError(
                '"late_seconds" needs a "count" of 2 or more: newer logs to hide behind'
            )
        added = self.tenant.append(count, until_us, code)
        if late:
            newest = self.tenant.write_us(added.stop - 1)
            self._late[added.start] = max(newest, now_us()) + int(late * 1_000_000)
        answer: dict[str, Any] = {"count": len(added)}
        if added:
            answer["first_log_id"] = self.tenant.log_id(added.start)
            answer["last_log_id"] = self.tenant.log_id(added.stop - 1)
            answer["first_date"] = iso_millis(self.tenant.date_us(added.start))
            answer["last_date"] = iso_millis(self.tenant.date_us(added.stop - 1))
        return json_response(200, answer)

    def _control_streams(self, request: Request) -> Response:
        """`GET /__sandbox/streams`, `POST /__sandbox/streams` (create one),
        `POST /__sandbox/streams/{id}` (change one: status, filters, pii_config, since)."""
        streams = self.streams
        if streams is None:
            return json_response(409, {"error": "no Log Streams are attached to this tenant"})
        name = request.path.removeprefix("/__sandbox/streams").strip("/")
        if not name:
            if request.method == "GET":
                return json_response(200, streams.control_list())
            if request.method == "POST":
                return json_response(200, streams.control_create(json_payload(request)))
        elif request.method == "POST":
            stream = streams.get(name)
            if stream is None:
                return json_response(404, {"error": f"no stream {name!r}"})
            return json_response(200, streams.control_update(stream, json_payload(request)))
        return json_response(404, {"error": f"no control endpoint {request.method} {request.path}"})

    def _control_records(self, request: Request) -> Response:
        low = _instant_param(request.param("from_date"))
        high = _instant_param(request.param("until_date"))
        visible = self.visible_now()
        candidates = self.tenant.written_between(
            -(2**62) if low is None else low + MIN_LAG_US,
            2**62 if high is None else high + MAX_LAG_US + 1,
            visible,
        )

        def in_window(index: int) -> bool:
            date = self.tenant.date_us(index)
            return (low is None or date >= low) and (high is None or date < high)

        return Response(
            200,
            content_type="application/x-ndjson",
            chunks=_ndjson(self.rendered, (i for i in candidates if in_window(i))),
        )


def _first_id_written_at(moment_us: int) -> int:
    """The smallest log_id Auth0 could give a log written at `moment_us`.

    A checkpoint below it has aged out of retention. In a busy tenant this is the oldest retained
    log's id; a young sandbox tenant may have no logs there, and a `from` in that empty stretch is
    still within retention (it pages from the first log, like a fresh tenant would).
    """
    return int(f"900{compact_utc(moment_us)}{'0' * 33}")


def _ndjson(
    rendered: Callable[[int], bytes], indices: Iterator[int], batch: int = 500
) -> Iterator[bytes]:
    lines: list[bytes] = []
    for index in indices:
        lines.append(rendered(index))
        if len(lines) >= batch:
            yield b"\n".join(lines) + b"\n"
            lines = []
    if lines:
        yield b"\n".join(lines) + b"\n"


def _bucket_for(profile: PlanProfile) -> TokenBucket | None:
    if profile.burst is None or profile.per_second is None:
        return None
    return TokenBucket(profile.burst, profile.per_second)


def _form(request: Request) -> dict[str, str] | None:
    content_type = request.header("content-type") or ""
    try:
        if "json" in content_type:
            payload = json.loads(request.body or b"{}")
            if not isinstance(payload, dict):
                return None
            return {str(key): str(value) for key, value in payload.items()}
        fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
    except (ValueError, UnicodeDecodeError):
        return None
    return {key: values[0] for key, values in fields.items()}


def _search_text(request: Request) -> str | None:
    """The query: `q`, the name Auth0's docs give it, else `search`, the name its OpenAPI and
    so its generated SDKs (auth0-python 5+, node-auth0 5+) send it under. `q` wins when both
    are given (what Auth0 does then is not documented)."""
    query = request.param("q")
    return query if query is not None else request.param("search")


def _integer(text: str | None, default: int) -> int | None:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        return None


def _flag(text: str | None, default: bool) -> bool:
    if text is None or text == "":
        return default
    return text.lower() == "true"


def _instant_param(text: str | None) -> int | None:
    return to_us(parse_instant(text)) if text else None


def _field_picker(fields: str | None, include: bool) -> Callable[[dict[str, Any]], dict[str, Any]]:
    if not fields:
        return lambda record: record
    names = {name.strip() for name in fields.split(",") if name.strip()}
    if include:
        return lambda record: {key: value for key, value in record.items() if key in names}
    return lambda record: {key: value for key, value in record.items() if key not in names}
