"""The `.pipe` files of `tinybird/endpoints/`: each parses, its SQL runs through `/v0/sql` on the
sandbox's ClickHouse after a real backfill, and it answers what Auth0's raw records
(`/__sandbox/records`) say, computed here in Python; rows delivered twice do not change the
answers."""

from __future__ import annotations

import csv
import gzip
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backfill.sandbox.demo import Pipe, PipeError, load_pipes, parse_pipe
from backfill.sandbox.runner import Sandbox, SandboxConfig
from tests.e2e.conftest import Harness, stream_envelope

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
ENDPOINTS = ROOT / "tinybird" / "endpoints"
PIPES = sorted(ENDPOINTS.glob("*.pipe"))
SHIPPED = {"daily_logins_signups", "failed_logins_by_error", "top_applications"}
TENANT: dict[str, Any] = {"logs": 5000, "days": 3.0, "seed": 29, "profile": "unlimited"}


def category(name: str) -> set[str]:
    """Event codes of a Log Streams category, read from the catalogue the job ships."""
    with (ROOT / "backfill" / "auth0" / "event_types.tsv").open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {row["code"] for row in rows if row["tenant_log_catalog_group"] == name}


LOGINS = category("auth.login.success")
SIGNUPS = category("auth.signup.success")
FAILED = category("auth.login.fail")


def column(record: dict[str, Any], key: str) -> str:
    """A String column of the seed schema: a missing or null value takes DEFAULT 'unknown'."""
    value = record.get(key)
    return "unknown" if value is None else str(value)


def stored(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records that fit the seed schema: an `auth0_client` array goes to the quarantine."""
    return [record for record in records if not isinstance(record.get("auth0_client"), list)]


# -- the pipes' answers, from the raw records --------------------------------------------------


def daily_logins_signups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    logins: dict[str, set[str]] = defaultdict(set)
    users: dict[str, set[str]] = defaultdict(set)
    signups: dict[str, set[str]] = defaultdict(set)
    for record in records:
        day = record["date"][:10]
        if record["type"] in LOGINS:
            logins[day].add(record["log_id"])
            users[day].add(column(record, "user_id"))
        elif record["type"] in SIGNUPS:
            signups[day].add(record["log_id"])
    return [
        {
            "day": day,
            "logins": len(logins[day]),
            "active_users": len(users[day]),
            "signups": len(signups[day]),
        }
        for day in sorted(set(logins) | set(signups))
    ]


def failed_logins_by_error(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    failures: Counter[tuple[str, str]] = Counter()
    for record in records:
        if record["type"] in FAILED:
            failures[(record["type"], record.get("description") or "")] += 1
    ranked = sorted(failures.items(), key=lambda item: (-item[1], item[0]))
    return [{"type": code, "error": error, "failures": count} for (code, error), count in ranked]


def top_applications(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    events: Counter[str] = Counter()
    logins: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    users: dict[str, set[str]] = defaultdict(set)
    for record in records:
        application = column(record, "client_name")
        if application in ("", "unknown"):
            continue
        events[application] += 1
        if record["type"] in LOGINS:
            logins[application] += 1
            users[application].add(column(record, "user_id"))
        if record["type"] in FAILED:
            failed[application] += 1
    ranked = sorted(events.items(), key=lambda item: (-item[1], item[0]))[:10]
    return [
        {
            "application": application,
            "events": count,
            "logins": logins[application],
            "failed_logins": failed[application],
            "users": len(users[application]),
        }
        for application, count in ranked
    ]


EXPECTED = {
    "daily_logins_signups": daily_logins_signups,
    "failed_logins_by_error": failed_logins_by_error,
    "top_applications": top_applications,
}


def answer(h: Harness, pipe: Pipe) -> list[dict[str, Any]]:
    """The pipe's rows through the Query API (a failing query raises), 64-bit numbers as int."""
    return [
        {key: int(value) if isinstance(value, str) and value.isdigit() else value
         for key, value in row.items()}
        for row in h.sql(pipe.sql)
    ]  # fmt: skip


@pytest.fixture(scope="module")
def backfilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Harness, list[Any]]]:
    """One real backfill of a small tenant, shared by the tests that only read."""
    sandbox = Sandbox(SandboxConfig(**TENANT))
    try:
        h = Harness(sandbox, tmp_path_factory.mktemp("pipes"))
        result = h.run("run", "--json")
        assert result.returncode == 0, result.stderr
        yield h, h.records()
    finally:
        sandbox.close()


# -- the files ------------------------------------------------------------------------------------


def test_the_use_case_pipes_are_shipped() -> None:
    assert {path.stem for path in PIPES} == SHIPPED
    assert [pipe.name for pipe in load_pipes(ENDPOINTS)] == sorted(SHIPPED)


@pytest.mark.parametrize("path", PIPES, ids=lambda path: path.name)
def test_pipe_parses_and_names_its_codes(path: Path) -> None:
    pipe = parse_pipe(path.read_text("utf-8"), path.stem)  # a file that does not parse fails
    assert pipe.node == pipe.name
    # Counted once per log_id, and said so, so duplicate rows cannot inflate the answers.
    assert re.search(r"uniqExact(If)?\(log_id", pipe.sql)
    assert "count()" not in pipe.sql and "uniqExact(log_id)" in pipe.description
    wanted = {
        "daily_logins_signups": LOGINS | SIGNUPS,
        "failed_logins_by_error": FAILED,
        "top_applications": LOGINS | FAILED,
    }[pipe.name]
    # Every code of the categories it counts, so a tenant using one the sandbox does not
    # generate (sens, fens ...) is counted too.
    assert {"s", "scoa", "sens", "ss", "f", "fp", "fu"} & wanted
    for code in wanted:
        assert f"'{code}'" in pipe.sql, f"{pipe.name} leaves out {code}"
    for code in {"ssa", "fsa", "fs"}:  # silent auth, failed silent auth, failed signup
        assert f"'{code}'" not in pipe.sql


def test_the_parser_refuses_what_it_cannot_run() -> None:
    good = (ENDPOINTS / "top_applications.pipe").read_text("utf-8")
    assert parse_pipe(good, "top_applications").sql.startswith("SELECT")
    broken = {
        "no description": good.split("NODE", 1)[1].join(["NODE", ""]),
        "no endpoint": good.replace("TYPE ENDPOINT", ""),
        "a copy pipe": good.replace("TYPE ENDPOINT", "TYPE COPY"),
        "templated": good.replace("SQL >\n", "SQL >\n    %\n"),
        "two nodes": good + "\nNODE other\nSQL >\n    SELECT 1\n",
        "a datasource's schema": good.replace("SQL >", "SCHEMA >"),
        "unknown directive": good.replace("TYPE ENDPOINT", "TYPE ENDPOINT\nENGINE MergeTree"),
        "sql before node": "DESCRIPTION >\n    x\n\nSQL >\n    SELECT 1\n",
        "no sql": "DESCRIPTION >\n    x\n\nNODE a\nTYPE endpoint\n",
        "stray indent": "DESCRIPTION >\n    x\n\nNODE a\n  SELECT 1\nSQL >\n    SELECT 1\n",
    }
    for what, text in broken.items():
        with pytest.raises(PipeError):
            parse_pipe(text, what)
            pytest.fail(f"accepted a pipe with {what}")


# -- against the sandbox's ClickHouse -------------------------------------------------------------


def test_the_quarantine_holds_exactly_the_rows_the_schema_refuses(
    backfilled: tuple[Harness, list[dict[str, Any]]],
) -> None:
    h, records = backfilled
    refused = {record["log_id"] for record in records} - {r["log_id"] for r in stored(records)}
    assert refused, "the tenant should hold some auth0_client arrays"
    assert {row["log_id"] for row in h.sql("SELECT log_id FROM auth0_quarantine")} == refused
    count = h.sql("SELECT count() AS rows, uniqExact(log_id) AS ids FROM auth0")[0]
    assert int(count["rows"]) == int(count["ids"]) == len(records) - len(refused)


@pytest.mark.parametrize("path", PIPES, ids=lambda path: path.name)
def test_pipe_answers_what_auth0_holds(
    path: Path, backfilled: tuple[Harness, list[dict[str, Any]]]
) -> None:
    h, records = backfilled
    pipe = parse_pipe(path.read_text("utf-8"), path.stem)
    expected = EXPECTED[pipe.name](stored(records))
    assert len(expected) >= 3
    assert answer(h, pipe) == expected


def test_duplicates_do_not_change_the_answers(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=2500, days=2.0, seed=31, profile="unlimited", record_raw=False)
    assert h.run("run").returncode == 0
    pipes = load_pipes(ENDPOINTS)
    before = {pipe.name: answer(h, pipe) for pipe in pipes}
    # What a Log Stream running over the same period, or a resent append, would add: every
    # login, signup and failed login a second time.
    again = [
        stream_envelope(record)
        for record in stored(h.records())
        if record["type"] in LOGINS | SIGNUPS | FAILED
    ]
    body = gzip.compress(b"".join(json.dumps(item).encode() + b"\n" for item in again))
    response = httpx.post(
        f"{h.sandbox.tinybird_url}/v0/events",
        params={"name": "auth0", "wait": "true"},
        content=body,
        headers={
            "Authorization": f"Bearer {h.sandbox.env()['TINYBIRD_TOKEN']}",
            "Content-Encoding": "gzip",
        },
        timeout=60,
    )
    assert response.status_code == 200 and response.json()["successful_rows"] == len(again)
    counted = h.sql("SELECT count() AS rows, uniqExact(log_id) AS ids FROM auth0")[0]
    assert int(counted["rows"]) - int(counted["ids"]) == len(again) > 500
    records = stored(h.records())
    for pipe in pipes:
        assert answer(h, pipe) == before[pipe.name] == EXPECTED[pipe.name](records), pipe.name


def test_a_pipe_whose_sql_fails_is_an_error(
    backfilled: tuple[Harness, list[dict[str, Any]]],
) -> None:
    h, _ = backfilled
    text = (ENDPOINTS / "top_applications.pipe").read_text("utf-8")
    pipe = parse_pipe(text.replace("client_name AS", "client_nam AS"), "broken")
    with pytest.raises(httpx.HTTPStatusError):
        answer(h, pipe)
