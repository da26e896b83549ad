"""Tinybird's regions: the API host of each, and what to say when a host answers 404."""

from __future__ import annotations

from urllib.parse import urlsplit

REGION_HOSTS = (
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
)


def region_hint(host: str) -> str:
    hosts = ", ".join(REGION_HOSTS)
    return (
        f"Either the data source does not exist in the workspace, or the token belongs to a "
        f"workspace in another region than {host}. Set TINYBIRD_HOST to your workspace's region "
        f"host (one of {hosts}) and check TINYBIRD_DATASOURCE."
    )


def same_host(left: str, right: str) -> bool:
    """The same API host, whatever the case, a trailing slash or a default port."""
    return _normalized(left) == _normalized(right)


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
