"""Tinybird's regions: the API host of each, and what to say when a host answers 404."""

from __future__ import annotations

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
