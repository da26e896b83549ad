"""The JSONPath subset of Tinybird datafiles: `$.a.b`, `$.a[:]`, `$.a[0]`, `$.a.['$key'].b`.

A path that leads nowhere yields MISSING (the column DEFAULT, or NULL, applies); `[:]` on a value
that is not an array does not fit the column, which sends the row to quarantine.
"""

from __future__ import annotations

import re
from typing import Final

MISSING: Final = object()
_KEY = re.compile(r"\.?([A-Za-z_$@][\w$@-]*)")
_QUOTED = re.compile(r"\.?\[\s*(['\"])(.*?)\1\s*\]")
_SLICE = re.compile(r"\[\s*:\s*\]")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")


class PathMismatch(ValueError):
    """The document has a value at the path, but of a shape the path cannot take."""


class JsonPath:
    def __init__(self, text: str) -> None:
        self.text = text
        self._steps = _compile(text)
        # Most paths are plain keys: walk those without the general machinery (hot path).
        plain = all(kind == "key" for kind, _ in self._steps)
        self._keys = tuple(str(argument) for _, argument in self._steps) if plain else None

    def extract(self, document: object) -> object:
        if self._keys is None:
            return _walk(document, self._steps)
        value = document
        for key in self._keys:
            if not isinstance(value, dict):
                return MISSING
            value = value.get(key, MISSING)
            if value is MISSING:
                return MISSING
        return value


_Step = tuple[str, str | int]


def _compile(text: str) -> tuple[_Step, ...]:
    if not text.startswith("$"):
        raise ValueError(f"a jsonpath starts with '$': {text!r}")
    steps: list[_Step] = []
    position = 1
    while position < len(text):
        for kind, pattern in (("key", _QUOTED), ("all", _SLICE), ("index", _INDEX), ("key", _KEY)):
            match = pattern.match(text, position)
            if match:
                if kind == "all":
                    steps.append(("all", ""))
                elif kind == "index":
                    steps.append(("index", int(match.group(1))))
                else:
                    steps.append(("key", match.group(match.lastindex or 1)))
                position = match.end()
                break
        else:
            raise ValueError(f"unsupported jsonpath {text!r} at {text[position:]!r}")
    return tuple(steps)


def _walk(value: object, steps: tuple[_Step, ...]) -> object:
    for position, (kind, argument) in enumerate(steps):
        if value is None:
            return MISSING
        if kind == "key":
            if not isinstance(value, dict) or argument not in value:
                return MISSING
            value = value[argument]
        elif kind == "index":
            if not isinstance(value, list):
                return MISSING
            assert isinstance(argument, int)
            if not -len(value) <= argument < len(value):
                return MISSING
            value = value[argument]
        else:
            if not isinstance(value, list):
                raise PathMismatch("Array does not start with '[' character")
            rest = steps[position + 1 :]
            return [element if not rest else _element(element, rest) for element in value]
    return value


def _element(element: object, rest: tuple[_Step, ...]) -> object:
    found = _walk(element, rest)
    return None if found is MISSING else found
