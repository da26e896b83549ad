"""The one decision on a Tinybird answer: fine, retriable, or fatal (and what to do about it).

Every call the job makes to Tinybird (appends, the append probe of ``check``, queries, data source
details) is judged here, so a status means the same thing everywhere. What differs by purpose is
what a failure may have done: an append that failed on the way may have landed ("ambiguous",
checked before a resend); a query that failed did nothing.
"""

from __future__ import annotations

from enum import Enum

import httpx

from backfill.errors import (
    PartialWriteError,
    TinybirdAuthError,
    TinybirdNotFoundError,
    TinybirdRequestError,
    server_words,
)
from backfill.http.client import json_or_none
from backfill.http.retry import (
    TransientError,
    header,
    is_retryable_status,
    wait_from_reset_seconds,
    wait_from_retry_after,
)
from backfill.tinybird.region import region_hint

HOST_SETTING = "TINYBIRD_HOST (your workspace's region host, e.g. https://api.tinybird.co)"


class Purpose(Enum):
    APPEND = "append"  # POST /v0/events
    QUERY = "query"  # /v0/sql
    DETAILS = "read data source details"  # GET /v0/datasources/...


class TooLarge(Exception):
    """413: the batch must be split (only the sink knows how)."""


def judge(response: httpx.Response, *, purpose: Purpose, host: str, datasource: str) -> None:
    """Return on a 200; raise ``TransientError`` (retry), ``TooLarge`` (split) or the
    ``TinybirdError`` / ``PartialWriteError`` that stops the run."""
    status = response.status_code
    append = purpose is Purpose.APPEND
    if status == 200:
        return
    if status == 413 and append:
        raise TooLarge
    if status == 422 and append:
        raise PartialWriteError(
            f"Tinybird wrote this batch only in part (422: {error_text(response)}), most likely "
            f"because a materialized view on {datasource} failed.",
            hint="It was not resent (that could duplicate rows). Fix the materialized view, "
            "check the rows of this batch in Tinybird, then run again: the checkpoint is just "
            "before the batch.",
        )
    if status == 429:
        wait = wait_from_retry_after(header(response.headers, "retry-after"))
        if wait is None:
            wait = wait_from_reset_seconds(header(response.headers, "x-ratelimit-reset"))
        # Both are durations the server gives: one longer than the budget ends the retries.
        raise TransientError("429 (rate limited)", wait_hint=wait, binding=True)
    if append and (status == 202 or is_retryable_status(status)):
        raise TransientError(
            f"{status} {response.reason_phrase} from Tinybird (may have landed)", ambiguous=True
        )
    if is_retryable_status(status):
        raise TransientError(f"{status} {response.reason_phrase} from Tinybird")
    if status in (401, 403):
        if append:
            raise TinybirdAuthError(
                f"Tinybird refused TINYBIRD_TOKEN for appending to {datasource} at "
                f"{host} ({status}: {error_text(response)}).",
                hint=f"Use a token with DATASOURCES:APPEND on {datasource}.",
            )
        raise TinybirdAuthError(
            f"Tinybird refused the token to {purpose.value} at {host} "
            f"({status}: {error_text(response)}).",
            hint="Reading needs a token with DATASOURCES:READ on the data source "
            "(TINYBIRD_READ_TOKEN, or an append token that can also read).",
        )
    if status == 404:
        raise TinybirdNotFoundError(
            f"Tinybird at {host} answered 404 to an append to {datasource}: {error_text(response)}."
            if append
            else f"Tinybird at {host} answered 404 ({error_text(response)}).",
            hint=f"Check that {datasource} exists (TINYBIRD_DATASOURCE). " + region_hint(host),
        )
    if append:
        raise TinybirdRequestError(
            f"Tinybird refused an append to {datasource} ({status}: {error_text(response)}).",
            hint="Nothing from this batch was written. Check the data source's schema.",
        )
    raise TinybirdRequestError(
        f"Tinybird refused to {purpose.value} ({status}: {error_text(response)})."
    )


def error_text(response: httpx.Response) -> str:
    """Tinybird's ``{"error": ...}``, or the start of whatever else it answered."""
    body = json_or_none(response)
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:300]
    return server_words(response.text, response.reason_phrase)
