"""Management API tokens: one given (``AUTH0_TOKEN``), or one exchanged for client credentials.

The exchange is one ``POST /oauth/token`` (``grant_type=client_credentials``), sent through the
job's shared HTTP client, so it is bounded, retried and told apart (an unreachable host, a
refusal) exactly like every other request. (auth0-python, which did it before, sends through
``requests`` with no way to bound a whole request.) Answers are classified here, with the same
statuses the logs source treats as retriable (``retry.is_retryable_status``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from backfill.errors import Auth0CredentialsError, Auth0RequestError, server_words, short
from backfill.http import transport
from backfill.http.retry import (
    RetryPolicy,
    TransientError,
    header,
    is_retryable_status,
    wait_from_reset_epoch,
)

log = logging.getLogger("backfill.auth0")

DOMAIN_SETTING = "AUTH0_DOMAIN (the tenant's domain, e.g. your-tenant.us.auth0.com)"


class TokenSource(Protocol):
    def token(self) -> str: ...

    def invalidate(self, token: str) -> bool:
        """Forget a rejected token; True when a fresh one can be had."""
        ...


class StaticToken:
    """``AUTH0_TOKEN``: a token issued elsewhere. It cannot be refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    def token(self) -> str:
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
        http: httpx.Client,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = f"{base_url}/oauth/token"
        self._domain = urllib.parse.urlsplit(base_url).netloc
        self._client_id = client_id
        self._secret = client_secret
        self._audience = audience
        self._http = http
        self._retry = retry
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._token, lifetime = self._retry.call(
                    self._exchange, service="Auth0", action="get a Management API token"
                )
                # Refresh at 90% of the lifetime (and at least a minute early on long ones).
                early = max(lifetime * 0.1, min(60.0, lifetime * 0.5))
                self._refresh_at = self._clock() + lifetime - early
                log.info("auth0_token issued=yes expires_in=%ds", lifetime)
            return self._token

    def invalidate(self, token: str) -> bool:
        with self._lock:
            if self._token == token:
                self._token = None
        return True

    def _exchange(self) -> tuple[str, float]:
        try:
            response = self._http.post(
                self._url,
                json={
                    "grant_type": "client_credentials",
                    "client_id": self._client_id,
                    "client_secret": self._secret,
                    "audience": self._audience,
                },
            )
        except httpx.TransportError as error:
            raise transport.transient(
                error,
                f"token endpoint unreachable ({type(error).__name__})",
                setting=DOMAIN_SETTING,
            ) from None
        status = response.status_code
        body = _json(response)
        if status == 200:
            if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
                raise TransientError("token endpoint answered 200 without an access_token")
            lifetime = body.get("expires_in")
            seconds = float(lifetime) if isinstance(lifetime, int | float) else 86400.0
            return body["access_token"], seconds
        reason = _reason(response, body)
        if status == 429:
            wait = wait_from_reset_epoch(header(response.headers, "x-ratelimit-reset"))
            raise TransientError("token endpoint rate limited (429)", wait_hint=wait)
        if is_retryable_status(status):
            raise TransientError(f"token endpoint answered {status} {reason}")
        if status in (401, 403):
            raise Auth0CredentialsError(
                f"Auth0 refused the client credentials of AUTH0_CLIENT_ID "
                f"{self._client_id!r} at {self._domain} ({status} {reason}).",
                hint="Check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET, that the application is "
                "authorized for the Auth0 Management API, and that AUTH0_AUDIENCE (default "
                f"{self._audience}) is the tenant's canonical domain.",
            )
        raise Auth0RequestError(
            f"Auth0's token endpoint at {self._domain} answered {status} {reason}.",
            status=status,
            hint="Check AUTH0_DOMAIN: it must be the tenant's domain.",
        )


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _reason(response: httpx.Response, body: Any) -> str:
    """Auth0's ``error: error_description``, or the start of whatever else it answered."""
    if isinstance(body, dict) and (body.get("error") or body.get("error_description")):
        parts = [str(body[key]) for key in ("error", "error_description") if body.get(key)]
        return short(": ".join(parts))
    return server_words(response.text, response.reason_phrase)
