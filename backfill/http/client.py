"""The one HTTP client every request of the job goes through, and the one way a request is sent
(``HttpClient.exchange``): an answer to judge, or a failure on the way turned into a
``TransientError`` for the retry policy, said the same way for both services.

What it adds to httpx:
- A whole-request deadline: every request runs under ``deadline.limit([http] timeout_seconds)``,
  and the transport (``transport.DeadlineTransport``) gives each connect, name lookup, read and
  write only the time left.
- Which hosts have answered this client (``has_answered``): a name that does not resolve, or a
  refused connection, before a host ever answered is most likely a setting, not an outage
  (``retry.Unreachable``). The client owns that memory: one client, one run's hosts.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx

from backfill.http import deadline
from backfill.http import transport as _transport_module
from backfill.http.retry import TransientError, Unreachable


class HttpClient(httpx.Client):
    """``httpx.Client`` whose every request is bounded as a whole by ``whole_seconds``.

    ``transport``: another transport (the unit tests' ``httpx.MockTransport``); by default the
    deadline-keeping one, with the environment's proxies mounted."""

    def __init__(
        self,
        *,
        whole_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        limits: httpx.Limits | None = None,
        **options: Any,
    ) -> None:
        self._answered: set[str] = set()
        self._answered_lock = threading.Lock()
        options.setdefault("event_hooks", {}).setdefault("response", []).append(self._note)
        if transport is None:
            limits = limits or httpx.Limits(max_connections=10)
            trusted = _transport_module.trusted()
            transport = _transport_module.DeadlineTransport(limits=limits, ssl_context=trusted)
            options["mounts"] = _transport_module.mounts(limits, trusted)
        super().__init__(transport=transport, **options)
        self.whole_seconds = whole_seconds

    def send(self, request: httpx.Request, **options: Any) -> httpx.Response:
        with deadline.limit(self.whole_seconds):
            return super().send(request, **options)

    # -- the one way a request is sent --------------------------------------------------------

    def exchange(
        self, method: str, url: str, *, setting: str, effects: bool = False, **options: Any
    ) -> httpx.Response:
        """The answer, whatever its status (the service's ``judge`` decides); a failure on the
        way becomes a ``TransientError``. ``effects``: the request changes something (an
        append), so one lost after it was sent "may have landed"; one whose connection never
        opened was not sent. ``setting`` names where the operator set the host, for a host that
        cannot be reached."""
        try:
            return self.request(method, url, **options)
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
        description = f"{type(error).__name__}{where} ({outcome})"
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
        with self._answered_lock:
            return _origin(url) in self._answered

    def _note(self, response: httpx.Response) -> None:
        with self._answered_lock:
            self._answered.add(_origin(response.request.url))


@contextlib.contextmanager
def http_client(*, timeout: float, connections: int, user_agent: str) -> Iterator[HttpClient]:
    client = HttpClient(
        whole_seconds=timeout,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        headers={"User-Agent": user_agent},
    )
    try:
        yield client
    finally:
        client.close()


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
    return None


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


def _url(error: httpx.TransportError) -> httpx.URL | None:
    try:
        return error.request.url
    except RuntimeError:  # an error raised outside a request
        return None
