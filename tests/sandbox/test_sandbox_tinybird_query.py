"""Tinybird emulator: Query API, data source endpoints, other schemas, the simulated Log Stream."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import MakeSandbox, append_events, auth0_token, bearer, sql

from backfill.sandbox import Sandbox, SandboxConfig
from backfill.sandbox.generator import Tenant
from backfill.sandbox.timeparse import from_us, iso_millis, to_us
from backfill.tinybird.datafile import seed_datafile_text

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SEED = 42


def test_sql_answers_in_tinybirds_json_shape(http: httpx.Client, sandbox: Sandbox) -> None:
    append_events(http, sandbox, [{"log_id": str(i), "data": {"type": "s"}} for i in range(3)])
    response = http.get(
        f"{sandbox.tinybird_url}/v0/sql",
        params={
            "q": "SELECT type, count() AS n, uniqExact(log_id) AS ids FROM auth0 GROUP BY type"
        },
        headers=bearer(sandbox.tinybird_credentials.read),
    )
    assert response.status_code == 200
    body = response.json()
    assert {"meta", "data", "rows", "statistics"} <= body.keys()
    assert body["data"] == [{"type": "s", "n": 3, "ids": 3}]
    assert body["rows"] == 1


def test_sql_by_post_and_with_an_explicit_format(http: httpx.Client, sandbox: Sandbox) -> None:
    headers = bearer(sandbox.tinybird_credentials.admin)
    posted = http.post(
        f"{sandbox.tinybird_url}/v0/sql", data={"q": "SELECT 1 AS one"}, headers=headers
    )
    assert posted.json()["data"] == [{"one": 1}]
    csv = http.get(
        f"{sandbox.tinybird_url}/v0/sql", params={"q": "SELECT 2 FORMAT CSV"}, headers=headers
    )
    assert csv.text.strip() == "2"
    described = sql(http, sandbox, "DESCRIBE auth0")
    assert [row["name"] for row in described][:3] == ["log_id", "type", "date"]


@pytest.mark.parametrize(
    "statement",
    ["INSERT INTO auth0 (log_id) VALUES ('x')", "DROP TABLE auth0", "SELECT 1; DROP TABLE auth0",
     "SELECT 1 INTO OUTFILE 'x.csv'"],
)  # fmt: skip
def test_sql_refuses_anything_but_reads(
    http: httpx.Client, sandbox: Sandbox, statement: str
) -> None:
    response = http.get(
        f"{sandbox.tinybird_url}/v0/sql",
        params={"q": statement},
        headers=bearer(sandbox.tinybird_credentials.admin),
    )
    assert response.status_code == 400 and "error" in response.json()


def test_sql_errors_are_400_and_tokens_are_checked(http: httpx.Client, sandbox: Sandbox) -> None:
    url = f"{sandbox.tinybird_url}/v0/sql"
    credentials = sandbox.tinybird_credentials
    broken = http.get(
        url, params={"q": "SELECT nope FROM auth0"}, headers=bearer(credentials.admin)
    )
    assert broken.status_code == 400 and "nope" in broken.json()["error"]
    query = {"q": "SELECT 1"}
    assert http.get(url, params=query, headers=bearer(credentials.append)).status_code == 403
    assert http.get(url, params=query, headers=bearer(credentials.other_region)).status_code == 404
    assert http.get(url, params=query).status_code == 403


def test_datasource_endpoints_describe_the_schema(http: httpx.Client, sandbox: Sandbox) -> None:
    headers = bearer(sandbox.tinybird_credentials.read)
    append_events(http, sandbox, [{"log_id": "1", "data": {}}, {"log_id": "2", "data": {}}])
    described = http.get(f"{sandbox.tinybird_url}/v0/datasources/auth0", headers=headers).json()
    assert described["name"] == "auth0" and described["type"] == "ndjson"
    assert described["id"].startswith("t_")
    assert described["statistics"]["row_count"] == 2
    assert described["statistics"]["bytes"] > 0
    assert described["engine"] == {
        "engine": "MergeTree",
        "partition_key": "toYYYYMM(date)",
        "sorting_key": "type, user_id, date",
        "primary_key": "type, user_id, date",
        "ttl": None,
    }
    # One data source has its columns under `schema`, as Tinybird answers (not at the top).
    assert "columns" not in described
    columns = described["schema"]["columns"]
    scope = next(column for column in columns if column["name"] == "scope")
    assert scope == {
        "name": "scope", "normalized_name": "scope", "type": "Array(Nullable(String))",
        "jsonpath": "$.data.scope[:]", "default_value": None, "nullable": False, "codec": None,
    }  # fmt: skip
    ip = next(column for column in columns if column["name"] == "ip")
    assert ip["nullable"] is True
    assert described["schema"]["sql_schema"].startswith("`log_id` String `json:$.log_id`, ")
    assert described["new_columns_detected"] is False and described["used_by"] == []
    created = datetime.strptime(described["created_at"], "%Y-%m-%d %H:%M:%S.%f")
    assert described["updated_at"] >= described["created_at"]
    assert abs(created - datetime.now(UTC).replace(tzinfo=None)) < timedelta(minutes=5)
    datafile = http.get(f"{sandbox.tinybird_url}/v0/datasources/auth0.datasource", headers=headers)
    assert datafile.text == (REPO / "tinybird" / "datasources" / "auth0.datasource").read_text()
    assert datafile.text == seed_datafile_text()


def test_the_list_of_datasources_holds_those_the_token_can_read(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    credentials = sandbox.tinybird_credentials
    created = http.post(
        f"{sandbox.tinybird_url}/__sandbox/datasources",
        json={"name": "other", "datafile": seed_datafile_text()},
    )
    assert created.status_code == 200
    appended = append_events(http, sandbox, b'{"log_id": "1", "data": {}}\nnot json\n')
    assert appended.json() == {"successful_rows": 1, "quarantined_rows": 1}
    url = f"{sandbox.tinybird_url}/v0/datasources"

    def names(token: str, path: str = url) -> list[str]:
        response = http.get(path, headers=bearer(token))
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["datasources"]]

    assert names(credentials.admin) == names(credentials.admin, url + "/") == ["auth0", "other"]
    assert names(credentials.read) == ["auth0"]
    assert names(credentials.append) == [], "an append-only token reads no data source"
    assert http.get(url, headers=bearer(credentials.other_region)).status_code == 404
    assert http.get(url).status_code == 403
    (item,) = http.get(url, headers=bearer(credentials.read)).json()["datasources"]
    # A list item has its columns at the top level, and engine_* keys.
    assert item["columns"][0] == {
        "name": "log_id", "type": "String", "codec": None, "default_value": None,
        "jsonpath": "$.log_id", "nullable": False, "normalized_name": "log_id",
    }  # fmt: skip
    assert item["engine"] == {
        "engine": "MergeTree",
        "engine_sorting_key": "type, user_id, date",
        "engine_partition_key": "toYYYYMM(date)",
        "engine_primary_key": "type, user_id, date",
    }
    assert item["statistics"]["row_count"] == 1
    assert item["new_columns_detected"] == {} and item["quarantine_rows"] == 0
    picked = http.get(
        url, params={"attrs": "name,statistics,quarantine_rows"}, headers=bearer(credentials.read)
    ).json()["datasources"]
    assert picked == [
        {
            "name": "auth0",
            "statistics": item["statistics"],
            "new_columns_detected": {},
            "quarantine_rows": 1,
        }
    ]


def test_datasource_endpoints_404_and_403(http: httpx.Client, sandbox: Sandbox) -> None:
    credentials = sandbox.tinybird_credentials
    base = f"{sandbox.tinybird_url}/v0/datasources"
    assert http.get(f"{base}/missing", headers=bearer(credentials.admin)).status_code == 404
    assert http.get(f"{base}/auth0", headers=bearer(credentials.append)).status_code == 403
    assert http.get(f"{base}/auth0", headers=bearer(credentials.other_region)).status_code == 404


def test_another_schema_from_a_datafile(
    http: httpx.Client, make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    datafile = tmp_path / "narrow.datasource"
    datafile.write_text(
        "SCHEMA >\n"
        "    `log_id` String `json:$.log_id`,\n"
        "    `scope` String `json:$.data.scope`\n\n"
        'ENGINE "MergeTree"\nENGINE_SORTING_KEY "log_id"\n'
    )
    sandbox = make_sandbox(datasource="narrow", datasource_file=datafile)
    response = append_events(http, sandbox, [{"log_id": "1", "data": {"scope": "a b"}}])
    assert response.json() == {"successful_rows": 1, "quarantined_rows": 0}
    assert sql(http, sandbox, "SELECT scope FROM narrow") == [{"scope": "a b"}]


def test_a_datasource_can_be_created_at_run_time(http: httpx.Client, sandbox: Sandbox) -> None:
    created = http.post(
        f"{sandbox.tinybird_url}/__sandbox/datasources",
        json={"name": "other", "datafile": seed_datafile_text()},
    )
    assert created.status_code == 200
    assert append_events(http, sandbox, [{"log_id": "1"}], name="other").status_code == 200
    bad = http.post(f"{sandbox.tinybird_url}/__sandbox/datasources", json={"name": "x"})
    assert bad.status_code == 400


def test_stream_inserts_envelopes_for_logs_dated_since_and_keeps_streaming(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    tenant = sandbox.tenant
    since = tenant.date_us(len(tenant) - 100)
    url = f"{sandbox.tinybird_url}/__sandbox/stream"
    answer = http.post(url, json={"since": iso_millis(since)})
    due = [i for i in range(len(tenant)) if tenant.date_us(i) >= since]
    assert answer.json()["rows"] == len(due)
    # Stream shape, scope as Auth0 sent it: string scopes (and auth0_client arrays) land in
    # quarantine, as in production.
    string_scope = {
        tenant.log_id(i)
        for i in due
        if isinstance(tenant.record(i).get("scope"), str)
        or isinstance(tenant.record(i).get("auth0_client"), list)
    }
    stored = sql(http, sandbox, "SELECT log_id FROM auth0 ORDER BY log_id")
    quarantined = sql(http, sandbox, "SELECT log_id FROM auth0_quarantine ORDER BY log_id")
    assert [row["log_id"] for row in stored] == [
        tenant.log_id(i) for i in due if tenant.log_id(i) not in string_scope
    ]
    assert {row["log_id"] for row in quarantined} == string_scope
    (sample,) = sql(
        http, sandbox, f"SELECT data_log_id FROM auth0 WHERE log_id = '{stored[0]['log_id']}'"
    )
    assert sample["data_log_id"] == stored[0]["log_id"]
    # Logs appended later are streamed too.
    http.post(f"{sandbox.auth0_url}/__sandbox/append", json={"count": 5})
    stats = http.get(f"{sandbox.tinybird_url}/__sandbox/stats").json()
    assert stats["rows_streamed"] == len(due) + 5
    landed = stats["datasources"]["auth0"]
    assert landed["rows"] + landed["quarantined"] == len(due) + 5
    token = auth0_token(http, sandbox)
    (stream,) = http.get(f"{sandbox.auth0_url}/api/v2/log-streams", headers=bearer(token)).json()
    assert stream["status"] == "active" and stream["type"] == "http"
    # The token in the URL, as the seed's guide has users write it.
    assert stream["sink"]["httpEndpoint"] == (
        f"{sandbox.tinybird_url}/v0/events?name=auth0&token={sandbox.tinybird_credentials.append}"
    )


def test_no_log_stream_is_listed_until_one_is_simulated(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    token = auth0_token(http, sandbox)
    assert http.get(f"{sandbox.auth0_url}/api/v2/log-streams", headers=bearer(token)).json() == []


def test_stream_from_at_start(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    end = datetime.now(UTC) - timedelta(minutes=1)
    probe = Tenant(DEFAULT_SEED, 3_000, 3.0, end_us=to_us(end))
    since = probe.date_us(len(probe) - 50)
    sandbox = make_sandbox(seed=DEFAULT_SEED, end=end, stream_from=from_us(since))
    stats = http.get(f"{sandbox.tinybird_url}/__sandbox/stats").json()
    assert stats["rows_streamed"] == sum(probe.date_us(i) >= since for i in range(len(probe)))


def test_a_data_dir_keeps_the_rows_across_restarts(http: httpx.Client, tmp_path: Path) -> None:
    config = SandboxConfig(logs=100, days=1, data_dir=tmp_path / "tinybird")
    with Sandbox(config) as first:
        append_events(http, first, [{"log_id": str(i), "data": {}} for i in range(7)])
    with Sandbox(config) as second:
        assert sql(http, second, "SELECT count() AS n FROM auth0") == [{"n": 7}]
