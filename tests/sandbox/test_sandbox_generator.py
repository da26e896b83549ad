"""The synthetic tenant: reproducible, id shape and timing as observed on real tenants."""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from backfill.sandbox.generator import Tenant
from backfill.sandbox.records import EVENT_KINDS
from backfill.sandbox.timelines import DAY_US
from backfill.sandbox.timeparse import MICROS, parse_instant, to_us

REPO = Path(__file__).resolve().parents[2]
END = to_us(datetime(2026, 11, 3, 12, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def tenant() -> Tenant:
    return Tenant(seed=7, count=20_000, days=10, end_us=END)


def test_same_seed_gives_the_same_tenant_and_another_seed_does_not() -> None:
    first = Tenant(3, 500, 2, end_us=END)
    again = Tenant(3, 500, 2, end_us=END)
    other = Tenant(4, 500, 2, end_us=END)
    assert [first.record(i) for i in range(500)] == [again.record(i) for i in range(500)]
    assert [first.log_id(i) for i in range(500)] != [other.log_id(i) for i in range(500)]


def test_log_ids_have_auth0s_shape_and_increase_with_the_index(tenant: Tenant) -> None:
    ids = [tenant.log_id(i) for i in range(len(tenant))]
    assert all(len(log_id) == 56 and log_id.isdigit() and log_id[:3] == "900" for log_id in ids)
    assert all(earlier < later for earlier, later in itertools.pairwise(ids))


def test_write_time_in_the_id_is_20ms_to_5s_after_the_date(tenant: Tenant) -> None:
    for index in range(0, len(tenant), 7):
        record = tenant.record(index)
        log_id = record["log_id"]
        written = datetime.strptime(log_id[3:23], "%Y%m%d%H%M%S%f").replace(tzinfo=UTC)
        lag = to_us(written) - to_us(parse_instant(record["date"]))
        assert 20_000 <= lag <= 5 * MICROS, (log_id, record["date"])
        assert len(record["date"]) == 24 and record["date"].endswith("Z")


def test_logs_span_the_requested_days_ending_at_end(tenant: Tenant) -> None:
    assert END - 10 * DAY_US <= tenant.write_us(0) < END - 9 * DAY_US
    assert END - DAY_US // 24 < tenant.write_us(len(tenant) - 1) <= END


def test_api_records_carry_the_management_api_fields_and_stream_records_do_not(
    tenant: Tenant,
) -> None:
    record = tenant.record(10)
    assert record["_id"] == record["id"] == record["log_id"]
    assert isinstance(record["isMobile"], bool)
    streamed = tenant.stream_record(10)
    assert not {"_id", "id", "isMobile"} & streamed.keys()
    assert streamed["log_id"] == record["log_id"]


def test_event_types_are_weighted_like_a_busy_tenant_and_exist_in_auth0s_catalogue(
    tenant: Tenant,
) -> None:
    catalogue = {
        line.split("\t")[0]
        for line in (REPO / "backfill" / "auth0" / "event_types.tsv").read_text().splitlines()[1:]
    }
    assert {kind.code for kind in EVENT_KINDS} <= catalogue
    counts = Counter(tenant.event_kind(i).code for i in range(len(tenant)))
    assert counts.most_common(1)[0][0] == "s"
    for code in ("seacft", "seccft", "sertft", "f", "fp", "fu", "fs", "ss", "slo", "sv", "fn",
                 "sapi", "mgmt_api_read"):  # fmt: skip
        assert counts[code] > 0, code
    failures = sum(counts[code] for code in ("f", "fp", "fu", "fs", "fsa"))
    assert 0.05 < failures / len(tenant) < 0.25


def test_records_vary_the_way_real_ones_do(tenant: Tenant) -> None:
    records = [tenant.record(i) for i in range(len(tenant))]
    scopes = [r["scope"] for r in records if "scope" in r]
    assert any(isinstance(scope, str) and " " in scope for scope in scopes)
    assert any(isinstance(scope, list) for scope in scopes)
    clients = [r["auth0_client"] for r in records if "auth0_client" in r]
    arrays = sum(isinstance(client, list) for client in clients)
    assert 0 < arrays < 0.1 * len(clients)
    assert any(r.get("user_id") == "" for r in records)
    assert any(r.get("connection_id") == "" for r in records)
    assert any("client_id" in r and r["client_id"] is None for r in records)
    text = json.dumps(records[:2000], ensure_ascii=False)
    assert any(ord(char) > 127 for char in text)
    newer = [r for r in records if "$event_schema" in r]
    assert newer and all(r["$event_schema"] == {"version": "1.0.0"} for r in newer)
    assert all("tenant_name" in r and "environment_name" in r for r in newer)
    assert any("$event_schema" not in r for r in records)


def test_users_and_ips_repeat_with_a_skew(tenant: Tenant) -> None:
    users = Counter(tenant.record(i).get("user_id") for i in range(5_000))
    users.pop("", None)
    (_, top_count), *_ = users.most_common(1)
    average = sum(users.values()) / len(users)
    assert top_count > 10 * average  # a few very active users ...
    assert len(users) > 100  # ... and a long tail
    ips = Counter(tenant.record(i)["ip"] for i in range(5_000))
    assert ips.most_common(1)[0][1] > 10 * sum(ips.values()) / len(ips)


def test_details_follow_the_fixtures_shape_per_type(tenant: Tenant) -> None:
    by_type: dict[str, int] = {}
    for index in range(len(tenant)):
        by_type.setdefault(tenant.event_kind(index).code, index)
    login = tenant.record(by_type["s"])
    assert {"prompts", "session_id", "stats"} <= login["details"].keys()
    assert tenant.record(by_type["fp"])["details"] == {
        "error": {"message": "Wrong email or password."}
    }
    assert {"request", "response"} <= tenant.record(by_type["sapi"])["details"].keys()
    assert tenant.record(by_type["seccft"])["audience"].endswith("/api/v2/")


def test_append_adds_later_logs_deterministically() -> None:
    until = END + 3_600 * MICROS
    first, second = Tenant(9, 100, 1, end_us=END), Tenant(9, 100, 1, end_us=END)
    added = first.append(50, until)
    second.append(50, until)
    assert added == range(100, 150)
    assert [first.log_id(i) for i in added] == [second.log_id(i) for i in added]
    assert first.log_id(99) < first.log_id(100)
    assert first.write_us(149) <= until


def test_append_refuses_an_until_before_the_newest_log() -> None:
    tenant = Tenant(9, 100, 1, end_us=END)
    with pytest.raises(ValueError, match="no room"):
        tenant.append(5, END - DAY_US)


def test_retention_hides_a_prefix_and_the_future(tenant: Tenant) -> None:
    visible = tenant.visible(END, retention_days=3)
    assert visible.start > 0 and visible.stop == len(tenant)
    assert tenant.write_us(visible.start) >= END - 3 * DAY_US > tenant.write_us(visible.start - 1)
    earlier = tenant.visible(END - DAY_US, retention_days=None)
    assert earlier.start == 0 and earlier.stop < len(tenant)


def test_fifty_thousand_logs_generate_quickly() -> None:
    started = time.perf_counter()
    Tenant(1, 50_000, 30)
    assert time.perf_counter() - started < 1.0
