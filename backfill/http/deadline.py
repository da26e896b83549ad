"""Deadlines for whatever runs in this thread, and the network backend that keeps them.

``limit(seconds)`` bounds the code inside it; nested limits keep the earliest. ``DeadlineBackend``
is an httpcore network backend (httpcore's public extension point) that gives each connect, name
lookup, read and write only what is left of the current deadline, so a deadline bounds a whole
request, not each read: httpx's own timeouts bound each operation, and a server that answers a
byte every half second would hold a request for ever (encode/httpx#1450). The retry policy puts
its ``max_seconds`` around each attempt, so a request in progress is bounded by it too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore

_PIECE = 64 * 1024  # a write is cut so each piece gets only the time left


class _Deadlines(threading.local):
    def __init__(self) -> None:
        self.stack: list[float] = []


_deadlines = _Deadlines()


@contextlib.contextmanager
def limit(seconds: float) -> Iterator[None]:
    """Within this block, ``remaining()`` counts down from ``seconds`` (or less, when an outer
    limit ends sooner)."""
    stack = _deadlines.stack
    ends = time.monotonic() + max(seconds, 0.0)
    stack.append(min(ends, stack[-1]) if stack else ends)
    try:
        yield
    finally:
        stack.pop()


def remaining() -> float | None:
    """Seconds left before the innermost deadline of this thread; None when there is none."""
    stack = _deadlines.stack
    return stack[-1] - time.monotonic() if stack else None


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """The timeout of one network operation, cut to what is left of the request's deadline."""
    left = remaining()
    if left is None:
        return timeout
    if left <= 0:
        raise error("the request took longer than its whole-request limit ([http] timeout_seconds)")
    return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        for start in range(0, len(buffer), _PIECE):
            piece = buffer[start : start + _PIECE]
            self._inner.write(piece, _clamp(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        budget = _clamp(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, budget))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's own synchronous backend, every operation bounded by the current deadline, and
    name lookups bounded too (``getaddrinfo`` itself has no timeout)."""

    def __init__(self, inner: httpcore.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in _resolve(host, port, _clamp(timeout, httpcore.ConnectTimeout)):
            budget = _clamp(timeout, httpcore.ConnectTimeout)
            try:
                stream = self._inner.connect_tcp(
                    address, port, budget, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error  # the next address of the name, as create_connection would
                continue
            return DeadlineStream(stream)
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        budget = _clamp(timeout, httpcore.ConnectTimeout)
        return DeadlineStream(self._inner.connect_unix_socket(path, budget, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _resolve(host: str, port: int, budget: float | None) -> list[str]:
    """The addresses of ``host``, looked up in a helper thread so the deadline bounds it."""
    found: dict[str, Any] = {}

    def lookup() -> None:
        try:
            found["addresses"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as error:  # UnicodeError: a name IDNA cannot encode
            found["error"] = error

    thread = threading.Thread(target=lookup, name=f"resolve-{host[:40]}", daemon=True)
    thread.start()
    thread.join(budget)
    if thread.is_alive():
        raise httpcore.ConnectTimeout(f"looking up {host} took longer than {budget:.1f}s")
    if "error" in found:
        try:  # raised in here so it is the context too: httpcore's pool drops the cause
            raise found["error"]
        except (OSError, UnicodeError) as failure:
            raise httpcore.ConnectError(str(failure)) from failure
    addresses: list[str] = []
    for *_, sockaddr in found["addresses"]:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses
