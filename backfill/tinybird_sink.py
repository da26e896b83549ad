"""The sink: Tinybird's Events API for appends, and its Query API for what already landed.

Appends are NDJSON, gzip, ``Authorization: Bearer`` (never ``?token=``: URLs end up in logs) and
``wait=true``, so a 200 means the database acknowledged the write. Every answer is classified here:
413 splits the batch in halves, 422 stops for good (retrying may duplicate), 429 and 5xx are
retried. A failure after which the rows may have landed anyway (a lost acknowledgement) is
"ambiguous": before the resend, the sink asks the Query API which rows landed and sends only the
rest, when it has a token that can read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from backfill.batches import Batch
from backfill.errors import (
    DataError,
    PartialWriteError,
    TinybirdAuthError,
    TinybirdNotFoundError,
    TinybirdRequestError,
)
from backfill.retry import (
    RetryPolicy,
    TransientError,
    header,
    is_retryable_status,
    wait_from_reset_seconds,
    wait_from_retry_after,
)
from backfill.settings import TINYBIRD_REGION_HOSTS
from backfill.timeutil import clickhouse_literal

log = logging.getLogger("backfill.tinybird")


@dataclass
class AppendResult:
    successful_rows: int = 0
    quarantined_rows: int = 0
    already_landed: int = 0  # rows found in Tinybird before a resend, and not sent again
    splits: int = 0

    def __iadd__(self, other: AppendResult) -> AppendResult:
        self.successful_rows += other.successful_rows
        self.quarantined_rows += other.quarantined_rows
        self.already_landed += other.already_landed
        self.splits += other.splits
        return self


class _TooLarge(Exception):
    pass


def region_hint(host: str) -> str:
    hosts = ", ".join(TINYBIRD_REGION_HOSTS)
    return (
        f"Either the data source does not exist in the workspace, or the token belongs to a "
        f"workspace in another region than {host}. Set TINYBIRD_HOST to your workspace's region "
        f"host (one of {hosts}) and check TINYBIRD_DATASOURCE."
    )


class TinybirdEvents:
    """Appends batches to one data source through ``POST /v0/events``."""

    def __init__(
        self,
        *,
        host: str,
        token: str,
        datasource: str,
        http: httpx.Client,
        retry: RetryPolicy,
        landed: Callable[[Batch], set[str]] | None = None,
        settle: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.datasource = datasource
        self._token = token
        self._http = http
        self._retry = retry
        self._landed = landed
        self._settle = settle
        self._clock = clock

    def append(self, batch: Batch) -> AppendResult:
        if batch.rows == 0:
            return AppendResult()
        try:
            return self._append_once(batch)
        except _TooLarge:
            if batch.rows == 1:
                raise DataError(
                    f"Tinybird refused log {batch.first_log_id} as too large (413), even alone.",
                    hint="That record cannot be sent through the Events API. The checkpoint is "
                    "just before it; run with --from-log-id past it to skip it knowingly.",
                ) from None
            first, second = batch.halves()
            log.warning(
                "batch_split reason=413 rows=%d into=%d+%d", batch.rows, first.rows, second.rows
            )
            result = self.append(first)
            result += self.append(second)
            result.splits += 1
            return result

    def _append_once(self, batch: Batch) -> AppendResult:
        current = batch
        doubt = False  # an earlier attempt may have landed
        skipped = 0
        started = 0.0

        def attempt() -> AppendResult:
            nonlocal current, doubt, skipped, started
            started = self._clock()
            if doubt and self._landed is not None:
                landed = self._landed(current)
                if landed:
                    before = current.rows
                    current = current.without(landed)
                    skipped += before - current.rows
                    log.info(
                        "resend_dedup rows_already_in_tinybird=%d rows_to_send=%d",
                        before - current.rows,
                        current.rows,
                    )
                if current.rows == 0:
                    return AppendResult(already_landed=skipped)
            try:
                response = self._http.post(
                    f"{self.host}/v0/events",
                    params={"name": self.datasource, "wait": "true"},
                    content=current.body,
                    headers={
                        "Authorization": f"Bearer {self._token}",
                        "Content-Type": "application/x-ndjson",
                        "Content-Encoding": "gzip",
                    },
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                raise TransientError(f"{type(error).__name__} (not sent)") from None
            except httpx.TransportError as error:
                raise TransientError(
                    f"{type(error).__name__} (may have landed)", ambiguous=True
                ) from None
            result = self._classify(response, current.rows)
            result.already_landed = skipped
            return result

        def attempt_or_ambiguous() -> AppendResult:
            nonlocal doubt
            try:
                return attempt()
            except TransientError as error:
                if not error.ambiguous:
                    raise
                doubt = True
                if self._landed is None:
                    raise
                # The lost append may still be landing: ask what landed only once it had time.
                settle = self._settle - (self._clock() - started)
                raise TransientError(
                    error.description,
                    ambiguous=True,
                    wait_hint=max(settle, error.wait_hint or 0.0) if settle > 0 else None,
                ) from None

        return self._retry.call(
            attempt_or_ambiguous,
            service="Tinybird",
            action=f"append {batch.rows} rows to {self.datasource}",
        )

    def _classify(self, response: httpx.Response, rows: int) -> AppendResult:
        status = response.status_code
        if status == 200:
            body = _json_or_none(response)
            if not isinstance(body, dict):
                # Acknowledged, but the counts were lost on the way: count every row as sent.
                log.warning("append_ack_unreadable status=200 body=%r", response.text[:120])
                return AppendResult(successful_rows=rows)
            return AppendResult(
                successful_rows=int(body.get("successful_rows") or 0),
                quarantined_rows=int(body.get("quarantined_rows") or 0),
            )
        if status == 413:
            raise _TooLarge
        if status == 422:
            raise PartialWriteError(
                f"Tinybird wrote this batch only in part (422: {_error(response)}), most likely "
                f"because a materialized view on {self.datasource} failed.",
                hint="It was not resent (that could duplicate rows). Fix the materialized view, "
                "check the rows of this batch in Tinybird, then run again: the checkpoint is just "
                "before the batch.",
            )
        if status == 429:
            wait = wait_from_retry_after(header(response.headers, "retry-after"))
            if wait is None:
                wait = wait_from_reset_seconds(header(response.headers, "x-ratelimit-reset"))
            raise TransientError("Tinybird rate limit (429)", wait_hint=wait)
        if status == 202 or is_retryable_status(status):
            raise TransientError(
                f"{status} {response.reason_phrase} from Tinybird (may have landed)", ambiguous=True
            )
        if status in (401, 403):
            raise TinybirdAuthError(
                f"Tinybird refused TINYBIRD_TOKEN for appending to {self.datasource} at "
                f"{self.host} ({status}: {_error(response)}).",
                hint=f"Use a token with DATASOURCES:APPEND on {self.datasource}.",
            )
        if status == 404:
            raise TinybirdNotFoundError(
                f"Tinybird at {self.host} answered 404 to an append to {self.datasource}: "
                f"{_error(response)}.",
                hint=region_hint(self.host),
            )
        raise TinybirdRequestError(
            f"Tinybird refused an append to {self.datasource} ({status}: {_error(response)}).",
            hint="Nothing from this batch was written. Check the data source's schema.",
        )


class TinybirdQuery:
    """``/v0/sql`` and the data source endpoints, with a token that can read."""

    def __init__(self, *, host: str, token: str, http: httpx.Client, retry: RetryPolicy) -> None:
        self.host = host
        self._token = token
        self._http = http
        self._retry = retry

    def sql(self, sql: str) -> list[dict[str, Any]]:
        if "FORMAT" not in sql.upper().split()[-2:]:
            sql = f"{sql}\nFORMAT JSON"

        def attempt() -> list[dict[str, Any]]:
            try:
                response = self._http.post(
                    f"{self.host}/v0/sql",
                    data={"q": sql},
                    headers={"Authorization": f"Bearer {self._token}"},
                )
            except httpx.TransportError as error:
                raise TransientError(f"{type(error).__name__} from /v0/sql") from None
            self._raise_for(response, "query")
            body = _json_or_none(response)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise TransientError("unreadable answer from /v0/sql")
            rows: list[dict[str, Any]] = body["data"]
            return rows

        return self._retry.call(attempt, service="Tinybird", action="run a query")

    def datasource(self, name: str) -> dict[str, Any] | None:
        body = self._get(f"/v0/datasources/{name}")
        if body is None:
            return None
        return json.loads(body) if body else {}

    def datafile(self, name: str) -> str | None:
        return self._get(f"/v0/datasources/{name}.datasource")

    def _get(self, path: str) -> str | None:
        def attempt() -> str | None:
            try:
                response = self._http.get(
                    self.host + path, headers={"Authorization": f"Bearer {self._token}"}
                )
            except httpx.TransportError as error:
                raise TransientError(f"{type(error).__name__} from {path}") from None
            if response.status_code == 404:
                return None
            self._raise_for(response, "read data source details")
            return response.text

        return self._retry.call(attempt, service="Tinybird", action=f"read {path}")

    def _raise_for(self, response: httpx.Response, action: str) -> None:
        status = response.status_code
        if status == 200:
            return
        if status == 429:
            wait = wait_from_retry_after(header(response.headers, "retry-after"))
            raise TransientError("Tinybird rate limit (429)", wait_hint=wait)
        if is_retryable_status(status):
            raise TransientError(f"{status} {response.reason_phrase} from Tinybird")
        if status in (401, 403):
            raise TinybirdAuthError(
                f"Tinybird refused the token to {action} at {self.host} "
                f"({status}: {_error(response)}).",
                hint="Reading needs a token with DATASOURCES:READ on the data source "
                "(TINYBIRD_READ_TOKEN, or an append token that can also read).",
            )
        if status == 404:
            raise TinybirdNotFoundError(
                f"Tinybird at {self.host} answered 404 ({_error(response)}).",
                hint=region_hint(self.host),
            )
        raise TinybirdRequestError(f"Tinybird refused to {action} ({status}: {_error(response)}).")


def landed_log_ids(
    query: TinybirdQuery, datasource: str, batch: Batch, *, slack: timedelta = timedelta(seconds=1)
) -> set[str]:
    """Which of a batch's log_ids are already in the data source or its quarantine."""
    wanted = set(batch.log_ids())
    if not wanted or batch.first_log_id is None or batch.last_log_id is None:
        return set()
    return wanted & log_ids_between(
        query,
        datasource,
        batch.first_log_id,
        batch.last_log_id,
        _parse(batch.min_date),
        _parse(batch.max_date),
        slack=slack,
    )


def log_ids_between(
    query: TinybirdQuery,
    datasource: str,
    first: str,
    last: str,
    min_date: datetime | None,
    max_date: datetime | None,
    *,
    slack: timedelta = timedelta(seconds=1),
) -> set[str]:
    """log_ids in ``[first, last]`` present in the data source or its quarantine."""
    span = f"log_id >= {quote(first)} AND log_id <= {quote(last)}"
    where = span
    if min_date is not None and max_date is not None:
        # Only to prune monthly partitions; the id span is what selects.
        where += (
            f" AND date >= {clickhouse_literal(min_date - slack)}"
            f" AND date <= {clickhouse_literal(max_date + slack)}"
        )
    found = {row["log_id"] for row in query.sql(f"SELECT log_id FROM {datasource} WHERE {where}")}
    try:
        quarantined = query.sql(
            f"SELECT log_id FROM {datasource}_quarantine WHERE log_id IS NOT NULL AND {span}"
        )
    except (TinybirdRequestError, TinybirdNotFoundError):
        quarantined = []
    found.update(row["log_id"] for row in quarantined if row.get("log_id"))
    return found


def quote(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except ValueError:
        return None


def _error(response: httpx.Response) -> str:
    body = _json_or_none(response)
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:300]
    return " ".join(response.text.split())[:160] or response.reason_phrase
