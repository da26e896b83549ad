"""The Tinybird sink against httpx.MockTransport."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
from collections.abc import Callable

import httpx
import pytest

from backfill.errors import (
    PartialWriteError,
    RetriesExhaustedError,
    RowsRefusedError,
    TinybirdAuthError,
    TinybirdNotFoundError,
    TinybirdRequestError,
)
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy
from backfill.records.batches import Batch, BatchBuilder, BatchLimits
from backfill.records.envelope import serialize
from backfill.tinybird.events import AppendResult, TinybirdEvents

Handler = Callable[[httpx.Request], httpx.Response]
DAY = "2026-11-01T00:00:00.000Z"


def batch(rows: int = 8):  # type: ignore[no-untyped-def]
    builder = BatchBuilder(BatchLimits(), 0)
    for index in range(rows):
        builder.add_line(
            serialize({"log_id": f"{index:04d}", "data": {"n": index, "date": DAY}}),
            f"{index:04d}",
            DAY,
        )
    return builder.close("cursor", seq=0)


class Blocking:
    """The sink, each append run to its end in an event loop of its own."""

    def __init__(self, events: TinybirdEvents) -> None:
        self.events = events

    def append(self, batch: Batch) -> AppendResult:
        return asyncio.run(self.events.append(batch))


def sink(
    handler: Handler,
    *,
    landed: Callable | None = None,  # type: ignore[type-arg]
    sleeps: list[float] | None = None,
    refuse_alone: bool = True,
) -> Blocking:
    waits = sleeps if sleeps is not None else []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async def landed_now(current: Batch) -> set[str]:
        assert landed is not None
        found: set[str] = landed(current)
        return found

    return Blocking(
        TinybirdEvents(
            host="https://api.tinybird.co",
            token="p.secret",
            datasource="auth0",
            http=HttpClient(transport=httpx.MockTransport(handler)),
            retry=RetryPolicy(max_attempts=4, sleep=sleep, rng=random.Random(0)),
            landed=landed_now if landed is not None else None,
            refuse_alone=refuse_alone,
        )
    )


def refusing(log_id: str, sent: list[str]) -> Handler:
    """Tinybird answering 413 to any append holding ``log_id``; what it took goes to ``sent``."""

    def handler(request: httpx.Request) -> httpx.Response:
        rows = rows_of(request)
        if log_id in rows:
            return httpx.Response(413, json={"error": "too large"})
        sent.extend(rows)
        return httpx.Response(200, json={"successful_rows": len(rows), "quarantined_rows": 0})

    return handler


def rows_of(request: httpx.Request) -> list[str]:
    return [json.loads(line)["log_id"] for line in gzip.decompress(request.content).splitlines()]


def test_append_request_shape() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"successful_rows": 8, "quarantined_rows": 0})

    result = sink(handler).append(batch())
    assert result.successful_rows == 8
    request = seen[0]
    assert request.method == "POST" and request.url.path == "/v0/events"
    assert request.url.params["name"] == "auth0" and request.url.params["wait"] == "true"
    assert "token" not in request.url.params and "p.secret" not in str(request.url)
    assert request.headers["Authorization"] == "Bearer p.secret"
    assert request.headers["Content-Encoding"] == "gzip"
    assert request.headers["Content-Type"] == "application/x-ndjson"
    assert rows_of(request) == [f"{i:04d}" for i in range(8)]


def test_quarantined_rows_are_reported_not_resent() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json={"successful_rows": 6, "quarantined_rows": 2})

    result = sink(handler).append(batch())
    assert (result.successful_rows, result.quarantined_rows, len(calls)) == (6, 2, 1)


def test_413_splits_in_halves_down_to_what_fits() -> None:
    sizes = []

    def handler(request: httpx.Request) -> httpx.Response:
        rows = rows_of(request)
        sizes.append(len(rows))
        if len(rows) > 2:
            return httpx.Response(413, json={"error": "too large"})
        return httpx.Response(200, json={"successful_rows": len(rows), "quarantined_rows": 0})

    result = sink(handler).append(batch(8))
    assert result.successful_rows == 8
    assert sizes[0] == 8 and sorted(size for size in sizes if size <= 2) == [2, 2, 2, 2]


def test_a_row_too_large_even_alone_is_left_out_and_the_rest_lands() -> None:
    sent: list[str] = []
    result = sink(refusing("0003", sent)).append(batch())
    assert sent == ["0000", "0001", "0002", "0004", "0005", "0006", "0007"]
    assert result.successful_rows == 7
    assert [(row.log_id, row.date, row.why) for row in result.left_out] == [
        ("0003", DAY, "refused")
    ]


def test_without_a_state_file_a_refused_row_stops_the_append_before_what_follows() -> None:
    sent: list[str] = []
    stateless = sink(refusing("0003", sent), refuse_alone=False)
    with pytest.raises(RowsRefusedError, match=r"log 0003 .*--skip-log-id 0003") as refused:
        stateless.append(batch())
    assert refused.value.exit_code == 9 and refused.value.log_ids == ["0003"]
    assert sent == ["0000", "0001", "0002"]  # in order up to it, nothing after


def test_422_stops_and_is_never_resent() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(422, json={"error": "materialized view failed"})

    with pytest.raises(PartialWriteError, match="was not resent"):
        sink(handler).append(batch())
    assert len(calls) == 1


def test_429_waits_as_told() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "3"}, json={"error": "rate"})
        if len(calls) == 2:
            return httpx.Response(429, headers={"X-RateLimit-Reset": "5"}, json={"error": "rate"})
        return httpx.Response(200, json={"successful_rows": 8})

    sleeps: list[float] = []
    sink(handler, sleeps=sleeps).append(batch())
    assert 3 <= sleeps[0] <= 3.25 and 5 <= sleeps[1] <= 5.25


@pytest.mark.parametrize(
    "headers",
    [{"Retry-After": "86400"}, {"X-RateLimit-Reset": "86400"}],
    ids=["retry-after", "reset"],
)
def test_a_429_asking_longer_than_the_budget_stops_at_once(headers: dict[str, str]) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(429, headers=headers, json={"error": "rate"})

    sleeps: list[float] = []
    with pytest.raises(RetriesExhaustedError) as stopped:
        sink(handler, sleeps=sleeps).append(batch())
    message = str(stopped.value)
    assert "429" in message and "86,400s" in message and "max_seconds 600s" in message
    assert "Run the same command again" in message and stopped.value.exit_code == 7
    assert calls == [1] and sleeps == [], "no wait, no retry the server would refuse"


def test_a_429_asking_less_than_the_budget_is_waited_out_in_full() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "300"}), None])

    def handler(request: httpx.Request) -> httpx.Response:
        return next(answers) or httpx.Response(200, json={"successful_rows": 8})

    sleeps: list[float] = []
    sink(handler, sleeps=sleeps).append(batch())
    assert len(sleeps) == 1 and 300 <= sleeps[0] <= 300.25  # not cut to 120 s and refused again


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (400, TinybirdRequestError, "refused an append"),
        (403, TinybirdAuthError, "DATASOURCES:APPEND"),
        (404, TinybirdNotFoundError, "another region than https://api.tinybird.co"),
    ],
)
def test_permanent_statuses(status: int, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as caught:
        sink(lambda request: httpx.Response(status, json={"error": "nope"})).append(batch())
    assert "p.secret" not in str(caught.value)


def test_after_a_lost_acknowledgement_only_the_missing_rows_are_resent() -> None:
    bodies: list[list[str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(rows_of(request))
        if len(bodies) == 1:
            return httpx.Response(503, text="<html>Service Unavailable</html>")
        return httpx.Response(200, json={"successful_rows": len(bodies[-1])})

    landed_checks = []

    def landed(current):  # type: ignore[no-untyped-def]
        landed_checks.append(current.rows)
        return {"0000", "0001", "0002"}

    sleeps: list[float] = []
    result = sink(handler, landed=landed, sleeps=sleeps).append(batch(8))
    # It waited for the lost append to settle before asking Tinybird what landed.
    assert 4.9 <= sleeps[0] <= 5.25
    assert landed_checks == [8]
    assert bodies[1] == ["0003", "0004", "0005", "0006", "0007"]
    assert result.already_in_tinybird == 3 and result.successful_rows == 5


def test_without_read_access_the_resend_is_byte_identical() -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        if len(bodies) == 1:
            raise httpx.ReadTimeout("timed out", request=request)
        return httpx.Response(200, json={"successful_rows": 8})

    sink(handler).append(batch())
    assert len(bodies) == 2 and bodies[0] == bodies[1]


def test_a_refused_connection_is_not_ambiguous() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"successful_rows": 8})

    def landed(current):  # type: ignore[no-untyped-def]
        raise AssertionError("no landed check after a connection that never opened")

    sink(handler, landed=landed).append(batch())
