"""The sink: Tinybird's Events API.

Appends are NDJSON, gzip, ``Authorization: Bearer`` (never ``?token=``: URLs end up in logs) and
``wait=true``, so a 200 means the database acknowledged the write. Answers are judged in
``answers``: 413 splits the batch in halves, down to single rows (a row refused even alone is left
out and reported, ``refuse_alone``, so every other row of the batch still lands and is recorded;
without a state file to hold it, the append stops there instead), 422 stops for good (retrying
may duplicate), 429 and 5xx are retried. A failure after which the rows may have landed anyway
(a lost acknowledgement) is "ambiguous": before the resend, the sink asks which rows landed
(``landed``, a Query API lookup) and sends only the rest, when it has a token that can read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from backfill.errors import RowsRefusedError
from backfill.http.client import HttpClient, json_or_none
from backfill.http.retry import RetryPolicy, TransientError
from backfill.records.batches import Batch
from backfill.tinybird.answers import HOST_SETTING, Purpose, TooLarge, judge

log = logging.getLogger("backfill.tinybird")


@dataclass(frozen=True)
class LeftOutRow:
    """A row of a batch that was not sent: ``refused`` by Tinybird as too large even alone, or
    ``skipped`` (``--skip-log-id``)."""

    log_id: str
    date: str | None  # its stamp, for the day ledger
    why: str  # "refused" or "skipped"


@dataclass
class AppendResult:
    successful_rows: int = 0
    quarantined_rows: int = 0
    already_in_tinybird: int = 0  # rows found in Tinybird before a resend, and not sent again
    left_out: list[LeftOutRow] = field(default_factory=list)

    def __iadd__(self, other: AppendResult) -> AppendResult:
        self.successful_rows += other.successful_rows
        self.quarantined_rows += other.quarantined_rows
        self.already_in_tinybird += other.already_in_tinybird
        self.left_out.extend(other.left_out)
        return self


class TinybirdEvents:
    """Appends batches to one data source through ``POST /v0/events``."""

    def __init__(
        self,
        *,
        host: str,
        token: str,
        datasource: str,
        http: HttpClient,
        retry: RetryPolicy,
        landed: Callable[[Batch], Awaitable[set[str]]] | None = None,
        settle: float = 5.0,
        check_first: bool = False,
        refuse_alone: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.datasource = datasource
        self._token = token
        self._http = http
        self._retry = retry
        self._landed = landed
        self._settle = settle
        self._check_first = check_first and landed is not None
        self._refuse_alone = refuse_alone
        self._clock = clock

    async def probe(self) -> None:
        """An empty append: proves the token, its region and its right to append, writes
        nothing. Raises as an append would (``answers.judge``)."""
        response = await self._post(b"", gzip=False)
        if response.status_code != 202:  # accepted is enough: there is nothing to acknowledge
            judge(response, purpose=Purpose.APPEND, host=self.host, datasource=self.datasource)

    async def append(self, batch: Batch) -> AppendResult:
        if batch.rows == 0:
            return AppendResult()
        try:
            return await self._append_once(batch)
        except TooLarge:
            if batch.rows == 1:
                return self._refused(batch)
            first, second = batch.halves()
            log.warning(
                "batch_split reason=413 rows=%d into=%d+%d", batch.rows, first.rows, second.rows
            )
            result = await self.append(first)
            result += await self.append(second)
            return result

    def _refused(self, batch: Batch) -> AppendResult:
        log_id = str(batch.first_log_id)
        log.warning("row_refused log_id=%s reason=413 bytes=%d", log_id, batch.raw_bytes)
        if not self._refuse_alone:
            raise RowsRefusedError(
                f"Tinybird refused log {log_id} as too large (413), even alone: it cannot be "
                "sent through the Events API. Nothing after it was sent.",
                log_ids=[log_id],
                hint=f"Run the same command with --skip-log-id {log_id} to go on without it.",
            )
        return AppendResult(left_out=[LeftOutRow(log_id, batch.min_date, "refused")])

    async def _post(self, body: bytes, *, gzip: bool = True) -> httpx.Response:
        """One append; a failure on the way is a ``TransientError`` ("may have landed" once
        it was sent)."""
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "application/x-ndjson",
        }
        if gzip:
            headers["Content-Encoding"] = "gzip"
        return await self._http.exchange(
            "POST",
            f"{self.host}/v0/events",
            setting=HOST_SETTING,
            effects=True,
            params={"name": self.datasource, "wait": "true"},
            content=body,
            headers=headers,
        )

    async def _append_once(self, batch: Batch) -> AppendResult:
        current = batch
        # Rows may be there already: an earlier attempt may have landed, or (--skip-existing)
        # another writer, such as the live stream, sent them.
        doubt = self._check_first
        skipped = 0
        started = 0.0

        async def attempt() -> AppendResult:
            nonlocal current, doubt, skipped, started
            started = self._clock()
            if doubt and self._landed is not None:
                landed = await self._landed(current)
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
                    return AppendResult(already_in_tinybird=skipped)
            response = await self._post(current.body)
            judge(response, purpose=Purpose.APPEND, host=self.host, datasource=self.datasource)
            result = _counts(response, current.rows)
            result.already_in_tinybird = skipped
            return result

        async def attempt_or_ambiguous() -> AppendResult:
            nonlocal doubt
            try:
                return await attempt()
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

        return await self._retry.call(
            attempt_or_ambiguous,
            service="Tinybird",
            action=f"append {batch.rows} rows to {self.datasource}",
        )


def _counts(response: httpx.Response, rows: int) -> AppendResult:
    """The counts of an acknowledged append (a 200)."""
    body = json_or_none(response)
    if not isinstance(body, dict):
        # Acknowledged, but the counts were lost on the way: count every row as sent.
        log.warning("append_ack_unreadable status=200 body=%r", response.text[:120])
        return AppendResult(successful_rows=rows)
    return AppendResult(
        successful_rows=int(body.get("successful_rows") or 0),
        quarantined_rows=int(body.get("quarantined_rows") or 0),
    )
