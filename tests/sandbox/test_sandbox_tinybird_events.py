"""Tinybird emulator, Events API: storage, quarantine, limits, tokens and encodings."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import httpx
from sandbox_helpers import MakeSandbox, append_events, bearer, envelope, sql

from backfill.sandbox import Sandbox


def test_wait_true_stores_every_row_and_says_so(http: httpx.Client, sandbox: Sandbox) -> None:
    envelopes = [envelope(sandbox, i) for i in range(100)]
    envelopes = [e for e in envelopes if not isinstance(e["data"].get("scope"), str)][:50]
    response = append_events(http, sandbox, envelopes)
    assert response.status_code == 200
    assert response.json() == {"successful_rows": len(envelopes), "quarantined_rows": 0}
    rows = sql(http, sandbox, "SELECT log_id, type, toString(date) AS d FROM auth0 ORDER BY log_id")
    assert [row["log_id"] for row in rows] == sorted(e["log_id"] for e in envelopes)
    first = envelopes[0]["data"]
    stored = next(row for row in rows if row["log_id"] == envelopes[0]["log_id"])
    assert stored["type"] == first["type"]
    assert stored["d"] == first["date"].replace("T", " ").rstrip("Z")


def test_columns_follow_their_jsonpaths_and_defaults(http: httpx.Client, sandbox: Sandbox) -> None:
    data = {
        "log_id": "1",
        "date": "2026-11-03T03:06:05.696Z",
        "scope": ["openid", "profile"],
        "$event_schema": {"version": "1.0.0"},
        "details": {"error": {"message": "Wrong email or password."}},
    }
    assert append_events(http, sandbox, [{"log_id": "1", "data": data}]).status_code == 200
    (row,) = sql(
        http, sandbox,
        "SELECT log_id, data_log_id, type, client_name, user_id, ip, scope, event_schema_version,"
        " toJSONString(details) AS details, toJSONString(auth0_client) AS sdk FROM auth0",
    )  # fmt: skip
    assert row["log_id"] == row["data_log_id"] == "1"
    assert (row["type"], row["client_name"], row["user_id"]) == ("unknown", "unknown", "unknown")
    assert row["ip"] is None
    assert row["scope"] == ["openid", "profile"]
    assert row["event_schema_version"] == "1.0.0"
    assert json.loads(row["details"]) == {"error": {"message": "Wrong email or password."}}
    assert json.loads(row["sdk"]) == {}


def test_a_string_scope_goes_to_quarantine_with_its_column(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    good = {"log_id": "1", "data": {"log_id": "1", "type": "s", "date": "2026-11-03T03:06:05.696Z"}}
    bad = {
        "log_id": "2",
        "data": {"log_id": "2", "type": "seccft", "date": "2026-11-03T03:06:06.000Z",
                 "scope": "read:logs read:logs_users"},
    }  # fmt: skip
    response = append_events(http, sandbox, [good, bad])
    assert response.json() == {"successful_rows": 1, "quarantined_rows": 1}
    assert [r["log_id"] for r in sql(http, sandbox, "SELECT log_id FROM auth0")] == ["1"]
    (row,) = sql(
        http, sandbox,
        "SELECT log_id, scope, c__error_column, c__error, c__import_id FROM auth0_quarantine",
    )  # fmt: skip
    assert row["log_id"] == "2"
    assert row["scope"] == "read:logs read:logs_users"
    assert row["c__error_column"] == ["scope"]
    assert "Array" in row["c__error"][0]
    assert row["c__import_id"]


def test_a_malformed_date_and_an_array_details_are_quarantined_and_the_rest_stored(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    rows: list[dict[str, Any]] = [
        {"log_id": str(i), "data": {"log_id": str(i), "date": "2026-11-03T03:06:05.696Z"}}
        for i in range(10)
    ]
    rows[3]["data"]["date"] = "the third of November"
    rows[7]["data"]["details"] = ["not", "an", "object"]
    response = append_events(http, sandbox, rows)
    assert response.json() == {"successful_rows": 8, "quarantined_rows": 2}
    quarantined = sql(
        http, sandbox, "SELECT log_id, c__error_column FROM auth0_quarantine ORDER BY log_id"
    )
    assert quarantined == [
        {"log_id": "3", "c__error_column": ["date"]},
        {"log_id": "7", "c__error_column": ["details"]},
    ]
    assert len(sql(http, sandbox, "SELECT log_id FROM auth0")) == 8


def test_lines_that_are_not_json_objects_are_quarantined(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    body = b'{"log_id": "1", "data": {}}\n{not json\n[1, 2]\n\n'
    response = append_events(http, sandbox, body)
    assert response.json() == {"successful_rows": 1, "quarantined_rows": 2}


def test_gzip_bodies_are_accepted_and_bad_gzip_is_400(http: httpx.Client, sandbox: Sandbox) -> None:
    envelopes = [{"log_id": str(i), "data": {"log_id": str(i)}} for i in range(20)]
    assert append_events(http, sandbox, envelopes, compress=True).json()["successful_rows"] == 20
    response = http.post(
        f"{sandbox.tinybird_url}/v0/events",
        params={"name": "auth0", "wait": "true"},
        headers={**bearer(sandbox.tinybird_credentials.admin), "Content-Encoding": "gzip"},
        content=b"this is not gzip",
    )
    assert response.status_code == 400
    assert "gzip" in response.json()["error"]


def test_wait_false_answers_202(http: httpx.Client, sandbox: Sandbox) -> None:
    response = append_events(http, sandbox, [{"log_id": "1", "data": {}}], wait="false")
    assert response.status_code == 202


def test_a_body_over_the_limit_uncompressed_is_413(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(max_body_bytes=2_000)
    big = [{"log_id": str(i), "data": {"description": "x" * 100}} for i in range(30)]
    plain = append_events(http, sandbox, big)
    assert plain.status_code == 413 and "error" in plain.json()
    compressed = append_events(http, sandbox, big, compress=True)
    assert compressed.status_code == 413  # small on the wire, too big once inflated
    assert append_events(http, sandbox, big[:5]).status_code == 200
    stats = http.get(f"{sandbox.tinybird_url}/__sandbox/stats").json()
    assert stats["status_413"] == 2 and stats["rows_stored"] == 5


def test_over_the_request_rate_is_429_with_retry_after(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(requests_per_second=3)
    statuses = []
    for _ in range(6):
        response = append_events(http, sandbox, [{"log_id": "1", "data": {}}])
        statuses.append(response.status_code)
        assert response.headers["X-RateLimit-Limit"] == "3"
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert int(response.headers["X-RateLimit-Remaining"]) == 0
            assert int(response.headers["X-RateLimit-Reset"]) >= 1
            assert "error" in response.json()
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    assert http.get(f"{sandbox.tinybird_url}/__sandbox/stats").json()["status_429"] >= 1


def test_tokens_need_append_rights_on_that_data_source(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    credentials = sandbox.tinybird_credentials
    one = [{"log_id": "1", "data": {}}]
    assert append_events(http, sandbox, one, token=credentials.append).status_code == 200
    assert append_events(http, sandbox, one, token=credentials.read).status_code == 403
    assert append_events(http, sandbox, one, token="p.garbage.token").status_code == 403
    assert append_events(http, sandbox, one, token="nonsense").status_code == 403
    elsewhere = append_events(http, sandbox, one, token=credentials.other_region)
    assert elsewhere.status_code == 404 and "region" in elsewhere.json()["error"]


def test_tokens_are_shaped_like_tinybirds(sandbox: Sandbox) -> None:
    """`p.` + unpadded base64url of {u, id, host} + `.` + signature, as Tinybird's CLI builds them:
    the workspace's own tokens name no region (as Tinybird Local's), the other one a real region
    key; what a token may do is not in it."""
    credentials = sandbox.tinybird_credentials
    tokens = [credentials.admin, credentials.append, credentials.read, credentials.other_region]
    payloads = []
    for token in tokens:
        prefix, body, signature = token.split(".")
        assert prefix == "p" and "=" not in body + signature
        assert re.fullmatch(r"[A-Za-z0-9_-]+", body + signature)
        payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        assert set(payload) == {"u", "id", "host"}
        assert re.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", payload["id"]
        )
        payloads.append(payload)
    assert [payload["host"] for payload in payloads] == [None, None, None, "us_east"]
    assert len({payload["u"] for payload in payloads}) == 1
    assert len({payload["id"] for payload in payloads}) == 4


def test_an_unknown_data_source_is_404_and_is_not_created(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    response = append_events(http, sandbox, [{"log_id": "1", "data": {}}], name="auth0_typo")
    assert response.status_code == 404
    assert "does not create" in response.json()["error"]
    assert append_events(http, sandbox, [{"log_id": "1"}], name="").status_code == 400


def test_a_token_in_the_url_works_and_is_counted(http: httpx.Client, sandbox: Sandbox) -> None:
    response = http.post(
        f"{sandbox.tinybird_url}/v0/events",
        params={"name": "auth0", "token": sandbox.tinybird_credentials.append},
        content=b'{"log_id": "1", "data": {}}',
    )
    assert response.status_code == 202
    assert http.get(f"{sandbox.tinybird_url}/__sandbox/stats").json()["tokens_in_url"] == 1


def test_a_simulated_materialized_view_failure_writes_rows_and_answers_422(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(mv_failure_rate=1.0)
    response = append_events(http, sandbox, [{"log_id": "1", "data": {}}])
    assert response.status_code == 422
    assert len(sql(http, sandbox, "SELECT log_id FROM auth0")) == 1


def test_received_lines_are_recorded_in_arrival_order_when_asked(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(record_raw=True)
    first = [{"log_id": "2", "data": {}}, {"log_id": "1", "data": {}}]
    second = [{"log_id": "3", "data": {}}]
    append_events(http, sandbox, first)
    append_events(http, sandbox, second, compress=True)
    received = http.get(f"{sandbox.tinybird_url}/__sandbox/received", params={"name": "auth0"})
    assert [json.loads(line)["log_id"] for line in received.text.splitlines()] == ["2", "1", "3"]


def test_received_is_refused_when_not_recording(http: httpx.Client, sandbox: Sandbox) -> None:
    response = http.get(f"{sandbox.tinybird_url}/__sandbox/received", params={"name": "auth0"})
    assert response.status_code == 409


def test_reset_truncates_the_tables(http: httpx.Client, sandbox: Sandbox) -> None:
    append_events(http, sandbox, [{"log_id": "1", "data": {"scope": "a b"}}, {"log_id": "2"}])
    assert http.post(f"{sandbox.tinybird_url}/__sandbox/reset").status_code == 200
    assert sql(http, sandbox, "SELECT count() AS n FROM auth0") == [{"n": 0}]
    assert sql(http, sandbox, "SELECT count() AS n FROM auth0_quarantine") == [{"n": 0}]


def test_acknowledgement_latency_delays_wait_true_only(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(tinybird_ack_latency="400")
    started = time.monotonic()
    append_events(http, sandbox, [{"log_id": "1", "data": {}}], wait="false")
    assert time.monotonic() - started < 0.3
    started = time.monotonic()
    assert append_events(http, sandbox, [{"log_id": "2", "data": {}}]).status_code == 200
    assert time.monotonic() - started >= 0.4
    config = http.post(f"{sandbox.tinybird_url}/__sandbox/config", json={"ack_latency": "0"})
    assert config.json()["ack_latency"] == "0"
    started = time.monotonic()
    append_events(http, sandbox, [{"log_id": "3", "data": {}}])
    assert time.monotonic() - started < 0.3
