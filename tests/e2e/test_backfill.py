"""Issue 2: the job end to end, as a subprocess against the sandbox's real HTTP servers."""

from __future__ import annotations

import random
import signal
import time
from datetime import timedelta

import pytest

from backfill.timeutil import iso, parse_record_date
from tests.e2e.conftest import Harness, assert_exactly, kill, wait_for

pytestmark = pytest.mark.e2e

TENANT = {"logs": 6000, "days": 4.0, "seed": 11, "profile": "unlimited"}


def moment(h: Harness, fraction: float) -> str:
    """A date a fraction of the way through the tenant, off any round number."""
    records = h.records()
    first = parse_record_date(records[0]["date"])
    last = parse_record_date(records[-1]["date"])
    assert first and last
    return iso(first + (last - first) * fraction + timedelta(milliseconds=137))


def test_from_date_until_caught_up(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    start = moment(h, 0.31)
    result = h.run("run", "--from-date", start, "--json")
    assert result.returncode == 0, result.stderr
    summary = result.summary()
    assert summary["outcome"] == "caught_up"
    expected = h.records(from_date=start)
    assert len(expected) > 3000
    assert_exactly(h.received(), expected)
    assert summary["rows_sent"] == len(expected)
    assert summary["exactly_once"] is True
    # stdout is only the summary; logs are on stderr.
    assert result.stdout.count("\n") == 1 and "plan ranges=" in result.stderr


def test_from_date_until_date(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    start, end = moment(h, 0.2), moment(h, 0.77)
    result = h.run("run", "--from-date", start, "--until-date", end, "--json")
    assert result.returncode == 0, result.stderr
    assert result.summary()["outcome"] == "reached_until"
    expected = h.records(from_date=start, until_date=end)
    assert_exactly(h.received(), expected)
    dates = [parse_record_date(envelope["data"]["date"]) for envelope in h.received()]
    assert min(dates) >= parse_record_date(start)  # type: ignore[operator]
    assert max(dates) < parse_record_date(end)  # type: ignore[operator]


def test_from_log_id_is_exclusive(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    records = h.records()
    after = records[2345]["log_id"]
    result = h.run("run", "--from-log-id", after, "--json")
    assert result.returncode == 0, result.stderr
    assert_exactly(h.received(), records[2346:])


def test_without_a_start_everything_auth0_retains(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    result = h.run("run")
    assert result.returncode == 0, result.stderr
    assert "oldest log Auth0 still retains" in result.stderr
    assert_exactly(h.received(), h.records())
    # The one-line summary, for people and cron mail.
    assert result.stdout.startswith("auth0-backfill ") and "caught up" in result.stdout


def test_a_second_run_sends_only_the_new_logs(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    first = h.run("run", "--json")
    assert first.returncode == 0, first.stderr
    before = len(h.received())
    appended = h.append_logs(700)
    second = h.run("run", "--json")
    assert second.returncode == 0, second.stderr
    assert second.summary()["rows_sent"] == 700
    received = h.received()
    assert len(received) == before + 700
    assert_exactly(received, h.records())
    # The second run sent the new logs, the newest included (its cursors may send them in any
    # order), and nothing it had sent before.
    newest = max((row["log_id"] for row in received[before:]), key=lambda i: (len(i), i))
    assert newest == appended["last_log_id"]
    third = h.run("run", "--json")
    assert third.summary()["rows_sent"] == 0 and len(h.received()) == before + 700


def test_same_flags_resume_and_different_flags_are_refused(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    start = moment(h, 0.5)
    assert h.run("run", "--from-date", start).returncode == 0
    again = h.run("run", "--from-date", start, "--json")
    assert again.returncode == 0 and again.summary()["rows_sent"] == 0
    other = h.run("run", "--from-date", moment(h, 0.4))
    assert other.returncode == 5
    assert str(h.state) in other.stderr and "--restart" in other.stderr
    # Started over, the new window holds rows already sent: refused, or only what is missing.
    restarted = h.run("run", "--from-date", moment(h, 0.4), "--restart")
    assert restarted.returncode == 5 and "--skip-existing" in restarted.stderr
    filled = h.run("run", "--from-date", moment(h, 0.4), "--restart", "--skip-existing", "--json")
    assert filled.returncode == 0, filled.stderr
    assert filled.summary()["already_in_tinybird"] > 0
    counted = h.table_log_ids()
    assert max(counted.values()) == 1
    earlier = moment(h, 0.4)
    assert set(counted) == {r["log_id"] for r in h.records() if r["date"] >= earlier}


def test_sigkill_mid_run_then_resume_loses_nothing(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=12000, days=3.0, seed=5, tinybird_ack_latency="150-400")
    config = tmp_path / "small-batches.toml"
    config.write_text("[batch]\nmax_rows = 400\n[run]\nresume_settle_seconds = 0.5\n")
    process = h.start("run", "--config", str(config))
    wait_for(lambda: h.received_count() > 2000, timeout=60)
    time.sleep(random.uniform(0.0, 0.5))
    kill(process, signal.SIGKILL)
    landed = len(h.received())
    assert landed < 12000, "killed too late to test anything"
    resumed = h.run("run", "--config", str(config), "--json")
    assert resumed.returncode == 0, resumed.stderr
    duplicates = assert_exactly(h.received(), h.records(), duplicates_allowed=400)
    assert duplicates == 0  # the resume asked Tinybird what had landed
    table = h.table_log_ids()
    assert sum(table.values()) == 12000 and len(table) == 12000


def test_a_backfill_longer_than_the_token_life_goes_on(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=6000, days=3.0, seed=12, token_ttl=3, tinybird_ack_latency="200-300")
    settings = tmp_path / "s.toml"
    settings.write_text("[batch]\nmax_rows = 300\nin_flight = 1\n[run]\nconcurrency = 1\n")
    started = time.monotonic()
    result = h.run("run", "--config", str(settings))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started > 4  # outlived the token
    grants = h.auth0("/__sandbox/stats").json()["token_grants"]
    assert grants >= 2, "the token was never refreshed"
    assert_exactly(h.received(), h.records())


def test_status_shows_where_the_checkpoint_stands(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    empty = h.run("status")
    assert empty.returncode == 0 and "No checkpoint" in empty.stdout
    assert h.run("run").returncode == 0
    text = h.run("status")
    assert text.returncode == 0
    newest = h.records()[-1]
    assert newest["log_id"] in text.stdout and newest["date"] in text.stdout
    assert "Rows sent:       6,000" in text.stdout and "Last run:" in text.stdout
    summary = h.run("status", "--json").summary()
    assert summary["rows_sent"] == 6000 and summary["newest_log_id"] == newest["log_id"]
    assert summary["last_run"]["outcome"] == "caught_up" and summary["pending_appends"] == 0
