"""Issue 8: fill the gap before a live Log Stream, resume from Tinybird itself (cron in a
throwaway container), and several tenants in one run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Harness, wait_for

pytestmark = pytest.mark.e2e


def test_until_stream_start_fills_exactly_the_gap(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=6000, days=4.0, seed=51, profile="unlimited")
    records = h.records()
    streamed_since = records[4000]["date"]
    h.tinybird(
        "/__sandbox/stream", method="POST", json={"since": streamed_since}
    ).raise_for_status()
    streamed = h.table_log_ids()
    assert streamed and min(streamed) >= records[3990]["log_id"]
    start = records[1000]["date"]
    result = h.run("run", "--from-date", start, "--until-stream-start", "--json")
    assert result.returncode == 0, result.stderr
    assert "first event in Tinybird" in result.stderr
    table = h.table_log_ids()
    wanted = {record["log_id"] for record in h.records(from_date=start)}
    assert set(table) == wanted, "every log from D onward is there"
    assert max(table.values()) == 1, "nothing the stream wrote was sent again"
    # The value is kept with the checkpoint: a later run neither asks again nor goes further.
    state = json.loads(h.state.read_text())
    assert state["started_with"]["until_stream_start"]
    again = h.run("run", "--json")
    assert again.returncode == 0 and again.summary()["rows_sent"] == 0


def test_until_stream_start_counts_the_streams_quarantined_rows(harness) -> None:  # type: ignore[no-untyped-def]
    # The stream sends `scope` as Auth0 wrote it; a space-separated string does not fit the
    # seed's Array column, so such a first row lands in the quarantine: the stream began there.
    h: Harness = harness(logs=3000, days=2.0, seed=53, profile="unlimited")
    records = h.records()
    first = next(record for record in records[1500:] if isinstance(record.get("scope"), str))
    h.tinybird("/__sandbox/stream", method="POST", json={"since": first["date"]}).raise_for_status()
    quarantined = h.sql(f"SELECT log_id FROM auth0_quarantine WHERE log_id = '{first['_id']}'")
    assert quarantined, "the stream's first row is in the quarantine"
    assert h.sql("SELECT min(log_id) AS low FROM auth0")[0]["low"] > first["_id"]

    result = h.run("run", "--until-stream-start", "--json")
    assert result.returncode == 0, result.stderr
    assert f"first event in Tinybird is at {first['date']}" in result.stderr
    sent = [row["log_id"] for row in h.received()]
    assert len(sent) == len(set(sent))
    assert set(sent) == {record["_id"] for record in records if record["date"] < first["date"]}


def test_until_stream_start_with_no_stream_goes_until_caught_up(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=2000, days=2.0, seed=52, profile="unlimited")
    result = h.run("run", "--until-stream-start", "--json")
    assert result.returncode == 0, result.stderr
    assert "no live stream" in result.stderr
    assert result.summary()["rows_sent"] == 2000


def fresh_container(h: Harness, tmp_path: Path, name: str) -> dict[str, str]:
    """A new, empty working directory each run: no state survives between runs."""
    workdir = tmp_path / name
    workdir.mkdir()
    return {"AUTH0_BACKFILL_STATE": str(workdir / "state.json")}


def test_cron_in_throwaway_containers_loses_and_duplicates_nothing(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=4000, days=3.0, seed=53, tinybird_ack_latency="50-150")
    start = h.records()[500]["date"]
    for index in range(4):
        env = fresh_container(h, tmp_path, f"container{index}")
        if index == 2:
            # One run dies mid-way (the container is killed): the next one still lands right.
            process = h.start("run", "--resume-from-tinybird", "--from-date", start, env=env)
            wait_for(lambda: h.received_count() > 200, timeout=60)
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=30)
            continue
        result = h.run("run", "--resume-from-tinybird", "--from-date", start, "--json", env=env)
        assert result.returncode == 0, result.stderr
        if index:
            assert "greatest log_id" in result.stderr
        h.append_logs(300)
    final = h.run(
        "run",
        "--resume-from-tinybird",
        "--from-date",
        start,
        env=fresh_container(h, tmp_path, "last"),
    )
    assert final.returncode == 0, final.stderr
    table = h.table_log_ids()
    assert set(table) == {record["log_id"] for record in h.records(from_date=start)}
    assert max(table.values()) == 1


def test_resume_from_tinybird_refuses_when_a_live_stream_writes_there(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=3000, days=3.0, seed=54, profile="unlimited")
    first = h.run("run", "--resume-from-tinybird", env=fresh_container(h, tmp_path, "a"))
    assert first.returncode == 0, first.stderr
    h.append_logs(400)
    h.tinybird(
        "/__sandbox/stream", method="POST", json={"since": h.records()[-200]["date"]}
    ).raise_for_status()
    refused = h.run("run", "--resume-from-tinybird", env=fresh_container(h, tmp_path, "b"))
    assert refused.returncode == 5
    assert "Log Stream" in refused.stderr and "skip history" in refused.stderr
    assert "--until-stream-start" in refused.stderr


def test_resume_from_tinybird_refuses_rows_beyond_a_hole(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=3000, days=3.0, seed=55, profile="unlimited")
    records = h.records()
    first = h.run(
        "run",
        "--resume-from-tinybird",
        "--until-date",
        records[1000]["date"],
        env=fresh_container(h, tmp_path, "a"),
    )
    assert first.returncode == 0, first.stderr
    # Someone else (no Log Stream registered) wrote later rows into the same data source.
    other = h.run(
        "run", "--from-date", records[2500]["date"], env=fresh_container(h, tmp_path, "b")
    )
    assert other.returncode == 0, other.stderr
    refused = h.run("run", "--resume-from-tinybird", env=fresh_container(h, tmp_path, "c"))
    assert refused.returncode == 5, refused.stderr
    assert "has no rows between" in refused.stderr and "Auth0 has logs there" in refused.stderr


def test_two_tenants_in_one_run_one_failing(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    production: Harness = harness(logs=2500, days=2.0, seed=56, profile="unlimited")
    staging_process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backfill.sandbox",
            "--json",
            "--logs",
            "1500",
            "--days",
            "2",
            "--seed",
            "57",
            "--profile",
            "unlimited",
            "--record-raw",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert staging_process.stdout is not None
        staging = json.loads(staging_process.stdout.readline())
        settings = tmp_path / "tenants.toml"
        settings.write_text(f"""
[run]
concurrency = 4

[[tenants]]
name = "production"
domain = "{production.sandbox.auth0_url}"
client_id_env = "PROD_CLIENT_ID"
client_secret_env = "PROD_CLIENT_SECRET"
tinybird_host = "{production.sandbox.tinybird_url}"
tinybird_token_env = "PROD_TINYBIRD_TOKEN"
datasource = "auth0"
state = "{tmp_path / "production.json"}"

[[tenants]]
name = "staging"
domain = "{staging["AUTH0_DOMAIN"]}"
client_id_env = "STAGING_CLIENT_ID"
client_secret_env = "STAGING_CLIENT_SECRET"
tinybird_host = "{staging["TINYBIRD_HOST"]}"
tinybird_token_env = "STAGING_TINYBIRD_TOKEN"
datasource = "auth0"
state = "{tmp_path / "staging.json"}"
""")
        env = {
            "PROD_CLIENT_ID": production.sandbox.env()["AUTH0_CLIENT_ID"],
            "PROD_CLIENT_SECRET": production.sandbox.env()["AUTH0_CLIENT_SECRET"],
            "PROD_TINYBIRD_TOKEN": production.sandbox.env()["TINYBIRD_TOKEN"],
            "STAGING_CLIENT_ID": staging["AUTH0_CLIENT_ID"],
            "STAGING_CLIENT_SECRET": "rotated-and-wrong",
            "STAGING_TINYBIRD_TOKEN": staging["TINYBIRD_TOKEN"],
        }
        result = production.run("run", "--config", str(settings), "--json", env=env)
        assert result.returncode == 11, result.stderr  # some tenants failed
        reports = {report["tenant"]: report for report in result.summary()}  # type: ignore[union-attr]
        assert reports["production"]["exit_code"] == 0
        assert reports["production"]["rows_sent"] == 2500
        assert reports["staging"]["exit_code"] == 3
        assert "AUTH0_CLIENT_ID" in reports["staging"]["error"]
        assert "tenant=staging" in result.stderr and "tenant=production" in result.stderr
        text = production.run("run", "--config", str(settings), env=env)
        assert (
            text.stdout.count("\n") == 2 and "production" in text.stdout and "FAILED" in text.stdout
        )
        # Fixed, the failing tenant catches up on its own.
        env["STAGING_CLIENT_SECRET"] = staging["AUTH0_CLIENT_SECRET"]
        only_staging = production.run(
            "run", "--config", str(settings), "--tenant", "staging", "--json", env=env
        )
        assert only_staging.returncode == 0, only_staging.stderr
        assert only_staging.summary()[0]["rows_sent"] == 1500  # type: ignore[index]
    finally:
        staging_process.send_signal(signal.SIGTERM)
        staging_process.communicate(timeout=30)
