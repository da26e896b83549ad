"""Management API tokens: one given (``AUTH0_TOKEN``), or one exchanged for client credentials.

The exchange is one ``POST /oauth/token`` (``grant_type=client_credentials``), sent through the
job's shared HTTP client, so it is bounded, retried and told apart (an unreachable host, a
refusal) exactly like every other request. (auth0-python, which did it before, sends through
``requests`` with no way to bound a whole request.) Its answers are judged where every Auth0
answer is (``answers.judge``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from backfill.auth0.answers import DOMAIN_SETTING, Purpose, judge
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy

log = logging.getLogger("backfill.auth0")


class TokenSource(Protocol):
    async def token(self) -> str: ...

    def invalidate(self, token: str) -> bool:
        """Forget a rejected token; True when a fresh one can be had."""
        ...


class StaticToken:
    """``AUTH0_TOKEN``: a token issued elsewhere. It cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    def invalidate(self, token: str) -> bool:
        return False


class ClientCredentialsToken:
    """A Management API token by client credentials, refreshed before it expires and on a 401."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        audience: str,
        http: HttpClient,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = f"{base_url}/oauth/token"
        self._client_id = client_id
        self._secret = client_secret
        self._audience = audience
        self._http = http
        self._retry = retry
        self._clock = clock
        self._lock = asyncio.Lock()  # one exchange at a time; the others wait for its token
        self._token: str | None = None
        self._refresh_at = 0.0

    async def token(self) -> str:
        async with self._lock:
            if self._token is not None and self._clock() < self._refresh_at:
                return self._token
            token, lifetime = await self._retry.call(
                self._exchange, service="Auth0", action="get a Management API token"
            )
            # Refresh at 90% of the lifetime (and at least a minute early on long ones).
            early = max(lifetime * 0.1, min(60.0, lifetime * 0.5))
            self._token, self._refresh_at = token, self._clock() + lifetime - early
            log.info("auth0_token issued=yes expires_in=%ds", lifetime)
            return token

    def invalidate(self, token: str) -> bool:
        if self._token == token:
            self._token = None
        return True

    async def _exchange(self) -> tuple[str, float]:
        response = await self._http.exchange(
            "POST",
            self._url,
            setting=DOMAIN_SETTING,
            json={
                "grant_type": "client_credentials",
                "client_id": self._client_id,
                "client_secret": self._secret,
                "audience": self._audience,
            },
        )
        body = judge(
            response, purpose=Purpose.TOKEN, client_id=self._client_id, audience=self._audience
        )
        lifetime = body.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else 86400.0
        return str(body["access_token"]), seconds
