"""The Auth0 emulator through Auth0's own Python SDK (auth0-python, generated from Auth0's
OpenAPI): what Auth0's client sends, the sandbox takes, and what the sandbox answers, the client
accepts. The sandbox cannot drift from Auth0's published API without one of these failing.

The SDK's `Log` model types `scope` as a string, while Auth0's log schemas allow an array of
strings too, and real records carry both: the sandbox keeps the arrays. The SDK refuses a page
holding one, for that field alone; `through_sdk` tells that refusal apart from any other and
reads the answer the SDK refused from the error it raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from auth0.authentication import GetToken
from auth0.authentication.exceptions import Auth0Error
from auth0.management import Auth0, BadRequestError, NotFoundError
from auth0.management.core import ParsingError, SyncPager
from pydantic import BaseModel, ValidationError
from sandbox_helpers import bearer

from backfill.sandbox import Sandbox, SandboxConfig
from backfill.sandbox.livestream import STREAM_TYPES, StreamSpec
from backfill.sandbox.obfuscation import PiiConfig

END = datetime.now(UTC) - timedelta(minutes=5)
# A plan with a token bucket, so every answer carries the x-ratelimit-* headers.
CONFIG = SandboxConfig(
    logs=3_000, days=3.0, seed=42, profile="enterprise", end=END,
    stream_from=END - timedelta(days=1), stream_filters=("auth.login.fail",),
    stream_pii=("email",), stream_pii_method="hash",
    streams=tuple(
        StreamSpec(name=f"To {kind}", type=kind, datasource="" if kind == "http" else None)
        for kind in STREAM_TYPES
    ),
)  # fmt: skip


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(CONFIG) as started:
        yield started


@pytest.fixture(scope="module")
def domain(sandbox: Sandbox) -> str:
    """What an SDK user gives as the domain: host and port, no scheme."""
    return urlsplit(sandbox.auth0_url).netloc


@pytest.fixture(scope="module")
def token(sandbox: Sandbox, domain: str) -> str:
    client = sandbox.auth0_credentials.client
    get_token = GetToken(domain, client.client_id, client.client_secret, protocol="http")
    # The audience Auth0's clients send: https, whatever the scheme the tenant is reached by.
    answer = get_token.client_credentials(f"https://{domain}/api/v2/")
    access_token: str = answer["access_token"]
    return access_token


@pytest.fixture(scope="module")
def api(domain: str, token: str) -> Iterator[Auth0]:
    """The generated Management API client (ManagementClient fixes https; this one takes the
    sandbox's http URL)."""
    with httpx.Client(timeout=30.0) as http:
        yield Auth0(base_url=f"http://{domain}/api/v2", token=token, httpx_client=http)


def through_sdk(call: Callable[[], Any]) -> Any:
    """The answer as the SDK parsed it (as JSON); when the SDK refused it only for `scope`s that
    are arrays (its model's limit, not the sandbox's), the answer as the sandbox sent it."""
    try:
        answer = call()
    except ParsingError as refused:
        assert isinstance(refused.cause, ValidationError), refused
        problems = refused.cause.errors()
        assert problems
        for problem in problems:
            assert problem["loc"][-1] == "scope" and problem["type"] == "string_type", problem
            assert isinstance(problem["input"], list) and all(
                isinstance(item, str) for item in problem["input"]
            ), problem
        return refused.body
    model = answer.response if isinstance(answer, SyncPager) else answer
    assert isinstance(model, BaseModel)
    return model.model_dump(by_alias=True, mode="json", exclude_unset=True)


def test_a_token_for_the_audience_auth0s_clients_send(sandbox: Sandbox, domain: str) -> None:
    client = sandbox.auth0_credentials.client
    get_token = GetToken(domain, client.client_id, client.client_secret, protocol="http")
    answer = get_token.client_credentials(f"https://{domain}/api/v2/")
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 86_400
    assert answer["scope"] == "read:logs read:log_streams"
    wrong = GetToken(domain, client.client_id, "not-the-secret", protocol="http")
    with pytest.raises(Auth0Error) as refused:
        wrong.client_credentials(f"https://{domain}/api/v2/")
    assert refused.value.status_code == 401 and refused.value.error_code == "access_denied"


def test_logs_list_answers_what_the_sandbox_serves(
    api: Auth0, sandbox: Sandbox, token: str
) -> None:
    page = through_sdk(lambda: api.logs.list(per_page=100))
    with httpx.Client(timeout=30.0) as http:
        served = http.get(
            f"{sandbox.auth0_url}/api/v2/logs",
            params={"per_page": 100, "include_totals": "true"},
            headers=bearer(token),
        ).json()
    assert [log["log_id"] for log in page["logs"]] == [log["log_id"] for log in served["logs"]]
    assert len(page["logs"]) == 100 and page["total"] == len(sandbox.auth0.visible_now())


def test_a_search_through_the_sdk_returns_only_the_types_asked(
    api: Auth0, sandbox: Sandbox
) -> None:
    wanted = {"s", "f"}
    page = through_sdk(lambda: api.logs.list(per_page=100, search="type:(s OR f)"))
    assert {log["type"] for log in page["logs"]} == wanted
    tenant = sandbox.tenant
    matching = sum(
        1 for index in sandbox.auth0.visible_now() if tenant.event_kind(index).code in wanted
    )
    assert page["total"] == matching < len(sandbox.auth0.visible_now())


def test_one_log_by_id_its_rate_limit_headers_and_the_404(api: Auth0, sandbox: Sandbox) -> None:
    page = through_sdk(lambda: api.logs.list(per_page=100, search="type:s"))
    # One the SDK's model can hold (a string scope, or none), to check the model too.
    chosen = next(log for log in page["logs"] if not isinstance(log.get("scope"), list))
    raw = api.logs.with_raw_response.get(chosen["log_id"])
    assert raw.data.log_id == chosen["log_id"] and raw.data.type == "s"
    assert raw.data.model_dump(by_alias=True, mode="json", exclude_unset=True) == chosen
    assert raw.headers["x-ratelimit-limit"] == "50"  # the enterprise plan's burst
    assert int(raw.headers["x-ratelimit-remaining"]) < 50
    assert int(raw.headers["x-ratelimit-reset"]) >= int(datetime.now(UTC).timestamp())
    with pytest.raises(NotFoundError) as missing:
        api.logs.get("9" * 56)
    assert missing.value.status_code == 404


def test_the_sdk_cannot_page_past_1000_search_results(api: Auth0) -> None:
    assert through_sdk(lambda: api.logs.list(page=9, per_page=100))["logs"]
    with pytest.raises(BadRequestError) as refused:
        api.logs.list(page=10, per_page=100)
    assert refused.value.status_code == 400
    assert refused.value.body["message"] == (
        "Requesting page 11 exceeds the allowed maximum of 1000 records: "
        "please consider searching by checkpoint"
    )


def test_log_streams_of_every_type_parse_as_their_types(api: Auth0, sandbox: Sandbox) -> None:
    raw = api.log_streams.with_raw_response.list()
    assert raw.headers["x-ratelimit-limit"] == "50"
    streams = raw.data
    assert [(stream.name, stream.type) for stream in streams] == [
        ("Tinybird", "http"),
        *((f"To {kind}", kind) for kind in STREAM_TYPES),
    ]
    for stream in streams:
        # Every schema of the SDK's union takes any `type`: the sink tells them apart.
        assert type(stream).__name__.lower().startswith(f"logstream{stream.type}"), stream
        assert stream.sink is not None and stream.status == "active"
    tinybird = streams[0]
    assert tinybird.sink.http_endpoint.startswith(f"{sandbox.tinybird_url}/v0/events?name=auth0")
    assert [(item.type, item.name) for item in tinybird.filters or []] == [
        ("category", "auth.login.fail")
    ]
    pii = PiiConfig.of(("email",), "hash").describe()
    assert tinybird.pii_config is not None
    assert tinybird.pii_config.model_dump(exclude_unset=True) == pii
    assert all(stream.filters is None for stream in streams[1:])
