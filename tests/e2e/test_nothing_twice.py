"""Issue 14: nothing duplicated or lost off the happy path: a record too large for Tinybird even
alone, and a state file pointed at another Tinybird host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.clean import assert_clean, assert_says
from tests.e2e.conftest import Harness, assert_exactly, stream_envelope

pytestmark = pytest.mark.e2e

SMALL = {"logs": 1500, "days": 2.0, "seed": 62, "profile": "unlimited"}


def line_size(record: dict[str, Any]) -> int:
    """Bytes of the record's NDJSON line as an append carries it (compact JSON, newline)."""
    text = json.dumps(stream_envelope(record), ensure_ascii=False, separators=(",", ":"))
    return len(text.encode()) + 1


@pytest.mark.slow
def test_a_record_too_large_even_alone_is_got_past_with_one_command(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(
        logs=600, days=1.0, seed=5, profile="unlimited", tinybird_ack_latency="20-150"
    )
    records = h.records()
    sizes = sorted((line_size(record), record["log_id"]) for record in records)
    (second, _), (largest, too_large) = sizes[-2], sizes[-1]
    assert largest - second >= 2  # one record alone is over the limit set below
    # Tinybird's body limit (10 MB) brought down to between the two largest records.
    limit = (largest + second) // 2
    h.tinybird("/__sandbox/config", method="POST", json={"max_body_bytes": limit})
    config = tmp_path / "settings.toml"
    # One row per append, four in flight: appends after the refused one are acknowledged
    # while it is still on its way.
    config.write_text("[batch]\nmax_rows = 1\nin_flight = 4\n[run]\nconcurrency = 1\n")

    first = h.run("run", "--config", str(config))
    assert first.returncode == 9, first.stderr[-3000:]
    assert_says(first, too_large, "too large (413), even alone", f"--skip-log-id {too_large}")
    landed = [row["log_id"] for row in h.received()]
    assert too_large not in landed and len(landed) == len(set(landed))
    position = [record["log_id"] for record in records].index(too_large)
    assert 10 < position < len(records) - 10  # (this seed) a record in the middle
    assert any(log_id > too_large for log_id in landed)  # later appends landed before the stop
    state = json.loads(h.state.read_text())
    assert [entry["log_id"] for entry in state["refused"]] == [too_large]
    # Every acknowledged row is recorded; what is still pending is an append cut short by the
    # stop (a retry's wait, say), which did not land and which the next run checks first.
    assert state["rows_sent"] == len(landed)
    assert not {pending["first_log_id"] for pending in state["pending"]} & set(landed)
    assert_clean(h, first)
    status = h.run("status")
    assert "Refused:" in status.stdout and f"--skip-log-id {too_large}" in status.stdout

    # A plain run tries it once more, alone; refused again, it stops with the state as it was.
    before = h.state.read_bytes()
    again = h.run("run", "--config", str(config))
    assert again.returncode == 9 and too_large in again.stderr
    assert h.state.read_bytes() == before
    assert len(h.received()) == len(landed)
    assert_clean(h, again)

    # The one documented command: every other log lands, none twice.
    past = h.run("run", "--config", str(config), "--skip-log-id", too_large)
    assert past.returncode == 0, past.stderr[-3000:]
    assert_exactly(h.received(), [record for record in records if record["log_id"] != too_large])
    state = json.loads(h.state.read_text())
    assert state["refused"] == [] and [entry["log_id"] for entry in state["skipped"]] == [too_large]
    assert "Skipped:" in h.run("status").stdout
    verified = h.run("verify")
    assert verified.returncode == 0 and "Missing: none" in verified.stdout, verified.stdout
    assert_clean(h, past)


def test_a_state_resumed_against_another_tinybird_host(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    elsewhere: Harness = harness(**SMALL)  # another workspace
    assert h.run("run").returncode == 0
    h.append_logs(40)
    before = h.state.read_bytes()
    other = {
        "TINYBIRD_HOST": elsewhere.sandbox.tinybird_url,
        "TINYBIRD_TOKEN": elsewhere.sandbox.env()["TINYBIRD_TOKEN"],
    }
    moved = h.run("run", env=other)
    assert moved.returncode == 5, moved.stderr
    assert_says(
        moved,
        f"made for the Tinybird host {h.sandbox.tinybird_url}",
        f"not {elsewhere.sandbox.tinybird_url}",
        f"TINYBIRD_HOST={h.sandbox.tinybird_url}",
        "--restart",
    )
    assert h.state.read_bytes() == before and elsewhere.received() == []
    assert_clean(h, moved, env=other)
    preview = h.run("run", "--dry-run", env=other)  # the preview refuses what the run refuses
    assert preview.returncode == 5 and preview.stdout == ""
    assert "made for the Tinybird host" in preview.stderr
    assert h.state.read_bytes() == before
    # Back on its own host it resumes: only the new logs.
    assert h.run("run").returncode == 0
    assert_exactly(h.received(), h.records())


def test_restarting_a_state_of_another_host_is_still_possible(harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**SMALL)
    elsewhere: Harness = harness(**SMALL)
    assert h.run("run", "--until-date", h.records()[200]["date"]).returncode == 0
    other = {
        "TINYBIRD_HOST": elsewhere.sandbox.tinybird_url,
        "TINYBIRD_TOKEN": elsewhere.sandbox.env()["TINYBIRD_TOKEN"],
        "AUTH0_DOMAIN": h.sandbox.auth0_url,
    }
    restarted = h.run("run", "--restart", env=other)
    assert restarted.returncode == 0, restarted.stderr
    assert json.loads(h.state.read_text())["tinybird_host"] == elsewhere.sandbox.tinybird_url


@pytest.mark.slow
def test_without_a_state_file_nothing_after_the_refused_record_is_sent(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """--resume-from-tinybird: the data source is the checkpoint, so rows after a refused one
    must not land (the next run would resume past it); --skip-log-id gets past it."""
    h: Harness = harness(logs=600, days=1.0, seed=5, profile="unlimited")
    records = h.records()
    sizes = sorted((line_size(record), record["log_id"]) for record in records)
    (second, _), (largest, too_large) = sizes[-2], sizes[-1]
    h.tinybird("/__sandbox/config", method="POST", json={"max_body_bytes": (largest + second) // 2})
    config = tmp_path / "settings.toml"
    config.write_text("[batch]\nmax_rows = 20\n")
    args = ("run", "--resume-from-tinybird", "--config", str(config))

    first = h.run(*args)
    assert first.returncode == 9, first.stderr[-3000:]
    assert_says(first, too_large, "Nothing after it was sent", f"--skip-log-id {too_large}")
    landed = [row["log_id"] for row in h.received()]
    assert landed and all(log_id < too_large for log_id in landed)
    assert_clean(h, first)
    again = h.run(*args)  # the same record stops it again: nothing lost silently
    assert again.returncode == 9 and len(h.received()) == len(landed)

    past = h.run(*args, "--skip-log-id", too_large)
    assert past.returncode == 0, past.stderr[-3000:]
    assert_exactly(h.received(), [record for record in records if record["log_id"] != too_large])
    assert_clean(h, past)
