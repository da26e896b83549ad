"""The transport under the job's one HTTP client: httpx's request and response over httpcore's
connection pool (or proxy), built with httpcore's public ``network_backend`` parameter so the
whole-request deadline (``deadline.DeadlineBackend``) reaches every connect, read and write.

httpx builds its own pools and offers no way to give them a network backend; this module is the
public-API equivalent of its ``HTTPTransport`` for what the job uses (HTTP/1.1, TLS, proxies from
the environment), so no release of httpx or httpcore can quietly take the deadline away. Proxies:
``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY`` are read as httpx reads them and
mounted explicitly (httpx does not read them once a client is given its own transport).
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import ssl
import threading
import urllib.request
from collections.abc import Iterator
from typing import TypedDict

import httpcore
import httpx

from backfill.http.deadline import DeadlineBackend

# httpcore's failures as httpx's (the most specific wins): what callers catch.
_FAILURES: list[tuple[type[Exception], type[httpx.TransportError]]] = [
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
]


@contextlib.contextmanager
def _as_httpx() -> Iterator[None]:
    try:
        yield
    except Exception as error:
        for failure, ours in _FAILURES:
            if isinstance(error, failure):
                raise ours(str(error)) from error
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: httpcore.Response) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx():
            yield from self._stream.iter_stream()

    def close(self) -> None:
        self._stream.close()


class _PoolOptions(TypedDict):
    ssl_context: ssl.SSLContext
    max_connections: int | None
    max_keepalive_connections: int | None
    keepalive_expiry: float | None
    network_backend: httpcore.NetworkBackend


class DeadlineTransport(httpx.BaseTransport):
    """One connection pool (direct, or through one proxy) whose every network operation keeps
    the request's deadline."""

    def __init__(
        self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext, proxy: httpx.URL | None = None
    ) -> None:
        options = _PoolOptions(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(),
        )
        self._pool: httpcore.ConnectionPool
        if proxy is None:
            self._pool = httpcore.ConnectionPool(**options)
        elif proxy.scheme in ("http", "https"):
            self._pool = httpcore.HTTPProxy(
                proxy_url=str(proxy.copy_with(username=None, password=None)),
                proxy_auth=(proxy.username, proxy.password) if proxy.username else None,
                **options,
            )
        else:  # socks5://, socks5h:// (needs socksio, as httpx's own SOCKS support does)
            self._pool = httpcore.SOCKSProxy(proxy_url=str(proxy), **options)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx():
            answer = self._pool.handle_request(core)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def mounts(
    limits: httpx.Limits, ssl_context: ssl.SSLContext
) -> dict[str, httpx.BaseTransport | None]:
    """A transport per proxy the environment names, and None (direct) for what NO_PROXY
    exempts, as httpx would mount them (``httpx.Client(mounts=...)``)."""
    proxies = urllib.request.getproxies()
    found: dict[str, httpx.BaseTransport | None] = {}
    for scheme in ("http", "https", "all"):
        address = proxies.get(scheme)
        if address:
            url = httpx.URL(address if "://" in address else f"http://{address}")
            found[f"{scheme}://"] = DeadlineTransport(
                limits=limits, ssl_context=ssl_context, proxy=url
            )
    for host in (part.strip() for part in proxies.get("no", "").split(",")):
        if host == "*":
            return {}
        if host:
            found[_exempt(host)] = None
    return found


def _exempt(host: str) -> str:
    """A NO_PROXY entry as an httpx mount pattern (curl's rules, as httpx reads them)."""
    if "://" in host:
        return host
    if host.lower() == "localhost":
        return f"all://{host}"
    try:
        address = ipaddress.ip_address(host.split("/")[0])
    except ValueError:
        return f"all://*{host}"  # .example.com: its subdomains; example.com: it and them
    return f"all://[{host}]" if address.version == 6 else f"all://{host}"


_trusted_lock = threading.Lock()


def trusted() -> ssl.SSLContext:
    """The certificate authorities to trust, loaded once per process as httpx would load them
    (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else certifi's): each tenant's client would otherwise
    load its own copy, about 50 ms of CPU and a megabyte or two each (tenants start together:
    hence the lock)."""
    with _trusted_lock:
        return _load_trusted()


@functools.cache
def _load_trusted() -> ssl.SSLContext:
    return httpx.create_ssl_context()
