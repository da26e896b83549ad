"""Holes in a data source (`POST /__sandbox/delete` on the Tinybird emulator): the stream's rows
except an hour, a day and scattered rows, for tests of `verify --by hour` and `--skip-existing`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sandbox_helpers import MakeSandbox, append_events, envelope, sql

from backfill.sandbox import Sandbox
from backfill.sandbox.generator import Tenant
from backfill.sandbox.timelines import DAY_US, HOUR_US
from backfill.sandbox.timeparse import from_us, iso_millis, to_us


def stored_ids(http: httpx.Client, sandbox: Sandbox, table: str = "auth0") -> set[str]:
    return {row["log_id"] for row in sql(http, sandbox, f"SELECT log_id FROM {table}")}


def test_an_hour_a_day_and_scattered_rows_are_deleted_buffered_rows_included(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    tenant = sandbox.tenant
    everything = range(len(tenant))
    # Appended and deleted with no read in between: the rows may still be in the Buffer.
    answer = append_events(http, sandbox, [envelope(sandbox, i) for i in everything])
    assert answer.status_code == 200
    hour = tenant.date_us(1000) // HOUR_US * HOUR_US
    day = tenant.date_us(2500) // DAY_US * DAY_US
    in_hour = {i for i in everything if hour <= tenant.date_us(i) < hour + HOUR_US}
    in_day = {i for i in everything if day <= tenant.date_us(i) < day + DAY_US}
    scattered = set(range(7, len(tenant), 97)) - in_hour - in_day
    assert in_hour and in_day and len(scattered) > 10
    url = f"{sandbox.tinybird_url}/__sandbox/delete"
    deleted = [
        http.post(
            url,
            json={"name": "auth0", "from_date": iso_millis(low), "until_date": iso_millis(high)},
        )
        for low, high in ((hour, hour + HOUR_US), (day, day + DAY_US))
    ]
    ids = [tenant.log_id(i) for i in sorted(scattered)]
    deleted.append(http.post(url, json={"name": "auth0", "log_ids": ids}))
    assert all(response.status_code == 200 for response in deleted)
    quarantined = stored_ids(http, sandbox, "auth0_quarantine")
    removed = {tenant.log_id(i) for i in in_hour | in_day | scattered} - quarantined
    assert sum(response.json()["deleted"] for response in deleted) == len(removed)
    wanted = {tenant.log_id(i) for i in everything} - quarantined - removed
    assert stored_ids(http, sandbox) == wanted
    assert stored_ids(http, sandbox, "auth0_quarantine") == quarantined, "quarantine untouched"
    # A hole is not sticky: the same rows sent again land.
    refill = [envelope(sandbox, i) for i in sorted(in_hour)]
    assert append_events(http, sandbox, refill).status_code == 200
    assert stored_ids(http, sandbox) == wanted | {tenant.log_id(i) for i in in_hour} - quarantined


def test_a_range_and_ids_together_and_bad_requests(http: httpx.Client, sandbox: Sandbox) -> None:
    rows = [{"log_id": str(n), "data": {"date": f"2026-01-01T0{n}:30:00.000Z"}} for n in range(6)]
    append_events(http, sandbox, rows)
    url = f"{sandbox.tinybird_url}/__sandbox/delete"
    both = http.post(
        url,
        json={
            "name": "auth0",
            "from_date": "2026-01-01T01:00:00Z",
            "until_date": "2026-01-01T03:00:00Z",
            "log_ids": ["5", "it's not there"],
        },
    )
    assert both.json() == {"deleted": 3}
    assert stored_ids(http, sandbox) == {"0", "3", "4"}
    assert http.post(url, json={"name": "auth0"}).status_code == 400
    assert http.post(url, json={"name": "nope", "log_ids": ["1"]}).status_code == 404
    assert http.post(url, json={"name": "auth0", "log_ids": "1"}).status_code == 400


def test_holes_in_what_a_stream_delivered(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    """The situation `verify --by hour` and `run --skip-existing` are for: a stream's rows but
    an hour of them (rows the stream writes go through the Buffer too)."""
    end = datetime.now(UTC) - timedelta(minutes=5)
    tenant = Tenant(42, 2_000, 2.0, end_us=to_us(end))
    since = tenant.date_us(0)
    sandbox = make_sandbox(logs=2_000, days=2.0, seed=42, end=end, stream_from=from_us(since))
    hour = tenant.date_us(1000) // HOUR_US * HOUR_US
    answer = http.post(
        f"{sandbox.tinybird_url}/__sandbox/delete",
        json={
            "name": "auth0",
            "from_date": iso_millis(hour),
            "until_date": iso_millis(hour + HOUR_US),
        },
    )
    quarantined = stored_ids(http, sandbox, "auth0_quarantine")
    in_hour = {tenant.log_id(i) for i in range(2_000) if hour <= tenant.date_us(i) < hour + HOUR_US}
    assert answer.json()["deleted"] == len(in_hour - quarantined) > 0
    everything = {tenant.log_id(i) for i in range(2_000) if tenant.date_us(i) >= since}
    assert stored_ids(http, sandbox) == everything - quarantined - in_hour
