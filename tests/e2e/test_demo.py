"""`make demo` (`python -m backfill.sandbox.demo`): it completes, interrupts and resumes the job,
and the numbers it prints agree with each other; its own checks catch numbers that do not."""

from __future__ import annotations

import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from backfill.sandbox.credentials import Auth0Credentials, TinybirdCredentials
from backfill.sandbox.demo import Demo, Pipe, load_pipes
from tests.e2e.conftest import Harness, stream_envelope

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]
LOGS, SEED = 8000, 5


def number(text: str) -> int:
    return int(text.replace(",", ""))


def section(output: str, title: str) -> str:
    """The text of a demo section, from its `== N. title` heading to the next heading."""
    match = re.search(rf"^== \d\. {re.escape(title)}.*?\n(.*?)(?=^== \d\.|\Z)", output, re.M | re.S)
    assert match, f"no section {title!r} in:\n{output}"
    return match.group(1)


def test_the_demo_completes_and_its_numbers_agree(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTH0_")}
    env = {key: value for key, value in env.items() if not key.startswith("TINYBIRD_")}
    done = subprocess.run(
        [sys.executable, "-m", "backfill.sandbox.demo", "--logs", str(LOGS), "--days", "2",
         "--seed", str(SEED)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    output = done.stdout
    assert done.returncode == 0, output + done.stderr

    # Interrupted part way by SIGINT, then resumed with the same command until it exited 0.
    first = section(output, "Backfill, interrupted part way")
    assert "SIGINT sent" in first and "exit 130 after" in first
    held = re.search(r"Tinybird holds ([\d,]+) of ([\d,]+) logs", first)
    assert held and 0 < number(held.group(1)) < LOGS == number(held.group(2))
    assert "interrupted" in section(output, "Where the checkpoint stands")
    assert "exit 0 after" in section(output, "Resume")
    assert "Missing: none" in section(output, "Did everything land?")
    # The job's progress reached the terminal (off a terminal: progress lines on stderr).
    assert "progress coverage=" in done.stderr

    # Per day: Auth0's logs = unique rows + quarantined rows, no duplicates; totals add up.
    per_day = section(output, "Auth0 against Tinybird")
    days = re.findall(
        r"^  (\d{4}-\d\d-\d\d)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+([\d,]+)\s+ok$",
        per_day,
        re.M,
    )
    assert len(days) >= 2
    for _, logs, rows, unique, quarantined, duplicates in days:
        assert number(logs) == number(unique) + number(quarantined)
        assert number(rows) == number(unique) and number(duplicates) == 0
    totals = re.search(
        r"Totals: Auth0 ([\d,]+) = unique rows in auth0 ([\d,]+) \+ quarantined ([\d,]+): ok",
        per_day,
    )
    assert totals
    logs, unique, quarantined = (number(value) for value in totals.groups())
    assert logs == LOGS == unique + quarantined
    assert logs == sum(number(day[1]) for day in days)
    assert unique == sum(number(day[3]) for day in days)
    assert quarantined == sum(number(day[4]) for day in days) > 0
    assert re.search(r"Duplicates: rows [\d,]+ - unique [\d,]+ = 0 in auth0, 0 in", per_day)
    assert f"each of Auth0's {LOGS:,} is in auth0" in per_day and "DISAGREE" not in output

    # Every pipe answered, and agreed with Auth0's records.
    pipes = section(output, "The guide's use cases")
    for name in ("daily_logins_signups", "failed_logins_by_error", "top_applications"):
        assert f"{name}.pipe" in pipes
    assert pipes.count("the same from Auth0's records: ok") == 3
    logins = re.search(r"ok \(([\d,]+) logins and ([\d,]+) signups in (\d+) days\)", pipes)
    assert logins and number(logins.group(1)) > 0 and number(logins.group(2)) > 0
    # History older than retention, imported from an archive next to the backfill.
    history = section(output, "History past retention")
    assert "auth0-backfill import -> auth0: done" in history
    assert history.count(": ok") == 2 and "nothing to do ok" in history
    assert "Every number agrees" in section(output, "Result")

    # The demo's own lines fit a 100-column terminal; no credential is ever printed.
    tail = output[output.index("== 6.") :]
    assert max(len(line) for line in tail.splitlines()) <= 100
    auth0 = Auth0Credentials(SEED)
    tinybird = TinybirdCredentials(SEED, "auth0")
    secrets = [auth0.client.client_secret, tinybird.admin, tinybird.read, tinybird.append]
    for secret in secrets:
        assert secret not in output and secret not in done.stderr


def test_the_demo_catches_numbers_that_disagree(harness, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The checks themselves: after a clean backfill they pass; a duplicated row, or a pipe
    that counts something else, makes them fail (and `run` then exits 1)."""
    h: Harness = harness(logs=1500, days=2.0, seed=37, profile="unlimited", record_raw=False)
    assert h.run("run").returncode == 0
    pipes = load_pipes(ROOT / "tinybird" / "endpoints")
    demo = Demo(h.sandbox, tmp_path, pipes)
    try:
        demo.use_cases(demo.per_day())
        assert demo.checks.failures == []

        wrong = [
            Pipe(pipe.name, pipe.description, pipe.node, pipe.sql.replace("'scoa', ", "'ssa', "))
            for pipe in pipes
        ]
        assert any(pipe.sql != original.sql for pipe, original in zip(wrong, pipes, strict=True))
        demo.pipes = wrong
        demo.use_cases(demo.per_day())
        assert demo.checks.failures
        assert all("answers differently" in failure for failure in demo.checks.failures)

        demo.checks.failures.clear()
        record = next(r for r in h.records() if not isinstance(r.get("auth0_client"), list))
        response = httpx.post(
            f"{h.sandbox.tinybird_url}/v0/events",
            params={"name": "auth0", "wait": "true"},
            content=gzip.compress(json.dumps(stream_envelope(record)).encode()),
            headers={
                "Authorization": f"Bearer {h.sandbox.env()['TINYBIRD_TOKEN']}",
                "Content-Encoding": "gzip",
            },
            timeout=60,
        )
        assert response.status_code == 200
        demo.per_day()
        assert any("duplicate" in failure for failure in demo.checks.failures)
    finally:
        demo.query.close()
