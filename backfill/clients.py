"""The clients a command talks to, built from the settings: one HTTP pool, one retry policy and
one pacer shared by the Auth0 source and the Tinybird sink and reader.

Each builder raises a ConfigError naming what is missing; ``check`` reports that as a check.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from backfill import __version__
from backfill.auth0.pacer import Pacer
from backfill.auth0.source import Auth0Logs
from backfill.auth0.tokens import ClientCredentialsToken, StaticToken, TokenSource
from backfill.config.settings import Settings
from backfill.http.client import HttpClient
from backfill.http.client import http_client as open_http_client
from backfill.http.retry import RetryPolicy
from backfill.records.batches import Batch
from backfill.tinybird.events import TinybirdEvents
from backfill.tinybird.query import TinybirdQuery

USER_AGENT = f"auth0-backfill/{__version__}"


def http_client(settings: Settings) -> contextlib.AbstractAsyncContextManager[HttpClient]:
    """One connection pool, large enough for every cursor and every append in flight; each
    request bounded as a whole by ``[http] timeout_seconds`` (``http.client``)."""
    return open_http_client(
        timeout=settings.http_timeout,
        connections=settings.concurrency + settings.in_flight + 4,
        user_agent=USER_AGENT,
    )


def retry_policy(
    settings: Settings, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.retry_attempts, max_seconds=settings.retry_seconds, sleep=sleep
    )


def auth0_logs(
    settings: Settings, *, http: HttpClient, retry: RetryPolicy, pacer: Pacer
) -> Auth0Logs:
    """The logs source; a ConfigError naming what is missing without the tenant's settings."""
    access = settings.require_auth0()
    tokens: TokenSource
    if access.token:
        tokens = StaticToken(access.token)
    else:
        tokens = ClientCredentialsToken(
            base_url=access.base_url,
            client_id=access.client_id,
            client_secret=access.client_secret,
            audience=access.audience,
            http=http,
            retry=retry,
        )
    return Auth0Logs(base_url=access.base_url, tokens=tokens, http=http, retry=retry, pacer=pacer)


def tinybird_query(settings: Settings, *, http: HttpClient, retry: RetryPolicy) -> TinybirdQuery:
    """The reader, with ``TINYBIRD_READ_TOKEN`` (else ``TINYBIRD_TOKEN``)."""
    return TinybirdQuery(
        host=settings.tinybird_host,
        token=settings.tinybird_read_token or settings.require_tinybird(),
        datasource=settings.datasource,
        http=http,
        retry=retry,
    )


def tinybird_events(
    settings: Settings,
    *,
    http: HttpClient,
    retry: RetryPolicy,
    landed: Callable[[Batch], Awaitable[set[str]]] | None = None,
    check_first: bool = False,
    refuse_alone: bool = True,
) -> TinybirdEvents:
    """The sink. ``landed``: how to ask which rows of a batch are already in Tinybird
    (exactly-once resends); None when the token cannot read. ``check_first``: ask before every
    append, not only before a resend (--skip-existing). ``refuse_alone``: a row too large even
    alone is left out and reported (a state file records it), else the append stops."""
    return TinybirdEvents(
        host=settings.tinybird_host,
        token=settings.require_tinybird(),
        datasource=settings.datasource,
        http=http,
        retry=retry,
        landed=landed,
        settle=settings.resume_settle,
        check_first=check_first,
        refuse_alone=refuse_alone,
    )


@dataclass(frozen=True)
class Services:
    """What a run talks to: the tenant's logs, and the shared pool, retry policy and pacer."""

    settings: Settings
    http: HttpClient
    retry: RetryPolicy
    pacer: Pacer
    auth0: Auth0Logs


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    sleep: Callable[[float], Awaitable[None]],
    on_stop: Callable[[Callable[[], None]], None],
) -> AsyncIterator[Services]:
    retry = retry_policy(settings, sleep)
    pacer = Pacer(share=settings.rate_share)
    on_stop(pacer.stop)
    async with http_client(settings) as http:
        logs = auth0_logs(settings, http=http, retry=retry, pacer=pacer)
        yield Services(settings, http, retry, pacer, logs)
