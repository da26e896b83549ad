"""The one decision on an Auth0 answer: a body to use, a ``TransientError`` to retry, or the
``Auth0Error`` that stops the run and says what to do. Every request the job makes to Auth0 (the
token, the logs, one log, the Log Streams) is judged here, so a status means the same thing
everywhere; what differs by purpose is only what a refusal means (client credentials refused
at the token endpoint, or a token refused by the API, or a missing scope).
"""

from __future__ import annotations

import json
from enum import Enum
from typing import Any

import httpx
import orjson

from backfill.errors import (
    Auth0CredentialsError,
    Auth0PermissionError,
    Auth0RequestError,
    DataError,
    server_words,
    short,
)
from backfill.http.client import json_or_none
from backfill.http.retry import (
    TransientError,
    header,
    is_retryable_status,
    wait_from_reset_epoch,
)

DOMAIN_SETTING = "AUTH0_DOMAIN (the tenant's domain, e.g. your-tenant.us.auth0.com)"
NOT_FOUND = object()  # what ``judge`` returns for a 404 the caller allows


class Purpose(Enum):
    TOKEN = "get a Management API token"  # POST /oauth/token
    LOGS = "read logs"  # GET /api/v2/logs, and /api/v2/logs/{id}
    STREAMS = "list log streams"  # GET /api/v2/log-streams


def judge(
    response: httpx.Response,
    *,
    purpose: Purpose,
    action: str | None = None,
    allow_404: bool = False,
    client_id: str = "",
    audience: str = "",
) -> Any:
    """The parsed JSON body of a 200 (``NOT_FOUND`` for an allowed 404); otherwise raise.

    On a 401 or 403 from the API the caller gets a new token once before it gives up.
    ``client_id`` and ``audience``: what a refused token request is told to check.
    """
    status = response.status_code
    action = action or purpose.value
    where = response.request.url
    if status == 200:
        # Parsed here: a truncated transfer is a transient failure like any other.
        body = _parse(response, where.path)
        if purpose is Purpose.TOKEN and not (
            isinstance(body, dict) and isinstance(body.get("access_token"), str)
        ):
            raise TransientError("token endpoint answered 200 without an access_token")
        return body
    if status == 429:
        wait = wait_from_reset_epoch(header(response.headers, "x-ratelimit-reset"))
        what = "token endpoint rate limited" if purpose is Purpose.TOKEN else "rate limited"
        raise TransientError(f"{what} (429)", wait_hint=wait)
    if is_retryable_status(status):
        raise TransientError(f"{status} {short(response.reason_phrase)} from {where.path}")
    if purpose is Purpose.TOKEN:
        _refused_token(response, client_id, audience)
    if status == 401:
        raise Auth0CredentialsError(
            f"Auth0 rejected the Management API token ({describe(response)}).",
            hint="If AUTH0_TOKEN is set it has probably expired: unset it to use client "
            "credentials, or issue a new one.",
        )
    if status == 403:
        scope = "read:log_streams" if purpose is Purpose.STREAMS else "read:logs"
        raise Auth0PermissionError(
            f"Auth0 refused to {action}: {describe(response)}.",
            hint=f"The token lacks the {scope} scope. In the Auth0 Dashboard, open "
            "Applications > APIs > Auth0 Management API > Machine to Machine Applications, "
            f"and grant {scope} to this application.",
        )
    if status == 404 and allow_404:
        return NOT_FOUND
    if status == 404:
        raise Auth0RequestError(
            f"Auth0 answered 404 for {where.scheme}://{where.netloc.decode()}{where.path}.",
            status=status,
            hint="Check AUTH0_DOMAIN: it must be the tenant's domain "
            "(e.g. your-tenant.us.auth0.com).",
        )
    raise Auth0RequestError(
        f"Auth0 answered {status} when asked to {action}: {describe(response)}.", status=status
    )


def _refused_token(response: httpx.Response, client_id: str, audience: str) -> None:
    """The token endpoint refused the client credentials (401, 403) or the request."""
    status = response.status_code
    domain = response.request.url.netloc.decode()
    if status in (401, 403):
        raise Auth0CredentialsError(
            f"Auth0 refused the client credentials of AUTH0_CLIENT_ID {client_id!r} at {domain} "
            f"({describe(response)}).",
            hint="Check AUTH0_CLIENT_ID and AUTH0_CLIENT_SECRET, that the application is "
            "authorized for the Auth0 Management API, and that AUTH0_AUDIENCE (default "
            f"{audience}) is the tenant's canonical domain.",
        )
    raise Auth0RequestError(
        f"Auth0's token endpoint at {domain} answered {describe(response)}.",
        status=status,
        hint="Check AUTH0_DOMAIN: it must be the tenant's domain.",
    )


def describe(response: httpx.Response) -> str:
    """An Auth0 error answer in a few words: its status and the body's words (the API's
    ``error``, ``message``, ``errorCode``; the token endpoint's ``error_description``), or for
    anything else (an HTML page from a proxy) its text or title."""
    body = json_or_none(response)
    if isinstance(body, dict):
        keys = ("error", "error_description", "message", "errorCode")
        parts = [str(body[key]) for key in keys if body.get(key)]
        if parts:
            return f"{response.status_code} {short(': '.join(parts))}"
    return f"{response.status_code} {server_words(response.text, response.reason_phrase)}"


def _parse(response: httpx.Response, path: str) -> Any:
    try:
        return parse_json(response.content)
    except ValueError:
        raise TransientError(f"truncated or non-JSON body from {path}") from None


def parse_json(content: bytes) -> Any:
    """Parse a body exactly, the way the standard library does, at orjson's speed.

    orjson parses a page in a third of the time, and identically except for integers beyond 64
    bits, which it silently turns into floats. Such a number is a run of 19 digits or more right
    after ``[``, ``:``, ``,``, ``-`` or whitespace; a page with a run like that (rare: ids inside
    strings follow a quote or a ``|``) is parsed by the standard library, as is one orjson
    refuses (NaN and Infinity, lone surrogates, a truncated body). NaN and Infinity, which the
    standard library would accept, are refused: they are not JSON.
    """
    if not _may_hold_big_integer(content):
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError:
            pass  # the standard library decides: it explains, accepts or refuses
    return json.loads(content, parse_constant=_not_json)


def _number_classes() -> bytes:
    """A translation table: digits to ``0``, what may come right before a number to ``1``."""
    table = bytearray(b"2" * 256)
    for byte in b"0123456789":
        table[byte] = ord("0")
    for byte in b"[:,- \t\r\n":
        table[byte] = ord("1")
    return bytes(table)


_NUMBER_CLASSES = _number_classes()
_BIG_INTEGER_RUN = b"0" * 19  # 19 digits: the shortest integer that may not fit in 64 bits


def _may_hold_big_integer(content: bytes) -> bool:
    """Whether the body may hold an integer of 19 digits or more (in C: translate and find)."""
    classes = content.translate(_NUMBER_CLASSES)
    return classes.startswith(_BIG_INTEGER_RUN) or b"1" + _BIG_INTEGER_RUN in classes


def _not_json(constant: str) -> Any:
    """NaN and Infinity are not JSON; the standard library would accept them: refuse."""
    raise DataError(
        f"Auth0 sent {constant} in a log record, which is not a JSON number.",
        hint="Stopped before sending it; the checkpoint is intact. Report it to Auth0 support.",
    )
