"""drop_pii on real Auth0 records: every email, name and phone gone, every key kept."""

from __future__ import annotations

import copy
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest

from backfill.records.pii import IDENTIFIER_KEYS, KEYS, LOG_FIELDS, drop_pii, normalised, pii_paths

FIXTURES = Path(__file__).parents[1] / "fixtures" / "auth0"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def fixture_records() -> dict[str, dict[str, Any]]:
    records = {}
    for path in sorted(FIXTURES.glob("*.json")):
        loaded = json.loads(path.read_text(encoding="utf-8"))
        if "statusCode" not in loaded:  # an error body, not a log
            records[path.stem] = loaded.get("data", loaded)
    return records


RECORDS = fixture_records()
# What each real record holds that names a person, found by reading them (not by the module):
# values nulled whole, and free text that keeps its words without the address.
EXPECTED_EMAIL_PATHS = {
    "fn__elastic_stream_2021": {("details", "to")},
    "fp__auth0_docs_api": {("user_name",)},
    "fp__elastic_stream_2021": {("user_name",)},
    "fs__elastic_stream_2021": {("user_name",), ("details", "body", "email")},
    "fu__elastic_stream_2021": {("user_name",)},
    "s__elastic_stream_2021": {("user_name",), ("details", "prompts", 1, "user_name")},
    "s__elastic_stream_2021_consent": {("user_name",), ("details", "prompts", 1, "user_name")},
    "s__elastic_stream_2021_sso_no_prompts": {("user_name",)},
    "sapi__elastic_stream_2021_log_stream_create": {
        ("details", "request", "auth", "user", "email"),
        ("details", "request", "auth", "user", "name"),
    },
    "seacft__elastic_stream_2021": {("user_name",)},
    "slo__elastic_stream_2021": {("user_name",)},
    "ss__elastic_stream_2021": {("user_name",), ("details", "body", "email")},
    "sv__elastic_stream_2021": {
        ("user_name",),
        ("details", "email"),
        ("details", "query", "email"),
    },
}
EXPECTED_EDITED = {"fn__elastic_stream_2021": {("description",): "To: [email]"}}


def leaves(node: object, path: tuple[str | int, ...] = ()) -> dict[tuple[str | int, ...], Any]:
    """Every leaf (and empty container) by its path."""
    if isinstance(node, dict) and node:
        found: dict[tuple[str | int, ...], Any] = {}
        for key, value in node.items():
            found.update(leaves(value, (*path, key)))
        return found
    if isinstance(node, list) and node:
        found = {}
        for index, item in enumerate(node):
            found.update(leaves(item, (*path, index)))
        return found
    return {path: node}


def key_paths(node: object, path: tuple[str | int, ...] = ()) -> set[tuple[str | int, ...]]:
    paths = {path}
    if isinstance(node, dict):
        for key, value in node.items():
            paths |= key_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            paths |= key_paths(item, (*path, index))
    return paths


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_no_email_is_left_and_every_other_value_is_unchanged(name: str) -> None:
    record = RECORDS[name]
    before = copy.deepcopy(record)
    dropped = drop_pii(record, LOG_FIELDS)
    assert record == before, "the input is not modified"
    assert not EMAIL.search(json.dumps(dropped, ensure_ascii=False))
    expected = EXPECTED_EMAIL_PATHS.get(name, set())
    original, after = leaves(record), leaves(dropped)
    assert set(after) == set(original), "every key is kept"
    for path, value in original.items():
        if any(path[: len(covered)] == covered for covered in expected):
            assert after[path] is None, path
        elif path in EXPECTED_EDITED.get(name, {}):
            assert after[path] == EXPECTED_EDITED[name][path], path
        else:
            assert after[path] == value, path


def test_the_real_records_hold_emails_where_expected() -> None:
    # Guards the test above: the fixtures do carry addresses at those paths.
    for name, paths in EXPECTED_EMAIL_PATHS.items():
        original = leaves(RECORDS[name])
        for path in paths | set(EXPECTED_EDITED.get(name, {})):
            assert EMAIL.search(str(original[path])), (name, path)


SIGNUP = {
    "type": "ss",
    "user_id": "samlp|Corp-SAML|zoe.muller@corp.io",
    "user_name": "zoe.muller@corp.io",
    "description": "",
    "details": {
        "body": {
            "email": "zoe.muller@corp.io",
            "name": "Zoë Müller",
            "given_name": "Zoë",
            "family_name": "Müller",
            "nickname": "zoe",
            "username": "zmuller",
            "phone_number": "+14155554321",
            "connection": "Username-Password-Authentication",
            "user_metadata": {"address": {"street_address": "1 Main St", "locality": "Oslo"}},
        },
        "prompts": [{"name": "login", "user_id": "auth0|1", "user_name": "zmuller"}],
        "request": {"body": {"name": "Storefront Web", "type": "http"}},
    },
    "user_agent": "Chrome 124.0.0 / Mac OS X 10.15.7",
}


def test_each_field_covers_only_its_own_keys() -> None:
    body = ("details", "body")
    expected = {
        "first_name": {(*body, "given_name"), (*body, "name")},
        "last_name": {(*body, "family_name"), (*body, "name")},
        # This user's username is their email: wherever the value is, it is the username's.
        "username": {
            ("user_name",),
            (*body, "email"),
            (*body, "nickname"),
            (*body, "username"),
            ("details", "prompts", 0, "user_name"),
        },
        "email": {("user_name",), (*body, "email")},
        "phone": {(*body, "phone_number")},
        "address": {(*body, "user_metadata", "address")},
    }
    assert set(expected) == set(LOG_FIELDS) == set(KEYS)
    for field, paths in expected.items():
        assert pii_paths(SIGNUP, [field]) == paths, field


def test_names_and_numbers_are_gone_and_identifiers_and_stage_names_stay() -> None:
    dropped = drop_pii(SIGNUP, LOG_FIELDS)
    text = json.dumps(dropped, ensure_ascii=False)
    for value in ("Zoë", "Müller", "zmuller", "+14155554321", "1 Main St", "Oslo"):
        assert value not in text
    assert dropped["user_id"] == SIGNUP["user_id"], "an id that embeds an email is an identifier"
    assert dropped["details"]["prompts"][0]["name"] == "login"
    assert dropped["details"]["request"]["body"] == {"name": "Storefront Web", "type": "http"}
    assert dropped["details"]["body"]["user_metadata"] == {"address": None}
    assert dropped["details"]["body"]["connection"] == "Username-Password-Authentication"


def test_nothing_selected_is_a_plain_copy_and_empty_values_stay() -> None:
    copied = drop_pii(SIGNUP, [])
    assert copied == SIGNUP and copied is not SIGNUP
    assert copied["details"] is not SIGNUP["details"]
    seccft = RECORDS["seccft__elastic_api_pull_2024_scope_string"]
    assert drop_pii(seccft, LOG_FIELDS) == seccft  # user_name "" holds nothing


def test_an_unknown_field_name_is_an_error() -> None:
    with pytest.raises(ValueError, match="given_name"):
        drop_pii(SIGNUP, ["email", "given_name"])


LOCKOUT = {
    "type": "limit_wc",
    "description": "User (someone@example.org) attempted 10 consecutive logins from 10.0.0.1",
    "user_id": "auth0|abc",
    "user_name": "Some One",
    "connection_id": "con_someone@example.org",
    "details": {
        "error": {"message": "Account locked for someone@example.org, call +4915112345678"},
        "request": {"path": "/api/v2/users-by-email?email=someone%40example.org"},
        "history": [{"notes": ["SOME ONE asked to unlock", "reset sent"]}],
        "user_email": "someone@example.org",
        "email_verified": True,
        "email_type": "verify_email",
    },
}


def test_free_text_loses_every_value_of_a_dropped_class_and_keeps_its_words() -> None:
    dropped = drop_pii(LOCKOUT, ["email", "phone", "username"])
    assert dropped["user_name"] is None
    assert dropped["description"] == (
        "User ([email]) attempted 10 consecutive logins from 10.0.0.1"
    )
    details = dropped["details"]
    assert details["error"]["message"] == "Account locked for [email], call [phone]"
    assert details["request"]["path"] == "/api/v2/users-by-email?email=[email]"
    # The display name found under user_name is searched for in every string, in any case.
    assert details["history"][0]["notes"] == ["[username] asked to unlock", "reset sent"]
    assert details["user_email"] is None, "a key that ends like email"
    assert details["email_verified"] is True and details["email_type"] == "verify_email"
    # Identifiers are kept whole, as Auth0's own stream keeps them.
    assert dropped["user_id"] == "auth0|abc"
    assert dropped["connection_id"] == "con_someone@example.org"


def test_only_the_classes_dropped_are_searched() -> None:
    dropped = drop_pii(LOCKOUT, ["phone"])
    assert dropped["user_name"] == "Some One"
    assert (
        dropped["details"]["error"]["message"]
        == "Account locked for someone@example.org, call [phone]"
    )
    assert "someone@example.org" in dropped["description"]


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_a_value_moved_into_any_string_at_any_depth_does_not_survive(name: str) -> None:
    """Each real record, with an address, a number and its own username written into every
    string that is not an identifier (kept whole, as the stream keeps them): none of them may
    reach the row."""
    rng = random.Random(name)
    record = copy.deepcopy(RECORDS[name])
    secret_email = f"x{rng.randrange(10**6)}@mail-{rng.randrange(99)}.example.net"
    secret_phone = f"+4420{rng.randrange(10**7, 10**8)}"
    username = "Zed Nobody"
    record["user_name"] = username

    def plant(node: Any, key: str | None = None) -> Any:
        if isinstance(node, dict):
            return {k: plant(v, k) for k, v in node.items()}
        if isinstance(node, list):
            return [plant(item, key) for item in node]
        kept_whole = key is not None and normalised(key) in IDENTIFIER_KEYS | {"username"}
        if isinstance(node, str) and not kept_whole:
            return f"{node} ({secret_email}; {secret_phone}; by {username.upper()})"
        return node

    planted = plant(record)
    planted["details"] = {
        "deep": [{"deeper": {"text": f"mail {secret_email}"}}],
        **(planted.get("details") or {}),
    }
    text = json.dumps(drop_pii(planted, LOG_FIELDS), ensure_ascii=False)
    assert secret_email not in text and secret_phone not in text
    assert username.lower() not in text.lower()
    assert not EMAIL.search(text)
