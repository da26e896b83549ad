"""``check``: will a backfill work? One result per check, before a long run starts.

Auth0: the credentials work and carry ``read:logs``; the oldest log Auth0 still has (the window a
backfill can reach). Tinybird: the token is valid for this host's region, the data source
exists, its jsonpaths match the envelope this job writes, and appending is allowed.

Every check has its line, whatever happens to the others: a service that cannot be reached fails
its first check and skips the rest of its own. Requests are short here (``for_check``): a host
that does not answer ends ``check`` within seconds, not after the run's long retries.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Any

from backfill.auth0.pacer import Pacer
from backfill.auth0.source import Auth0Logs
from backfill.auth0.streams import feeding
from backfill.clients import auth0_logs, http_client, retry_policy, tinybird_events, tinybird_query
from backfill.config.settings import Settings
from backfill.errors import (
    Auth0CredentialsError,
    Auth0PermissionError,
    BackfillError,
    ConfigError,
    TinybirdAuthError,
    TinybirdError,
    TinybirdNotFoundError,
)
from backfill.http.retry import TransientError
from backfill.run.mirror import BACKLOG
from backfill.timeutil import humanize, parse_record_date, utcnow
from backfill.tinybird.datafile import Datafile, DatafileError, parse_datafile, seed_datafile_text
from backfill.tinybird.events import TinybirdEvents
from backfill.tinybird.query import TinybirdQuery

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"

# check's requests: each bounded as a whole by 5 s, tried at most twice within 6 s.
CHECK_TIMEOUT, CHECK_ATTEMPTS, CHECK_SECONDS = 5.0, 2, 6.0


def for_check(settings: Settings) -> Settings:
    """The settings with short requests and no long retries: check answers within seconds."""
    return replace(
        settings,
        http_timeout=min(settings.http_timeout, CHECK_TIMEOUT),
        retry_attempts=min(settings.retry_attempts, CHECK_ATTEMPTS),
        retry_seconds=min(settings.retry_seconds, CHECK_SECONDS),
    )


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


async def run_checks(settings: Settings) -> list[CheckResult]:
    """Every preflight check for one tenant; missing settings are failed checks, not a crash."""
    settings = for_check(settings)
    results: list[CheckResult] = []
    for name, missing in (
        ("auth0.settings", settings.require_auth0),
        ("tinybird.settings", settings.require_tinybird),
    ):
        try:
            missing()
        except ConfigError as error:
            results.append(CheckResult(name, FAIL, error.message))
    results.append(
        CheckResult(
            "tinybird.host",
            WARN if settings.tinybird_host_warning else PASS,
            settings.tinybird_host_warning
            or f"{settings.tinybird_host} ({settings.tinybird_host_reason})",
        )
    )
    async with http_client(settings) as http:
        retry = retry_policy(settings)
        logs = events = query = None
        with contextlib.suppress(ConfigError):  # reported above
            logs = auth0_logs(settings, http=http, retry=retry, pacer=Pacer())
        with contextlib.suppress(ConfigError):
            events = tinybird_events(settings, http=http, retry=retry)
            query = tinybird_query(settings, http=http, retry=retry)
        preflight = Preflight(
            logs=logs,
            query=query,
            events=events,
            host=settings.tinybird_host,
            datasource=settings.datasource,
        )
        results.extend(await preflight.run())
    return results


class Preflight:
    def __init__(
        self,
        *,
        logs: Auth0Logs | None,
        query: TinybirdQuery | None,
        events: TinybirdEvents | None,
        host: str,
        datasource: str,
    ) -> None:
        self._logs = logs
        self._query = query
        self._events = events
        self._host = host
        self._datasource = datasource
        self.results: list[CheckResult] = []

    async def run(self) -> list[CheckResult]:
        await self._auth0()
        await self._tinybird()
        return self.results

    def _add(self, name: str, status: str, detail: str) -> None:
        self.results.append(CheckResult(name, status, detail))

    # -- Auth0 ----------------------------------------------------------------------------------

    async def _auth0(self) -> None:
        if self._logs is None:
            for name in ("auth0.credentials", "auth0.read_logs", "auth0.oldest_log"):
                self._add(name, SKIP, "no Auth0 settings (see auth0.settings)")
            return
        try:
            oldest = await self._logs.oldest()
        except Auth0CredentialsError as error:
            self._add("auth0.credentials", FAIL, str(error))
            self._add("auth0.read_logs", SKIP, "needs working credentials")
            self._add("auth0.oldest_log", SKIP, "needs working credentials")
            return
        except Auth0PermissionError as error:
            self._add("auth0.credentials", PASS, "a Management API token was issued")
            self._add("auth0.read_logs", FAIL, str(error))
            self._add("auth0.oldest_log", SKIP, "needs read:logs")
            return
        except BackfillError as error:  # unreachable, retries exhausted, an answer not usable
            self._add("auth0.credentials", FAIL, str(error))
            self._add("auth0.read_logs", SKIP, "needs Auth0 to answer (see auth0.credentials)")
            self._add("auth0.oldest_log", SKIP, "needs Auth0 to answer (see auth0.credentials)")
            return
        self._add("auth0.credentials", PASS, "a Management API token was issued")
        self._add("auth0.read_logs", PASS, "GET /api/v2/logs answered: the token has read:logs")
        await self._streams(self._logs)
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

    async def _streams(self, logs: Auth0Logs) -> None:
        """The Log Streams feeding the data source: what a run will mirror."""
        try:
            listed = await logs.log_streams()
        except BackfillError as error:
            self._add("auth0.log_streams", WARN, f"could not be listed: {error}")
            return
        if listed is None:
            self._add(
                "auth0.log_streams",
                WARN,
                "the token may not list Log Streams (grant read:log_streams): a stream's "
                "category filters and PII settings cannot be mirrored",
            )
            return
        found = feeding(listed, tinybird_host=self._host, datasource=self._datasource)
        if not found:
            self._add(
                "auth0.log_streams",
                PASS,
                f"no Log Stream feeds {self._datasource} at {self._host} "
                f"({len(listed)} stream(s) listed)",
            )
        for stream in found:
            advice = []
            if stream.status != "active":
                advice.append(f"{stream.status}: {BACKLOG}")
            if stream.obfuscates:
                advice.append("a run needs --pii drop or --pii keep")
            self._add(
                "auth0.log_streams",
                WARN if advice else PASS,
                f"feeds {self._datasource}: {stream.describe()}"
                + (f" ({'; '.join(advice)})" if advice else ""),
            )

    # -- Tinybird -------------------------------------------------------------------------------

    async def _tinybird(self) -> None:
        if self._query is None or self._events is None:
            for name in (
                "tinybird.token",
                "tinybird.append",
                "tinybird.datasource",
                "tinybird.schema",
            ):
                self._add(name, SKIP, "TINYBIRD_TOKEN is not set")
            return
        appended = await self._probe_append()
        if appended is None:  # Tinybird did not answer: its other checks cannot be made
            for name in ("tinybird.datasource", "tinybird.schema"):
                self._add(name, SKIP, "needs Tinybird to answer (see tinybird.token)")
            return
        try:
            described = await self._query.describe()
            datafile_text = await self._query.datafile()
        except TinybirdAuthError:
            self._add(
                "tinybird.datasource",
                SKIP if appended else FAIL,
                "the token cannot read data source details (DATASOURCES:READ); "
                "set TINYBIRD_READ_TOKEN to check the schema",
            )
            self._add("tinybird.schema", SKIP, "needs DATASOURCES:READ")
            return
        except TinybirdNotFoundError as error:
            self._add("tinybird.region", FAIL, str(error))
            self._add("tinybird.schema", SKIP, "needs the data source")
            return
        except BackfillError as error:
            self._add("tinybird.datasource", FAIL, str(error))
            self._add("tinybird.schema", SKIP, "needs the data source's details")
            return
        if described is None:
            self._add(
                "tinybird.datasource",
                FAIL,
                f"no data source {self._datasource!r} at {self._host}: create it from "
                "tinybird/datasources/auth0.datasource",
            )
            self._add("tinybird.schema", SKIP, "needs the data source")
            return
        rows = _row_count(described)
        self._add(
            "tinybird.datasource",
            PASS,
            f"{self._datasource} exists" + (f" ({rows:,} rows)" if rows is not None else ""),
        )
        self._schema(datafile_text)

    async def _probe_append(self) -> bool | None:
        """An empty append: proves the token, the region and the right to append, writes nothing.
        None when Tinybird did not answer at all."""
        assert self._events is not None
        try:
            await self._events.probe()
        except TransientError as error:
            if not error.network:  # a 5xx, a 429: Tinybird answered, with a failure
                self._add(
                    "tinybird.token", SKIP, f"not known: {self._host} answered with a failure"
                )
                self._add("tinybird.append", FAIL, error.description)
                return False
            failure = (
                f"cannot be reached: {error.reason}"
                if error.reason
                else f"did not answer within {CHECK_TIMEOUT:.0f}s ({error.description})"
            )
            self._add(
                "tinybird.token",
                FAIL,
                f"{self._host} {failure}. Check TINYBIRD_HOST (your workspace's region host) "
                "and this machine's network.",
            )
            self._add("tinybird.append", SKIP, "needs Tinybird to answer (see tinybird.token)")
            return None
        except TinybirdNotFoundError as error:
            self._add("tinybird.token", FAIL, str(error))
            self._add("tinybird.append", SKIP, "needs a token this host recognises")
            return False
        except TinybirdAuthError as error:
            self._add("tinybird.token", PASS, f"recognised by {self._host}")
            self._add("tinybird.append", FAIL, str(error))
            return False
        except TinybirdError as error:
            self._add("tinybird.token", SKIP, f"not known: {self._host} answered with a failure")
            self._add("tinybird.append", FAIL, str(error))
            return False
        self._add("tinybird.token", PASS, f"valid for {self._host}")
        self._add("tinybird.append", PASS, f"appending to {self._datasource} is allowed")
        return True

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
    """`statistics.row_count` of `GET /v0/datasources/<name>`: Tinybird's estimate, which its
    reference says may be null. (The schema is read from the datafile, not from the columns.)"""
    statistics = described.get("statistics")
    if isinstance(statistics, dict):
        rows = statistics.get("row_count")
        if isinstance(rows, int):
            return rows
    return None


def exit_status(results: list[CheckResult]) -> bool:
    """True when nothing failed (warnings pass)."""
    return all(result.status != FAIL for result in results)
