"""Unit tests of the sandbox's small parts: datafile, jsonpaths, token bucket, latency, faults."""

from __future__ import annotations

from pathlib import Path

import pytest

from backfill.sandbox.faults import FaultSchedule, FaultSettings
from backfill.sandbox.jsonpaths import MISSING, JsonPath, PathMismatch
from backfill.sandbox.latency import Latency, LatencyRange
from backfill.sandbox.logquery import QueryError, parse_query
from backfill.sandbox.ratelimit import TokenBucket
from backfill.tinybird.datafile import DatafileError, parse_datafile, seed_datafile_text

REPO = Path(__file__).resolve().parents[2]


def test_the_seed_datafile_parses_to_its_24_columns() -> None:
    datafile = parse_datafile((REPO / "tinybird" / "datasources" / "auth0.datasource").read_text())
    assert len(datafile.columns) == 24
    date = datafile.column("date")
    assert date is not None
    assert (date.type, date.jsonpath, date.default) == ("DateTime64(3)", "$.data.date", "now()")
    version = datafile.column("event_schema_version")
    assert version is not None and version.jsonpath == "$.data.['$event_schema'].version"
    details = datafile.column("details")
    assert details is not None and details.default == "'{}'" and details.type == "JSON"
    assert (datafile.engine, datafile.partition_key, datafile.sorting_key) == (
        "MergeTree",
        "toYYYYMM(date)",
        "type, user_id, date",
    )
    sql = datafile.create_table_sql("t")
    assert "ORDER BY (type, user_id, date)" in sql and "PARTITION BY toYYYYMM(date)" in sql
    assert "`type` String DEFAULT 'unknown'" in sql


def test_the_packaged_seed_datafile_is_the_repositorys() -> None:
    assert (
        seed_datafile_text() == (REPO / "tinybird" / "datasources" / "auth0.datasource").read_text()
    )


def test_datafile_types_with_spaces_and_codecs() -> None:
    datafile = parse_datafile(
        "SCHEMA >\n"
        "    `at` DateTime64(3, 'UTC') `json:$.at` DEFAULT now() CODEC(ZSTD(1)),\n"
        "    n UInt32 `json:$.n`\n"
        'ENGINE "ReplacingMergeTree"\nENGINE_VER "n"\nENGINE_SORTING_KEY "n"\n'
    )
    at, n = datafile.columns
    assert (at.type, at.default, n.name) == ("DateTime64(3, 'UTC')", "now()", "n")
    assert datafile.engine == "ReplacingMergeTree(n)"
    with pytest.raises(DatafileError):
        parse_datafile('ENGINE "MergeTree"\n')


@pytest.mark.parametrize(
    ("path", "document", "expected"),
    [
        ("$.log_id", {"log_id": "1"}, "1"),
        ("$.data.type", {"data": {"type": "s"}}, "s"),
        ("$.data.type", {"data": {}}, MISSING),
        ("$.data.type", {"data": "flat"}, MISSING),
        ("$.data.scope[:]", {"data": {"scope": ["a", "b"]}}, ["a", "b"]),
        ("$.data.scope[:]", {"data": {"scope": None}}, MISSING),
        ("$.data.['$event_schema'].version", {"data": {"$event_schema": {"version": "1"}}}, "1"),
        ("$.a[1]", {"a": [1, 2]}, 2),
        ("$.a[:].b", {"a": [{"b": 1}, {}]}, [1, None]),
    ],
)
def test_jsonpaths_extract_like_tinybird(path: str, document: object, expected: object) -> None:
    assert JsonPath(path).extract(document) == expected


def test_an_array_path_on_a_string_does_not_fit() -> None:
    with pytest.raises(PathMismatch):
        JsonPath("$.data.scope[:]").extract({"data": {"scope": "read:logs read:users"}})
    with pytest.raises(ValueError):
        JsonPath("data.scope")


def test_token_bucket_refills_continuously() -> None:
    now = [100.0]
    bucket = TokenBucket(2, 2.0, clock=lambda: now[0])
    assert [bucket.take().allowed for _ in range(3)] == [True, True, False]
    refused = bucket.take()
    assert refused.remaining == 0 and refused.seconds_to_next_token == pytest.approx(0.5)
    now[0] += 0.5
    assert bucket.take().allowed
    now[0] += 10
    full = bucket.take()
    assert full.allowed and full.remaining == 1 and full.limit == 2


def test_latency_parsing_and_sampling() -> None:
    assert LatencyRange.parse("250") == LatencyRange(250, 250)
    assert LatencyRange.parse("100-400") == LatencyRange(100, 400)
    for bad in ("400-100", "-5", "fast"):
        with pytest.raises(ValueError):
            LatencyRange.parse(bad)
    latency = Latency(LatencyRange(100, 400), seed=1)
    samples = [latency.sample() for _ in range(200)]
    assert min(samples) >= 0.1 and max(samples) <= 0.4
    assert Latency(LatencyRange(), seed=1).sample() == 0.0


def test_fault_schedule_rate_kinds_and_timing() -> None:
    schedule = FaultSchedule(FaultSettings(rate=0.5, kinds=("500", "429", "truncated")), seed=3)
    drawn = [schedule.draw() for _ in range(2_000)]
    faults = [fault for fault in drawn if fault is not None]
    assert 850 < len(faults) < 1_150
    assert all(not f.after_work for f in faults if f.kind == "429")
    assert all(f.after_work for f in faults if f.kind == "truncated")
    timings = {f.after_work for f in faults if f.kind == "500"}
    assert timings == {True, False}
    with pytest.raises(ValueError):
        FaultSettings(rate=2.0)
    with pytest.raises(ValueError):
        FaultSettings(kinds=("meteor",))


def test_lucene_subset() -> None:
    query = parse_query('date:[2026-11-01 TO *] AND type:(s OR fp) AND user_id:"auth0|x"')
    assert query.date_high_us is None and query.low_inclusive
    assert query.types == frozenset({"s", "fp"})
    assert query.equals == {"user_id": "auth0|x"}
    mixed = parse_query("date:{2026-11-01T00:00:00 TO 2026-11-02T00:00:00.000Z]")
    assert not mixed.low_inclusive and mixed.high_inclusive
    day = parse_query("date:2026-11-01")
    assert day.date_high_us is not None and day.date_low_us is not None
    assert day.date_high_us - day.date_low_us == 86_400_000_000 and not day.high_inclusive
    with pytest.raises(QueryError, match='unknown field "colour"'):
        parse_query("colour:blue")
    with pytest.raises(QueryError):
        parse_query("date:[yesterday TO *]")
