"""Issue 15: rows indistinguishable from the stream's. The sandbox's Auth0 serves Log Streams with
category filters, PII settings and every status, and its stream really writes into the data
source (filtered, masked); the job mirrors it, refuses what would leak or duplicate, and repairs
the holes a stream left."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backfill.sandbox.livestream import SINK_SECRETS, STREAM_TYPES, StreamSpec
from tests.e2e.conftest import Harness, assert_exactly

pytestmark = pytest.mark.e2e

END = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def codes_of(category: str) -> set[str]:
    """Event type codes of a Log Streams category, read from Auth0's table (not the job's code)."""
    from pathlib import Path

    table = Path(__file__).parents[2] / "backfill" / "auth0" / "event_types.tsv"
    lines = table.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]
    return {row["code"] for row in rows if row.get("tenant_log_catalog_group") == category}


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text[-2000:]


def before(records: list[dict[str, Any]], moment: datetime) -> list[dict[str, Any]]:
    return [record for record in records if record["date"] < iso(moment)]


def test_a_stream_filtered_to_failed_logins_is_mirrored(harness) -> None:  # type: ignore[no-untyped-def]
    since = END - timedelta(hours=10)
    h: Harness = harness(
        logs=6000,
        days=2.0,
        seed=51,
        end=END,
        stream_from=since,
        stream_filters=("auth.login.fail",),
    )
    result = h.run("run", "--until-stream-start", "--json")
    assert result.returncode == 0, result.stderr
    summary = result.summary()
    assert "auth.login.fail (from Log Stream 'Tinybird')" in summary["type_filter"]
    failed = codes_of("auth.login.fail")
    received = h.received()
    assert received and {row["data"]["type"] for row in received} <= failed
    wanted = [record for record in before(h.records(), since) if record["type"] in failed]
    assert_exactly(received, wanted)
    assert summary["filtered"] > 0
    status = h.run("status")
    assert "Types:           auth.login.fail (from Log Stream 'Tinybird')" in status.stdout
    line = h.run("run").stdout  # resumed and caught up: the summary says the filter too
    assert "types: auth.login.fail (from Log Stream 'Tinybird')" in line
    check = h.run("check")
    assert "auth0.log_streams" in check.stdout and "sends auth.login.fail" in check.stdout
    assert "token=" not in check.stdout  # the endpoint's token never shows


def raw_values(records: list[dict[str, Any]], keys: set[str]) -> set[str]:
    """Every string under these keys, at any depth: what a stream hiding them would not send."""
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.replace("_", "").lower() in keys and isinstance(value, str) and value:
                    found.add(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for record in records:
        walk(record)
    return found


def strings(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(key, string) for every string in the rows, at any depth."""
    found: list[tuple[str, str]] = []

    def walk(node: object, key: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                walk(value, str(name))
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str):
            found.append((key, node))

    for row in rows:
        walk(row, "")
    return found


def test_a_stream_that_hashes_pii_refuses_then_drops_it(harness) -> None:  # type: ignore[no-untyped-def]
    since = END - timedelta(hours=6)
    h: Harness = harness(
        logs=4000,
        days=2.0,
        seed=52,
        end=END,
        stream_from=since,
        stream_pii=("email", "username"),
        stream_pii_method="hash",
    )
    refused = h.run("run", "--until-stream-start")
    assert refused.returncode == 5, refused.stderr
    assert "hashes email, username" in refused.stderr
    assert "--pii drop" in refused.stderr and "--pii keep" in refused.stderr
    assert h.received() == [] and not h.state.exists()
    no_traceback(refused.stderr)

    dropped = h.run("run", "--until-stream-start", "--pii", "drop", "--json")
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.summary()["pii"] == "dropped email, username (--pii drop)"
    records = before(h.records(), since)
    secrets = raw_values(records, {"email", "username", "newemail", "newusername"})
    assert len(secrets) > 50
    received = h.received()
    assert len(received) == len(records)
    # Under any key but a user id (`samlp|Corp-SAML|<email>`: an identifier a SAML connection
    # builds from the email, kept as the stream keeps it; the README says so).
    leaked = sorted(
        {
            value
            for key, text in strings(received)
            if not (key in ("user_id", "id") and "|" in text)
            for value in secrets
            if value in text
        }
    )
    assert not leaked, f"{len(leaked)} raw values sent, e.g. {leaked[:3]}"
    # Every envelope keeps its shape: the same keys as Auth0's record (minus _id and id).
    by_id = {record["log_id"]: record for record in records}
    for row in h.received()[:200]:
        original = by_id[row["log_id"]]
        assert set(row["data"]) == set(original) - {"_id", "id"}
    assert "PII:             dropped email, username" in h.run("status").stdout


def test_a_paused_stream_still_counts(harness) -> None:  # type: ignore[no-untyped-def]
    since = END - timedelta(hours=20)
    h: Harness = harness(
        logs=3000,
        days=2.0,
        seed=53,
        end=END,
        stream_from=since,
        stream_status="paused",
        stream_paused_at=END - timedelta(hours=8),
    )
    result = h.run("run", "--resume-from-tinybird")
    assert result.returncode == 5, result.stderr
    assert "Log Stream 'Tinybird' (now paused)" in result.stderr
    assert "delivers what it held back" in result.stderr
    assert h.received() == []
    no_traceback(result.stderr)
    check = h.run("check")
    assert "paused" in check.stdout and "WARN" in check.stdout


def test_a_new_checkpoint_over_rows_already_there_is_refused(harness) -> None:  # type: ignore[no-untyped-def]
    since = END - timedelta(hours=12)
    h: Harness = harness(logs=3000, days=1.0, seed=54, end=END, stream_from=since)
    # The stream's rows: this run would go past its first row.
    result = h.run("run", "--from-date", iso(since - timedelta(hours=2)))
    assert result.returncode == 5, result.stderr
    first = min(record["date"] for record in h.records() if record["date"] >= iso(since))
    assert f"its first row in auth0 is at {first}" in result.stderr
    assert f"--until-date {first}" in result.stderr and "--skip-existing" in result.stderr
    assert h.received() == [] and not h.state.exists()
    no_traceback(result.stderr)
    # Rows another checkpoint sent, before the stream's: a new one over them is refused.
    window = ("--from-date", iso(since - timedelta(hours=4)), "--until-date", iso(since))
    assert h.run("run", *window, "--state", "first.json").returncode == 0
    h.tinybird("/__sandbox/stats")  # the first run's rows are in
    again = h.run("run", *window)
    assert again.returncode == 5, again.stderr
    assert "already holds" in again.stderr and "rows in this run's window" in again.stderr
    assert "--skip-existing" in again.stderr and "--allow-duplicates" in again.stderr
    assert not h.state.exists()
    no_traceback(again.stderr)
    # Without read access it cannot check, and says so.
    append_only = {"TINYBIRD_TOKEN": h.sandbox.extras()["SANDBOX_TINYBIRD_APPEND_TOKEN"]}
    blind = h.run(
        "run",
        "--from-date",
        iso(since - timedelta(hours=2)),
        "--until-date",
        iso(since),
        "--json",
        env=append_only,
    )
    assert blind.returncode == 0, blind.stderr
    assert any("Could not check" in note for note in blind.summary()["notes"])


@pytest.mark.slow
def test_verify_by_hour_finds_the_holes_and_skip_existing_fills_them(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=5000, days=2.0, seed=55, end=END, stream_from=END - timedelta(days=3))
    records = h.records()
    assert records and len(h.table_log_ids()) == len(records)  # the stream delivered all of it
    start = datetime.fromisoformat(records[0]["date"].replace("Z", "+00:00"))
    low = start.replace(minute=0, second=0, microsecond=0)
    high = END.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hour = low + timedelta(hours=5)
    day = low + timedelta(hours=24)
    day = day.replace(hour=0)
    scattered = [record["log_id"] for record in records[3::211]]
    deleted = 0
    for payload in (
        {"from_date": iso(hour), "until_date": iso(hour + timedelta(hours=1))},
        {"from_date": iso(day), "until_date": iso(min(day + timedelta(days=1), high))},
        {"log_ids": scattered},
    ):
        answer = h.tinybird("/__sandbox/delete", method="POST", json={"name": "auth0", **payload})
        deleted += answer.json()["deleted"]
    present = set(h.table_log_ids())
    gone = [record for record in records if record["log_id"] not in present]
    assert len(gone) == deleted > 0
    expected = Counter(record["date"][:13] for record in gone)

    window = ("--from-date", iso(low), "--until-date", iso(high))
    found = h.run("verify", "--by", "hour", *window, "--json")
    assert found.returncode == 10, found.stderr
    report = found.summary()
    reported = {row["hour"]: row["missing"] for row in report["hours"] if row["missing"]}
    assert reported == dict(expected)  # exactly the hour, the day and the scattered rows
    assert report["missing"] == len(gone) and report["duplicates"] == 0
    table = h.run("verify", "--by", "hour", *window).stdout
    assert "run --skip-existing" in table

    filled = h.run("run", "--skip-existing", *window, "--json")
    assert filled.returncode == 0, filled.stderr
    summary = filled.summary()
    assert summary["rows_sent"] == len(gone)
    assert 0 < summary["query_api_calls"] <= 40
    assert {row["log_id"] for row in h.received()} == {record["log_id"] for record in gone}
    again = h.run("verify", "--by", "hour", *window, "--json")
    assert again.returncode == 0, again.stdout
    counted = h.table_log_ids()
    assert set(counted) == {record["log_id"] for record in records}
    assert max(counted.values()) == 1


def test_an_unknown_event_type_is_counted_not_dropped_silently(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=500, days=1.0, seed=56, end=END)
    answer = h.auth0("/__sandbox/append", method="POST", json={"count": 7, "type": "zz_new_code"})
    answer.raise_for_status()
    result = h.run("run", "--types", "auth.login.fail", "--json")
    assert result.returncode == 0, result.stderr
    summary = result.summary()
    assert summary["unknown_types"] == {"zz_new_code": 7}
    line = h.run("run", "--restart", "--types", "auth.login.fail", "--allow-duplicates").stdout
    assert "of types not in the table: zz_new_code x7" in line
    everything = h.run("run", "--restart", "--allow-duplicates", "--state", "all.json", "--json")
    assert everything.summary()["unknown_types"] == {}
    assert any(row["data"]["type"] == "zz_new_code" for row in h.received())


@pytest.mark.parametrize("status", ["paused", "suspended"])
def test_a_stopped_stream_on_an_empty_data_source_still_counts(harness, status) -> None:  # type: ignore[no-untyped-def]
    """It has delivered nothing yet, and will deliver its backlog when resumed: every path that
    would write past where it begins is refused, before anything is sent."""
    since = END - timedelta(hours=20)
    h: Harness = harness(
        logs=1500,
        days=2.0,
        seed=57,
        end=END,
        stream_from=since,
        stream_status=status,
        stream_paused_at=since,
    )
    assert h.table_log_ids() == Counter()
    for args in (
        ("--resume-from-tinybird",),
        (),
        ("--from-date", iso(since - timedelta(hours=4))),
        ("--from-log-id", h.records()[10]["log_id"]),
    ):
        refused = h.run("run", *args)
        assert refused.returncode == 5, (args, refused.stderr)
        assert f"Log Stream 'Tinybird' (now {status})" in refused.stderr
        assert "--until-date" in refused.stderr
        assert len(refused.stderr.strip().splitlines()[-1]) < 700
        no_traceback(refused.stderr)
    assert h.received() == [] and not h.state.exists()
    # Ended where the operator says the stream begins: sent, with a note.
    bounded = h.run("run", "--until-date", iso(since), "--json")
    assert bounded.returncode == 0, bounded.stderr
    assert any("holds no row yet" in note for note in bounded.summary()["notes"])
    assert_exactly(h.received(), before(h.records(), since))


def test_no_sink_secret_shows_in_what_the_job_prints(harness) -> None:  # type: ignore[no-untyped-def]
    """Auth0 lists every sink with its secrets in clear (an http stream's URL holds the Tinybird
    token): check and run name the streams they read, never a sink."""
    since = END - timedelta(hours=6)
    others = tuple(
        StreamSpec(name=f"To {kind}", type=kind, datasource="" if kind == "http" else None)
        for kind in STREAM_TYPES
    )
    h: Harness = harness(logs=2000, days=1.0, seed=55, end=END, stream_from=since, streams=others)
    secrets = {*SINK_SECRETS, h.sandbox.tinybird_credentials.append}
    listed = json.dumps(h.sandbox.streams.describe())
    assert all(secret in listed for secret in secrets), "the sandbox lists them, as Auth0 does"
    results = {
        "check": h.run("check"),
        "check --json": h.run("check", "--json"),
        "run": h.run("run", "--until-stream-start", "--json"),
        "status": h.run("status"),
    }
    assert results["run"].returncode == 0, results["run"].stderr
    assert "To datadog" not in results["check"].stdout, "only the streams feeding the data source"
    for command, result in results.items():
        shown = result.stdout + result.stderr
        assert not [secret for secret in secrets if secret in shown], command
    assert not [secret for secret in secrets if secret in h.state.read_text()]
