"""The event-type table against Auth0's published log schemas (a snapshot: tests cannot fetch)."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from backfill.auth0.event_types import catalog, expand

SCHEMA_CODES_FILE = Path(__file__).parents[1] / "fixtures" / "auth0-log-schemas-codes.txt"
# The category names of the Management API's log stream filters (`filters[].name`).
STREAM_CATEGORIES = {
    "actions", "auth.ancillary.fail", "auth.ancillary.success", "auth.login.fail",
    "auth.login.notification", "auth.login.success", "auth.logout.fail", "auth.logout.success",
    "auth.signup.fail", "auth.signup.success", "auth.silent_auth.fail",
    "auth.silent_auth.success", "auth.token_exchange.fail", "auth.token_exchange.success",
    "management.fail", "management.success", "other", "scim.event", "system.notification",
    "user.fail", "user.notification", "user.success",
}  # fmt: skip


def schema_codes() -> list[str]:
    lines = SCHEMA_CODES_FILE.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def table_rows() -> list[dict[str, str]]:
    text = resources.files("backfill.auth0").joinpath("event_types.tsv").read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines(), delimiter="\t"))


def test_the_snapshot_names_its_commit_and_lists_every_schema() -> None:
    header = SCHEMA_CODES_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("# auth0/auth0-log-schemas@") and "(166 codes)" in header
    assert len(schema_codes()) == len(set(schema_codes())) == 166


def test_every_code_in_auth0s_published_schemas_is_in_the_table() -> None:
    missing = sorted(set(schema_codes()) - set(catalog()))
    assert not missing, f"add these codes to backfill/auth0/event_types.tsv: {missing}"


def test_each_code_has_one_row() -> None:
    codes = [row["code"] for row in table_rows()]
    assert len(codes) == len(set(codes))


def test_in_logs_schema_json_says_whether_a_schema_exists() -> None:
    published = set(schema_codes())
    for row in table_rows():
        assert row["in_logs_schema_json"] == ("yes" if row["code"] in published else "no"), row


def test_every_row_names_its_source_and_a_category_the_api_knows() -> None:
    for row in table_rows():
        assert row["source"], row["code"]
        category = row["tenant_log_catalog_group"]
        assert category == "" or category in STREAM_CATEGORIES, row["code"]


def test_every_published_code_has_a_log_streams_category() -> None:
    without = sorted(code for code in schema_codes() if not catalog()[code].category)
    assert not without


def test_the_newer_codes_are_reached_through_their_categories() -> None:
    assert {"fdelsa", "fsa"} <= expand(["auth.silent_auth.fail"], option="--types")
    assert "sdeleacft" in expand(["Token Exchange - Success"], option="--types")
    assert "limit_phone" in expand(["system.notification"], option="--types")
