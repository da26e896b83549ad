"""Issue 6: the operator's tools, end to end: check, verify, progress, dry run, filters, logs."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest

from backfill.auth0.event_types import expand
from tests.e2e.conftest import Harness, assert_exactly, stream_envelope

pytestmark = pytest.mark.e2e

SMALL = {"logs": 3000, "days": 3.0, "seed": 41, "profile": "unlimited"}
SEED_SCHEMA = Path(__file__).parents[2] / "tinybird" / "datasources" / "auth0.datasource"


def lines(stdout: str) -> dict[str, str]:
    """check's output: name -> status."""
    found = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("PASS", "WARN", "FAIL", "SKIP"):
            found[parts[1]] = parts[0]
    return found


# -- check ------------------------------------------------------------------------------------


def test_check_passes_on_a_good_setup(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run("check")
    assert result.returncode == 0, result.stdout + result.stderr
    statuses = lines(result.stdout)
    for name in (
        "auth0.credentials",
        "auth0.read_logs",
        "auth0.oldest_log",
        "tinybird.token",
        "tinybird.append",
        "tinybird.datasource",
        "tinybird.schema",
    ):
        assert statuses.get(name) == "PASS", result.stdout
    assert h.records()[0]["date"][:10] in result.stdout  # the reachable window
    assert h.received() == []  # the append probe wrote nothing
    assert h.sql("SELECT count() AS n FROM auth0")[0]["n"] == 0


def test_check_names_each_failure(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    extras = h.sandbox.extras()
    wrong_region = h.run(
        "check", env={"TINYBIRD_TOKEN": extras["SANDBOX_TINYBIRD_OTHER_REGION_TOKEN"]}
    )
    assert wrong_region.returncode == 10
    assert lines(wrong_region.stdout)["tinybird.token"] == "FAIL"
    assert "api.europe-west2.gcp.tinybird.co" in wrong_region.stdout

    garbage = h.run("check", env={"TINYBIRD_TOKEN": "p.not-a-token"})
    assert garbage.returncode == 10 and "FAIL" in garbage.stdout

    missing = h.run("check", env={"TINYBIRD_DATASOURCE": "nowhere"})
    assert missing.returncode == 10
    assert lines(missing.stdout)["tinybird.datasource"] == "FAIL"

    no_scope = h.run(
        "check",
        env={
            "AUTH0_CLIENT_ID": extras["SANDBOX_AUTH0_LIMITED_CLIENT_ID"],
            "AUTH0_CLIENT_SECRET": extras["SANDBOX_AUTH0_LIMITED_CLIENT_SECRET"],
        },
    )
    assert no_scope.returncode == 10
    assert lines(no_scope.stdout)["auth0.read_logs"] == "FAIL" and "read:logs" in no_scope.stdout

    unset = h.run("check", "--json", env={"AUTH0_DOMAIN": "", "TINYBIRD_TOKEN": ""})
    assert unset.returncode == 10
    checks = {item["name"]: item["status"] for item in json.loads(unset.stdout)["checks"]}
    assert checks["auth0.settings"] == "fail" and checks["tinybird.settings"] == "fail"


def test_check_warns_on_a_schema_that_stamps_ingest_time(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ingest_time = tmp_path / "auth0_ingest_time.datasource"
    ingest_time.write_text(
        SEED_SCHEMA.read_text().replace(
            "`date` DateTime64(3) `json:$.data.date` DEFAULT now(),",
            "`date` DateTime64(3) DEFAULT now(),",
        )
    )
    h: Harness = harness(**SMALL, datasource_file=ingest_time)
    result = h.run("check")
    assert result.returncode == 0, result.stdout  # a warning, not a failure
    assert lines(result.stdout)["tinybird.schema"] == "WARN"
    assert "column date reads no jsonpath, DEFAULT now(), not $.data.date" in result.stdout


# -- verify -----------------------------------------------------------------------------------


def test_verify_after_a_complete_run(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    assert h.run("run").returncode == 0
    result = h.run("verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Missing: none" in result.stdout and "Duplicates: none" in result.stdout
    report = h.run("verify", "--json").summary()
    assert report["missing"] == 0 and report["duplicates"] == 0
    quarantined = h.sql("SELECT count() AS n FROM auth0_quarantine")[0]["n"]
    assert report["quarantined_since_start"] == int(quarantined)
    assert report["sent"] == len(h.records()) == report["unique"] + int(quarantined)
    assert len(report["days"]) >= 3


def test_verify_finds_missing_rows(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    assert h.run("run").returncode == 0
    complete = tmp_path / "complete-state.json"
    shutil.copy(h.state, complete)
    # Lose everything, then put back only the first half: the later days go missing.
    h.tinybird("/__sandbox/reset", method="POST").raise_for_status()
    half = h.records()[len(h.records()) // 2]["date"]
    partial = h.run(
        "run", "--until-date", half, env={"AUTH0_BACKFILL_STATE": str(tmp_path / "p.json")}
    )
    assert partial.returncode == 0
    result = h.run("verify", "--state", str(complete))
    assert result.returncode == 10, result.stdout
    report = h.run("verify", "--json", "--state", str(complete)).summary()
    missing = {day["day"]: day["missing"] for day in report["days"] if day["missing"]}
    assert missing and report["missing"] == len(h.records()) - len(h.records(until_date=half))
    assert max(missing) >= half[:10]


def test_verify_without_the_state_file_names_the_path_and_what_replaces_it(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    typo = "stat.json"
    result = h.run("verify", "--state", typo)
    assert result.returncode == 2, result.stderr
    assert f"no state file at {typo}" in result.stderr
    assert "--state" in result.stderr and "--from-date" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr) < 700


# -- progress, quiet, log format --------------------------------------------------------------


def test_progress_lines_off_a_terminal_and_quiet(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=6000, days=3.0, seed=42, tinybird_ack_latency="100-200")
    settings = tmp_path / "s.toml"
    settings.write_text("[run]\nprogress_interval = 0.3\n[batch]\nmax_rows = 500\n")
    noisy = h.run("run", "--config", str(settings))
    assert noisy.returncode == 0
    progress = [line for line in noisy.stderr.splitlines() if " progress coverage=" in line]
    assert len(progress) >= 2
    assert "logs_per_s=" in progress[0] and "eta=" in progress[0]
    h.append_logs(500)
    quiet = h.run("run", "--config", str(settings), "--quiet")
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    assert "caught up" in quiet.stdout


def test_json_logs_for_collectors(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run("run", "--log-format", "json")
    assert result.returncode == 0
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert events and all({"time", "level", "event"} <= set(event) for event in events)
    assert any(event["event"] == "plan" and "ranges" in event for event in events)


# -- dry run ----------------------------------------------------------------------------------


def test_dry_run_writes_the_envelopes_and_touches_nothing(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    records = h.records()
    start, end = records[500]["date"], records[2200]["date"]
    result = h.run("run", "--dry-run", "--from-date", start, "--until-date", end)
    assert result.returncode == 0, result.stderr
    written = [json.loads(line) for line in result.stdout.splitlines()]
    expected = [stream_envelope(record) for record in h.records(from_date=start, until_date=end)]
    assert written == expected  # in log_id order, exactly the envelopes
    assert "dry run" in result.stderr  # the summary, off stdout
    assert not h.state.exists() and h.received() == []
    output = tmp_path / "out.ndjson"
    to_file = h.run(
        "run", "--dry-run", "--output", str(output), "--from-date", start, "--until-date", end
    )
    assert to_file.returncode == 0 and "dry run" in to_file.stdout
    assert [json.loads(line) for line in output.read_text().splitlines()] == expected
    assert stat.S_IMODE(output.stat().st_mode) == 0o600, "it holds records: private"
    # A file that was there before, readable by all, is made private too; whatever the umask.
    output.write_text("old")
    output.chmod(0o644)
    # The child's umask alone (this process's is shared by every thread of the test worker):
    # one that would leave new files 0666.
    again = h.run(
        "run", "--dry-run", "--output", str(output), "--from-date", start, "--until-date", end,
        umask=0,
    )  # fmt: skip
    fresh = tmp_path / "fresh.ndjson"
    anew = h.run(
        "run", "--dry-run", "--output", str(fresh), "--from-date", start, "--until-date", end,
        umask=0,
    )  # fmt: skip
    assert again.returncode == 0 and stat.S_IMODE(output.stat().st_mode) == 0o600
    assert anew.returncode == 0 and stat.S_IMODE(fresh.stat().st_mode) == 0o600


# -- type filters -----------------------------------------------------------------------------


def test_types_and_categories_filter_and_the_checkpoint_moves_past(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run("run", "--types", "s,auth.login.fail", "--json")
    assert result.returncode == 0, result.stderr
    wanted = expand(["s", "auth.login.fail"], option="test")
    expected = [record for record in h.records() if record.get("type") in wanted]
    assert {"s", "f", "fp"} & {record["type"] for record in expected}
    assert_exactly(h.received(), expected)
    assert result.summary()["filtered"] > 0
    again = h.run("run", "--types", "s,auth.login.fail", "--json")
    assert again.summary()["rows_sent"] == 0
    excluded = h.run(
        "run", "--exclude-types", "seacft", "--restart", "--allow-duplicates", "--json"
    )
    assert excluded.returncode == 0
    assert "seacft" not in {row["data"].get("type") for row in h.received()[len(expected) :]}


def test_unknown_type_is_named(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    result = h.run("run", "--types", "auth.login.fial")
    assert result.returncode == 2
    assert "auth.login.fial" in result.stderr and "auth.login.fail" in result.stderr
