"""The one HTTP client every request of the job goes through (``http_client``), and how a failure
on the way is told apart (``transient``).

What it adds to httpx:
- A whole-request deadline. httpx's timeout bounds each connect, read and write, so a server that
  answers one byte every half second holds a request for ever (encode/httpx#1450). Here every
  request runs under ``deadline.limit([http] timeout_seconds)``, and the network backend gives
  each connect, name lookup, read and write only the time left, so the limit bounds a request
  from its connect to its last byte; the retry policy's ``max_seconds`` bounds it the same way.
- Name lookups bounded by that deadline (``getaddrinfo`` itself has no timeout).
- Which hosts have answered in this process (``has_answered``): a name that does not resolve, or
  a refused connection, before a host ever answered is most likely a setting, not an outage
  (``retry.Unreachable``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import ssl
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx

from backfill.http import deadline
from backfill.http.retry import TransientError, Unreachable

log = logging.getLogger("backfill.http")

_PIECE = 64 * 1024  # a write is cut so each piece gets only the time left
_answered: set[str] = set()


def has_answered(url: httpx.URL) -> bool:
    return _origin(url) in _answered


def _origin(url: httpx.URL) -> str:
    default = 443 if url.scheme == "https" else 80
    return f"{url.scheme}://{url.host.lower()}:{url.port or default}"


def _note_answer(response: httpx.Response) -> None:
    _answered.add(_origin(response.request.url))


class DeadlineClient(httpx.Client):
    """``httpx.Client`` whose every request is bounded as a whole by ``whole_seconds``."""

    def __init__(self, *, whole_seconds: float, **options: Any) -> None:
        options.setdefault("event_hooks", {}).setdefault("response", []).append(_note_answer)
        super().__init__(**options)
        self.whole_seconds = whole_seconds
        # httpx builds its transports (one per proxy from the environment, too); each has an
        # httpcore pool whose network backend is swapped for one that keeps the deadline. These
        # are httpx's and httpcore's private attributes (httpx offers no whole-request timeout,
        # encode/httpx#1450): if a release moves them, each read keeps httpx's own timeout and
        # the job says so, instead of failing.
        for transport in [self._transport, *self._mounts.values()]:
            if transport is None:  # a NO_PROXY pattern: no transport of its own
                continue
            pool = getattr(transport, "_pool", None)
            inner = getattr(pool, "_network_backend", None)
            if pool is None or not isinstance(inner, httpcore.NetworkBackend):
                log.warning(
                    "http_deadline=unavailable reason='this httpx or httpcore release keeps its "
                    "connections elsewhere' note='each read is bounded, not a whole request'"
                )
                continue
            pool._network_backend = DeadlineBackend(inner)

    def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        with deadline.limit(self.whole_seconds):
            return super().send(request, **options)


@contextlib.contextmanager
def http_client(*, timeout: float, connections: int, user_agent: str) -> Iterator[httpx.Client]:
    client = DeadlineClient(
        whole_seconds=timeout,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"User-Agent": user_agent},
        verify=_trusted(),
    )
    try:
        yield client
    finally:
        client.close()


_trusted_lock = threading.Lock()


def _trusted() -> ssl.SSLContext:
    """The certificate authorities to trust, loaded once per process as httpx would load them
    (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else certifi's): each tenant's client would otherwise
    load its own copy, about 50 ms of CPU and a megabyte or two each (tenants start together:
    hence the lock)."""
    with _trusted_lock:
        return _load_trusted()


@functools.cache
def _load_trusted() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _clamp(timeout: float | None, error: type[Exception]) -> float | None:
    """The timeout of one network operation, cut to what is left of the request's deadline."""
    left = deadline.remaining()
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
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

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

    thread = threading.Thread(target=lookup, name=f"resolve-{host}", daemon=True)
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


# -- telling failures apart ------------------------------------------------------------------


def transient(
    error: httpx.TransportError, description: str, *, setting: str, ambiguous: bool = False
) -> TransientError:
    """A transport failure for the retry policy. A name that does not resolve, or a refused
    connection, to a host that never answered is marked ``unreachable`` (one quick retry, then a
    message naming the host, the system's reason and the setting)."""
    reason = unreachable_reason(error)
    url = _url(error)
    if reason is None or url is None:
        return TransientError(description, ambiguous=ambiguous)
    host = url.netloc.decode("ascii", errors="replace")
    described = f"{description}: {host}: {reason}"
    if has_answered(url):  # it answered before: a network blip, retried as any other
        return TransientError(described, ambiguous=ambiguous)
    return TransientError(described, unreachable=Unreachable(host, reason, setting))


def unreachable_reason(error: BaseException) -> str | None:
    """What the system said, when the failure is a name that does not resolve or a refusal."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return f"the name does not resolve ({cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return f"the connection was refused ({cause.strerror or cause})"
    return None


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend((current.__cause__, current.__context__))


def _url(error: httpx.TransportError) -> httpx.URL | None:
    try:
        return error.request.url
    except RuntimeError:  # an error raised outside a request
        return None
