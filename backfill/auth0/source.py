"""The source: ``GET /api/v2/logs`` by checkpoint and by search, one log, and the Log Streams.

Tokens come from ``tokens``. auth0-python's ``logs.list()`` cannot page by checkpoint (no
``from``/``take``, and its model rejects array scopes), so the logs are read over HTTP, through
the job's one client (``http.client.HttpClient.exchange``). Every request goes through the shared
pacer and the shared retry policy; every answer is judged in one place, ``answers.judge``: a
body to use, a permanent error that says what to do, or a transient failure to retry.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Mapping
from typing import Any

from backfill.auth0.answers import DOMAIN_SETTING, NOT_FOUND, Purpose, judge
from backfill.auth0.log_ids import order_key
from backfill.auth0.pacer import Pacer
from backfill.auth0.tokens import TokenSource
from backfill.errors import Auth0CredentialsError, Auth0PermissionError, DataError
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy, TransientError

log = logging.getLogger("backfill.auth0")

Record = dict[str, Any]
PAGE_SIZE = 100  # Auth0's maximum for take and per_page


class Auth0Logs:
    """``GET /api/v2/logs`` by checkpoint and by search, and ``GET /api/v2/logs/{id}``."""

    def __init__(
        self,
        *,
        base_url: str,
        tokens: TokenSource,
        http: HttpClient,
        retry: RetryPolicy,
        pacer: Pacer,
    ) -> None:
        self.base_url = base_url
        self._tokens = tokens
        self._http = http
        self._retry = retry
        self._pacer = pacer

    # -- checkpoint paging --------------------------------------------------------------------

    async def page_after(self, checkpoint: str, take: int = PAGE_SIZE) -> list[Record]:
        """Up to ``take`` logs with log_id after ``checkpoint``, in log_id order."""
        records = await self._get_json_array(
            "/api/v2/logs",
            {"from": checkpoint, "take": take},
            action=f"read logs after {checkpoint}",
        )
        _check_advances(checkpoint, records)
        return records

    # -- search mode --------------------------------------------------------------------------

    async def search(
        self,
        *,
        q: str | None = None,
        sort: str = "date:1",
        per_page: int = PAGE_SIZE,
        page: int = 0,
    ) -> list[Record]:
        params: dict[str, Any] = {"sort": sort, "per_page": per_page, "page": page}
        if q:
            params["q"] = q
        records = await self._get_json_array("/api/v2/logs", params, action="search logs")
        for record in records:
            _require_log_id(record)
        return records

    async def oldest(self) -> Record | None:
        """The oldest log Auth0 still retains, by log_id (the order checkpoint paging follows)."""
        return oldest_of(await self.oldest_page())

    async def oldest_page(self) -> list[Record]:
        """The oldest logs Auth0 still retains, a page of them by date."""
        return await self.search(sort="date:1", per_page=PAGE_SIZE)

    async def newest_page(self) -> list[Record]:
        """The newest logs, a page of them by date: where the tenant's logs end, and how dense
        they are there."""
        return await self.search(sort="date:-1", per_page=PAGE_SIZE)

    async def get(self, log_id: str) -> Record | None:
        path = f"/api/v2/logs/{urllib.parse.quote(log_id)}"
        body = await self._request(path, {}, f"read log {log_id}", allow_404=True)
        if body is NOT_FOUND:
            return None
        if not isinstance(body, dict):
            raise DataError(
                f"Auth0 answered GET /api/v2/logs/{log_id} with something not an object."
            )
        _require_log_id(body)
        return body

    async def log_streams(self) -> list[Record] | None:
        """The tenant's Log Streams, or None when the token may not list them (or the
        endpoint is not there: a proxy, an emulator without it)."""
        try:
            body = await self._request(
                "/api/v2/log-streams", {}, "list log streams", allow_404=True
            )
        except Auth0PermissionError:
            return None
        if body is NOT_FOUND:
            return None
        return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []

    # -- one request ----------------------------------------------------------------------------

    async def _get_json_array(
        self, path: str, params: Mapping[str, Any], *, action: str
    ) -> list[Record]:
        body = await self._request(path, params, action)
        if not isinstance(body, list):
            shape = type(body).__name__
            raise DataError(
                f"Auth0 answered {path} with a JSON {shape}, not an array of logs "
                f"(while trying to {action}).",
                hint="The checkpoint was not moved. Check AUTH0_DOMAIN points at the tenant.",
            )
        return body

    async def _request(
        self, path: str, params: Mapping[str, Any], action: str, *, allow_404: bool = False
    ) -> Any:
        """The parsed JSON body of a 200 (``NOT_FOUND`` for an allowed 404), retried as the
        policy says; a rejected token is replaced once."""
        refreshed = False
        purpose = Purpose.STREAMS if path.startswith("/api/v2/log-streams") else Purpose.LOGS

        async def attempt() -> Any:
            nonlocal refreshed
            token = await self._tokens.token()
            ticket = await self._pacer.acquire()
            try:
                response = await self._http.exchange(
                    "GET",
                    self.base_url + path,
                    setting=DOMAIN_SETTING,
                    params=params,
                    headers={"Authorization": f"Bearer {token}"},
                )
            except BaseException:  # no answer (a cancelled request too): forget its ticket
                self._pacer.forget(ticket)
                raise
            self._pacer.observe(ticket, response.status_code, response.headers)
            try:
                return judge(response, purpose=purpose, action=action, allow_404=allow_404)
            except (Auth0CredentialsError, Auth0PermissionError) as error:
                # A 401, or a 403 after a scope was granted or removed since the token was
                # issued: a new token once, then the refusal stands.
                if refreshed or not self._tokens.invalidate(token):
                    raise
                refreshed = True
                status = 401 if isinstance(error, Auth0CredentialsError) else 403
                raise TransientError(
                    f"token rejected ({status}), refreshing it", immediate=True
                ) from None

        return await self._retry.call(attempt, service="Auth0", action=action)


def oldest_of(page: list[Record]) -> Record | None:
    """The oldest log of a page searched by date, by log_id: search mode sorts by date, which
    may differ from log_id order by a few seconds, so the smallest id among the page."""
    if not page:
        return None
    return min(page, key=lambda record: order_key(record["log_id"]))


def _require_log_id(record: object) -> str:
    if not isinstance(record, dict):
        raise DataError("Auth0 answered with an array of logs holding a non-object.")
    log_id = record.get("log_id")
    if not isinstance(log_id, str) or not log_id:
        raise DataError(
            "Auth0 returned a log record without a log_id "
            f"(type={record.get('type')!r}, date={record.get('date')!r}).",
            hint="The checkpoint was not moved past it. Report the record to Auth0 support.",
        )
    return log_id


def _check_advances(checkpoint: str, records: list[Record]) -> None:
    """The page must move strictly forward: a cursor that does not advance is an error."""
    previous = checkpoint
    for record in records:
        log_id = _require_log_id(record)
        # Ids of one width compare as strings (the common case, and cheap); others by order_key.
        if len(log_id) == len(previous) and log_id.isdigit():
            advanced = log_id > previous
        else:
            advanced = order_key(log_id) > order_key(previous)
        if not advanced:
            raise DataError(
                f"Auth0's checkpoint paging did not advance: asked for logs after {checkpoint}, "
                f"got {log_id} after {previous}.",
                hint="Stopped instead of looping; the checkpoint is intact. Report this to "
                "Auth0 support with both ids.",
            )
        previous = log_id
