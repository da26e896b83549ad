"""Logs of a chosen event type (`POST /__sandbox/append` with `type`), a code the job's table
does not know included, and the newer codes of Auth0's schemas in the generated tenant."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import httpx
from sandbox_helpers import auth0_token, get_logs

from backfill.sandbox import Sandbox
from backfill.sandbox.generator import Tenant

REPO = Path(__file__).resolve().parents[2]
NEWER = ("sdel", "sdelsa", "fdelsa", "sdeleacft", "fdeleacft", "limit_phone")


def table_codes() -> set[str]:
    with (REPO / "backfill" / "auth0" / "event_types.tsv").open(encoding="utf-8") as handle:
        return {row["code"] for row in csv.DictReader(handle, delimiter="\t")}


def appended(http: httpx.Client, sandbox: Sandbox, **payload: object) -> httpx.Response:
    return http.post(f"{sandbox.auth0_url}/__sandbox/append", json=payload)


def test_appended_logs_have_the_chosen_type_known_or_not(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    assert "zz_new_code" not in table_codes()
    newest = sandbox.tenant.log_id(len(sandbox.tenant) - 1)
    first = appended(http, sandbox, count=3, type="zz_new_code")
    then = appended(http, sandbox, count=2, type="fdelsa")
    plain = appended(http, sandbox, count=40)
    assert [answer.json()["count"] for answer in (first, then, plain)] == [3, 2, 40]
    token = auth0_token(http, sandbox)
    page = get_logs(http, sandbox, token, **{"from": newest, "take": 100}).json()
    assert [record["type"] for record in page[:5]] == ["zz_new_code"] * 3 + ["fdelsa"] * 2
    assert page[0]["log_id"] == first.json()["first_log_id"]
    unknown = page[0]
    assert {"log_id", "date", "description", "ip", "user_agent", "details"} <= unknown.keys()
    assert all("actor" in record["details"] for record in page[3:5]), "a delegated code"
    assert "zz_new_code" not in {record["type"] for record in page[5:]}
    found = get_logs(http, sandbox, token, q="type:zz_new_code").json()
    assert sorted(record["log_id"] for record in found) == [r["log_id"] for r in page[:3]]


def test_a_category_only_for_codes_the_catalogue_lacks(
    http: httpx.Client, sandbox: Sandbox
) -> None:
    given = appended(http, sandbox, type="zz_login", category="auth.login.success")
    assert given.status_code == 200
    assert sandbox.tenant.extra_categories == {"zz_login": "auth.login.success"}
    assert appended(http, sandbox, type="fp", category="other").status_code == 400
    assert appended(http, sandbox, type="zz_x", category="logins").status_code == 400
    assert appended(http, sandbox, category="other").status_code == 400


def test_the_newer_codes_appear_now_and_then() -> None:
    tenant = Tenant(seed=11, count=60_000, days=10)
    counts = Counter(tenant.event_kind(i).code for i in range(len(tenant)))
    assert set(NEWER) <= table_codes()
    for code in NEWER:
        assert 0 < counts[code] < 0.002 * len(tenant), code
    delegated = next(i for i in range(len(tenant)) if tenant.event_kind(i).code == "sdel")
    record = tenant.record(delegated)
    assert record["details"]["actor"]["sub"] and record["details"]["prompts"]
