"""Auth0 emulator: checkpoint paging, search mode, single logs and retention, over real HTTP."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import httpx
import pytest
from sandbox_helpers import MakeSandbox, auth0_token, bearer, get_logs

from backfill.sandbox import Sandbox
from backfill.sandbox.timeparse import from_us, iso_millis, now_us, parse_instant

LINK = re.compile(r'^<(?P<url>[^>]+)>; rel="next"$')


@pytest.fixture
def token(http: httpx.Client, sandbox: Sandbox) -> str:
    return auth0_token(http, sandbox)


def first_id(sandbox: Sandbox) -> str:
    return sandbox.tenant.log_id(0)


# -- checkpoint mode ----------------------------------------------------------------------------
def test_from_is_exclusive_and_pages_follow_log_id_order(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    response = get_logs(http, sandbox, token, **{"from": first_id(sandbox), "take": 100})
    assert response.status_code == 200
    page = response.json()
    assert [r["log_id"] for r in page] == [sandbox.tenant.log_id(i) for i in range(1, 101)]


def test_link_next_continues_from_the_last_id_and_paging_reaches_every_log(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    seen = [first_id(sandbox)]
    url = f"{sandbox.auth0_url}/api/v2/logs?from={seen[0]}&take=100"
    while True:
        response = http.get(url, headers=bearer(token))
        page = response.json()
        link = LINK.match(response.headers["link"])
        assert link is not None
        if not page:
            assert link.group("url") == url  # an empty page repeats the same request
            break
        assert f"from={page[-1]['log_id']}" in link.group("url")
        seen += [record["log_id"] for record in page]
        url = link.group("url")
    assert seen == [sandbox.tenant.log_id(i) for i in range(len(sandbox.tenant))]


def test_prerendered_pages_are_the_same_bytes_and_later_logs_are_still_served(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    end = from_us(now_us() - 60_000_000)  # the same tenant twice: the same end
    built = make_sandbox(logs=300, end=end)
    prerendered = make_sandbox(logs=300, end=end, prerender=True)
    pages = []
    for sandbox in (built, prerendered):
        token = auth0_token(http, sandbox)
        answer = get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(49), "take": 100})
        pages.append(answer.content)
        assert sandbox.auth0.stats()["records_served"] == 100
    assert pages[0] == pages[1]
    assert [record["log_id"] for record in httpx.Response(200, content=pages[1]).json()] == [
        built.tenant.log_id(index) for index in range(50, 150)
    ]
    added = prerendered.tenant.append(5)
    token = auth0_token(http, prerendered)
    tail = get_logs(http, prerendered, token, **{"from": prerendered.tenant.log_id(299)}).json()
    assert [record["log_id"] for record in tail] == [
        prerendered.tenant.log_id(index) for index in added
    ]


def test_the_span_of_checkpoint_pages_runs_from_the_first_asked_to_the_last_answered(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(logs=300, auth0_latency="200")
    token = auth0_token(http, sandbox)
    get_logs(http, sandbox, token, sort="date:1", per_page=100)  # a search: not a page
    assert sandbox.auth0.page_span() is None
    before = time.monotonic()
    get_logs(http, sandbox, token, **{"from": first_id(sandbox), "take": 100})
    get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(100), "take": 100})
    after = time.monotonic()
    span = sandbox.auth0.page_span()
    assert span is not None
    asked, answered = span
    assert before <= asked < asked + 0.4 <= answered <= after  # two round trips of 200 ms


def test_take_defaults_to_50_and_is_capped_at_100(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    assert len(get_logs(http, sandbox, token, **{"from": first_id(sandbox)}).json()) == 50
    capped = get_logs(http, sandbox, token, **{"from": first_id(sandbox), "take": 500})
    assert len(capped.json()) == 100
    assert "take=100" in capped.headers["link"]


def test_other_parameters_are_ignored_with_from(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    plain = get_logs(http, sandbox, token, **{"from": first_id(sandbox), "take": 20})
    noisy = get_logs(
        http, sandbox, token,
        **{"from": first_id(sandbox), "take": 20, "q": "type:fp", "search": "type:s",
           "sort": "date:-1", "page": 3},
    )  # fmt: skip
    assert noisy.json() == plain.json()


@pytest.mark.parametrize("checkpoint", ["", "abc", "12x", "1" * 57, "-5"])
def test_a_malformed_from_is_a_400(
    http: httpx.Client, sandbox: Sandbox, token: str, checkpoint: str
) -> None:
    response = get_logs(http, sandbox, token, **{"from": checkpoint})
    assert response.status_code == 400
    assert response.json()["statusCode"] == 400


def test_a_synthesised_date_checkpoint_starts_at_that_time(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    middle = sandbox.tenant.write_us(len(sandbox.tenant) // 2)
    checkpoint = "900" + from_us(middle).strftime("%Y%m%d%H%M%S") + "0" * 39
    page = get_logs(http, sandbox, token, **{"from": checkpoint, "take": 5}).json()
    assert page[0]["log_id"] > checkpoint
    index = sandbox.tenant.find(page[0]["log_id"], range(len(sandbox.tenant)))
    assert index is not None and sandbox.tenant.log_id(index - 1) <= checkpoint


def test_a_checkpoint_older_than_retention_is_a_400_and_a_retained_one_works(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(profile="free", logs=2_000, days=3)
    token = auth0_token(http, sandbox)
    oldest_kept = sandbox.auth0.visible_now().start
    assert oldest_kept > 0  # free keeps one day of the three
    expired = get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(oldest_kept - 1)})
    assert expired.status_code == 400
    assert expired.json()["error"] == "Bad Request"
    assert "retention" in expired.json()["message"]
    kept = get_logs(http, sandbox, token, **{"from": sandbox.tenant.log_id(oldest_kept)})
    assert kept.status_code == 200
    assert kept.json()[0]["log_id"] == sandbox.tenant.log_id(oldest_kept + 1)


def test_a_checkpoint_within_retention_but_before_the_first_log_pages_from_the_start(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(profile="enterprise", logs=500, days=3)  # 30 days kept, 3 used
    token = auth0_token(http, sandbox)
    ten_days_ago = from_us(sandbox.tenant.write_us(0) - 7 * 86_400 * 1_000_000)
    checkpoint = "900" + ten_days_ago.strftime("%Y%m%d%H%M%S") + "0" * 39
    page = get_logs(http, sandbox, token, **{"from": checkpoint, "take": 3})
    assert page.status_code == 200
    assert [r["log_id"] for r in page.json()] == [sandbox.tenant.log_id(i) for i in range(3)]
    forty_days_ago = from_us(sandbox.tenant.write_us(0) - 37 * 86_400 * 1_000_000)
    expired = "900" + forty_days_ago.strftime("%Y%m%d%H%M%S") + "0" * 39
    assert get_logs(http, sandbox, token, **{"from": expired}).status_code == 400
    assert get_logs(http, sandbox, token, **{"from": "0"}).status_code == 400


def test_retention_days_override_the_profile(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(profile="unlimited", logs=2_000, days=3, retention_days=2)
    stats = http.get(f"{sandbox.auth0_url}/__sandbox/stats").json()
    oldest = parse_instant(stats["logs"]["oldest_date"])
    newest = parse_instant(stats["logs"]["newest_date"])
    assert timedelta(days=1.9) < newest - oldest <= timedelta(days=2)
    assert 0 < stats["logs"]["count"] < stats["logs"]["generated"]


# -- one log ------------------------------------------------------------------------------------
def test_one_log_by_id_and_404_when_unknown_or_purged(
    http: httpx.Client, make_sandbox: MakeSandbox
) -> None:
    sandbox = make_sandbox(logs=2_000, days=3, retention_days=1)
    token = auth0_token(http, sandbox)
    last = sandbox.tenant.log_id(len(sandbox.tenant) - 1)
    found = http.get(f"{sandbox.auth0_url}/api/v2/logs/{last}", headers=bearer(token))
    assert found.status_code == 200 and found.json()["log_id"] == last
    for missing in (sandbox.tenant.log_id(0), "9" * 56):
        response = http.get(f"{sandbox.auth0_url}/api/v2/logs/{missing}", headers=bearer(token))
        assert response.status_code == 404


# -- search mode --------------------------------------------------------------------------------
def dates_of(records: list[dict[str, object]]) -> list[str]:
    return [str(record["date"]) for record in records]


def test_search_by_date_range_sorted_ascending_finds_the_first_log_at_a_date(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    tenant = sandbox.tenant
    target = tenant.date_us(1_000)
    day = iso_millis(target)
    response = get_logs(http, sandbox, token, q=f"date:[{day} TO *]", sort="date:1", per_page=100)
    found = response.json()
    assert dates_of(found) == sorted(dates_of(found))
    all_dates = sorted(tenant.date_us(i) for i in range(len(tenant)))
    expected_first = next(d for d in all_dates if d >= target)
    assert found[0]["date"] == iso_millis(expected_first)
    assert len(found) == 100


def test_search_brackets_are_inclusive_and_braces_exclusive(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    date = iso_millis(sandbox.tenant.date_us(500))
    inclusive = get_logs(http, sandbox, token, q=f"date:[{date} TO {date}]").json()
    exclusive = get_logs(http, sandbox, token, q=f"date:{{{date} TO {date}]").json()
    assert inclusive and all(record["date"] == date for record in inclusive)
    assert exclusive == []


def test_search_with_dates_only_and_mixed_brackets(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    tenant = sandbox.tenant
    day = from_us(tenant.date_us(len(tenant) // 2)).date()
    following = day + timedelta(days=1)
    response = get_logs(
        http, sandbox, token, q=f"date:[{day} TO {following}}}", include_totals="true",
        per_page=100, sort="date:-1",
    )  # fmt: skip
    body = response.json()
    expected = [i for i in range(len(tenant)) if str(day) in iso_millis(tenant.date_us(i))]
    assert body["total"] == len(expected)
    assert body["start"] == 0 and body["limit"] == 100 and body["length"] == len(body["logs"])
    assert dates_of(body["logs"]) == sorted(dates_of(body["logs"]), reverse=True)
    assert all(record["date"].startswith(str(day)) for record in body["logs"])


def test_search_by_type_and_user(http: httpx.Client, sandbox: Sandbox, token: str) -> None:
    by_type = get_logs(http, sandbox, token, q="type:(fp OR fu)", per_page=100).json()
    assert by_type and {record["type"] for record in by_type} <= {"fp", "fu"}
    user_id = next(r["user_id"] for r in by_type if r.get("user_id"))
    combined = get_logs(
        http, sandbox, token, q=f'type:fp AND user_id:"{user_id}"', per_page=100
    ).json()
    assert combined and all(r["type"] == "fp" and r["user_id"] == user_id for r in combined)


def test_search_is_read_like_q(http: httpx.Client, sandbox: Sandbox, token: str) -> None:
    """Auth0's OpenAPI, and the SDKs generated from it, send the query as `search`."""
    wanted = {"fp", "fu"}
    by_search = get_logs(http, sandbox, token, search="type:(fp OR fu)", per_page=100).json()
    by_q = get_logs(http, sandbox, token, q="type:(fp OR fu)", per_page=100).json()
    assert by_search == by_q and {record["type"] for record in by_search} == wanted
    both = get_logs(http, sandbox, token, q="type:fp", search="type:fu", per_page=100).json()
    assert both and {record["type"] for record in both} == {"fp"}, "q wins"
    unknown = get_logs(http, sandbox, token, search="colour:blue")
    assert unknown.status_code == 400 and unknown.json()["message"] == 'unknown field "colour"'


def test_search_default_sort_is_newest_first_and_pages_do_not_overlap(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    first = get_logs(http, sandbox, token, per_page=10, page=0).json()
    second = get_logs(http, sandbox, token, per_page=10, page=1).json()
    combined = dates_of(first) + dates_of(second)
    assert combined == sorted(combined, reverse=True)
    assert not {r["log_id"] for r in first} & {r["log_id"] for r in second}
    newest = max(
        sandbox.tenant.date_us(i) for i in range(len(sandbox.tenant) - 200, len(sandbox.tenant))
    )
    assert first[0]["date"] == iso_millis(newest)


def test_search_fields_selection(http: httpx.Client, sandbox: Sandbox, token: str) -> None:
    only = get_logs(http, sandbox, token, fields="date,type", per_page=3).json()
    assert all(set(record) <= {"date", "type"} for record in only)
    without = get_logs(
        http, sandbox, token, fields="details", include_fields="false", per_page=3
    ).json()
    assert all("details" not in record and "log_id" in record for record in without)


def test_search_cannot_reach_past_1000_results(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    assert get_logs(http, sandbox, token, page=9, per_page=100).status_code == 200
    response = get_logs(http, sandbox, token, page=10, per_page=100)
    assert response.status_code == 400
    assert response.json()["message"] == (
        "Requesting page 11 exceeds the allowed maximum of 1000 records: "
        "please consider searching by checkpoint"
    )
    assert get_logs(http, sandbox, token, page=20, per_page=50).status_code == 400


def test_search_rejects_an_unknown_field_and_a_big_per_page(
    http: httpx.Client, sandbox: Sandbox, token: str
) -> None:
    unknown = get_logs(http, sandbox, token, q="colour:blue")
    assert unknown.status_code == 400
    assert unknown.json()["message"] == 'unknown field "colour"'
    assert get_logs(http, sandbox, token, per_page=101).status_code == 400


def test_search_stays_fast_on_a_large_tenant(http: httpx.Client, make_sandbox: MakeSandbox) -> None:
    sandbox = make_sandbox(logs=300_000, days=30)
    token = auth0_token(http, sandbox)
    middle = iso_millis(sandbox.tenant.date_us(150_000))
    response = get_logs(
        http, sandbox, token, q=f"date:[{middle} TO *]", sort="date:1", per_page=100, page=9
    )
    assert response.status_code == 200 and len(response.json()) == 100
    assert response.elapsed.total_seconds() < 1.0
