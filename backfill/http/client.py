"""The one HTTP client every request of the job goes through, and the one way a request is sent
(``HttpClient.exchange``): an answer to judge, or a failure on the way turned into a
``TransientError`` for the retry policy, said the same way for both services.

What it adds to httpx's ``AsyncClient`` (its transport, proxies from the environment and
certificate authorities as httpx has them):
- A whole-request deadline. httpx's timeouts bound each connect, read and write, so a server that
  answers one byte every half second holds a request for ever (encode/httpx#1450). Here every
  request, from its name lookup and connect to its last byte, runs under ``asyncio.timeout([http]
  timeout_seconds)``: asyncio cancels whatever the request is waiting on when time is up.
- Which hosts have answered this client (``has_answered``): a name that does not resolve, or a
  refused connection, before a host ever answered is most likely a setting, not an outage
  (``retry.Unreachable``). The client owns that memory: one run's hosts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import socket
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

from backfill.http.retry import TransientError, Unreachable

WHOLE_REQUEST = "the request took longer than its whole-request limit ([http] timeout_seconds)"


class HttpClient(httpx.AsyncClient):
    """``httpx.AsyncClient`` whose every request is bounded as a whole by ``whole_seconds``.

    ``transport``: another transport (the unit tests' ``httpx.MockTransport``)."""

    def __init__(self, *, whole_seconds: float = 30.0, **options: Any) -> None:
        self._answered: set[str] = set()
        self.answers: Counter[str] = Counter()  # answers by origin, for the metrics
        options.setdefault("event_hooks", {}).setdefault("response", []).append(self._note)
        options.setdefault("verify", trusted())
        super().__init__(**options)
        self.whole_seconds = whole_seconds

    async def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        try:
            async with asyncio.timeout(self.whole_seconds):
                return await super().send(request, **options)
        except TimeoutError:
            raise httpx.TimeoutException(WHOLE_REQUEST, request=request) from None

    # -- the one way a request is sent --------------------------------------------------------

    async def exchange(
        self, method: str, url: str, *, setting: str, effects: bool = False, **options: Any
    ) -> httpx.Response:
        """The answer, whatever its status (the service's ``judge`` decides); a failure on the
        way becomes a ``TransientError``. ``effects``: the request changes something (an
        append), so one lost after it may have been sent "may have landed"; one whose
        connection never opened was not sent. ``setting`` names where the operator set the
        host, for a host that cannot be reached."""
        try:
            return await self.request(method, url, **options)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise self.failure(error, "not sent", setting=setting) from None
        except httpx.TransportError as error:
            outcome = "may have landed" if effects else "no answer"
            raise self.failure(error, outcome, setting=setting, ambiguous=effects) from None

    def failure(
        self, error: httpx.TransportError, outcome: str, *, setting: str, ambiguous: bool = False
    ) -> TransientError:
        """A transport failure for the retry policy, said once for every service. A name that
        does not resolve, or a refused connection, to a host that never answered is marked
        ``unreachable`` (one quick retry, then a message naming the host, the system's reason
        and the setting)."""
        url = _url(error)
        where = f" from {url.host}{url.path}" if url is not None else ""
        words = f": {error}" if str(error) == WHOLE_REQUEST else ""
        description = f"{type(error).__name__}{where} ({outcome}){words}"
        reason = unreachable_reason(error)
        if reason is None or url is None:
            return TransientError(description, ambiguous=ambiguous, network=True)
        host = url.netloc.decode("ascii", errors="replace")
        described = f"{description}: {host}: {reason}"
        if self.has_answered(url):  # it answered before: a network blip, retried as any other
            return TransientError(described, ambiguous=ambiguous, network=True, reason=reason)
        return TransientError(described, unreachable=Unreachable(host, reason, setting))

    # -- hosts that answered ------------------------------------------------------------------

    def has_answered(self, url: httpx.URL) -> bool:
        return _origin(url) in self._answered

    async def _note(self, response: httpx.Response) -> None:
        origin = _origin(response.request.url)
        self._answered.add(origin)
        self.answers[origin] += 1


@contextlib.asynccontextmanager
async def http_client(
    *, timeout: float, connections: int, user_agent: str
) -> AsyncIterator[HttpClient]:
    client = HttpClient(
        whole_seconds=timeout,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"User-Agent": user_agent},
    )
    try:
        yield client
    finally:
        await client.aclose()


@functools.cache
def trusted() -> ssl.SSLContext:
    """The certificate authorities to trust, loaded once per process as httpx would load them
    (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else certifi's): each tenant's client would otherwise
    load its own copy, about 50 ms of CPU and a megabyte or two each."""
    return httpx.create_ssl_context()


def json_or_none(response: httpx.Response) -> Any:
    """The body as JSON, None when it is not (an error page, a truncated body)."""
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def unreachable_reason(error: BaseException) -> str | None:
    """What the system said, when the failure is a name that does not resolve or a refusal."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return f"the name does not resolve ({cause.strerror or cause})"
        if isinstance(cause, ConnectionRefusedError):
            return f"the connection was refused ({cause.strerror or cause})"
        text = str(cause)
        if "Name or service not known" in text or "nodename nor servname" in text:
            return f"the name does not resolve ({text})"
        if "Connection refused" in text:
            return f"the connection was refused ({text})"
    return None


def origin(base_url: str) -> str:
    """``scheme://host:port`` of a base URL, as ``answers`` keys it."""
    return _origin(httpx.URL(base_url))


def _origin(url: httpx.URL) -> str:
    default = 443 if url.scheme == "https" else 80
    return f"{url.scheme}://{url.host.lower()}:{url.port or default}"


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
        if isinstance(current, BaseExceptionGroup):
            todo.extend(current.exceptions)


def _url(error: httpx.TransportError) -> httpx.URL | None:
    try:
        return error.request.url
    except RuntimeError:  # an error raised outside a request
        return None
