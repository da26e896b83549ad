"""Shapes of an archived item: an API record, a stream envelope, an EventBridge event holding
either; each gives the record ``run`` reads, anything else is rejected with a reason."""

from __future__ import annotations

from typing import Any

import pytest

from backfill.archive.shapes import API, ENVELOPE, EVENTBRIDGE, Found, Rejected, classify

LOG_ID = "90020261103030605696000000000000000000000000000000000001"
RECORD: dict[str, Any] = {
    "date": "2026-11-03T03:06:05.696Z",
    "type": "s",
    "log_id": LOG_ID,
    "_id": LOG_ID,
    "tenant_name": "acme",
}
STREAMED = {key: value for key, value in RECORD.items() if key != "_id"}


def event(detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "6f560900-5e58-4dff-bc32-eebf092d59b4",
        "detail-type": "Auth0 log",
        "source": "aws.partner/auth0.com/acme-123/auth0.logs",
        "account": "123456789012",
        "time": "2026-11-03T03:06:08Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


@pytest.mark.parametrize(
    ("item", "shape", "record"),
    [
        (RECORD, API, RECORD),
        ({"log_id": LOG_ID, "data": STREAMED}, ENVELOPE, STREAMED),
        (event({"log_id": LOG_ID, "data": STREAMED}), EVENTBRIDGE, STREAMED),
        (event(RECORD), EVENTBRIDGE, RECORD),
    ],
)
def test_each_shape_gives_the_record(item: Any, shape: str, record: Any) -> None:
    found = classify(item)
    assert isinstance(found, Found)
    assert (found.shape, found.record, found.log_id) == (shape, record, LOG_ID)
    assert found.date == "2026-11-03T03:06:05.696Z"


def test_an_envelope_whose_data_has_no_log_id_takes_the_envelopes() -> None:
    data = {key: value for key, value in STREAMED.items() if key != "log_id"}
    found = classify({"log_id": LOG_ID, "data": data})
    assert isinstance(found, Found)
    assert found.record == {**data, "log_id": LOG_ID}


def test_a_record_without_a_date_takes_the_write_time_of_its_id() -> None:
    found = classify({"log_id": LOG_ID, "type": "s"})
    assert isinstance(found, Found) and found.date == "2026-11-03T03:06:05.696Z"


@pytest.mark.parametrize(
    ("item", "why"),
    [
        ([RECORD], "a JSON array"),
        ("text", "a JSON string"),
        ({"type": "s", "date": "2026-11-03T03:06:05.696Z"}, "no log_id"),
        ({"log_id": 5, "date": "2026-11-03T03:06:05.696Z"}, "a number"),
        ({"log_id": " ", "date": "2026-11-03T03:06:05.696Z"}, "an empty log_id"),
        ({"log_id": "abc", "date": "yesterday"}, "no readable date"),
        ({"log_id": LOG_ID, "data": {**STREAMED, "log_id": "other"}}, "differs"),
        (event("a string"), "detail is a string"),
        ({"user": "x"}, "no log_id"),
    ],
)
def test_items_that_are_not_auth0_logs_are_rejected(item: Any, why: str) -> None:
    found = classify(item)
    assert isinstance(found, Rejected)
    assert found.reason.startswith("not an Auth0 log") and why in found.reason
