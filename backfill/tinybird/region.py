"""Tinybird's regions, and the region a token belongs to.

A workspace lives in one region and answers only on that region's API host: a token sent to
another region's host gets 404 on every call, the most common Tinybird mistake. A static token
says where it belongs. It is ``p.`` + the unpadded base64url of a JSON payload + ``.`` + a
signature, and the payload is ``{"u": <workspace or user id>, "id": <token id>, "host": <region>}``
(the Forward CLI's ``tb local generate-tokens`` builds Tinybird Local's so, with ``"host": null``).

``host`` is a region key, not a URL. The keys Tinybird's own apps map to API hosts (its starter
kits read them from the token) are ``eu_shared``, ``us_east``, ``us-east-aws`` and the
``<provider>-<provider region>`` form (``gcp-europe-west2``, ``aws-us-west-2`` ...); that form is
accepted for every region, and it is the only one known for the two Asia-Pacific regions.

Everything here is pure: no I/O, and no message ever holds a token. Reading a token never
raises: a token this module cannot read names no region (None), as does Tinybird Local's.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_HOST = "https://api.tinybird.co"
LOCAL_HOST = "http://localhost:7181"
"""Tinybird Local, the container: its tokens name no region."""

_MAX_TOKEN_LENGTH = 8192  # static tokens are a few hundred characters; anything longer is not one


@dataclass(frozen=True)
class Region:
    """One region, as Tinybird's `/v0/regions` lists it (name, provider, api_host) and its docs
    table it (the provider's region), with the keys a token's payload names it by."""

    name: str
    provider: str
    provider_region: str
    api_host: str
    token_keys: tuple[str, ...]


def _region(name: str, provider: str, provider_region: str, api_host: str, *keys: str) -> Region:
    return Region(
        name, provider, provider_region, api_host, (*keys, f"{provider}-{provider_region}")
    )


REGIONS: tuple[Region, ...] = (
    _region("Europe (GCP europe-west3)", "gcp", "europe-west3", DEFAULT_HOST, "eu_shared"),
    _region(
        "Europe (GCP europe-west2)",
        "gcp",
        "europe-west2",
        "https://api.europe-west2.gcp.tinybird.co",
    ),
    _region(
        "US East (GCP us-east4)", "gcp", "us-east4", "https://api.us-east.tinybird.co", "us_east"
    ),
    _region(
        "North America (GCP northamerica-northeast2)",
        "gcp",
        "northamerica-northeast2",
        "https://api.northamerica-northeast2.gcp.tinybird.co",
    ),
    _region(
        "Europe (AWS eu-central-1)",
        "aws",
        "eu-central-1",
        "https://api.eu-central-1.aws.tinybird.co",
    ),
    _region("Europe (AWS eu-west-1)", "aws", "eu-west-1", "https://api.eu-west-1.aws.tinybird.co"),
    _region(
        "US East (AWS us-east-1)",
        "aws",
        "us-east-1",
        "https://api.us-east.aws.tinybird.co",
        "us-east-aws",
    ),
    _region("US West (AWS us-west-2)", "aws", "us-west-2", "https://api.us-west-2.aws.tinybird.co"),
    _region(
        "Asia Pacific (AWS ap-east-1)", "aws", "ap-east-1", "https://api.ap-east.aws.tinybird.co"
    ),
    _region(
        "Asia Pacific (AWS ap-southeast-2)",
        "aws",
        "ap-southeast-2",
        "https://api.ap-southeast-2.aws.tinybird.co",
    ),
)

REGION_HOSTS: tuple[str, ...] = tuple(region.api_host for region in REGIONS)

_BY_KEY = {key: region for region in REGIONS for key in region.token_keys}


def token_region(token: str) -> Region | None:
    """The region a token's payload names, or None when it names none this module knows (Tinybird
    Local's tokens, a JWT, a region added since, anything that is not a Tinybird token)."""
    key = _payload_host(token)
    return _BY_KEY.get(key.strip().lower()) if key else None


def host_from_token(token: str) -> str | None:
    """The API host of the token's region, or None when the token does not tell."""
    region = token_region(token)
    return region.api_host if region else None


def region_of_host(host: str) -> Region | None:
    """The region whose API host this is (scheme, case, a trailing slash and a default port do not
    matter), or None for another host (Tinybird Local, a proxy, the sandbox)."""
    wanted = _normalized(host)
    return next((region for region in REGIONS if _normalized(region.api_host) == wanted), None)


def same_host(left: str, right: str) -> bool:
    return _normalized(left) == _normalized(right)


def host_mismatch(configured_host: str, token: str, setting: str = "TINYBIRD_HOST") -> str | None:
    """A warning naming both hosts when the configured host is not the one of the token's region;
    None when they agree or the token does not tell. Never holds the token."""
    region = token_region(token)
    if region is None or same_host(configured_host, region.api_host):
        return None
    configured_region = region_of_host(configured_host)
    where = f" ({configured_region.name})" if configured_region else ""
    return (
        f"{setting} is {configured_host}{where}, but the token belongs to a workspace in "
        f"{region.name}, whose API host is {region.api_host}: every call to {configured_host} "
        f"would answer 404. Set {setting}={region.api_host}, or unset it to use the token's."
    )


@dataclass(frozen=True)
class HostChoice:
    """The host to use and why, for `check` and the run's log; never holds the token."""

    host: str
    reason: str
    warning: str | None = None


def choose_host(
    configured_host: str | None,
    token: str | None,
    setting: str = "TINYBIRD_HOST",
    default: str = DEFAULT_HOST,
) -> HostChoice:
    """The configured host when there is one (with a warning when the token's region disagrees);
    else the host of the token's region; else `default`."""
    if configured_host:
        warning = host_mismatch(configured_host, token, setting) if token else None
        return HostChoice(configured_host, f"{setting} is set", warning)
    region = token_region(token) if token else None
    if region is not None:
        return HostChoice(region.api_host, f"the token belongs to {region.name}")
    return HostChoice(default, f"{setting} is not set and the token names no region: the default")


def _payload_host(token: str) -> str | None:
    """The payload's `host`, if the token is `<prefix>.<base64url JSON>.<signature>` and has one."""
    if not isinstance(token, str) or len(token) > _MAX_TOKEN_LENGTH:
        return None
    parts = token.strip().split(".")
    if len(parts) != 3 or not parts[1]:
        return None
    body = parts[1]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    host = payload.get("host") if isinstance(payload, dict) else None
    return host if isinstance(host, str) and host.strip() else None


def _normalized(host: str) -> tuple[str, str, int | None]:
    text = host.strip()
    parts = urlsplit(text if "://" in text else f"https://{text}")
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port == {"https": 443, "http": 80}.get(scheme):
        port = None
    return scheme, (parts.hostname or "").lower(), port


def region_hint(host: str) -> str:
    """What to say when a host answers 404: the region, or the data source (short: the docs'
    configuration page lists every region's host, and a token that names its region is
    reported at start)."""
    return (
        f"Or the token belongs to a workspace in another region than {host}: set TINYBIRD_HOST "
        f"to its region's host ({REGION_HOSTS[0]}, {REGION_HOSTS[1]} and {len(REGION_HOSTS) - 2} "
        "more: the docs' configuration page lists them)."
    )
