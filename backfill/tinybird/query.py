"""Reading Tinybird: ``/v0/sql`` and the data source endpoints, with a token that can read.

What the job asks: which log_ids of a batch (or of an id span) are already in the data source or
its quarantine, so nothing acknowledged is sent twice.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from backfill.errors import TinybirdNotFoundError, TinybirdRequestError
from backfill.http.client import HttpClient, json_or_none
from backfill.http.retry import RetryPolicy, TransientError
from backfill.records.batches import Batch
from backfill.tinybird.answers import HOST_SETTING, Purpose, judge
from backfill.tinybird.sql import datetime_literal, string_literal


class TinybirdQuery:
    """``/v0/sql`` and ``/v0/datasources/<name>[.datasource]``."""

    def __init__(
        self, *, host: str, token: str, datasource: str, http: HttpClient, retry: RetryPolicy
    ) -> None:
        self.host = host
        self.datasource = datasource
        self._token = token
        self._http = http
        self._retry = retry
        self.calls = 0  # Query API requests made (Tinybird's Free plan allows 1,000 a day)
        self._quarantine: bool | None = None  # whether <datasource>_quarantine exists

    async def sql(self, sql: str) -> list[dict[str, Any]]:
        if "FORMAT" not in sql.upper().split()[-2:]:
            sql = f"{sql}\nFORMAT JSON"

        async def attempt() -> list[dict[str, Any]]:
            self.calls += 1
            response = await self._http.exchange(
                "POST",
                f"{self.host}/v0/sql",
                setting=HOST_SETTING,
                data={"q": sql},
                headers={"Authorization": f"Bearer {self._token}"},
            )
            judge(response, purpose=Purpose.QUERY, host=self.host, datasource=self.datasource)
            body = json_or_none(response)
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise TransientError("unreadable answer from /v0/sql")
            rows: list[dict[str, Any]] = body["data"]
            return rows

        return await self._retry.call(attempt, service="Tinybird", action="run a query")

    async def describe(self) -> dict[str, Any] | None:
        """The data source's details, None when it does not exist."""
        body = await self._get(f"/v0/datasources/{self.datasource}")
        if body is None:
            return None
        return json.loads(body) if body else {}

    async def datafile(self) -> str | None:
        """The data source's ``.datasource`` text (its jsonpaths included)."""
        return await self._get(f"/v0/datasources/{self.datasource}.datasource")

    async def _get(self, path: str) -> str | None:
        async def attempt() -> str | None:
            response = await self._http.exchange(
                "GET",
                self.host + path,
                setting=HOST_SETTING,
                headers={"Authorization": f"Bearer {self._token}"},
            )
            if response.status_code == 404:
                return None
            judge(response, purpose=Purpose.DETAILS, host=self.host, datasource=self.datasource)
            return response.text

        return await self._retry.call(attempt, service="Tinybird", action=f"read {path}")

    # -- what already landed ------------------------------------------------------------------

    async def landed_in(self, batch: Batch, *, slack: timedelta = timedelta(seconds=1)) -> set[str]:
        """Which of a batch's log_ids are already in the data source or its quarantine."""
        wanted = set(batch.log_ids())
        if not wanted:
            return set()
        # The span of its ids as the SQL compares them (strings): a batch's first and last rows
        # bound it when read in id order, not in an import's order (by month, then id).
        return wanted & await self.landed_between(
            min(wanted),
            max(wanted),
            _parse(batch.min_date),
            _parse(batch.max_date),
            slack=slack,
        )

    async def landed_between(
        self,
        first: str,
        last: str,
        min_date: datetime | None,
        max_date: datetime | None,
        *,
        slack: timedelta = timedelta(seconds=1),
    ) -> set[str]:
        """log_ids in ``[first, last]`` present in the data source or its quarantine."""
        span = f"log_id >= {string_literal(first)} AND log_id <= {string_literal(last)}"
        where = span
        if min_date is not None and max_date is not None:
            # Only to prune monthly partitions; the id span is what selects.
            where += (
                f" AND date >= {datetime_literal(min_date - slack)}"
                f" AND date <= {datetime_literal(max_date + slack)}"
            )
        rows = await self.with_quarantine(
            f"SELECT log_id FROM {self.datasource} WHERE {where}",
            f"SELECT log_id FROM {self.datasource}_quarantine WHERE log_id IS NOT NULL AND {span}",
        )
        return {str(row["log_id"]) for row in rows if row.get("log_id")}

    async def with_quarantine(self, own: str, quarantined: str) -> list[dict[str, Any]]:
        """The rows of ``own`` (a question of the data source) and of ``quarantined`` (the same
        of its quarantine, whose columns are all strings), in one query. A row Tinybird could
        not take was delivered all the same: whoever sent it must not send it again. The
        quarantine exists once a row went there; until then, ``own`` alone."""
        if self._quarantine is not False:
            try:
                rows = await self.sql(f"{own} UNION ALL {quarantined}")
                self._quarantine = True
                return rows
            except (TinybirdRequestError, TinybirdNotFoundError):
                if self._quarantine:
                    raise
                self._quarantine = False
        return await self.sql(own)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
