"""GETs to one origin over the standard library's http.client, answered in httpx's terms.

At Auth0's fastest rate the job reads 16 pages a second, and httpx's request path (URL model,
cookie jar, h11 state machine, stream layers) costs more CPU per page than parsing the page: about
2 ms where http.client takes 0.6. The Auth0 source only GETs JSON from its tenant, so it takes this
path: one keep-alive connection per thread, the same answer attributes as ``httpx.Response``, and
network failures raised as httpx's ``TransportError`` subclasses, so the source classifies both
clients' failures alike. ``for_origin`` declines when the environment names a proxy for the
origin: httpx honours proxies, this client does not.

    LeanGetClient.get ── connect fails ──────────────── httpx.ConnectError / ConnectTimeout
                     ├── no answer in time ──────────── httpx.ReadTimeout
                     ├── reset, closed, bad framing ──── httpx.ReadError / RemoteProtocolError
                     └── an answer (any status) ──────── LeanAnswer
"""

from __future__ import annotations

import http.client
import select
import ssl
import threading
import urllib.parse
import urllib.request
import zlib
from collections.abc import Mapping
from typing import Any

import httpx


class LeanAnswer:
    """What the Auth0 source reads of an answer; header names are lower-cased."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(
        self, status_code: int, reason_phrase: str, headers: dict[str, str], content: bytes
    ) -> None:
        self.status_code = status_code
        self.reason_phrase = reason_phrase
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


class LeanGetClient:
    """``get(url, params=, headers=)`` like ``httpx.Client.get``, for URLs under one origin."""

    def __init__(
        self,
        origin: str,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) origin: {origin!r}")
        self.origin = f"{parts.scheme}://{parts.netloc}"
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._timeout = timeout
        self._headers = {"Accept-Encoding": "gzip", **(headers or {})}
        self._ssl_context = ssl_context
        if self._https and ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()  # the trust httpx would use
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: set[http.client.HTTPConnection] = set()
        self._closed = False

    @classmethod
    def for_origin(
        cls, origin: str, *, timeout: float, headers: Mapping[str, str] | None = None
    ) -> LeanGetClient | None:
        """A client for ``origin``, or None when a proxy applies to it (use httpx then)."""
        parts = urllib.parse.urlsplit(origin)
        proxies = urllib.request.getproxies_environment()
        proxy = proxies.get(parts.scheme) or proxies.get("all")
        if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
            return None
        try:
            return cls(origin, timeout=timeout, headers=headers)
        except ValueError:
            return None  # not an http(s) origin: httpx explains what is wrong with it

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> LeanAnswer:
        if not url.startswith(self.origin + "/"):
            raise ValueError(f"{url!r} is not under {self.origin}")
        target = url[len(self.origin) :]
        if params:
            # Spaces as %20, as httpx writes them (a Lucene query must not read "+" as a space).
            query = urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
            target += ("&" if "?" in target else "?") + query
        connection = self._connection()
        try:
            connection.request("GET", target, headers={**self._headers, **(headers or {})})
            raw = connection.getresponse()
            content = raw.read()
        except (OSError, http.client.HTTPException) as error:
            self._discard(connection)
            raise _as_httpx(error) from None
        except BaseException:
            self._discard(connection)  # half-read: no use to the next request
            raise
        if raw.will_close:
            self._discard(connection)
        answer_headers: dict[str, str] = {}
        for name, value in raw.getheaders():
            key = name.lower()
            earlier = answer_headers.get(key)
            answer_headers[key] = value if earlier is None else f"{earlier}, {value}"
        if answer_headers.get("content-encoding", "").lower() == "gzip":
            try:
                content = zlib.decompress(content, 47)  # 47: gzip or zlib framing
            except zlib.error:
                raise httpx.RemoteProtocolError("a gzip body that does not decompress") from None
        return LeanAnswer(raw.status, raw.reason, answer_headers, content)

    def __enter__(self) -> LeanGetClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()

    def _connection(self) -> http.client.HTTPConnection:
        """This thread's keep-alive connection, or a new one if the server closed it idle."""
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and _closed_by_peer(connection):
            self._discard(connection)
            connection = None
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _connect(self) -> http.client.HTTPConnection:
        if self._https:
            connection: http.client.HTTPConnection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._ssl_context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.connect()
        except OSError as error:
            connection.close()
            raise _as_httpx(error, connecting=True) from None
        with self._lock:
            if self._closed:
                connection.close()
                raise httpx.ConnectError("the client is closed")
            self._connections.add(connection)
        return connection

    def _discard(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        with self._lock:
            self._connections.discard(connection)
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """An idle keep-alive socket that is readable was closed (or spoken to out of turn)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if not hasattr(select, "poll"):  # Windows
            return bool(select.select([sock], [], [], 0)[0])
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _as_httpx(error: OSError | http.client.HTTPException, *, connecting: bool = False) -> Exception:
    """The httpx exception for a network failure."""
    message = type(error).__name__ + (f": {error}" if str(error) else "")
    if isinstance(error, TimeoutError):
        return httpx.ConnectTimeout(message) if connecting else httpx.ReadTimeout(message)
    if connecting and isinstance(error, OSError):
        return httpx.ConnectError(message)  # refused, unresolvable, TLS handshake
    if isinstance(error, http.client.HTTPException):
        return httpx.RemoteProtocolError(message)  # truncated body, closed without an answer
    return httpx.ReadError(message)  # reset, broken pipe
