"""``check``: will a backfill work? One result per check, before a long run starts.

Auth0: the credentials work and carry ``read:logs``; the oldest log Auth0 still has (the window a
backfill can reach). Tinybird: the token is valid for this host's region, the data source
exists, its jsonpaths match the envelope this job writes, and appending is allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from backfill.auth0_source import Auth0Logs
from backfill.datafile import Datafile, DatafileError, parse_datafile, seed_datafile_text
from backfill.errors import (
    Auth0CredentialsError,
    Auth0PermissionError,
    BackfillError,
    TinybirdAuthError,
    TinybirdNotFoundError,
)
from backfill.timeutil import humanize, parse_record_date, utcnow
from backfill.tinybird_sink import TinybirdQuery, region_hint

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"


@dataclass
class CheckResult:
    name: str
    status: str
    detail: str

    def line(self) -> str:
        return f"{self.status.upper():<4}  {self.name:<22}  {self.detail}"


def schema_differences(actual: Datafile, expected: Datafile) -> list[str]:
    """How a data source's columns differ from the seed's, as the envelope is read."""
    problems = []
    for column in expected.columns:
        found = actual.column(column.name)
        if found is None:
            problems.append(f"column {column.name} ({column.jsonpath}) is missing")
        elif found.jsonpath != column.jsonpath:
            where = found.jsonpath or f"no jsonpath, DEFAULT {found.default}"
            problems.append(f"column {column.name} reads {where}, not {column.jsonpath}")
        elif _plain(found.type) != _plain(column.type):
            problems.append(f"column {column.name} is {found.type}, not {column.type}")
    for column in actual.columns:
        if expected.column(column.name) is None and column.jsonpath is None and column.default:
            problems.append(
                f"column {column.name} has no jsonpath and DEFAULT {column.default}: it records "
                "ingestion time, which for a backfill is not when the event happened"
            )
    return problems


def _plain(type_name: str) -> str:
    return type_name.replace(" ", "")


class Preflight:
    def __init__(
        self,
        *,
        logs: Auth0Logs | None,
        query: TinybirdQuery | None,
        append_probe: Callable[[], httpx.Response] | None,
        host: str,
        datasource: str,
    ) -> None:
        self._logs = logs
        self._query = query
        self._append_probe = append_probe
        self._host = host
        self._datasource = datasource
        self.results: list[CheckResult] = []

    def run(self) -> list[CheckResult]:
        self._auth0()
        self._tinybird()
        return self.results

    def _add(self, name: str, status: str, detail: str) -> None:
        self.results.append(CheckResult(name, status, detail))

    # -- Auth0 ----------------------------------------------------------------------------------

    def _auth0(self) -> None:
        if self._logs is None:
            self._add("auth0.credentials", SKIP, "no Auth0 settings")
            return
        try:
            oldest = self._logs.oldest()
        except Auth0CredentialsError as error:
            self._add("auth0.credentials", FAIL, str(error))
            self._add("auth0.read_logs", SKIP, "needs working credentials")
            return
        except Auth0PermissionError as error:
            self._add("auth0.credentials", PASS, "a Management API token was issued")
            self._add("auth0.read_logs", FAIL, str(error))
            return
        except BackfillError as error:
            self._add("auth0.credentials", FAIL, str(error))
            return
        self._add("auth0.credentials", PASS, "a Management API token was issued")
        self._add("auth0.read_logs", PASS, "GET /api/v2/logs answered: the token has read:logs")
        if oldest is None:
            self._add("auth0.oldest_log", WARN, "the tenant has no logs at all")
            return
        date = parse_record_date(oldest.get("date"))
        age = f", {humanize(utcnow() - date)} ago" if date else ""
        self._add(
            "auth0.oldest_log",
            PASS,
            f"{oldest.get('date')}{age} (log_id {oldest['log_id']}): a backfill reaches back "
            "this far, no further",
        )

    # -- Tinybird -------------------------------------------------------------------------------

    def _tinybird(self) -> None:
        if self._query is None or self._append_probe is None:
            self._add("tinybird.token", SKIP, "TINYBIRD_TOKEN is not set")
            return
        appended = self._probe_append()
        try:
            described = self._query.datasource(self._datasource)
            datafile_text = self._query.datafile(self._datasource)
        except TinybirdAuthError:
            self._add(
                "tinybird.datasource",
                SKIP if appended else FAIL,
                "the token cannot read data source details (DATASOURCES:READ); "
                "set TINYBIRD_READ_TOKEN to check the schema",
            )
            return
        except TinybirdNotFoundError as error:
            self._add("tinybird.region", FAIL, str(error))
            return
        if described is None:
            self._add(
                "tinybird.datasource",
                FAIL,
                f"no data source {self._datasource!r} at {self._host}: create it from "
                "tinybird/datasources/auth0.datasource",
            )
            return
        rows = _row_count(described)
        self._add(
            "tinybird.datasource",
            PASS,
            f"{self._datasource} exists" + (f" ({rows:,} rows)" if rows is not None else ""),
        )
        self._schema(datafile_text)

    def _probe_append(self) -> bool:
        """An empty append: proves the token, the region and the right to append, writes nothing."""
        assert self._append_probe is not None
        try:
            response = self._append_probe()
        except httpx.HTTPError as error:
            self._add("tinybird.token", FAIL, f"{self._host} unreachable: {type(error).__name__}")
            return False
        status = response.status_code
        if status in (200, 202):
            self._add("tinybird.token", PASS, f"valid for {self._host}")
            self._add("tinybird.append", PASS, f"appending to {self._datasource} is allowed")
            return True
        if status == 404:
            self._add(
                "tinybird.token",
                FAIL,
                f"{self._host} answered 404: {_error(response)}. " + region_hint(self._host),
            )
        elif status in (401, 403):
            self._add("tinybird.token", PASS, f"recognised by {self._host}")
            self._add(
                "tinybird.append",
                FAIL,
                f"refused ({status}: {_error(response)}): the token needs DATASOURCES:APPEND "
                f"on {self._datasource}",
            )
        else:
            self._add("tinybird.append", FAIL, f"{status}: {_error(response)}")
        return False

    def _schema(self, datafile_text: str | None) -> None:
        if datafile_text is None:
            self._add("tinybird.schema", WARN, "the data source's datafile could not be read")
            return
        try:
            actual = parse_datafile(datafile_text)
        except DatafileError as error:
            self._add("tinybird.schema", WARN, f"the datafile could not be understood: {error}")
            return
        differences = schema_differences(actual, parse_datafile(seed_datafile_text()))
        if not differences:
            self._add(
                "tinybird.schema", PASS, "jsonpaths match the Log Stream envelope this job writes"
            )
            return
        self._add(
            "tinybird.schema",
            WARN,
            "differs from the seed schema (tinybird/datasources/auth0.datasource): "
            + "; ".join(differences),
        )


def _row_count(described: dict[str, Any]) -> int | None:
    statistics = described.get("statistics")
    if isinstance(statistics, dict):
        rows = statistics.get("row_count")
        if isinstance(rows, int):
            return rows
    return None


def _error(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:160]
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:200]
    return response.reason_phrase


def exit_status(results: list[CheckResult]) -> bool:
    """True when nothing failed (warnings pass)."""
    return all(result.status != FAIL for result in results)
