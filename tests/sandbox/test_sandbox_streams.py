"""The tenant's Log Streams against what Auth0 documents: category filters, PII obfuscation,
`active`/`paused`/`suspended` (a resumed stream delivers its backlog), several streams and
types, the Events API URL with the token in it."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from sandbox_helpers import MakeSandbox, auth0_token, bearer, sql

from backfill.cli.sandbox import sandbox as sandbox_command
from backfill.records.pii import pii_paths
from backfill.sandbox import Sandbox
from backfill.sandbox.generator import Tenant
from backfill.sandbox.livestream import StreamSpec
from backfill.sandbox.obfuscation import PiiConfig, obfuscate
from backfill.sandbox.timeparse import from_us, iso_millis, to_us

REPO = Path(__file__).resolve().parents[2]
LOGS, DAYS, SEED = 2_000, 2.0, 42


def categories() -> dict[str, str]:
    with (REPO / "backfill" / "auth0" / "event_types.tsv").open(encoding="utf-8") as handle:
        return {
            row["code"]: row["tenant_log_catalog_group"]
            for row in csv.DictReader(handle, delimiter="\t")
        }


def probe(end: datetime) -> Tenant:
    """The tenant a sandbox with these settings builds (to pick instants before starting it)."""
    return Tenant(SEED, LOGS, DAYS, end_us=to_us(end))


def landed(http: httpx.Client, sandbox: Sandbox, table: str = "auth0") -> list[str]:
    return sorted(row["log_id"] for row in sql(http, sandbox, f"SELECT log_id FROM {table}"))


def in_datasource(http: httpx.Client, sandbox: Sandbox) -> list[str]:
    """Rows the stream delivered: stored, or quarantined (as Tinybird does with some)."""
    return sorted(landed(http, sandbox) + landed(http, sandbox, "auth0_quarantine"))


def listed(http: httpx.Client, sandbox: Sandbox) -> list[dict[str, Any]]:
    token = auth0_token(http, sandbox)
    response = http.get(f"{sandbox.auth0_url}/api/v2/log-streams", headers=bearer(token))
    assert response.status_code == 200
    streams: list[dict[str, Any]] = response.json()
    return streams


def control(http: httpx.Client, sandbox: Sandbox, path: str = "", **payload: Any) -> Any:
    response = http.post(f"{sandbox.auth0_url}/__sandbox/streams{path}", json=payload)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def end() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


def test_a_filtered_stream_sends_only_its_categories(
    http: httpx.Client, make_sandbox: MakeSandbox, end: datetime
) -> None:
    tenant = probe(end)
    since = tenant.date_us(200)
    wanted = {"auth.login.fail", "auth.signup.success"}
    sandbox = make_sandbox(
        logs=LOGS, days=DAYS, seed=SEED, end=end, stream_from=from_us(since),
        stream_filters=tuple(sorted(wanted)),
    )  # fmt: skip
    category = categories()
    due = [i for i in range(LOGS) if tenant.date_us(i) >= since]
    sent = [tenant.log_id(i) for i in due if category[tenant.event_kind(i).code] in wanted]
    assert len(sent) < len(due) / 4, "a filter leaves most logs out"
    assert in_datasource(http, sandbox) == sorted(sent)
    # Logs appended later pass the same filter; a code with a category given to it does too.
    append = f"{sandbox.auth0_url}/__sandbox/append"
    http.post(append, json={"count": 5, "type": "fp"})
    http.post(append, json={"count": 5, "type": "s"})
    http.post(append, json={"count": 3, "type": "zz_new_code", "category": "auth.login.fail"})
    http.post(append, json={"count": 3, "type": "zz_other_code"})
    types = [row["type"] for row in sql(http, sandbox, "SELECT type FROM auth0 WHERE type IN "
                                        "('fp', 's', 'zz_new_code', 'zz_other_code')")]  # fmt: skip
    assert types.count("s") == 0 and types.count("zz_other_code") == 0
    assert types.count("zz_new_code") == 3
    (stream,) = listed(http, sandbox)
    assert stream["filters"] == [
        {"type": "category", "name": "auth.login.fail"},
        {"type": "category", "name": "auth.signup.success"},
    ]


@pytest.mark.parametrize("method", ["mask", "hash"])
def test_pii_is_obfuscated_in_what_the_stream_writes(
    http: httpx.Client, make_sandbox: MakeSandbox, end: datetime, method: str
) -> None:
    tenant = probe(end)
    since = tenant.date_us(LOGS - 400)
    sandbox = make_sandbox(
        logs=LOGS, days=DAYS, seed=SEED, end=end, stream_from=from_us(since),
        stream_pii=("email", "username"), stream_pii_method=method,
    )  # fmt: skip
    (stream,) = listed(http, sandbox)
    expected_config = {"log_fields": ["email", "username"], "method": method}
    if method == "hash":
        expected_config["algorithm"] = "xxhash"
    assert stream["pii_config"] == expected_config
    rows = sql(http, sandbox, "SELECT log_id, user_name, toString(details) AS details FROM auth0")
    assert len(rows) > 300
    raw = {tenant.log_id(i): tenant.record(i) for i in range(LOGS - 450, LOGS)}
    shape = re.compile(r"^[0-9a-f]{16}$") if method == "hash" else re.compile(r"^.\*+$")
    seen: dict[str, str] = {}
    nested = 0  # covered keys inside `details` (details.body.email, prompts[].user_name ...)
    for row in rows:
        for path, value in leaves(json.loads(row["details"])).items():
            if {"email", "user_name"} & set(map(str, path)) and value:
                assert shape.match(value), (path, value)
                nested += 1
        original = raw[row["log_id"]].get("user_name")
        if not original:
            continue
        assert shape.match(row["user_name"]), row["user_name"]
        if method == "mask":
            assert row["user_name"][0] == original[0] and len(row["user_name"]) == len(original)
        # The same value always gives the same output.
        assert seen.setdefault(original, row["user_name"]) == row["user_name"]
    if method == "hash":  # distinct users keep distinct hashes
        assert len(set(seen.values())) == len(seen)
    assert nested > 50


def test_drop_pii_nulls_everything_the_stream_obfuscates(end: datetime) -> None:
    tenant = probe(end)
    config = PiiConfig.of(["first_name", "last_name", "username", "email", "phone", "address"])
    for index in range(LOGS):
        record = tenant.stream_record(index)
        masked = leaves(obfuscate(record, config))
        changed = {path for path, value in leaves(record).items() if masked[path] != value}
        dropped = pii_paths(record, config.log_fields)
        for path in changed:
            assert any(path[: len(covered)] == covered for covered in dropped), (index, path)


def leaves(node: object, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    if isinstance(node, dict):
        return {p: v for key, value in node.items() for p, v in leaves(value, (*path, key)).items()}
    if isinstance(node, list):
        return {p: v for n, item in enumerate(node) for p, v in leaves(item, (*path, n)).items()}
    return {path: node}


@pytest.mark.parametrize("stopped", ["paused", "suspended"])
def test_a_stopped_stream_delivers_nothing_until_resumed_then_its_backlog(
    http: httpx.Client, make_sandbox: MakeSandbox, end: datetime, stopped: str
) -> None:
    tenant = probe(end)
    since = tenant.date_us(LOGS - 300)
    sandbox = make_sandbox(logs=LOGS, days=DAYS, seed=SEED, end=end, stream_from=from_us(since))
    before = in_datasource(http, sandbox)
    assert len(before) == sum(tenant.date_us(i) >= since for i in range(LOGS))
    (stream,) = listed(http, sandbox)
    paused = control(http, sandbox, f"/{stream['id']}", status=stopped)
    assert paused["rows"] == 0 and paused["stream"]["status"] == stopped
    http.post(f"{sandbox.auth0_url}/__sandbox/append", json={"count": 40})
    assert in_datasource(http, sandbox) == before, f"a {stopped} stream delivers nothing"
    assert listed(http, sandbox)[0]["status"] == stopped
    state = http.get(f"{sandbox.auth0_url}/__sandbox/streams").json()["streams"][0]
    assert state["sandbox"]["backlog"] == 40
    resumed = control(http, sandbox, f"/{stream['id']}", status="active")
    assert resumed["rows"] == 40
    everything = sorted(before + [sandbox.tenant.log_id(i) for i in range(LOGS, LOGS + 40)])
    assert in_datasource(http, sandbox) == everything
    http.post(f"{sandbox.auth0_url}/__sandbox/append", json={"count": 2})
    assert len(in_datasource(http, sandbox)) == len(everything) + 2, "active again"


def test_a_stream_configured_paused_holds_back_what_was_written_after(
    http: httpx.Client, make_sandbox: MakeSandbox, end: datetime
) -> None:
    tenant = probe(end)
    since, paused_at = tenant.date_us(LOGS - 600), tenant.write_us(LOGS - 200)
    sandbox = make_sandbox(
        logs=LOGS, days=DAYS, seed=SEED, end=end, stream_from=from_us(since),
        stream_status="paused", stream_paused_at=from_us(paused_at),
    )  # fmt: skip
    due = [i for i in range(LOGS) if tenant.date_us(i) >= since]
    written_before = [tenant.log_id(i) for i in due if tenant.write_us(i) < paused_at]
    assert in_datasource(http, sandbox) == sorted(written_before)
    # Resumed through the Tinybird side's shortcut (the default data source's stream).
    answer = http.post(f"{sandbox.tinybird_url}/__sandbox/stream", json={"status": "active"})
    assert answer.json()["rows"] == len(due) - len(written_before)
    assert in_datasource(http, sandbox) == sorted(tenant.log_id(i) for i in due)


def test_several_streams_of_several_types_are_listed_and_only_http_into_tinybird_delivers(
    http: httpx.Client, make_sandbox: MakeSandbox, end: datetime
) -> None:
    tenant = probe(end)
    since = tenant.date_us(LOGS - 100)
    sandbox = make_sandbox(
        logs=LOGS, days=DAYS, seed=SEED, end=end, stream_from=from_us(since),
        streams=(StreamSpec(name="Datadog", type="datadog", status="suspended"),
                 StreamSpec(name="Elsewhere", datasource="")),
    )  # fmt: skip
    streams = listed(http, sandbox)
    assert [(s["name"], s["type"], s["status"]) for s in streams] == [
        ("Tinybird", "http", "active"),
        ("Datadog", "datadog", "suspended"),
        ("Elsewhere", "http", "active"),
    ]
    assert len({s["id"] for s in streams}) == 3
    assert all(re.match(r"^lst_\d{16}$", s["id"]) for s in streams)
    token = sandbox.tinybird_credentials.append
    assert streams[0]["sink"]["httpEndpoint"] == (
        f"{sandbox.tinybird_url}/v0/events?name=auth0&token={token}"
    )
    assert sandbox.tinybird_url not in streams[2]["sink"]["httpEndpoint"]
    # As Auth0 answers: the sink's secrets in clear, no `filters` key for a stream without any.
    assert set(streams[1]["sink"]) == {"datadogApiKey", "datadogRegion"}
    assert "filters" not in streams[1]
    assert streams[2]["sink"]["httpAuthorization"].startswith("Bearer ")
    once = in_datasource(http, sandbox)
    # A second stream into the same data source duplicates what it sends, as it would.
    created = control(
        http, sandbox, name="Failures", since=iso_millis(since), filters=["auth.login.fail"]
    )
    category = categories()
    failures = [
        tenant.log_id(i)
        for i in range(LOGS)
        if tenant.date_us(i) >= since and category[tenant.event_kind(i).code] == "auth.login.fail"
    ]
    assert created["rows"] == len(failures) > 0
    assert in_datasource(http, sandbox) == sorted(once + failures)
    assert len(listed(http, sandbox)) == 4


@pytest.mark.parametrize(
    "payload",
    [
        {"since": "2026-01-01", "filters": ["logins"]},
        {"since": "2026-01-01", "filters": [{"type": "client", "name": "x"}]},
        {"since": "2026-01-01", "pii_config": {"log_fields": ["ssn"]}},
        {"since": "2026-01-01", "pii_config": {"log_fields": ["email"], "method": "encrypt"}},
        {"since": "2026-01-01", "status": "stopped"},
        {"since": "2026-01-01", "paused_at": "2026-01-02"},
        {"type": "kafka"},
        {"type": "datadog", "since": "2026-01-01"},
        {"since": "2026-01-01", "datasource": "missing"},
    ],
)
def test_inconsistent_streams_are_refused(
    http: httpx.Client, sandbox: Sandbox, payload: dict[str, Any]
) -> None:
    response = http.post(f"{sandbox.auth0_url}/__sandbox/streams", json=payload)
    assert response.status_code == 400, response.text
    assert listed(http, sandbox) == []


def test_unknown_streams_and_a_stream_option_without_a_stream(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    answer = http.post(f"{sandbox.auth0_url}/__sandbox/streams/lst_0", json={"status": "active"})
    assert answer.status_code == 404
    result = CliRunner().invoke(sandbox_command, ["--logs", "10", "--stream-pii", "email"])
    assert result.exit_code == 2 and "--stream-from" in result.output
