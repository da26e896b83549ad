"""Log Streams filter categories of event types, as the emulated Auth0 applies them.

Read from `backfill/auth0/event_types.tsv` (Auth0's published catalogue, with each row's source), as
data: a stream filtering on `auth.login.fail` sends the codes of that category. A code the
catalogue does not know can be given a category when it is appended (`Tenant.extra_categories`),
as Auth0 knows the categories of codes newer than any copy of its catalogue.
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

STREAM_CATEGORIES = frozenset(
    {
        "actions", "auth.ancillary.fail", "auth.ancillary.success", "auth.login.fail",
        "auth.login.notification", "auth.login.success", "auth.logout.fail",
        "auth.logout.success", "auth.signup.fail", "auth.signup.success",
        "auth.silent_auth.fail", "auth.silent_auth.success", "auth.token_exchange.fail",
        "auth.token_exchange.success", "management.fail", "management.success", "other",
        "scim.event", "system.notification", "user.fail", "user.notification", "user.success",
    }
)  # fmt: skip
"""The names the Management API accepts in a stream's `filters[].name`."""


@cache
def catalogue_categories() -> dict[str, str]:
    """Event type code -> its category ('' when no source gives one)."""
    text = resources.files("backfill.auth0").joinpath("event_types.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return {row["code"]: row["tenant_log_catalog_group"] for row in rows if row.get("code")}


def check_category(name: str) -> str:
    if name not in STREAM_CATEGORIES:
        raise ValueError(
            f"unknown Log Streams category {name!r}: one of {sorted(STREAM_CATEGORIES)}"
        )
    return name
