"""The one HTTP client against real sockets on 127.0.0.1: a whole request is bounded, however
the server dribbles, directly or through a proxy; a name lookup is bounded; unreachable hosts
are told apart, per client."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from backfill.http.client import HttpClient, http_client
from backfill.http.retry import TransientError


def serving(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A server on 127.0.0.1 that reads each request and answers it with ``answer``."""
    listener = socket.create_server(("127.0.0.1", 0))
    closing = threading.Event()

    def serve() -> None:
        while not closing.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                answer(connection, closing)

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    closing.set()
    listener.close()


@pytest.fixture
def answering() -> Iterator[str]:
    """Answers every request at once with a 204."""

    def at_once(connection: socket.socket, closing: threading.Event) -> None:
        connection.sendall(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    yield from serving(at_once)


@pytest.fixture
def trickling() -> Iterator[str]:
    """Answers every request with a 200 whose bytes come one every 0.1 s (headers included)."""

    def byte_by_byte(connection: socket.socket, closing: threading.Event) -> None:
        body = b'{"ok": true}' * 20
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        for byte in answer:
            if closing.wait(0.1):
                return
            try:
                connection.sendall(bytes([byte]))
            except OSError:
                return

    yield from serving(byte_by_byte)


async def test_a_trickle_is_cut_at_the_whole_request_limit(trickling: str) -> None:
    async with http_client(timeout=1.0, connections=2, user_agent="t") as client:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException, match="whole-request limit"):
            await client.get(trickling)  # each byte comes well within 1 s: httpx alone waits
        assert time.monotonic() - started < 2.0


async def test_a_name_lookup_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> object:
        release.wait(5)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    try:
        async with http_client(timeout=0.5, connections=2, user_agent="t") as client:
            started = time.monotonic()
            with pytest.raises(httpx.TimeoutException):
                await client.get("http://slow-resolver.example:8080/")
            assert time.monotonic() - started < 1.5
    finally:
        release.set()  # the lookup's thread, abandoned, ends


async def test_a_trickle_through_a_proxy_is_cut_too(
    trickling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTP_PROXY from the environment: the proxied request keeps the deadline too."""
    monkeypatch.setenv("HTTP_PROXY", trickling)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    async with http_client(timeout=1.0, connections=2, user_agent="t") as client:
        started = time.monotonic()
        with pytest.raises(httpx.TimeoutException):
            await client.get("http://upstream.invalid/")  # never resolved: the proxy answers
        assert time.monotonic() - started < 2.0


async def test_no_proxy_reaches_the_host_directly(
    trickling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv("HTTP_PROXY", trickling)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    async with http_client(timeout=1.0, connections=2, user_agent="t") as client:
        with pytest.raises(httpx.ConnectError):  # not the proxy's trickle: refused directly
            await client.get(closed)


async def test_refused_and_unresolvable_are_unreachable_until_the_host_answers(
    answering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    async with http_client(timeout=2.0, connections=2, user_agent="t") as client:
        with pytest.raises(TransientError) as refused:
            await client.exchange("GET", closed, setting="TINYBIRD_HOST")
        error = refused.value
        assert error.unreachable is not None and error.network
        assert error.unreachable.reason.startswith("the connection was refused")
        assert error.unreachable.host == closed.removeprefix("http://")
        assert "(not sent)" in error.description

        def nxdomain(*args: object, **kwargs: object) -> object:
            raise socket.gaierror(-2, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
        with pytest.raises(TransientError) as unresolved:
            await client.exchange("GET", "https://tenant.invalid/", setting="AUTH0_DOMAIN")
        error = unresolved.value
        assert error.unreachable is not None
        assert error.unreachable.reason.startswith("the name does not resolve")
        assert error.unreachable.setting == "AUTH0_DOMAIN"
        monkeypatch.undo()
        # A host that answered this client once is an outage when it fails later, not a
        # setting; another client (another run) knows nothing of it.
        assert not client.has_answered(httpx.URL(answering))
        await client.get(answering)
        assert client.has_answered(httpx.URL(answering))
        gone = answering.replace("127.0.0.1", "localhost")  # a name, looked up again
        await client.get(gone)
        monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
        with pytest.raises(TransientError) as blip:
            await client.exchange("GET", gone, setting="TINYBIRD_HOST")
        assert blip.value.unreachable is None and "does not resolve" in blip.value.description
        async with HttpClient(whole_seconds=2.0) as other:
            with pytest.raises(TransientError) as fresh:
                await other.exchange("GET", gone, setting="TINYBIRD_HOST")
        assert fresh.value.unreachable is not None


async def test_a_lost_answer_to_a_request_with_effects_may_have_landed() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("connection reset", request=request)

    client = HttpClient(transport=httpx.MockTransport(drop))
    with pytest.raises(TransientError) as append:
        await client.exchange("POST", "http://tb.test/v0/events", setting="T", effects=True)
    assert append.value.ambiguous and "(may have landed)" in append.value.description
    with pytest.raises(TransientError) as query:
        await client.exchange("POST", "http://tb.test/v0/sql", setting="T")
    assert not query.value.ambiguous and "(no answer)" in query.value.description
