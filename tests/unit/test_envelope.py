"""The transform, checked against every real record in tests/fixtures/auth0/."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backfill.errors import DataError
from backfill.records.envelope import serialize, to_envelope

FIXTURES = Path(__file__).parent.parent / "fixtures" / "auth0"
RECORDS = sorted(path for path in FIXTURES.glob("*.json") if not path.name.startswith("_"))


def as_api_record(document: dict) -> dict:
    """Stream fixtures are envelopes: rebuild the API record the Management API would return."""
    if "data" in document and set(document) == {"log_id", "data"}:
        record = dict(document["data"])
        record.setdefault("log_id", document["log_id"])
        record["_id"] = record["log_id"]
        record["id"] = record["log_id"]
        record["isMobile"] = False
        return record
    return document


def test_there_are_fixtures() -> None:
    assert len(RECORDS) >= 15


@pytest.mark.parametrize("path", RECORDS, ids=lambda path: path.stem)
def test_every_fixture_becomes_the_stream_envelope(path: Path) -> None:
    document = json.loads(path.read_text())
    record = as_api_record(document)
    envelope = to_envelope(record)

    assert list(envelope) == ["log_id", "data"]
    assert envelope["log_id"] == record["log_id"]
    data = envelope["data"]
    assert "_id" not in data and "id" not in data
    # Every other key and value is unchanged, in the same order; only a string scope is split.
    expected = {key: value for key, value in record.items() if key not in ("_id", "id")}
    if isinstance(expected.get("scope"), str):
        expected["scope"] = expected["scope"].split(" ")
    assert data == expected
    assert list(data) == list(expected)
    if set(document) == {"log_id", "data"}:
        # A stream fixture: the envelope is what the live stream sent (plus the API's isMobile).
        assert {key: value for key, value in data.items() if key != "isMobile"} == document["data"]


def test_string_scope_becomes_an_array() -> None:
    record = json.loads((FIXTURES / "seccft__elastic_api_pull_2024_scope_string.json").read_text())
    assert record["scope"] == "read:logs read:logs_users"
    assert to_envelope(record)["data"]["scope"] == ["read:logs", "read:logs_users"]


def test_array_scope_and_other_values_are_untouched() -> None:
    record = {"log_id": "1", "scope": ["a b", "c"], "auth0_client": [{"name": "x"}], "user_id": ""}
    assert to_envelope(record)["data"] == {
        "log_id": "1",
        "scope": ["a b", "c"],
        "auth0_client": [{"name": "x"}],
        "user_id": "",
    }


def test_unicode_arrives_unchanged_in_the_serialized_line() -> None:
    record = {"log_id": "1", "user_name": "José Ñandú 测试 🙂", "date": "2026-11-03T03:06:05.696Z"}
    line = serialize(to_envelope(record))
    assert line.endswith(b"\n")
    assert "José Ñandú 测试 🙂".encode() in line
    assert json.loads(line)["data"]["user_name"] == "José Ñandú 测试 🙂"


def test_serialization_is_deterministic() -> None:
    record = json.loads((FIXTURES / "s__elastic_stream_2021.json").read_text())["data"]
    assert serialize(to_envelope(dict(record))) == serialize(to_envelope(dict(record)))


@pytest.mark.parametrize("bad", [{}, {"log_id": ""}, {"log_id": 123}, {"type": "s"}])
def test_a_record_without_a_log_id_is_a_data_error(bad: dict) -> None:
    with pytest.raises(DataError, match="without a usable log_id"):
        to_envelope(bad)


def test_the_rate_limit_body_is_not_a_record() -> None:
    body = json.loads(
        (FIXTURES / "_mgmt_api_429_body__issue_auth0-reset-tenant_31.json").read_text()
    )
    with pytest.raises(DataError):
        to_envelope(body)


@pytest.mark.parametrize(
    "value",
    [2**70, "lone \ud800 surrogate", 1e-7, {"nested": [1, 2.5, None, True, "ü"]}],
    ids=["big-int", "surrogate", "float", "nested"],
)
def test_serialization_keeps_every_value_exactly(value: object) -> None:
    envelope = to_envelope({"log_id": "1", "details": {"value": value}})
    line = serialize(envelope)
    assert json.loads(line) == json.loads(json.dumps(envelope))
    assert line.endswith(b"\n") and line.count(b"\n") == 1


def test_the_fast_path_writes_the_bytes_the_standard_library_would() -> None:
    for path in RECORDS:
        envelope = to_envelope(as_api_record(json.loads(path.read_text())))
        expected = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
        assert serialize(envelope) == expected + b"\n"
