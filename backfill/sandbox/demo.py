"""`make demo`: a backfill on the local sandbox, interrupted and resumed, then the numbers.

    python -m backfill.sandbox.demo [--logs 50000] [--days 7] [--seed 1]

Starts the sandbox in this process (an Enterprise tenant of `--logs` logs over `--days` days, short
but real latencies), runs `python -m backfill run` as a child process whose progress and summary
go straight to the terminal, interrupts it with SIGINT once Tinybird holds 40% of the logs, shows
`status`, runs the same command again until it exits 0, runs `verify`, and then prints from the
sandbox's ClickHouse table:

- per day, the logs Auth0 holds against the rows in Tinybird (`count()`, `uniqExact(log_id)`) and
  the quarantined rows, and the totals, which must add up;
- the answers of the `.pipe` files in `tinybird/endpoints/` (the Tinybird guide's use cases),
  each compared with the same numbers computed from Auth0's own records.

Last, `demo_import`: logs older than Auth0's retention, from an archive a webhook stream's
receiver kept, loaded with `python -m backfill import` next to what the backfill sent.

It exits 1 when any of those numbers disagree, or when the job fails. The sandbox's credentials
are fake, but they are still never printed.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from backfill.auth0.event_types import catalog
from backfill.errors import RetriesExhaustedError, StateLockedError
from backfill.sandbox.demo_import import history
from backfill.sandbox.profiles import plan_profile
from backfill.sandbox.runner import Sandbox, SandboxConfig

INTERRUPT_AT = 0.40
"""Share of the tenant's logs Tinybird holds when the first run is interrupted."""
RESUME_ATTEMPTS = 3
AUTH0_LATENCY = "30-120"
TINYBIRD_LATENCY = "20-80"
TINYBIRD_ACK_LATENCY = "100-400"
WIDTH = 100
# The job's exit codes, from its error tree.
EXIT_INTERRUPTED = 128 + signal.SIGINT  # as Interrupted(SIGINT) exits
EXIT_RETRIES_EXHAUSTED = RetriesExhaustedError.exit_code
EXIT_ANOTHER_RUN = StateLockedError.exit_code

# -- .pipe files -------------------------------------------------------------------------------

_DIRECTIVE = re.compile(r"^([A-Z][A-Z_]*)(?:\s+(.*))?$")
_NODE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PipeError(ValueError):
    """A .pipe file this demo cannot run."""


@dataclass(frozen=True)
class Pipe:
    """A Tinybird pipe with one node published as an endpoint (what the demo can run as is)."""

    name: str
    description: str
    node: str
    sql: str

    @property
    def title(self) -> str:
        return self.description.split(".")[0].split(" (")[0]


def parse_pipe(text: str, name: str) -> Pipe:
    """Read a `.pipe` datafile: `DESCRIPTION >`, one `NODE` with `SQL >` and `TYPE endpoint`
    (`TOKEN` lines are allowed and ignored).

    Several nodes, other node types and templated SQL (`%`) are refused: the SQL must run as it is
    through the Query API (`/v0/sql`), on Tinybird and on the sandbox alike.
    """
    lines = text.splitlines()
    description = ""
    nodes: list[dict[str, str]] = []
    index = 0
    while index < len(lines):
        raw = lines[index]
        index += 1
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        where = f"{name}, line {index}"
        if raw[:1].isspace():
            raise PipeError(f"{where}: an indented line outside a DESCRIPTION or SQL block")
        match = _DIRECTIVE.match(raw.strip())
        if match is None:
            raise PipeError(f"{where}: expected a directive (DESCRIPTION, NODE, SQL, TYPE)")
        keyword, argument = match.group(1), (match.group(2) or "").strip()
        node = nodes[-1] if nodes else None
        if argument == ">":
            block, index = _block(lines, index)
            if not block:
                raise PipeError(f"{where}: {keyword} > is empty")
            if keyword == "DESCRIPTION":
                if node is None:
                    description = " ".join(block.split())
                else:
                    node["description"] = block
            elif keyword == "SQL":
                if node is None:
                    raise PipeError(f"{where}: SQL > before any NODE")
                if "sql" in node:
                    raise PipeError(f"{where}: a second SQL block in node {node['name']}")
                if block.startswith("%"):
                    raise PipeError(f"{where}: templated SQL (%) cannot run as is through /v0/sql")
                node["sql"] = block
            else:
                raise PipeError(f"{where}: unknown block {keyword} >")
        elif keyword == "NODE":
            if not _NODE_NAME.match(argument):
                raise PipeError(f"{where}: NODE needs a name made of letters, digits and _")
            nodes.append({"name": argument})
        elif keyword == "TYPE":
            if node is None:
                raise PipeError(f"{where}: TYPE before any NODE")
            if argument.lower() != "endpoint":
                raise PipeError(f"{where}: TYPE {argument}: only endpoint pipes are shipped here")
            node["type"] = "endpoint"
        elif keyword == "TOKEN" and argument:
            pass  # who may read the endpoint on Tinybird: nothing to run here
        elif keyword == "DESCRIPTION" and argument:
            if node is None:
                description = argument
            else:
                node["description"] = argument
        else:
            raise PipeError(f"{where}: unknown directive {keyword}")
    if not description:
        raise PipeError(f"{name}: no DESCRIPTION")
    if len(nodes) != 1:
        raise PipeError(f"{name}: {len(nodes)} nodes; these pipes have exactly one")
    node = nodes[0]
    if "sql" not in node:
        raise PipeError(f"{name}: node {node['name']} has no SQL >")
    if node.get("type") != "endpoint":
        raise PipeError(f"{name}: node {node['name']} is not published (TYPE endpoint)")
    return Pipe(name=name, description=description, node=node["name"], sql=node["sql"])


def _block(lines: list[str], index: int) -> tuple[str, int]:
    """The indented lines from `index` on (blank lines inside kept), dedented."""
    taken: list[str] = []
    while index < len(lines) and (not lines[index].strip() or lines[index][:1].isspace()):
        taken.append(lines[index])
        index += 1
    return textwrap.dedent("\n".join(taken)).strip(), index


def pipes_directory() -> Path:
    """`tinybird/endpoints/` of the checkout this module runs from, else of the working
    directory (the Tinybird project's layout: `datasources/`, `endpoints/`)."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        candidate = root / "tinybird" / "endpoints"
        if candidate.is_dir() and any(candidate.glob("*.pipe")):
            return candidate
    raise PipeError(
        "no tinybird/endpoints/*.pipe files found: run the demo from the project's checkout"
    )


def load_pipes(directory: Path) -> list[Pipe]:
    return [
        parse_pipe(path.read_text("utf-8"), path.stem) for path in sorted(directory.glob("*.pipe"))
    ]


# -- what Auth0 holds, and what the pipes should answer ----------------------------------------


def category_codes(category: str) -> frozenset[str]:
    """Event type codes of a Log Streams category, from `backfill/auth0/event_types.tsv`."""
    return frozenset(code for code, entry in catalog().items() if entry.category == category)


LOGIN_CODES = category_codes("auth.login.success")
SIGNUP_CODES = category_codes("auth.signup.success")
FAILED_LOGIN_CODES = category_codes("auth.login.fail")


@dataclass
class Expected:
    """The pipes' answers computed in Python from Auth0's records (quarantined ones left out,
    as they are not in the data source), with the column defaults of `auth0.datasource`."""

    logins: Counter[str] = field(default_factory=Counter)
    signups: Counter[str] = field(default_factory=Counter)
    login_users: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    app_events: Counter[str] = field(default_factory=Counter)
    app_logins: Counter[str] = field(default_factory=Counter)
    app_failures: Counter[str] = field(default_factory=Counter)
    app_users: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def add(self, record: dict[str, Any]) -> None:
        code = record.get("type") or "unknown"
        day = str(record["date"])[:10]
        user = record.get("user_id")
        user = "unknown" if user is None else str(user)
        app = record.get("client_name")
        app = "unknown" if app is None else str(app)
        named = app not in ("", "unknown")
        if code in LOGIN_CODES:
            self.logins[day] += 1
            self.login_users[day].add(user)
            if named:
                self.app_logins[app] += 1
                self.app_users[app].add(user)
        if code in SIGNUP_CODES:
            self.signups[day] += 1
        if code in FAILED_LOGIN_CODES:
            self.failures[(code, str(record.get("description") or ""))] += 1
            if named:
                self.app_failures[app] += 1
        if named:
            self.app_events[app] += 1

    def answer(self, pipe: str) -> list[tuple[Any, ...]] | None:
        if pipe == "daily_logins_signups":
            days = sorted(set(self.logins) | set(self.signups))
            return [
                (day, self.logins[day], len(self.login_users[day]), self.signups[day])
                for day in days
            ]
        if pipe == "failed_logins_by_error":
            return [
                (code, error, count)
                for (code, error), count in sorted(
                    self.failures.items(), key=lambda item: (-item[1], item[0])
                )
            ]
        if pipe == "top_applications":
            ranked = sorted(self.app_events.items(), key=lambda item: (-item[1], item[0]))[:10]
            return [
                (
                    app,
                    events,
                    self.app_logins[app],
                    self.app_failures[app],
                    len(self.app_users[app]),
                )
                for app, events in ranked
            ]
        return None


def normalized(rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows of a JSON answer as tuples, numbers as int (ClickHouse may quote 64-bit ones)."""
    result = []
    for row in rows:
        values: list[Any] = []
        for value in row.values():
            if isinstance(value, str) and value.isdigit():
                values.append(int(value))
            else:
                values.append(value)
        result.append(tuple(values))
    return result


# -- talking to the sandbox --------------------------------------------------------------------


class QueryAPI:
    """Tinybird's Query API of the sandbox (`/v0/sql`), the way any client would use it."""

    def __init__(self, host: str, token: str) -> None:
        self._client = httpx.Client(
            base_url=host, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def sql(self, query: str) -> list[dict[str, Any]]:
        response = self._client.post("/v0/sql", data={"q": f"{query}\nFORMAT JSON"})
        if response.status_code != 200:
            raise RuntimeError(f"/v0/sql answered {response.status_code}: {response.text[:300]}")
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def number(self, query: str) -> int:
        return int(self.sql(query)[0]["n"])

    def close(self) -> None:
        self._client.close()


# -- output ------------------------------------------------------------------------------------


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(number: int, title: str, command: str | None = None) -> None:
    say()
    line = f"== {number}. {title} "
    if command:
        line += f"== $ {command} "
    say(line.ljust(WIDTH, "=")[: max(WIDTH, len(line))])


def indented(text: str) -> None:
    for line in text.rstrip("\n").splitlines():
        say(("  " + line).rstrip())


def table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    footer: Sequence[Any] | None = None,
    limits: dict[int, int] | None = None,
) -> str:
    """Plain text: text left-aligned, numbers right-aligned with thousands separators."""

    def cell(value: Any, column: int) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        text = "(empty)" if value == "" else str(value)
        limit = (limits or {}).get(column)
        if limit and len(text) > limit:
            text = text[: limit - 3] + "..."
        return text

    body = [[cell(value, column) for column, value in enumerate(row)] for row in rows]
    rendered_footer = (
        [f"{value:,}" if isinstance(value, int) else str(value) for value in footer]
        if footer
        else None
    )
    everything = [list(header), *body, *([rendered_footer] if rendered_footer else [])]
    widths = [max(len(row[column]) for row in everything) for column in range(len(header))]
    numeric = [
        all(isinstance(row[column], int) for row in rows) and bool(rows)
        for column in range(len(header))
    ]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            text.rjust(widths[column]) if numeric[column] else text.ljust(widths[column])
            for column, text in enumerate(cells)
        ).rstrip()

    rule = "-" * len(line(list(header)))
    out = [line(list(header)), rule, *(line(row) for row in body)]
    if rendered_footer:
        out += [rule, line(rendered_footer)]
    return "\n".join(out)


# -- the demo ----------------------------------------------------------------------------------


@dataclass
class Checks:
    failures: list[str] = field(default_factory=list)

    def expect(self, ok: bool, what: str) -> str:
        if not ok:
            self.failures.append(what)
        return "ok" if ok else "DISAGREE"


class Demo:
    def __init__(self, sandbox: Sandbox, workdir: Path, pipes: list[Pipe]) -> None:
        self.sandbox = sandbox
        self.workdir = workdir
        self.pipes = pipes
        self.datasource = sandbox.config.datasource
        self.query = QueryAPI(sandbox.tinybird_url, sandbox.env()["TINYBIRD_TOKEN"])
        self.checks = Checks()
        self.child: subprocess.Popen[bytes] | None = None
        self.total = len(sandbox.auth0.visible_now())
        self.settings = workdir / "demo.toml"
        self.state = workdir / "state.json"
        self.batch_rows = min(2_000, max(100, self.total // 25))
        self.settings.write_text(
            "# Written by the demo: the job's settings for this run.\n"
            "[run]\n"
            f"state = {str(self.state)!r}\n"
            "progress_interval = 1\n"
            "[batch]\n"
            f"max_rows = {self.batch_rows}\n",
            encoding="utf-8",
        )

    # -- the job, as a child process --------------------------------------------------------
    def environment(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AUTH0_", "TINYBIRD_"))
        }
        env.update(self.sandbox.env())
        return env

    def command(self, verb: str) -> list[str]:
        return [sys.executable, "-m", "backfill", verb, "--config", self.settings.name]

    @staticmethod
    def shown(verb: str) -> str:
        return f"python -m backfill {verb} --config demo.toml"

    def start(self, verb: str) -> subprocess.Popen[bytes]:
        # stdout and stderr are inherited: the job's own progress and summary show as they are.
        self.child = subprocess.Popen(self.command(verb), env=self.environment(), cwd=self.workdir)
        return self.child

    def wait_for_child(self) -> None:
        """After Ctrl-C (which the job, in the same process group, received too)."""
        if self.child is not None and self.child.poll() is None:
            try:
                self.child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.child.kill()
                self.child.wait()

    def capture(self, verb: str) -> tuple[int, str]:
        done = subprocess.run(
            self.command(verb),
            env=self.environment(),
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
        return done.returncode, done.stdout

    def landed(self) -> int:
        return self.query.number(
            f"SELECT (SELECT count() FROM {self.datasource}) + "
            f"(SELECT count() FROM {self.datasource}_quarantine) AS n"
        )

    # -- the steps -----------------------------------------------------------------------------
    def run(self) -> int:
        started = time.monotonic()
        self.introduce()
        if not self.interrupted_run():
            return 1
        heading(3, "Where the checkpoint stands", self.shown("status"))
        code, output = self.capture("status")
        indented(output)
        if code != 0:
            self.checks.failures.append(f"status exited {code}")
        if not self.resume():
            return 1
        heading(5, "Did everything land?", self.shown("verify"))
        code, output = self.capture("verify")
        indented(output)
        self.checks.expect(code == 0, f"verify exited {code} (0 means nothing is missing)")
        quarantined_ids = self.per_day()
        self.use_cases(quarantined_ids)
        history(self, 8)
        heading(9, "Result")
        seconds = time.monotonic() - started
        if self.checks.failures:
            say(f"  {len(self.checks.failures)} number(s) disagree:")
            for failure in self.checks.failures:
                say(f"  - {failure}")
            say(f"  Demo took {seconds:.0f} s.")
            return 1
        say(
            "  Every number agrees: each log Auth0 holds is in Tinybird exactly once (or in the "
            "quarantine),"
        )
        say("  and every pipe answers what Auth0's own records say.")
        say(f"  Demo took {seconds:.0f} s.")
        return 0

    def introduce(self) -> None:
        sandbox, tenant = self.sandbox, self.sandbox.tenant
        config = sandbox.config
        visible = sandbox.auth0.visible_now()
        first = _iso_minutes(tenant.date_us(visible.start)) if visible else "-"
        last = _iso_minutes(tenant.date_us(visible.stop - 1)) if visible else "-"
        settings = sandbox.auth0.describe_config()
        plan = plan_profile(config.profile)
        rate = (
            f"burst {plan.burst}, {plan.per_second:g} requests/s" if plan.per_second else "no limit"
        )
        say("auth0-backfill demo: a local Auth0 tenant and Tinybird workspace, a backfill,")
        say("an interruption, a resume, and the numbers from the ClickHouse table.")
        heading(1, "The sandbox (emulators on 127.0.0.1, in this process)")
        indented(
            f"Auth0     {sandbox.auth0_url}  {config.profile} plan ({rate}), "
            f"{settings['retention_days']:g}-day retention,\n"
            f"          {AUTH0_LATENCY} ms per request\n"
            f"Tinybird  {sandbox.tinybird_url}  data source {self.datasource} "
            f"(tinybird/datasources/auth0.datasource), {TINYBIRD_LATENCY} ms,\n"
            f"          {TINYBIRD_ACK_LATENCY} ms more to acknowledge an append (wait=true)\n"
            f"Tenant    {self.total:,} logs dated {first} .. {last} UTC (seed {config.seed})\n"
            f"Job       {self.workdir}/demo.toml: state file beside it, batches of at most\n"
            f"          {self.batch_rows:,} rows (so the interruption falls between batches), "
            "progress every second\n"
            "          off a terminal; credentials in its environment (never printed)"
        )

    def interrupted_run(self) -> bool:
        target = int(self.total * INTERRUPT_AT)
        heading(2, "Backfill, interrupted part way", self.shown("run"))
        say(f"  (the demo sends SIGINT, as Ctrl-C would, once Tinybird holds {target:,} rows)")
        say()
        began = time.monotonic()
        process = self.start("run")
        signalled = False
        while process.poll() is None:
            if not signalled and self.landed() >= target:
                process.send_signal(signal.SIGINT)
                signalled = True
                say(f"\n  >> SIGINT sent: Tinybird holds {self.landed():,} rows")
            time.sleep(0.1)
        code = process.returncode
        seconds = time.monotonic() - began
        held = self.landed()
        say()
        say(
            f"  exit {code} after {seconds:.1f} s; Tinybird holds {held:,} of {self.total:,} "
            f"logs ({held / max(self.total, 1):.0%})"
        )
        if code == EXIT_INTERRUPTED:
            say("  (130: stopped by SIGINT, the checkpoint at the last acknowledged batch)")
            return True
        if code == 0:
            say(
                "  The run finished before it could be interrupted (the tenant is small): the "
                "resume below\n  has nothing left to do."
            )
            return True
        self.checks.failures.append(f"the first run exited {code}")
        say(f"  The job failed (exit {code}); see its log above.")
        return False

    def resume(self) -> bool:
        heading(4, "Resume: the same command again", self.shown("run"))
        for attempt in range(1, RESUME_ATTEMPTS + 1):
            say()
            began = time.monotonic()
            process = self.start("run")
            code = process.wait()
            say()
            say(f"  exit {code} after {time.monotonic() - began:.1f} s")
            if code == 0:
                return True
            if code not in (EXIT_RETRIES_EXHAUSTED, EXIT_ANOTHER_RUN) or attempt == RESUME_ATTEMPTS:
                break
            say("  (a temporary failure: running the same command again)")
            time.sleep(1)
        self.checks.failures.append(f"the resumed run exited {code}")
        say(f"  The job failed (exit {code}); see its log above.")
        return False

    def per_day(self) -> set[str]:
        """Auth0's logs against Tinybird's rows per day; returns the quarantined log_ids."""
        heading(6, "Auth0 against Tinybird, per day (UTC) of the log's date")
        tenant, name = self.sandbox.tenant, self.datasource
        auth0_days: Counter[str] = Counter()
        auth0_ids: set[str] = set()
        for index in self.sandbox.auth0.visible_now():
            auth0_days[_iso_day(tenant.date_us(index))] += 1
            auth0_ids.add(tenant.log_id(index))
        stored = {
            row["day"]: row
            for row in self.query.sql(
                f"SELECT toString(toDate(date, 'UTC')) AS day, count() AS rows, "
                f"uniqExact(log_id) AS unique_ids FROM {name} GROUP BY day"
            )
        }
        quarantine = {
            row["day"]: row
            for row in self.query.sql(
                f"SELECT substring(ifNull(date, ''), 1, 10) AS day, count() AS rows, "
                f"uniqExact(log_id) AS unique_ids FROM {name}_quarantine GROUP BY day"
            )
        }
        rows = []
        totals = Counter[str]()
        for day in sorted(set(auth0_days) | set(stored) | set(quarantine)):
            logs = auth0_days.get(day, 0)
            count = int(stored.get(day, {}).get("rows", 0))
            unique = int(stored.get(day, {}).get("unique_ids", 0))
            quarantined = int(quarantine.get(day, {}).get("unique_ids", 0))
            quarantined_rows = int(quarantine.get(day, {}).get("rows", 0))
            duplicates = count - unique + quarantined_rows - quarantined
            agrees = self.checks.expect(
                logs == unique + quarantined,
                f"{day}: Auth0 has {logs:,} logs, Tinybird {unique:,} unique rows "
                f"+ {quarantined:,} quarantined",
            )
            rows.append((day, logs, count, unique, quarantined, duplicates, agrees))
            totals.update(
                logs=logs, rows=count, unique=unique, quarantined=quarantined, dup=duplicates
            )
        footer = (
            "total",
            totals["logs"],
            totals["rows"],
            totals["unique"],
            totals["quarantined"],
            totals["dup"],
            "",
        )
        header = (
            "day",
            "Auth0 logs",
            "Tinybird rows",
            "uniqExact(log_id)",
            "quarantined",
            "duplicates",
            "check",
        )
        indented(table(header, rows, footer=footer))
        say()
        balanced = self.checks.expect(
            totals["logs"] == totals["unique"] + totals["quarantined"],
            f"Auth0 total {totals['logs']:,} != unique rows {totals['unique']:,} + quarantined "
            f"{totals['quarantined']:,}",
        )
        say(
            f"  Totals: Auth0 {totals['logs']:,} = unique rows in {name} {totals['unique']:,} + "
            f"quarantined {totals['quarantined']:,}: {balanced}"
        )
        no_duplicates = self.checks.expect(
            totals["dup"] == 0, f"{totals['dup']:,} duplicate rows (exactly-once was promised)"
        )
        say(
            f"  Duplicates: rows {totals['rows']:,} - unique {totals['unique']:,} = "
            f"{totals['rows'] - totals['unique']:,} in {name}, "
            f"{totals['dup'] - (totals['rows'] - totals['unique']):,} in the quarantine: "
            f"{no_duplicates}"
        )
        # The same partition by log_id, not only by count.
        in_table = {row["log_id"] for row in self.query.sql(f"SELECT DISTINCT log_id FROM {name}")}
        in_quarantine = {
            str(row["log_id"])
            for row in self.query.sql(
                f"SELECT DISTINCT log_id FROM {name}_quarantine WHERE log_id IS NOT NULL"
            )
        }
        missing = auth0_ids - in_table - in_quarantine
        extra = (in_table | in_quarantine) - auth0_ids
        both = in_table & in_quarantine
        ids_ok = self.checks.expect(
            not missing and not extra and not both,
            f"log_ids: {len(missing):,} of Auth0's missing, {len(extra):,} not from Auth0, "
            f"{len(both):,} both stored and quarantined",
        )
        say(
            f"  log_ids: each of Auth0's {len(auth0_ids):,} is in {name} or its quarantine, once "
            f"({len(missing):,} missing,\n  {len(extra):,} not from Auth0, {len(both):,} in both): "
            f"{ids_ok}"
        )
        if in_quarantine:
            reasons = self.query.sql(
                f"SELECT arrayStringConcat(c__error_column, ',') AS columns, count() AS n "
                f"FROM {name}_quarantine GROUP BY columns ORDER BY n DESC"
            )
            listed = ", ".join(f"{row['columns'] or '?'} ({int(row['n']):,})" for row in reasons)
            say(f"  Quarantined by column: {listed} (as the live stream's rows would be)")
        return in_quarantine

    def use_cases(self, quarantined_ids: set[str]) -> None:
        heading(7, "The guide's use cases, answered by the pipes in tinybird/endpoints/")
        say(
            "  Each pipe's SQL runs through /v0/sql and is compared with the same numbers "
            "computed from\n  Auth0's records (the quarantined ones left out: they are not in "
            "the data source)."
        )
        expected = Expected()
        tenant = self.sandbox.tenant
        for index in self.sandbox.auth0.visible_now():
            if tenant.log_id(index) not in quarantined_ids:
                expected.add(tenant.record(index))
        for pipe in self.pipes:
            say()
            say(f"  {pipe.name}.pipe: {pipe.title}")
            try:
                rows = self.query.sql(pipe.sql)
            except RuntimeError as failure:
                self.checks.failures.append(f"{pipe.name}.pipe: {failure}")
                say(f"  FAILED: {failure}")
                continue
            answer = normalized(rows)
            header = list(rows[0]) if rows else ["(no rows)"]
            shown = answer if len(answer) <= 12 else answer[:12]
            indented(table(header, shown, limits=_limits(header, shown)))
            if len(answer) > len(shown):
                say(f"  ... {len(answer) - len(shown)} more rows")
            wanted = expected.answer(pipe.name)
            if wanted is None:
                say("  (no Python counterpart for this pipe: not compared)")
                continue
            verdict = self.checks.expect(
                answer == wanted,
                f"{pipe.name}.pipe answers differently from Auth0's records "
                f"(first difference: {_first_difference(answer, wanted)})",
            )
            say(f"  ... the same from Auth0's records: {verdict}{_summary(pipe.name, answer)}")


def _limits(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> dict[int, int]:
    """Shorten the widest text column so the table fits the terminal."""
    if not rows:
        return {}
    widths = [
        max(len(str(header[i])), *(len(f"{row[i]:,}" if isinstance(row[i], int) else str(row[i]))
                                   for row in rows))
        for i in range(len(header))
    ]  # fmt: skip
    room = WIDTH - 2 - 2 * (len(header) - 1)
    excess = sum(widths) - room
    if excess <= 0:
        return {}
    widest = max(range(len(header)), key=lambda i: widths[i])
    return {widest: max(12, widths[widest] - excess)}


def _first_difference(answer: list[tuple[Any, ...]], wanted: list[tuple[Any, ...]]) -> str:
    for position, (got, expected) in enumerate(zip(answer, wanted, strict=False)):
        if got != expected:
            return f"row {position + 1}: pipe {got}, Auth0 {expected}"
    return f"{len(answer)} rows from the pipe, {len(wanted)} from Auth0"


def _summary(pipe: str, answer: list[tuple[Any, ...]]) -> str:
    def sums(column: int) -> int:
        return sum(int(row[column]) for row in answer)

    if pipe == "daily_logins_signups" and answer:
        return f" ({sums(1):,} logins and {sums(3):,} signups in {len(answer)} days)"
    if pipe == "failed_logins_by_error" and answer:
        return f" ({sums(2):,} failed logins, {len(answer)} kinds of error)"
    if pipe == "top_applications" and answer:
        return f" ({len(answer)} applications, {sums(1):,} events)"
    return ""


def _iso_day(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%d")


def _iso_minutes(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%d %H:%M")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m backfill.sandbox.demo",
        description="Backfill a local sandbox tenant into its emulated Tinybird, interrupt the "
        "job, resume it, and print Auth0's logs against Tinybird's rows and the pipes' answers.",
    )
    parser.add_argument(
        "--logs", type=int, default=50_000, help="logs in the tenant (default 50,000)"
    )
    parser.add_argument(
        "--days", type=float, default=7.0, help="days they are spread over (default 7)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the tenant (default 1)")
    args = parser.parse_args(argv)
    if args.logs < 1:
        parser.error("--logs must be at least 1")
    if not args.days > 0:
        parser.error("--days must be more than 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        pipes = load_pipes(pipes_directory())
    except PipeError as problem:
        print(f"demo: {problem}", file=sys.stderr)
        return 1
    config = SandboxConfig(
        profile="enterprise",
        logs=args.logs,
        days=args.days,
        seed=args.seed,
        auth0_latency=AUTH0_LATENCY,
        tinybird_latency=TINYBIRD_LATENCY,
        tinybird_ack_latency=TINYBIRD_ACK_LATENCY,
        record_raw=False,
    )
    with (
        tempfile.TemporaryDirectory(prefix="auth0-backfill-demo-") as workdir,
        Sandbox(config) as sandbox,
    ):
        demo = Demo(sandbox, Path(workdir), pipes)
        try:
            return demo.run()
        except KeyboardInterrupt:
            # Ctrl-C reached the job too (same process group): it stops on its own.
            say("\ndemo: interrupted")
            demo.wait_for_child()
            return EXIT_INTERRUPTED
        finally:
            demo.query.close()


if __name__ == "__main__":
    sys.exit(main())
