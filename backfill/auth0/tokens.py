"""Management API tokens: one given (``AUTH0_TOKEN``), or one exchanged for client credentials.

auth0-python does the exchange. Its answers are classified here, with the same statuses the
logs source treats as retriable (``retry.is_retryable_status``).
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Protocol

from backfill.errors import Auth0CredentialsError, Auth0RequestError, short
from backfill.retry import RetryPolicy, TransientError, is_retryable_status

log = logging.getLogger("backfill.auth0")


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
        timeout: float,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self._protocol = parts.scheme
        self._domain = parts.netloc
        self._client_id = client_id
        self._secret = client_secret
        self._audience = audience
        self._timeout = timeout
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
        # Imported here: auth0-python (and its HTTP stack) is only needed when exchanging.
        import requests
        from auth0.authentication import GetToken
        from auth0.authentication.exceptions import Auth0Error as LibraryAuth0Error
        from auth0.authentication.exceptions import RateLimitError

        client = GetToken(
            self._domain,
            self._client_id,
            client_secret=self._secret,
            protocol=self._protocol,
            timeout=self._timeout,
            telemetry=False,
        )
        try:
            answer = client.client_credentials(self._audience)
        except RateLimitError as error:
            wait = error.reset_at - time.time() if error.reset_at and error.reset_at > 0 else None
            raise TransientError("token endpoint rate limited (429)", wait_hint=wait) from None
        except LibraryAuth0Error as error:
            status = error.status_code or 0
            reason = short(f"{error.error_code}: {error.message}")
            if is_retryable_status(status):
                raise TransientError(f"token endpoint answered {status} {reason}") from None
            if status in (401, 403):
                raise Auth0CredentialsError(
                    f"Auth0 refused the client credentials of AUTH0_CLIENT_ID "
                    f"{self._client_id!r} at {self._domain} ({status} {reason}).",
                    hint="Check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET, that the application is "
                    "authorized for the Auth0 Management API, and that AUTH0_AUDIENCE (default "
                    f"{self._audience}) is the tenant's canonical domain.",
                ) from None
            raise Auth0RequestError(
                f"Auth0's token endpoint at {self._domain} answered {status} {reason}.",
                status=status,
                hint="Check AUTH0_DOMAIN: it must be the tenant's domain.",
            ) from None
        except requests.RequestException as error:
            raise TransientError(f"token endpoint unreachable: {type(error).__name__}") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise TransientError("token endpoint answered 200 without an access_token")
        lifetime = answer.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) else 86400.0
        return answer["access_token"], seconds
