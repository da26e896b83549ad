"""The Auth0 client against httpx.MockTransport: each answer classified once, as documented."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from backfill.auth0.pacer import Pacer
from backfill.auth0.source import Auth0Logs
from backfill.auth0.tokens import StaticToken
from backfill.errors import (
    Auth0CredentialsError,
    Auth0PermissionError,
    Auth0RequestError,
    DataError,
    RetriesExhaustedError,
)
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy
from tests.unit.fakes import Blocking, recorder

Handler = Callable[[httpx.Request], httpx.Response]
ID = "900202611010000000000000000000000000000000000000000000{:02d}"


def record(n: int) -> dict:
    return {"log_id": ID.format(n), "date": "2026-11-01T00:00:00.000Z", "type": "s"}


class RefreshableToken:
    def __init__(self) -> None:
        self.issued = 0

    async def token(self) -> str:
        return f"token-{self.issued}"

    def invalidate(self, token: str) -> bool:
        self.issued += 1
        return True


def client(
    handler: Handler, tokens: object | None = None, sleeps: list[float] | None = None
) -> Any:
    """The source, its coroutines called as plain functions."""
    waits = sleeps if sleeps is not None else []
    return Blocking(
        Auth0Logs(
            base_url="https://tenant.auth0.com",
            tokens=tokens or StaticToken("token-0"),  # type: ignore[arg-type]
            http=HttpClient(transport=httpx.MockTransport(handler)),
            retry=RetryPolicy(max_attempts=4, sleep=recorder(waits), rng=random.Random(0)),
            pacer=Pacer(),
        )
    )


def test_checkpoint_request_shape_and_bearer_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[record(2), record(3)])

    page = client(handler).page_after(ID.format(1))
    assert [item["log_id"] for item in page] == [ID.format(2), ID.format(3)]
    request = seen[0]
    assert request.url.path == "/api/v2/logs"
    assert request.url.params["from"] == ID.format(1) and request.url.params["take"] == "100"
    assert request.headers["Authorization"] == "Bearer token-0"
    assert "token" not in str(request.url)


def test_a_401_refreshes_the_token_once_then_retries() -> None:
    tokens = RefreshableToken()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers["Authorization"] == "Bearer token-0":
            return httpx.Response(401, json={"statusCode": 401, "message": "Expired token"})
        return httpx.Response(200, json=[record(2)])

    assert client(handler, tokens).page_after(ID.format(1))[0]["log_id"] == ID.format(2)
    assert tokens.issued == 1


def test_a_second_401_is_a_credentials_error() -> None:
    tokens = RefreshableToken()
    handler = lambda request: httpx.Response(401, json={"message": "Invalid token"})  # noqa: E731
    with pytest.raises(Auth0CredentialsError, match="Invalid token"):
        client(handler, tokens).page_after(ID.format(1))
    assert tokens.issued == 1


def test_403_names_the_missing_scope() -> None:
    body = {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "Insufficient scope, expected any of: read:logs",
        "errorCode": "insufficient_scope",
    }
    with pytest.raises(Auth0PermissionError) as caught:
        client(lambda request: httpx.Response(403, json=body)).page_after(ID.format(1))
    assert "read:logs" in str(caught.value) and "Machine to Machine" in str(caught.value)


def test_404_and_400_are_request_errors() -> None:
    with pytest.raises(Auth0RequestError, match="Check AUTH0_DOMAIN"):
        client(lambda request: httpx.Response(404, text="Not Found")).page_after(ID.format(1))
    with pytest.raises(Auth0RequestError) as caught:
        client(lambda request: httpx.Response(400, json={"message": "bad from"})).page_after(
            ID.format(1)
        )
    assert caught.value.status == 400


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(503, text="<html><body>Service Unavailable</body></html>"),
        httpx.Response(500, text="<html>oops</html>"),
        httpx.Response(200, content=b'[{"log_id": "9002026'),  # truncated body
        httpx.Response(
            429,
            json={"statusCode": 429, "errorCode": "too_many_requests"},
            headers={"x-ratelimit-reset": "0"},
        ),
    ],
    ids=["503-html", "500-html", "truncated", "429"],
)
def test_transient_failures_are_retried(failure: httpx.Response) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return failure if len(calls) == 1 else httpx.Response(200, json=[record(2)])

    sleeps: list[float] = []
    assert client(handler, sleeps=sleeps).page_after(ID.format(1))[0]["log_id"] == ID.format(2)
    assert len(calls) == 2 and len(sleeps) == 1


def test_network_errors_are_retried_then_exhausted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RetriesExhaustedError, match="Auth0 kept failing"):
        client(handler).page_after(ID.format(1))


def test_not_an_array_is_a_data_error() -> None:
    with pytest.raises(DataError, match="not an array of logs"):
        client(lambda request: httpx.Response(200, json={"logs": []})).page_after(ID.format(1))


def test_a_record_without_log_id_is_a_data_error() -> None:
    with pytest.raises(DataError, match="without a log_id"):
        client(lambda request: httpx.Response(200, json=[{"type": "s"}])).page_after(ID.format(1))


def test_a_cursor_that_does_not_advance_is_an_error_not_a_loop() -> None:
    handler = lambda request: httpx.Response(200, json=[record(1)])  # noqa: E731
    with pytest.raises(DataError, match="did not advance"):
        client(handler).page_after(ID.format(1))
    handler = lambda request: httpx.Response(200, json=[record(3), record(2)])  # noqa: E731
    with pytest.raises(DataError, match="did not advance"):
        client(handler).page_after(ID.format(1))


def test_oldest_is_the_smallest_id_of_the_oldest_page_by_date() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["sort"] == "date:1"
        return httpx.Response(200, json=[record(5), record(3), record(4)])

    oldest = client(handler).oldest()
    assert oldest is not None and oldest["log_id"] == ID.format(3)


def test_get_returns_none_on_404() -> None:
    assert client(lambda request: httpx.Response(404, json={})).get(ID.format(1)) is None
    body = json.dumps(record(1)).encode()
    assert client(lambda request: httpx.Response(200, content=body)).get(ID.format(1)) == record(1)


def test_non_json_numbers_are_refused_not_rewritten() -> None:
    body = b'[{"log_id": "90020261101000000000000000000000000000000000000000000002", "n": NaN}]'
    with pytest.raises(DataError, match="NaN"):
        client(lambda request: httpx.Response(200, content=body)).page_after(ID.format(1))


@pytest.mark.parametrize(
    "body",
    [
        b'[{"n": 123456789012345678901234567890}]',
        b'[{"n": -123456789012345678901234567890, "x": "a"}]',
        b'[{"n":[1,12345678901234567890]}]',
        b"[1,\n 12345678901234567890]",
        b'{"a":\t-1234567890123456789}',
        b"123456789012345678901234",
    ],
)
def test_parsing_keeps_integers_beyond_64_bits(body: bytes) -> None:
    from backfill.auth0.answers import parse_json

    assert parse_json(body) == json.loads(body)
    assert all(isinstance(value, int) for value in _numbers(parse_json(body)))


def _numbers(value: object) -> list[object]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    return [value] if isinstance(value, int | float) and not isinstance(value, bool) else []


@pytest.mark.parametrize(
    "body",
    [
        b'[{"user_id": "google-oauth2|123456789012345678901", "n": 18446744073709551615}]',
        b'[{"s": "\\ud800 alone"}]',  # a lone surrogate: orjson refuses, the standard library not
        b'[{"f": 1.2345678901234567890123, "e": 1e-400}]',
    ],
)
def test_parsing_matches_the_standard_library(body: bytes) -> None:
    from backfill.auth0.answers import parse_json

    assert repr(parse_json(body)) == repr(json.loads(body))


def test_parsing_is_exact_for_ordinary_pages_and_refuses_truncation() -> None:
    from backfill.auth0.answers import parse_json

    body = json.dumps([record(2), {"log_id": ID.format(3), "f": 0.1, "u": "ü", "n": None}]).encode()
    assert parse_json(body) == json.loads(body)
    with pytest.raises(ValueError):
        parse_json(body[:-7])
