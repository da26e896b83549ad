"""The region a Tinybird token names, and the host the job should use, on tokens made the way
Tinybird makes them (`p.` + unpadded base64url JSON + `.` + HMAC-SHA256 signature)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from backfill.tinybird.region import (
    DEFAULT_HOST,
    LOCAL_HOST,
    REGION_HOSTS,
    REGIONS,
    choose_host,
    host_from_token,
    host_mismatch,
    region_of_host,
    token_region,
)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def tinybird_token(host: Any, workspace: str = "0f6b2f9e-6d3a-4b8e-9a57-2c1d0e4f5a6b") -> str:
    """As Tinybird's Forward CLI builds one (`tb local generate-tokens`): json.dumps of
    {u, id, host}, base64url without padding, signed with HS256 over that text."""
    body = _b64url(json.dumps({"u": workspace, "id": "5c0a8d3e-token", "host": host}).encode())
    signature = hmac.new(b"workspace-secret", body.encode(), hashlib.sha256).digest()
    return f"p.{body}.{_b64url(signature)}"


def secret_parts(token: str) -> list[str]:
    return [part for part in token.split(".") if len(part) > 8]


@pytest.mark.parametrize(
    ("key", "host"),
    [
        ("eu_shared", "https://api.tinybird.co"),
        ("us_east", "https://api.us-east.tinybird.co"),
        ("gcp-europe-west2", "https://api.europe-west2.gcp.tinybird.co"),
        ("gcp-northamerica-northeast2", "https://api.northamerica-northeast2.gcp.tinybird.co"),
        ("us-east-aws", "https://api.us-east.aws.tinybird.co"),
        ("aws-us-west-2", "https://api.us-west-2.aws.tinybird.co"),
        ("aws-eu-central-1", "https://api.eu-central-1.aws.tinybird.co"),
        ("aws-eu-west-1", "https://api.eu-west-1.aws.tinybird.co"),
        ("aws-ap-southeast-2", "https://api.ap-southeast-2.aws.tinybird.co"),
        ("gcp-us-east4", "https://api.us-east.tinybird.co"),
    ],
)
def test_the_host_comes_from_the_tokens_region(key: str, host: str) -> None:
    token = tinybird_token(key)
    assert host_from_token(token) == host
    choice = choose_host(None, token)
    assert choice.host == host and choice.warning is None
    region = token_region(token)
    assert region is not None and region.name in choice.reason
    assert all(part not in choice.reason for part in secret_parts(token))


# The hosts Tinybird's docs list (the project's reference on the Events API).
DOCUMENTED_HOSTS = {
    "https://api.tinybird.co",
    "https://api.europe-west2.gcp.tinybird.co",
    "https://api.us-east.tinybird.co",
    "https://api.northamerica-northeast2.gcp.tinybird.co",
    "https://api.eu-central-1.aws.tinybird.co",
    "https://api.eu-west-1.aws.tinybird.co",
    "https://api.us-east.aws.tinybird.co",
    "https://api.us-west-2.aws.tinybird.co",
    "https://api.ap-east.aws.tinybird.co",
    "https://api.ap-southeast-2.aws.tinybird.co",
}


def test_the_regions_are_the_documented_ones() -> None:
    assert set(REGION_HOSTS) == DOCUMENTED_HOSTS
    assert len(set(REGION_HOSTS)) == len(REGIONS)
    keys = [key for region in REGIONS for key in region.token_keys]
    assert len(keys) == len(set(keys)), "a key naming two regions"
    for region in REGIONS:
        assert region.provider in {"gcp", "aws"} and region.api_host.startswith("https://api.")
        assert f"{region.provider}-{region.provider_region}" in region.token_keys
        assert region_of_host(region.api_host) == region


def test_a_configured_host_wins_and_a_disagreeing_token_is_named() -> None:
    token = tinybird_token("us_east")
    choice = choose_host("https://api.tinybird.co", token)
    assert choice.host == "https://api.tinybird.co" and "TINYBIRD_HOST" in choice.reason
    warning = choice.warning
    assert warning is not None
    assert "https://api.tinybird.co (Europe (GCP europe-west3))" in warning
    assert "US East (GCP us-east4)" in warning and "https://api.us-east.tinybird.co" in warning
    assert "404" in warning
    assert all(part not in warning for part in secret_parts(token))
    assert host_mismatch("https://api.tinybird.co", token, "[tinybird] host") == warning.replace(
        "TINYBIRD_HOST", "[tinybird] host"
    )


@pytest.mark.parametrize(
    "configured",
    [
        "https://api.us-east.tinybird.co",
        "https://API.us-east.tinybird.co/",
        "https://api.us-east.tinybird.co:443",
        "api.us-east.tinybird.co",
    ],
)
def test_the_same_host_written_differently_is_no_mismatch(configured: str) -> None:
    assert host_mismatch(configured, tinybird_token("us_east")) is None
    assert choose_host(configured, tinybird_token("us_east")).warning is None


def test_tinybird_local() -> None:
    local = tinybird_token(None)  # what `tb local generate-tokens` issues: no region
    assert token_region(local) is None and host_from_token(local) is None
    assert choose_host(LOCAL_HOST, local).warning is None
    assert region_of_host(LOCAL_HOST) is None
    fallback = choose_host(None, local)
    assert fallback.host == DEFAULT_HOST and "names no region" in fallback.reason
    # A cloud workspace's token sent to Tinybird Local: named, both hosts.
    warning = host_mismatch(LOCAL_HOST, tinybird_token("aws-eu-west-1"))
    assert warning is not None
    assert f"TINYBIRD_HOST is {LOCAL_HOST}, but" in warning
    assert "https://api.eu-west-1.aws.tinybird.co" in warning


def p(payload: str | bytes, signature: str = "signature") -> str:
    """A token of Tinybird's shape around any payload text."""
    raw = payload.encode() if isinstance(payload, str) else payload
    return f"p.{_b64url(raw)}.{signature}"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "p.",
        "p..",
        "p.not-a-token",
        "p.!!!.signature",
        p("not json"),
        p("[1, 2]"),
        p('{"host": 7}'),
        p('{"host": ""}'),
        p('{"host": "mars-olympus1"}'),
        p('{"u": "x", "id": "y"}'),
        p(b'{"host": "\xff\xfe"}'),
        p("[" * 3000 + "]" * 3000),  # deeper than json's recursion limit
        p('{"host": "us_east"}', "sig.extra"),
        "p." + "A" * 20000 + ".signature",
        # A JWT signed by the user for an endpoint: its payload names a workspace, not a region.
        _b64url(b'{"alg":"HS256"}') + "." + _b64url(b'{"workspace_id":"w","name":"n"}') + ".sig",
    ],
)
def test_a_token_that_does_not_tell_names_no_region(token: str) -> None:
    assert token_region(token) is None and host_from_token(token) is None
    assert host_mismatch("https://api.tinybird.co", token) is None
    choice = choose_host(None, token)
    assert choice.host == DEFAULT_HOST and choice.warning is None


def test_without_a_token_the_configured_host_or_the_default() -> None:
    assert choose_host(None, None).host == DEFAULT_HOST
    configured = choose_host("http://127.0.0.1:7181", None)
    assert configured.host == "http://127.0.0.1:7181" and configured.warning is None
    assert choose_host(None, None, default="https://api.eu-west-1.aws.tinybird.co").host == (
        "https://api.eu-west-1.aws.tinybird.co"
    )


def test_a_key_is_read_regardless_of_case_and_spaces() -> None:
    assert host_from_token(tinybird_token(" US_EAST ")) == "https://api.us-east.tinybird.co"
    assert host_from_token(" " + tinybird_token("eu_shared") + "\n") == "https://api.tinybird.co"
