"""The record keys each Log Streams `pii_config.log_fields` name covers, and dropping their values.

Auth0 lets a stream mask or hash `first_name`, `last_name`, `username`, `email`, `phone` and
`address`, but publishes neither which record keys those names cover nor the output. Its log
schemas (auth0-log-schemas) show the same keys at many depths (`email` at the top, in
`details`, `details.body`, `details.query`, `details.request.auth.user`,
`details.invitation.invitee`), so keys are matched wherever they appear, not by a list of paths
(docs/pii-fields.md has the research and what is assumed). The promise: when a name is dropped,
no value of its class survives anywhere in the row. For the names selected:

- a value under a key whose normalised name (lower case, without `_` and `-`) is in
  `KEYS[name]`, or a string under a key that ends like one (`user_email`, `mobilePhone`), is
  replaced by null;
- `name` in an object that describes a person (it also holds a user key such as `email` or
  `given_name`, or it is a `user`, `inviter` or `invitee`), for `first_name` and `last_name`;
- a string that is entirely an email address (`email`) or an E.164 number (`phone`), or
  entirely a value the rules above found elsewhere in the record, under any key, is replaced by
  null: `user_name` is often an address, and so is `details.request.auth.user.name`;
- in every other string (free text such as `description: "User (a@b.org) attempted 10
  consecutive logins"`, a request path, a message under `details`), each email-shaped
  substring (also written with `%40`), each E.164-shaped one, and each value the rules above
  found in the record (a username, a name, a street) as a whole word, is replaced by its class
  in brackets (`User ([email]) attempted ...`), so the text stays readable and groupable.

Strings under identifier keys (`user_id`, `connection_id`, `client_id`, ...) are kept whole: a
user id that embeds an email is an identifier, and Auth0's own stream keeps it.

`drop_pii` keeps every key, so the envelope has the shape the stream sends. Pure: no I/O, no
clock; the input is not modified.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
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

KEY_ENDINGS: Mapping[str, tuple[str, ...]] = {
    "email": ("email", "emailaddress"),
    "phone": ("phone", "phonenumber", "mobile"),
    "username": ("username",),
}
"""Names whose keys are also found by their ending (`user_email`, `mobilePhone`,
`login_username`; not `email_type`), for string values."""

PERSON_NAME_FIELDS = frozenset({"first_name", "last_name"})
"""A person's full `name` holds both, so either name covers it."""
# Not user_id or user_name: a login prompt holds those next to its stage's `name` ("login").
PERSON_KEYS = frozenset({"email", "givenname", "familyname", "nickname", "phonenumber"})
PERSON_OBJECTS = frozenset({"user", "inviter", "invitee"})
IDENTIFIER_KEYS = frozenset(
    {
        "userid",
        "identityuserid",
        "idpuserid",
        "sub",
        "subject",
        "logid",
        "id",
        "clientid",
        "connectionid",
        "organizationid",
        "orgid",
        "tenantname",
    }
)
"""Keys whose value identifies rather than describes: kept whole, never searched."""

_EMAIL_CHARS = r"[\w.!#$%&'*+/=?^`{|}~-]"
_EMAIL = re.compile(rf"^{_EMAIL_CHARS}+@[\w-]+(\.[\w-]+)+$")
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# In free text: an address (or one written with %40, as in a query string) and a number.
# The local part as people write it (not RFC's `/`, `=` or `?`, which would take a URL with it).
_EMAIL_IN_TEXT = re.compile(r"[\w.%+-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+")
_E164_IN_TEXT = re.compile(r"(?<![\w+])\+[1-9][0-9]{6,14}(?!\d)")
_SHORTEST_SEARCHED = 2  # a found value shorter than this identifies no one
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
    """A copy of `data` with every value of `log_fields` gone: null where a value is whole,
    replaced by its class in brackets inside free text."""
    fields = check_log_fields(log_fields)
    if not fields:
        return _copy(data)
    found = _Found.of(data, fields)
    result = _replace(data, (), None, found.covered, found.scrubber())
    assert isinstance(result, dict)
    return result


def pii_paths(data: Mapping[str, Any], log_fields: Iterable[str]) -> frozenset[_Path]:
    """Paths (keys and list positions from `data`'s root) of the values `drop_pii` nulls
    whole (strings holding a value among other text are edited, not nulled)."""
    fields = check_log_fields(log_fields)
    if not fields:
        return frozenset()
    return frozenset(_Found.of(data, fields).covered)


class _Found:
    """One walk over a record: the paths nulled whole, and the values found there by class."""

    def __init__(self, fields: frozenset[str]) -> None:
        self.fields = fields
        self.keys = {key: name for name in sorted(fields) for key in KEYS[name]}
        self.endings = tuple(
            (ending, name) for name in sorted(fields) for ending in KEY_ENDINGS.get(name, ())
        )
        self.covered: set[_Path] = set()
        self.values: dict[str, str] = {}  # a found value, lower case -> its class

    @classmethod
    def of(cls, data: Mapping[str, Any], fields: frozenset[str]) -> _Found:
        found = cls(fields)
        found.walk(data, (), None)
        if found.values:
            found.walk_again(data, (), None)
        return found

    def walk(self, node: object, path: _Path, parent_key: str | None) -> None:
        if isinstance(node, Mapping):
            person = (parent_key in PERSON_OBJECTS) or any(
                normalised(str(key)) in PERSON_KEYS for key in node
            )
            for key, value in node.items():
                name = normalised(str(key))
                here = (*path, key)
                kind = self._kind_of_key(name, value, person)
                if kind is not None:
                    if value not in (None, ""):  # nothing personal in an empty value: kept
                        self.covered.add(here)
                        for text in _strings(value):
                            self.values.setdefault(text.lower(), _class_of(text, kind))
                    continue
                self.walk(value, here, name)
        elif isinstance(node, list):
            for position, item in enumerate(node):
                self.walk(item, (*path, position), parent_key)
        elif isinstance(node, str) and parent_key not in IDENTIFIER_KEYS:
            kind = self._whole_value(node)
            if kind is not None:
                self.covered.add(path)
                self.values.setdefault(node.lower(), kind)

    def walk_again(self, node: object, path: _Path, key: str | None) -> None:
        """A string that is wholly a value found elsewhere (a username that is also the
        `email`) is nulled like it, wherever it is."""
        if path in self.covered:
            return
        if isinstance(node, Mapping):
            for child, value in node.items():
                self.walk_again(value, (*path, child), normalised(str(child)))
        elif isinstance(node, list):
            for position, item in enumerate(node):
                self.walk_again(item, (*path, position), key)
        elif isinstance(node, str) and key not in IDENTIFIER_KEYS and node.lower() in self.values:
            self.covered.add(path)

    def _kind_of_key(self, name: str, value: object, person: bool) -> str | None:
        if name in self.keys:
            return self.keys[name]
        if name == "name" and person and self.fields & PERSON_NAME_FIELDS:
            return "name"
        if isinstance(value, str):
            for ending, kind in self.endings:
                if name.endswith(ending):
                    return kind
        return None

    def _whole_value(self, text: str) -> str | None:
        if "email" in self.fields and _EMAIL.match(text):
            return "email"
        if "phone" in self.fields and _E164.match(text):
            return "phone"
        return None

    def scrubber(self) -> Callable[[str], str]:
        """What every string left whole goes through: the values of these classes removed.
        Most strings hold none: a substring test comes before any pattern."""
        emails, phones = "email" in self.fields, "phone" in self.fields
        values = self.values
        searched = sorted(
            (value for value in values if len(value) >= _SHORTEST_SEARCHED), key=len, reverse=True
        )

        def scrub(text: str) -> str:
            if emails and ("@" in text or "%40" in text):
                text = _EMAIL_IN_TEXT.sub("[email]", text)
            if phones and "+" in text:
                text = _E164_IN_TEXT.sub("[phone]", text)
            if searched:
                lower = text.lower()
                hits = tuple(value for value in searched if value in lower)
                if hits:
                    text = _words(hits).sub(lambda match: f"[{values[match[0].lower()]}]", text)
            return text

        return scrub


@functools.lru_cache(maxsize=256)
def _words(values: tuple[str, ...]) -> re.Pattern[str]:
    """Any of these values as a whole word, in any case (longest first)."""
    words = "|".join(re.escape(value) for value in values)
    return re.compile(rf"(?<!\w)(?:{words})(?!\w)", re.IGNORECASE)


def _class_of(text: str, kind: str) -> str:
    """A value under a key of two classes (`to`) is of the class its shape says."""
    if _EMAIL.match(text):
        return "email"
    if _E164.match(text):
        return "phone"
    return "name" if kind in PERSON_NAME_FIELDS else kind


def _strings(value: object) -> Iterable[str]:
    if isinstance(value, str):
        if value:
            yield value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _replace(
    node: object,
    path: _Path,
    key: str | None,
    covered: set[_Path],
    scrub: Callable[[str], str] | None,
) -> object:
    if path in covered:
        return None
    if isinstance(node, Mapping):
        return {
            name: _replace(value, (*path, name), normalised(str(name)), covered, scrub)
            for name, value in node.items()
        }
    if isinstance(node, list):
        return [
            _replace(item, (*path, index), key, covered, scrub) for index, item in enumerate(node)
        ]
    if isinstance(node, str) and scrub is not None and key not in IDENTIFIER_KEYS:
        return scrub(node)
    return node


def _copy(data: Mapping[str, Any]) -> dict[str, Any]:
    copied = _replace(data, (), None, set(), None)
    assert isinstance(copied, dict)
    return copied
