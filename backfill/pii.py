"""The record keys each Log Streams `pii_config.log_fields` name covers, and dropping their values.

Auth0 lets a stream mask or hash `first_name`, `last_name`, `username`, `email`, `phone` and
`address`, but publishes neither which record keys those names cover nor the output. Its log
schemas (auth0-log-schemas) show the same keys at many depths (`email` at the top, in
`details`, `details.body`, `details.query`, `details.request.auth.user`,
`details.invitation.invitee`), so keys are matched wherever they appear, not by a list of paths
(docs/pii-fields.md has the research and what is assumed). Rules, for the names selected:

- a key whose normalised name (lower case, without `_` and `-`) is in `KEYS[name]`;
- `name` in an object that describes a person (it also holds a user key such as `email` or
  `given_name`, or it is a `user`, `inviter` or `invitee`), for `first_name` and `last_name`;
- a string that is entirely an email address (`email`) or an E.164 number (`phone`), under any
  key: `user_name` is often one, and so is `details.request.auth.user.name`;
- a string that contains such an email address or number found in the record (free text such
  as `description: "To: neo@test.com"`), except under identifier keys (`user_id`, ...): a user
  id that embeds an email is an identifier, and Auth0's own stream keeps it.

`drop_pii` replaces what is covered with JSON null and keeps every key, so the envelope has the
shape the stream sends. Pure: no I/O, no clock; the input is not modified.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

LOG_FIELDS = ("first_name", "last_name", "username", "email", "phone", "address")

KEYS: Mapping[str, frozenset[str]] = {
    "first_name": frozenset({"givenname", "firstname"}),
    "last_name": frozenset({"familyname", "lastname", "surname"}),
    # user_name, username, newUsername, oldUsername, and `newUername` as Auth0 spells it in fcu.
    "username": frozenset({"username", "newusername", "oldusername", "newuername", "nickname"}),
    # `to`: the recipient of a notification (fn, wn) or a verification (fvr, svr).
    "email": frozenset({"email", "newemail", "oldemail", "to"}),
    "phone": frozenset({"phone", "phonenumber", "newphonenumber", "oldphonenumber", "to"}),
    "address": frozenset({"address"}),
}
"""Each log_fields name -> the normalised key names it covers, at any depth of `data`."""

PERSON_NAME_FIELDS = frozenset({"first_name", "last_name"})
"""A person's full `name` holds both, so either name covers it."""
# Not user_id or user_name: a login prompt holds those next to its stage's `name` ("login").
PERSON_KEYS = frozenset({"email", "givenname", "familyname", "nickname", "phonenumber"})
PERSON_OBJECTS = frozenset({"user", "inviter", "invitee"})
IDENTIFIER_KEYS = frozenset(
    {"userid", "identityuserid", "idpuserid", "sub", "subject", "logid", "id", "clientid"}
)
"""Keys whose value identifies rather than describes: never nulled for embedding a value."""

_EMAIL = re.compile(r"^[\w.!#$%&'*+/=?^`{}~-]+@[\w-]+(\.[\w-]+)+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_Path = tuple[str | int, ...]


def normalised(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def check_log_fields(log_fields: Iterable[str]) -> frozenset[str]:
    """The names as a set; a name Auth0 does not define is an error (not silently ignored)."""
    names = frozenset(log_fields)
    unknown = sorted(names - set(LOG_FIELDS))
    if unknown:
        raise ValueError(f"unknown pii log_fields {unknown}: Auth0 defines {list(LOG_FIELDS)}")
    return names


def drop_pii(data: Mapping[str, Any], log_fields: Iterable[str]) -> dict[str, Any]:
    """A copy of `data` with every value covered by `log_fields` replaced by None."""
    covered = pii_paths(data, log_fields)
    if not covered:
        return _copy(data)
    result = _replace(data, (), covered)
    assert isinstance(result, dict)
    return result


def pii_paths(data: Mapping[str, Any], log_fields: Iterable[str]) -> frozenset[_Path]:
    """Paths (keys and list positions from `data`'s root) of the values `drop_pii` nulls."""
    fields = check_log_fields(log_fields)
    if not fields:
        return frozenset()
    keys = frozenset().union(*(KEYS[name] for name in fields))
    by_value: set[_Path] = set()
    found: set[str] = set()
    _walk_rules(data, (), None, fields, keys, by_value, found)
    leaks: set[_Path] = set()
    distinctive = {value for value in found if _EMAIL.match(value) or _E164.match(value)}
    if distinctive:
        _walk_leaks(data, (), None, distinctive, by_value, leaks)
    return frozenset(by_value | leaks)


def _walk_rules(
    node: object,
    path: _Path,
    parent_key: str | None,
    fields: frozenset[str],
    keys: frozenset[str],
    covered: set[_Path],
    found: set[str],
) -> None:
    if isinstance(node, Mapping):
        person = (parent_key in PERSON_OBJECTS) or any(
            normalised(str(key)) in PERSON_KEYS for key in node
        )
        for key, value in node.items():
            name = normalised(str(key))
            here = (*path, key)
            if name in keys or (name == "name" and person and fields & PERSON_NAME_FIELDS):
                if value not in (None, ""):  # nothing personal in an empty value: kept as is
                    covered.add(here)
                    found.update(_strings(value))
                continue
            _walk_rules(value, here, name, fields, keys, covered, found)
    elif isinstance(node, list):
        for position, item in enumerate(node):
            _walk_rules(item, (*path, position), parent_key, fields, keys, covered, found)
    elif isinstance(node, str) and parent_key not in IDENTIFIER_KEYS and _whole_value(node, fields):
        covered.add(path)
        found.add(node)


def _whole_value(text: str, fields: frozenset[str]) -> bool:
    return ("email" in fields and bool(_EMAIL.match(text))) or (
        "phone" in fields and bool(_E164.match(text))
    )


def _walk_leaks(
    node: object,
    path: _Path,
    key: str | None,
    values: set[str],
    covered: set[_Path],
    leaks: set[_Path],
) -> None:
    if path in covered:
        return
    if isinstance(node, Mapping):
        for child_key, value in node.items():
            here = (*path, child_key)
            _walk_leaks(value, here, normalised(str(child_key)), values, covered, leaks)
    elif isinstance(node, list):
        for position, item in enumerate(node):
            _walk_leaks(item, (*path, position), key, values, covered, leaks)
    elif (
        isinstance(node, str)
        and key not in IDENTIFIER_KEYS
        and any(value in node for value in values)
    ):
        leaks.add(path)


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _replace(node: object, path: _Path, covered: frozenset[_Path]) -> object:
    if path in covered:
        return None
    if isinstance(node, Mapping):
        return {key: _replace(value, (*path, key), covered) for key, value in node.items()}
    if isinstance(node, list):
        return [_replace(item, (*path, index), covered) for index, item in enumerate(node)]
    return node


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    copied = _replace(data, (), frozenset())
    assert isinstance(copied, dict)
    return copied
