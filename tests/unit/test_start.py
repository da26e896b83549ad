"""Each mode's start function, alone: an in-memory Auth0 and Tinybird answering through
httpx.MockTransport, no threads, no sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import io
import itertools
import json
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from backfill.auth0.log_ids import write_time
from backfill.auth0.pacer import Pacer
from backfill.clients import Services
from backfill.config.settings import resolve
from backfill.errors import StateError, TinybirdAuthError, TinybirdNotFoundError
from backfill.http.client import HttpClient
from backfill.http.retry import RetryPolicy
from backfill.run.checkpoint import started_with
from backfill.run.request import JobRequest, Notes
from backfill.run.start import NdjsonWriter, NothingToDo, Plan
from backfill.run.start import start as start_async
from backfill.run.stopper import Stopper
from backfill.state import file as state_file
from backfill.state.model import RangeState, new_state
from backfill.timeutil import iso, utcnow
from tests.unit.fakes import FakeAuth0, make_tenant

NOW = utcnow()
T0 = NOW - timedelta(days=3)
ENV = {
    "AUTH0_DOMAIN": "tenant.eu.auth0.com",
    "AUTH0_CLIENT_ID": "client",
    "AUTH0_CLIENT_SECRET": "secret",
    "TINYBIRD_TOKEN": "p.token",
}


class FakeTinybirdApi:
    """``/v0/datasources/auth0`` and ``/v0/sql``: answers by the query's first words."""

    def __init__(self, *, exists: bool = True, can_read: bool = True) -> None:
        self.exists = exists
        self.can_read = can_read
        self.answers: dict[str, list[dict[str, Any]]] = {}  # SQL fragment -> rows
        self.queries: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v0/datasources/"):
            return httpx.Response(200, json={}) if self.exists else httpx.Response(404)
        if not self.can_read:
            return httpx.Response(403, json={"error": "no read scope"})
        sql = dict(httpx.QueryParams(request.content.decode()))["q"]
        self.queries.append(sql)
        for fragment, rows in self.answers.items():
            if fragment in sql:
                return httpx.Response(200, json={"data": rows})
        return httpx.Response(200, json={"data": []})


class StreamingAuth0(FakeAuth0):
    def __init__(self, records: list[dict[str, Any]], streams: list[dict[str, Any]]) -> None:
        super().__init__(records)
        self.streams = streams

    async def search(self, **_: Any) -> list[dict[str, Any]]:
        return []


def start(request: JobRequest, service: Services, notes: Notes) -> Plan | NothingToDo:
    """The mode's start, in an event loop of its own."""
    return asyncio.run(start_async(request, service, notes))


def services(
    tmp_path: Path,
    auth0: FakeAuth0,
    tinybird: Callable[[httpx.Request], httpx.Response],
    **flags: Any,
) -> Services:
    settings = resolve({"state": str(tmp_path / "state.json"), **flags}, ENV, None)
    retry = RetryPolicy(max_attempts=2, sleep=lambda _: None, rng=random.Random(0))
    http = HttpClient(transport=httpx.MockTransport(tinybird))
    return Services(settings, http, retry, Pacer(), auth0)  # type: ignore[arg-type]


def request(service: Services, **flags: Any) -> JobRequest:
    return JobRequest(settings=service.settings, stopper=Stopper(), **flags)


@functools.cache
def _tenant() -> tuple[dict[str, Any], ...]:
    return tuple(make_tenant(20_000, T0, timedelta(days=2, hours=20)))


def records() -> list[dict[str, Any]]:
    """The same tenant each time (made once: it takes a while), in a list of one's own."""
    return list(_tenant())


def planned(outcome: Plan | NothingToDo) -> Plan:
    assert isinstance(outcome, Plan)
    return outcome


def test_fresh_cuts_the_window_into_ranges_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    service = services(tmp_path, FakeAuth0(records()), FakeTinybirdApi())
    notes = Notes()
    plan = planned(start(request(service), service, notes))
    assert len(plan.state.ranges) > 1 and not plan.state.ranges[-1].bounded
    assert plan.persist and plan.exactly_once and plan.landed_between is not None
    assert plan.options.concurrency == 8 and plan.options.in_flight == 8
    recorded = dict(plan.state.started_with)
    assert recorded.pop("mirror") == {
        "types": None,
        "exclude_types": [],
        "given": [],
        "source": None,
        "pii": None,
        "pii_fields": [],
    }
    assert recorded == started_with(service.settings)
    assert any("oldest log Auth0 still retains" in note for note in notes)


def test_fresh_without_read_access_is_at_least_once_and_says_so(tmp_path: Path) -> None:
    service = services(tmp_path, FakeAuth0(records()), FakeTinybirdApi(can_read=False))
    notes = Notes()
    plan = planned(start(request(service), service, notes))
    assert not plan.exactly_once and plan.landed_between is None
    assert any("No read access to Tinybird" in note for note in notes)


def test_fresh_on_a_tenant_without_logs_has_nothing_to_do(tmp_path: Path) -> None:
    service = services(tmp_path, FakeAuth0([]), FakeTinybirdApi())
    notes = Notes()
    assert isinstance(start(request(service), service, notes), NothingToDo)
    assert notes == ["The tenant has no logs at all."]


def test_a_missing_data_source_is_refused_before_reading(tmp_path: Path) -> None:
    auth0 = FakeAuth0(records())
    service = services(tmp_path, auth0, FakeTinybirdApi(exists=False))
    with pytest.raises(TinybirdNotFoundError, match="no data source 'auth0'"):
        start(request(service), service, Notes())
    assert auth0.requests == 0


def test_until_stream_start_ends_at_the_stream_and_skips_what_it_delivered(
    tmp_path: Path,
) -> None:
    tenant = records()
    first = (NOW - timedelta(hours=6)).replace(microsecond=0)
    api = FakeTinybirdApi()
    api.answers["min(date)"] = [
        {
            "rows": 10,
            "first": first.strftime("%Y-%m-%d %H:%M:%S.000"),
            "last": NOW.strftime("%Y-%m-%d %H:%M:%S.000"),
        }
    ]
    api.answers["date >= "] = [{"log_id": tenant[-1]["log_id"]}]
    service = services(tmp_path, FakeAuth0(tenant), api)
    plan = planned(start(request(service, until_stream_start=True), service, Notes()))
    end = first + timedelta(seconds=service.settings.late_margin_seconds)
    assert plan.state.ranges[-1].end == iso(end)
    assert plan.state.started_with["until_stream_start"] == iso(first)
    assert plan.already_in_tinybird == {tenant[-1]["log_id"]}


def test_until_stream_start_needs_read_access(tmp_path: Path) -> None:
    service = services(tmp_path, FakeAuth0(records()), FakeTinybirdApi(can_read=False))
    with pytest.raises(TinybirdAuthError, match="--until-stream-start needs to read"):
        start(request(service, until_stream_start=True), service, Notes())


def test_resume_takes_the_checkpoint_and_leaves_cutting_to_the_readers(tmp_path: Path) -> None:
    tenant = records()
    service = services(tmp_path, FakeAuth0(tenant), FakeTinybirdApi())
    open_checkpoint(service, tenant)
    plan = planned(start(request(service), service, Notes()))
    assert plan.state.ranges[0].cursor == tenant[100]["log_id"]
    # Two days behind: its readers cut it while reading, where its logs turn out to be (no
    # probe at start); the options let them.
    assert len(plan.state.ranges) == 1 and plan.options.concurrency == 8


def test_resume_with_other_flags_is_refused(tmp_path: Path) -> None:
    service = services(tmp_path, FakeAuth0(records()), FakeTinybirdApi())
    existing = new_state(
        tenant="tenant.eu.auth0.com",
        datasource="auth0",
        tinybird_host="https://api.tinybird.co",
        started_with={**started_with(service.settings), "types": ["f"]},
    )
    state_file.save(service.settings.state, existing)
    other = services(tmp_path, FakeAuth0(records()), FakeTinybirdApi(), types="s")
    with pytest.raises(StateError, match="started with other settings"):
        start(request(other), other, Notes())


def test_from_tinybird_resumes_after_the_greatest_log_id_one_append_at_a_time(
    tmp_path: Path,
) -> None:
    tenant = records()
    api = FakeTinybirdApi()
    api.answers["max(log_id)"] = [{"rows": 5, "last": tenant[2000]["log_id"]}]
    service = services(tmp_path, StreamingAuth0(tenant, []), api)
    notes = Notes()
    plan = planned(start(request(service, resume_from_tinybird=True), service, notes))
    assert [item.start_after for item in plan.state.ranges] == [tenant[2000]["log_id"]]
    assert not plan.persist
    assert (plan.options.concurrency, plan.options.in_flight) == (1, 1)
    assert plan.options.limits.max_months == 1
    assert any("Resuming after" in note for note in notes)


def test_from_tinybird_refuses_a_data_source_a_stream_writes_to(tmp_path: Path) -> None:
    tenant = records()
    api = FakeTinybirdApi()
    api.answers["max(log_id)"] = [{"rows": 5, "last": tenant[2000]["log_id"]}]
    stream = {
        "name": "Tinybird",
        "status": "active",
        "sink": {"httpEndpoint": "https://api.tinybird.co/v0/events?name=auth0&token=x"},
    }
    service = services(tmp_path, StreamingAuth0(tenant, [stream]), api)
    with pytest.raises(StateError, match="Log Stream 'Tinybird' sends to auth0"):
        start(request(service, resume_from_tinybird=True), service, Notes())


def test_dry_run_writes_envelopes_and_never_touches_the_checkpoint(tmp_path: Path) -> None:
    service = services(tmp_path, FakeAuth0(records()), FakeTinybirdApi())
    output = io.BytesIO()
    plan = planned(start(request(service, dry_run=True, output=output), service, Notes()))
    assert isinstance(plan.sink, NdjsonWriter) and plan.dry_run
    assert not plan.persist and not plan.exactly_once
    assert len(plan.state.ranges) == 1 and plan.options.concurrency == 1
    assert not service.settings.state.exists()


def test_the_mode_is_decided_once_from_the_request_and_the_state_file(tmp_path: Path) -> None:
    tenant = records()
    api = FakeTinybirdApi()
    api.answers["max(log_id)"] = [{"rows": 0, "last": ""}]
    service = services(tmp_path, StreamingAuth0(tenant, []), api)
    from_tinybird = planned(start(request(service, resume_from_tinybird=True), service, Notes()))
    assert not from_tinybird.persist  # even with an (empty) data source: no state file
    fresh = planned(start(request(service), service, Notes()))
    state_file.save(service.settings.state, fresh.state)
    resumed = planned(start(request(service), service, Notes()))
    assert resumed.state.created_at == fresh.state.created_at
    restarted = planned(start(request(service, restart=True), service, Notes()))
    assert restarted.state.created_at >= fresh.state.created_at
    assert json.loads(service.settings.state.read_text())["created_at"] == fresh.state.created_at


def test_a_from_date_run_searches_nothing_and_reads_its_first_page_once(tmp_path: Path) -> None:
    tenant = records()

    class NoOldestSearch(FakeAuth0):
        async def oldest_page(self) -> list[dict[str, Any]]:
            raise AssertionError("the start is derived from the date: no search for the oldest")

    auth0 = NoOldestSearch(tenant)
    service = services(tmp_path, auth0, FakeTinybirdApi(), from_date=iso(T0 + timedelta(hours=5)))
    plan = planned(start(request(service), service, Notes()))
    assert auth0.requests == 1  # the first page, read once while planning
    (first,) = [item for item in plan.state.ranges if item.lead]
    assert plan.known[first.lead][0]["log_id"] == first.lead == first.start_after


def test_planned_ranges_cover_the_window_without_overlap(tmp_path: Path) -> None:
    lower = T0 + timedelta(hours=5)
    service = services(tmp_path, FakeAuth0(records()), FakeTinybirdApi(), from_date=iso(lower))
    plan = planned(start(request(service), service, Notes()))
    ranges = plan.state.ranges
    assert len(ranges) == 8 and {item.start for item in ranges} == {iso(lower)}
    for before, after in itertools.pairwise(ranges):
        assert before.end_id == after.start_after  # ids after one cut, up to the next
    last_cut = write_time(ranges[-1].start_after)
    newest = write_time(records()[-1]["log_id"])
    assert last_cut is not None and newest is not None and last_cut < newest


def test_a_quiet_tenant_is_cut_only_where_its_logs_are(tmp_path: Path) -> None:
    # 3,000 logs on one day, then four silent days up to now: the ranges cover that day only.
    day = make_tenant(3_000, NOW - timedelta(days=5), timedelta(days=1))
    auth0 = FakeAuth0(day)
    service = services(tmp_path, auth0, FakeTinybirdApi())
    plan = planned(start(request(service), service, Notes()))
    ranges = plan.state.ranges
    newest = write_time(day[-1]["log_id"])
    assert newest is not None and plan.options.horizon == newest
    assert 1 < len(ranges) <= 8
    cuts = [write_time(item.start_after) for item in ranges[1:]]
    assert all(cut is not None and cut < newest for cut in cuts)
    assert auth0.page_searches == 2 and auth0.requests == 0  # the oldest and newest, no probe
    # The lead and the logs after it, as the search returned them: read without asking again
    searched = plan.known[day[0]["log_id"]]
    assert searched[0] == day[0] and len(searched) > 50
    assert [r["log_id"] for r in searched] == [r["log_id"] for r in day[: len(searched)]]


@pytest.mark.parametrize(("bucket", "ranges", "searches"), [(2, 1, 1), (50, 8, 2)])
def test_as_many_ranges_as_cursors_keep_up_with_the_bucket(
    tmp_path: Path, bucket: int, ranges: int, searches: int
) -> None:
    # Free plan: a bucket of 2 (so at most 2 a second) and answers in 0.3 s: one cursor keeps
    # up, and the newest log is not asked. Enterprise: a bucket of 50: every cursor.
    auth0 = FakeAuth0(records())
    moment = [100.0]
    service = dataclasses.replace(
        services(tmp_path, auth0, FakeTinybirdApi()), pacer=Pacer(clock=lambda: moment[0])
    )
    ticket = asyncio.run(service.pacer.acquire())
    moment[0] += 0.3
    service.pacer.observe(
        ticket, 200, {"x-ratelimit-limit": str(bucket), "x-ratelimit-remaining": "1"}
    )
    assert service.pacer.round_trip == pytest.approx(0.3)
    plan = planned(start(request(service), service, Notes()))
    assert len(plan.state.ranges) == ranges and auth0.page_searches == searches


def feeding(status: str) -> dict[str, Any]:
    return {
        "id": "lst_1",
        "name": "Tinybird",
        "type": "http",
        "status": status,
        "sink": {"httpEndpoint": "https://api.tinybird.co/v0/events?name=auth0&token=x"},
    }


FIRST_ROW = (NOW - timedelta(hours=6)).replace(microsecond=0)
LAST_ROW = (NOW - timedelta(hours=1)).replace(microsecond=0)  # a paused stream's, say


def holding(full: bool) -> FakeTinybirdApi:
    """A data source the stream has delivered into from FIRST_ROW to LAST_ROW, or an empty one."""
    api = FakeTinybirdApi()
    if full:
        api.answers["min(date)"] = [
            {
                "rows": 10,
                "first": FIRST_ROW.strftime("%Y-%m-%d %H:%M:%S.000"),
                "last": LAST_ROW.strftime("%Y-%m-%d %H:%M:%S.000"),
            }
        ]
        api.answers["max(log_id)"] = [{"rows": 10, "last": records()[-1]["log_id"]}]
    else:
        api.answers["min(date)"] = [{"rows": 0, "first": "", "last": ""}]
        api.answers["max(log_id)"] = [{"rows": 0, "last": ""}]
    return api


def open_checkpoint(service: Services, tenant: list[dict[str, Any]]) -> None:
    """A cron catch-up's state file: one open range, part read."""
    existing = new_state(
        tenant="tenant.eu.auth0.com",
        datasource="auth0",
        tinybird_host="https://api.tinybird.co",
        started_with=started_with(service.settings),
    )
    existing.ranges = [RangeState(id=0, start=None, end=None, start_after=tenant[0]["log_id"])]
    existing.ranges[0].cursor = tenant[100]["log_id"]
    state_file.save(service.settings.state, existing)


PATHS = ["oldest", "from-date", "from-log-id", "state-file", "resume-from-tinybird"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("full", [False, True], ids=["empty", "full"])
@pytest.mark.parametrize("status", ["active", "paused", "suspended"])
def test_a_stream_feeding_the_data_source_counts_on_every_path(
    tmp_path: Path, path: str, full: bool, status: str
) -> None:
    """Whatever its status and whatever the data source holds, a run that would go past the
    stream's first row (or could: nothing says where it is) is refused before anything."""
    tenant = records()
    flags: dict[str, Any] = {}
    if path == "from-date":
        flags["from_date"] = iso(T0 + timedelta(hours=1))
    if path == "from-log-id":
        flags["from_log_id"] = tenant[10]["log_id"]
    auth0 = StreamingAuth0(tenant, [feeding(status)])
    service = services(tmp_path, auth0, holding(full), **flags)
    if path == "state-file":
        open_checkpoint(service, tenant)
    asked = request(service, resume_from_tinybird=path == "resume-from-tinybird")
    with pytest.raises(StateError) as refused:
        start(asked, service, Notes())
    message = str(refused.value)
    assert "Log Stream 'Tinybird'" in message
    if path != "resume-from-tinybird":
        assert "Nothing was sent" in message
    assert "--until-date" in message
    if path != "resume-from-tinybird":
        assert "--skip-existing" in message
    if status != "active":
        assert f"now {status}" in message and "delivers what it held back" in message
    if full and path != "resume-from-tinybird":
        assert f"--until-date {iso(FIRST_ROW)}" in message
    assert len(message) < 700
    # No page was read, but the one a --from-date start is derived from while planning.
    assert auth0.requests == (1 if path == "from-date" else 0)


@pytest.mark.parametrize("full", [False, True], ids=["empty", "full"])
@pytest.mark.parametrize("status", ["active", "paused"])
def test_a_run_that_ends_before_the_streams_rows_or_fills_only_holes_goes_on(
    tmp_path: Path, full: bool, status: str
) -> None:
    tenant = records()
    auth0 = StreamingAuth0(tenant, [feeding(status)])
    before = services(tmp_path, auth0, holding(full), until_date=iso(FIRST_ROW))
    notes = Notes()
    planned(start(request(before), before, notes))
    if not full:  # nothing says where the stream's rows will begin: said, not refused
        assert any("holds no row yet" in note for note in notes)
    for knowingly in ({"skip_existing": True}, {"allow_duplicates": True}):
        anyway = services(tmp_path, auth0, holding(full))
        planned(start(request(anyway, **knowingly), anyway, Notes()))
    if full:
        # Past the newest row: what comes after is the stream's to deliver.
        past = services(
            tmp_path, auth0, holding(full), until_date=iso(LAST_ROW + timedelta(minutes=5))
        )
        with pytest.raises(StateError, match="past the newest row there"):
            start(request(past), past, Notes())
        # Over the rows it delivered: the rows already there refuse it.
        rows_there = holding(full)
        rows_there.answers["count() AS rows FROM auth0 WHERE"] = [{"rows": 10}]
        over = services(tmp_path, auth0, rows_there, until_date=iso(FIRST_ROW + timedelta(hours=1)))
        with pytest.raises(StateError, match="already holds 10 rows"):
            start(request(over), over, Notes())
