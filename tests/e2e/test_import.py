"""Issue 28: ``auth0-backfill import`` end to end, the real CLI as a subprocess against the
sandbox: the three shapes and layouts, compression without a suffix, overlapping archives into a
data source that already holds part of them, SIGKILLs, bad archives, several tenants, standard
input."""

from __future__ import annotations

import gzip
import json
import os
import signal
import stat
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.e2e.conftest import Harness, Result, stream_envelope, wait_for

pytestmark = pytest.mark.e2e

TENANT = {"logs": 4000, "days": 20.0, "seed": 28, "profile": "unlimited"}


# -- archives, written as the tools that keep them write them ---------------------------------


def records(h: Harness, first: int = 0, last: int | None = None) -> list[dict[str, Any]]:
    """Management API records of the sandbox's tenant, as GET /api/v2/logs returns them."""
    tenant = h.sandbox.tenant
    return [tenant.record(index) for index in range(first, len(tenant) if last is None else last)]


def envelope(record: dict[str, Any]) -> dict[str, Any]:
    streamed = {key: value for key, value in record.items() if key not in ("_id", "id", "isMobile")}
    return {"log_id": record["log_id"], "data": streamed}


def eventbridge(detail: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6f560900-5e58-4dff-bc32-eebf092d59b4",
        "detail-type": "Auth0 log",
        "source": "aws.partner/auth0.com/sandbox-123/auth0.logs",
        "account": "123456789012",
        "time": "2026-11-03T03:06:08Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def ndjson(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def imported(h: Harness, *args: str, env: dict[str, str] | None = None) -> Result:
    return h.run("import", *args, "--state", str(h.workdir / "import.json"), env=env)


def expect(received: list[dict[str, Any]], wanted: dict[str, dict[str, Any]]) -> None:
    """Every wanted row arrived once, as written, and nothing else."""
    counts = Counter(row["log_id"] for row in received)
    assert set(counts) == set(wanted), f"missing {len(set(wanted) - set(counts))}"
    assert max(counts.values()) == 1, "duplicates"
    for row in received:
        assert row == wanted[row["log_id"]], f"changed on the way: {row['log_id']}"


# -- the tests ------------------------------------------------------------------------------


def test_three_shapes_three_layouts_and_compression_without_a_suffix(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    logs = records(h, 0, 1500)
    api, streamed, bridged = logs[:600], logs[500:1100], logs[1000:]  # overlapping by 100
    archive = h.workdir / "archive"
    write(archive / "api" / "part-0001", gzip.compress(ndjson(api)))  # gzip, no suffix
    write(archive / "stream" / "bodies.json", json.dumps([envelope(r) for r in streamed]).encode())
    events = [eventbridge(envelope(r)) for r in bridged[:250]] + [
        eventbridge(r) for r in bridged[250:]
    ]
    concatenated = b"".join(json.dumps(event).encode() for event in events)  # as Firehose does
    write(
        archive / "zz-firehose" / "2026" / "obj", zstandard.ZstdCompressor().compress(concatenated)
    )
    result = imported(h, str(archive), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = result.summary()
    assert summary["layouts"] == {"NDJSON": 1, "JSON array": 1, "concatenated JSON objects": 1}
    assert summary["shapes"] == {
        "Management API record": 600,
        "Log Stream envelope": 600,
        "EventBridge event": 500,
    }
    assert summary["duplicates"] == 200 and summary["rows_sent"] == 1500
    # The first copy read wins: directories in name order (api, stream, zz-firehose).
    wanted = {r["log_id"]: stream_envelope(r) for r in logs[:600] + logs[1250:]}
    wanted.update({r["log_id"]: stream_envelope(envelope(r)["data"]) for r in logs[600:1250]})
    expect(h.received(), wanted)
    state = h.workdir / "import.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    again = imported(h, str(archive), "--json")
    assert again.returncode == 0 and again.summary()["outcome"] == "nothing_to_do"


def test_rows_already_there_refused_then_skip_existing_fills_only_the_rest(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    logs = records(h)
    cut = logs[3000]["date"]
    backfill = h.run("run", "--from-date", cut)  # the data source holds the last stretch
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    write(h.workdir / "a.ndjson.gz", gzip.compress(ndjson(logs[:2500])))
    write(h.workdir / "b.ndjson", ndjson(logs[2000:]))  # overlaps a, and what the run sent
    refused = imported(h, "a.ndjson.gz", "b.ndjson")
    assert refused.returncode == 5, refused.stderr[-2000:]
    assert "already holds" in refused.stderr and "--skip-existing" in refused.stderr
    assert not (h.workdir / "import.json").exists(), "a refused import leaves no checkpoint"
    filled = imported(h, "a.ndjson.gz", "b.ndjson", "--skip-existing", "--json")
    assert filled.returncode == 0, filled.stderr[-2000:]
    assert filled.summary()["already_in_tinybird"] == len(logs) - 3000
    expect(h.received(), {r["log_id"]: stream_envelope(r) for r in logs})


def test_sigkill_anywhere_then_the_same_command_loses_and_doubles_nothing(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT, tinybird_ack_latency="50-150")
    logs = records(h)
    write(h.workdir / "archive" / "one", gzip.compress(ndjson(logs[:2200])))
    write(h.workdir / "archive" / "two", ndjson(logs[1800:]))
    settings = write(
        h.workdir / "small.toml",
        b"[batch]\nmax_rows = 150\nin_flight = 3\n[run]\nresume_settle_seconds = 0.5\n",
    )
    state = h.workdir / "import.json"
    command = ("import", "archive", "--config", str(settings), "--state", str(state))

    def sent() -> int:
        try:
            return int(json.loads(state.read_bytes())["rows_sent"])
        except (OSError, ValueError, KeyError):
            return 0

    kills = 0
    for threshold in (0, 1, 900, 2000):  # while reading, at the first append, then later
        process = h.start(*command)
        if threshold == 0:
            wait_for(lambda: any(h.workdir.glob(".import.json.staging-*")), timeout=60)
        else:
            wait_for(
                lambda t=threshold, p=process: sent() >= t or p.poll() is not None, timeout=120
            )
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.communicate(timeout=60)
    assert kills >= 3
    final = h.run(*command, "--json")
    assert final.returncode == 0, final.stderr[-2000:]
    table = h.table_log_ids()
    assert set(table) == {r["log_id"] for r in logs}, "losses"
    assert max(table.values()) == 1, "duplicates"
    assert not list(h.workdir.glob(".import.json.staging-*")), "staging left behind"


def test_a_line_cut_short_stops_the_import_unless_max_rejects(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    logs = records(h, 0, 300)
    text = ndjson(logs[:200]) + json.dumps(logs[200]).encode()[:150] + b"\n" + ndjson(logs[201:])
    write(h.workdir / "cut", gzip.compress(text))
    stopped = imported(h, "cut")
    assert stopped.returncode == 9, stopped.stderr[-2000:]
    assert "cut, line 201 (item 201): not JSON" in stopped.stderr
    assert "--max-rejects" in stopped.stderr
    assert h.received() == [] and not (h.workdir / "import.json").exists()
    went = imported(h, "cut", "--max-rejects", "1", "--json")
    assert went.returncode == 0, went.stderr[-2000:]
    assert went.summary()["rejected"] == 1 and went.summary()["rows_sent"] == 299
    rejects = Path(went.summary()["rejects_file"])
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600
    entry = json.loads(rejects.read_text())
    assert (entry["source"], entry["line"], entry["item"]) == ("cut", 201, 201)
    expect(h.received(), {r["log_id"]: stream_envelope(r) for r in logs if r is not logs[200]})


def test_two_tenants_refused_without_tenant(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    logs = records(h, 0, 400)
    for index, record in enumerate(logs):
        if index % 4:
            record["tenant_name"] = "acme" if index % 4 != 3 else "globex"
        else:
            record.pop("tenant_name", None)  # older records: no tenant_name
    write(h.workdir / "mixed.ndjson", ndjson(logs))
    refused = imported(h, "mixed.ndjson")
    assert refused.returncode == 5, refused.stderr[-2000:]
    assert "acme (200)" in refused.stderr and "globex (100)" in refused.stderr
    assert "100 logs without tenant_name" in refused.stderr and "--tenant" in refused.stderr
    assert h.received() == []
    picked = imported(h, "mixed.ndjson", "--tenant", "acme", "--json")
    assert picked.returncode == 0, picked.stderr[-2000:]
    assert picked.summary()["other_tenants"] == {"globex": 100}
    kept = [r for r in logs if r.get("tenant_name") in ("acme", None)]
    expect(h.received(), {r["log_id"]: stream_envelope(r) for r in kept})


def test_standard_input(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    logs = records(h, 100, 700)
    done = subprocess.run(
        h.command("import", "-", "--json", "--state", str(h.workdir / "import.json")),
        input=gzip.compress(ndjson(logs)),
        env=h.environment(),
        cwd=h.workdir,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert json.loads(done.stdout)["rows_sent"] == 600
    expect(h.received(), {r["log_id"]: stream_envelope(r) for r in logs})


def test_unreadable_sources_and_changed_ones(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    missing = imported(h, "nowhere.ndjson")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    packed = gzip.compress(ndjson(records(h, 0, 500)))
    write(h.workdir / "truncated", packed[: len(packed) // 2])
    truncated = imported(h, "truncated")
    assert (
        truncated.returncode == 9 and "truncated: the gzip stream is cut short" in truncated.stderr
    )
    assert "Traceback" not in truncated.stderr + missing.stderr
    write(h.workdir / "whole", packed)
    first = h.run("import", "whole", "--state", str(h.workdir / "import.json"), "--dry-run")
    assert first.returncode == 0 and first.stdout.count("\n") == 500  # envelopes on stdout
    assert not (h.workdir / "import.json").exists()
    sent = imported(h, "whole")
    assert sent.returncode == 0, sent.stderr[-2000:]
    os.utime(h.workdir / "whole", (1, 1))  # the same name, another file as far as we know
    changed = imported(h, "whole")
    assert changed.returncode == 5 and "whole (changed)" in changed.stderr


def test_a_paused_stream_and_one_that_masks_are_mirrored(harness) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    h: Harness = harness(
        logs=3000,
        days=2.0,
        seed=29,
        end=end,
        stream_from=end - timedelta(hours=20),
        stream_status="paused",
        stream_paused_at=end - timedelta(hours=8),
        stream_pii=("email",),
    )
    logs = records(h)
    write(h.workdir / "all.ndjson", ndjson(logs))
    masked = imported(h, "all.ndjson")
    assert masked.returncode == 5 and "--pii drop" in masked.stderr, masked.stderr[-2000:]
    # Past what the paused stream delivered: it writes those logs when resumed.
    past = imported(h, "all.ndjson", "--pii", "drop")
    assert past.returncode == 5, past.stderr[-2000:]
    assert "Log Stream 'Tinybird'" in past.stderr and "held back" in past.stderr
    assert not (h.workdir / "import.json").exists() and "Traceback" not in past.stderr
    early = [r for r in logs if r["date"] < (end - timedelta(hours=20)).isoformat()[:19]]
    write(h.workdir / "early.ndjson", ndjson(early))
    went = imported(h, "early.ndjson", "--pii", "drop", "--json")
    assert went.returncode == 0, went.stderr[-2000:]
    assert went.summary()["pii"].startswith("dropped email")
    sent = [row for row in h.received() if row["log_id"] in {r["log_id"] for r in early}]
    assert len(sent) == len(early) > 0
    assert any("@" in str(r.get("user_name")) for r in early), "the archive holds emails"
    assert not any("@" in str(row["data"].get("user_name")) for row in sent), "emails left"


def test_without_auth0_settings_it_says_it_could_not_look(harness) -> None:  # type: ignore[no-untyped-def]
    h: Harness = harness(**TENANT)
    write(h.workdir / "few.ndjson", ndjson(records(h, 0, 50)))
    no_auth0 = {"AUTH0_DOMAIN": "", "AUTH0_CLIENT_ID": "", "AUTH0_CLIENT_SECRET": ""}
    result = imported(h, "few.ndjson", "--json", env=no_auth0)
    assert result.returncode == 0, result.stderr[-2000:]
    notes = " ".join(result.summary()["notes"])
    assert "No Auth0 settings" in notes and "--types and --pii" in notes
