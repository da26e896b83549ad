"""Does a JSON object fit a dataclass? Checked against the dataclass's own annotations, so a state
file whose fields have the wrong types is refused when it is read, with the field named, instead
of failing somewhere in the middle of a run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any


def check_fields(cls: type[Any], body: dict[str, Any], where: str) -> None:
    """Raise ``ValueError`` naming the first field of ``body`` whose value does not fit ``cls``'s
    annotation for it (keys the class does not declare are left to the caller)."""
    hints = typing.get_type_hints(cls)
    for item in dataclasses.fields(cls):
        if item.name in body and not fits(body[item.name], hints[item.name]):
            value, wanted = body[item.name], describe(hints[item.name])
            shown = _kind(value) if value is None else f"{_kind(value)} {_short(value)}"
            raise ValueError(f"{where}{item.name} is {shown}, not {wanted}")


def fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(fits(value, option) for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # JSON writes 5.0 as 5
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, dict)  # its own fields are checked when it is built
    if origin is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(fits(part, item) for part in value)
    if origin is dict:
        key, item = typing.get_args(hint)
        return isinstance(value, dict) and all(
            fits(name, key) and fits(part, item) for name, part in value.items()
        )
    raise TypeError(f"no rule for {hint!r}")  # a field of a type this module does not know


def describe(hint: Any) -> str:
    if hint is Any:
        return "anything"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(option) for option in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if dataclasses.is_dataclass(hint):
        return "an object"
    if origin is list:
        item = describe(typing.get_args(hint)[0])
        plural = {"an object": "objects", "a string": "strings", "a whole number": "whole numbers"}
        return f"a list of {plural.get(item, item)}"
    if origin is dict:
        return "an object"
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _kind(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
