"""The demo's last act: history older than Auth0's retention, which no API backfill can reach,
imported from an archive (``auth0-backfill import``) next to what the backfill sent.

The archive is what a custom-webhook Log Stream leaves behind when its receiver writes what it
gets: stream envelopes, as NDJSON (gzipped, no suffix) and as JSON array bodies, overlapping,
dated from 90 to 30 days ago (the sandbox's Enterprise retention is 30 days). The demo imports
it, checks that each of its logs is in Tinybird exactly once, that nothing the backfill sent was
touched, and that the same command again has nothing to do.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import textwrap
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backfill.sandbox.generator import Tenant
from backfill.sandbox.timelines import DAY_US
from backfill.timeutil import parse_record_date
from backfill.tinybird.sql import datetime_literal

if TYPE_CHECKING:
    from backfill.sandbox.demo import Demo

ARCHIVE_DAYS = 60.0
OLDER_THAN = 30  # days: the Enterprise plan's retention
SEED_OFFSET = 1000  # another timeline than the tenant's, dated before it


def archive(folder: Path, end_us: int, count: int, seed: int) -> list[dict[str, Any]]:
    """Write the archive; the envelopes it holds, once each."""
    tenant = Tenant(seed + SEED_OFFSET, count, ARCHIVE_DAYS, end_us=end_us)
    envelopes = [
        {"log_id": record["log_id"], "data": record}
        for record in (tenant.stream_record(index) for index in range(count))
    ]
    folder.mkdir(parents=True, exist_ok=True)
    half = count // 2
    lines = b"".join(json.dumps(item).encode() + b"\n" for item in envelopes[: half + count // 10])
    (folder / "webhook-0001").write_bytes(gzip.compress(lines))
    (folder / "webhook-0002.json").write_text(json.dumps(envelopes[half:]), encoding="utf-8")
    return envelopes


def _moment(date: str) -> datetime:
    parsed = parse_record_date(date)
    assert parsed is not None
    return parsed


def history(demo: Demo, number: int) -> None:
    """Import the archive and check what landed."""
    from backfill.sandbox.demo import heading, indented, say

    folder = demo.workdir / "archive"
    now_us = int(time.time() * 1_000_000)
    count = max(1_000, demo.total // 5)
    envelopes = archive(folder, now_us - OLDER_THAN * DAY_US, count, demo.sandbox.config.seed)
    dates = sorted(item["data"]["date"] for item in envelopes)
    heading(number, "History past retention, from an archive", "python -m backfill import archive")
    indented(
        f"Auth0 keeps 30 days here: the {count:,} logs dated {dates[0][:10]} .. {dates[-1][:10]}\n"
        "are gone from its API. A custom-webhook stream's receiver kept them: archive/ holds\n"
        "webhook-0001 (NDJSON, gzipped, no suffix) and webhook-0002.json (a JSON array),\n"
        f"overlapping by {count // 10:,} logs. The import reads both, keeps each log once, and "
        "sends\nthe rows the backfill would have sent."
    )
    say()
    before = demo.landed()
    command = [*demo.command("import"), "archive", "--state", "import-state.json"]
    # Its logs (stderr) show as they are; its summary (stdout), folded to the demo's width.
    done = subprocess.run(
        command, env=demo.environment(), cwd=demo.workdir, stdout=subprocess.PIPE, text=True,
        check=False,
    )  # fmt: skip
    indented(textwrap.fill(done.stdout.strip(), 96, subsequent_indent="  "))
    say()
    demo.checks.expect(done.returncode == 0, f"the import exited {done.returncode}")
    low, high = (datetime_literal(_moment(date)) for date in (dates[0], dates[-1]))
    rows = demo.query.number(
        f"SELECT count() AS n FROM {demo.datasource} WHERE date >= {low} AND date <= {high}"
    )
    distinct = demo.query.number(
        f"SELECT uniqExact(log_id) AS n FROM {demo.datasource} WHERE date >= {low} "
        f"AND date <= {high}"
    )
    quarantined = demo.landed() - before - rows
    total = rows + quarantined
    indented(
        f"archive: {count:,} logs; in Tinybird, in its span: {rows:,} rows ({distinct:,} "
        f"distinct)\n  and {quarantined:,} quarantined: "
        + demo.checks.expect(distinct == rows and total == count, "the archive's rows")
    )
    indented(
        f"rows the backfill sent before: {before:,}, still there: "
        + demo.checks.expect(demo.landed() - total == before, "the backfill's rows")
    )
    again = subprocess.run(
        command, env=demo.environment(), cwd=demo.workdir, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    indented(
        "the same command again: "
        + ("nothing to do" if "nothing to do" in again.stdout else again.stdout.strip()[:200])
        + " "
        + demo.checks.expect(again.returncode == 0 and "nothing to do" in again.stdout, "rerun")
    )
