"""The one HTTP client against real sockets on 127.0.0.1: a whole request is bounded, however
the server dribbles; a name lookup is bounded; unreachable hosts are told apart."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from backfill.http import transport


@pytest.fixture
def trickling() -> Iterator[str]:
    """Answers every request with a 200 whose bytes come one every 0.1 s (headers included)."""
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
                body = b'{"ok": true}' * 20
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                for byte in answer:
                    if closing.wait(0.1):
                        return
                    try:
                        connection.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    closing.set()
    listener.close()


def test_a_trickle_is_cut_at_the_whole_request_limit(trickling: str) -> None:
    with transport.http_client(timeout=1.0, connections=2, user_agent="t") as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            client.get(trickling)  # each byte comes well within 1 s: httpx alone would wait
        assert time.monotonic() - started < 2.0


def test_a_name_lookup_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    def hang(*args: object, **kwargs: object) -> object:
        time.sleep(5)
        raise socket.gaierror(-3, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    with transport.http_client(timeout=0.5, connections=2, user_agent="t") as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout):
            client.get("http://slow-resolver.example:8080/")
        assert time.monotonic() - started < 1.5


def test_refused_and_unresolvable_are_unreachable_until_the_host_answers(
    trickling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transport, "_answered", set())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with transport.http_client(timeout=2.0, connections=2, user_agent="t") as client:
        with pytest.raises(httpx.ConnectError) as refused:
            client.get(closed)
        error = transport.transient(refused.value, "ConnectError", setting="TINYBIRD_HOST")
        assert error.unreachable is not None
        assert error.unreachable.reason.startswith("the connection was refused")
        assert error.unreachable.host == closed.removeprefix("http://")

        def nxdomain(*args: object, **kwargs: object) -> object:
            raise socket.gaierror(-2, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
        with pytest.raises(httpx.ConnectError) as unresolved:
            client.get("https://tenant.invalid/")
        error = transport.transient(unresolved.value, "ConnectError", setting="AUTH0_DOMAIN")
        assert error.unreachable is not None
        assert error.unreachable.reason == "the name does not resolve (Name or service not known)"
        # A host that answered once is an outage when it fails later, not a setting.
        transport._answered.add(transport._origin(httpx.URL("https://tenant.invalid/")))
        error = transport.transient(unresolved.value, "ConnectError", setting="AUTH0_DOMAIN")
        assert error.unreachable is None and "does not resolve" in error.description
