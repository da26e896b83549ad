"""A state file written by auth0-backfill 0.1.0 (before the job was restructured) resumes: the
file in tests/fixtures/state/ was left by a 0.1.0 run SIGKILLed mid-way (six ranges, eleven
appends in flight) against the sandbox tenant below, which the seed makes again identically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.conftest import Harness, stream_envelope

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).parents[1] / "fixtures" / "state" / "state-0.1.0.json"
FROM, UNTIL = "2026-11-18T06:00:00Z", "2026-11-19T18:00:00Z"
TENANT = {
    "seed": 77,
    "logs": 30000,
    "days": 2.0,
    "end": datetime(2026, 11, 20, tzinfo=UTC),
    "retention_days": 100000,  # the fixture's dates stay inside retention whenever this runs
}


def committed(document: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records the 0.1.0 run had acknowledged: each range's, up to its cursor."""
    done = []
    for item in document["ranges"]:
        if item["cursor"] is None:
            continue
        for record in records:
            in_range = item["start"] <= record["date"] < item["end"]
            if in_range and record["log_id"] <= item["cursor"]:
                done.append(record)
    return done


@pytest.mark.slow
def test_a_state_file_of_0_1_0_resumes_without_loss_or_duplicate(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    document = json.loads(FIXTURE.read_text())
    assert document["written_by"] == "0.1.0" and document["pending"]
    # Bound to the sandbox it was written against: point it at this one (same tenant, new port).
    document["tenant"] = urlsplit(h.sandbox.auth0_url).netloc
    document["tinybird_host"] = h.sandbox.tinybird_url
    h.state.write_text(json.dumps(document))
    records = h.records(FROM, UNTIL)
    landed = committed(document, records)
    assert len(landed) == document["rows_sent"]
    body = "".join(json.dumps(stream_envelope(record)) + "\n" for record in landed)
    token = h.sandbox.env()["TINYBIRD_TOKEN"]
    answer = h.tinybird(
        "/v0/events",
        method="POST",
        params={"name": "auth0", "wait": "true"},
        content=body.encode(),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text

    result = h.run("run", "--from-date", FROM, "--until-date", UNTIL, "--json")
    assert result.returncode == 0, result.stderr
    summary = result.summary()
    assert summary["outcome"] == "reached_until"
    assert summary["rows_sent"] == len(records) - len(landed)
    table = h.table_log_ids()
    assert set(table) == {record["log_id"] for record in records}
    assert max(table.values()) == 1
    verified = h.run("verify", "--json").summary()
    assert verified["missing"] == 0 and verified["duplicates"] == 0
