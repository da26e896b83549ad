"""Issues 4 and 7: the job SIGKILLed at 20+ random moments across one backfill, restarted each
time. With read access to Tinybird it ends with zero losses and zero duplicates; without, it
says it is at-least-once, duplicates at most one batch per kill (one append in flight), and
``verify`` counts them."""

from __future__ import annotations

import random
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Harness, assert_exactly

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KILLS = 20
RUNS = 3 * KILLS  # attempts: a job that keeps finishing first fails the drill


def drill(
    h: Harness,
    settings: Path,
    *,
    env: dict[str, str] | None = None,
    seed: int = 0,
    log: list[str] | None = None,
) -> int:
    """Kill the job at random moments, up to KILLS times mid-run (at most RUNS attempts), then
    let it finish on its own; returns how many runs the SIGKILL really ended. Each run's stderr
    goes to ``log``."""
    rng = random.Random(seed)
    kills = 0
    for _ in range(RUNS):
        if kills >= KILLS:
            break
        process = h.start("run", "--config", str(settings), env=env)
        try:  # the random moment is the point: this wait ends early only if the run does
            process.wait(timeout=rng.uniform(0.4, 1.8))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=60)
        if log is not None:
            log.append(stderr)
        if process.returncode == -signal.SIGKILL:
            kills += 1  # it died mid-run: the checkpoint was left as the kill found it
        elif process.returncode == 0:
            h.append_logs(3000)  # it caught up before enough kills: give it more to do
        else:
            raise AssertionError(f"exit {process.returncode}: {stderr[-3000:]}")
    final = h.run("run", "--config", str(settings), env=env, timeout=300)
    if log is not None:
        log.append(final.stderr)
    assert final.returncode == 0, final.stderr[-3000:]
    return kills


def resumes(log: list[str]) -> str:
    """What the resumed runs said about appends left in flight, for a failure's message."""
    return "\n".join(line for text in log for line in text.splitlines() if "resume_unclean" in line)


def test_sigkill_drill_with_read_access_is_exactly_once(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=30000, days=4.0, seed=31, tinybird_ack_latency="100-300")
    settings = tmp_path / "drill.toml"
    settings.write_text("[batch]\nmax_rows = 300\n[run]\nresume_settle_seconds = 2.0\n")
    log: list[str] = []
    kills = drill(h, settings, seed=1, log=log)
    assert kills >= KILLS
    table = h.table_log_ids()  # counted in the sandbox's ClickHouse table (and quarantine)
    records = h.records()  # 30,000 of them: asked for once
    expected = {record["log_id"] for record in records}
    assert set(table) == expected, "losses"
    doubled = sorted(log_id for log_id, count in table.items() if count > 1)
    assert not doubled, f"{len(doubled)} duplicates, e.g. {doubled[:3]}\n{resumes(log)}"
    assert_exactly(h.received(), records)


def test_sigkill_drill_without_read_access_reports_its_duplicates(harness, tmp_path) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(logs=30000, days=4.0, seed=32, tinybird_ack_latency="100-300")
    settings = tmp_path / "drill.toml"
    settings.write_text(
        "[batch]\nmax_rows = 300\nin_flight = 1\n[run]\nresume_settle_seconds = 2.0\n"
    )
    append_only = {"TINYBIRD_TOKEN": h.sandbox.extras()["SANDBOX_TINYBIRD_APPEND_TOKEN"]}
    kills = drill(h, settings, env=append_only, seed=2)
    assert kills >= KILLS
    table = h.table_log_ids()
    expected = {record["log_id"] for record in h.records()}
    assert set(table) == expected, "losses"
    duplicates = sum(table.values()) - len(expected)
    assert duplicates <= kills * 300, f"{duplicates} duplicates: more than one batch per kill"

    last = h.run("run", "--json", env=append_only)
    assert last.summary()["exactly_once"] is False
    assert "at-least-once" in h.run("run", env=append_only).stdout
    read = {"TINYBIRD_READ_TOKEN": h.sandbox.extras()["SANDBOX_TINYBIRD_READ_TOKEN"]}
    report: dict[str, Any] = h.run("verify", "--json", env={**append_only, **read}).summary()
    counted = h.sql("SELECT count() - uniqExact(log_id) AS duplicates FROM auth0")[0]["duplicates"]
    assert report["duplicates"] == int(counted) > 0  # verify reports what the table holds
    assert report["missing"] == 0
    assert "LIMIT 1 BY log_id" in report["dedup_query"]
