"""Event type codes and Log Streams filter categories, for ``--types`` / ``--exclude-types``.

Auth0's checkpoint paging ignores ``q``, so filtering happens on our side. A value is an event
type code (``fp``), a Log Streams filter category as the Management API names it
(``auth.login.fail``), or as the Dashboard shows it (``"Login - Failure"``). The table is
``event_types.tsv``, from Auth0's documentation.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from backfill.errors import ConfigError


@dataclass(frozen=True)
class EventType:
    code: str
    event: str
    category: str  # Log Streams filter name as the API spells it, e.g. auth.login.fail
    dashboard_category: str  # as the Dashboard shows it, e.g. "Login - Failure"


@cache
def catalog() -> dict[str, EventType]:
    text = resources.files("backfill.auth0").joinpath("event_types.tsv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines(), delimiter="\t")
    return {
        row["code"]: EventType(
            code=row["code"],
            event=row["event"],
            category=row["tenant_log_catalog_group"],
            dashboard_category=row["log_stream_filter"],
        )
        for row in rows
        if row.get("code")
    }


def expand(values: Iterable[str], *, option: str) -> frozenset[str]:
    """Codes named by each value (a code or a category); unknown values are an error."""
    known = catalog()
    by_category: dict[str, set[str]] = {}
    for entry in known.values():
        for name in (entry.category, entry.dashboard_category):
            if name:
                by_category.setdefault(name.lower(), set()).add(entry.code)
    codes: set[str] = set()
    unknown = []
    for value in values:
        if value in known:
            codes.add(value)
        elif value.lower() in by_category:
            codes.update(by_category[value.lower()])
        else:
            unknown.append(value)
    if unknown:
        names = sorted(known) + sorted(
            {entry.category for entry in known.values() if entry.category}
        )
        suggestions = []
        for value in unknown:
            close = difflib.get_close_matches(value, names, n=1)
            suggestions.append(f"{value!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"{option}: unknown event type code or category: {', '.join(suggestions)}.",
            hint="Use codes such as s, fp, seacft or categories such as auth.login.fail "
            "(see Auth0's log event type codes).",
        )
    return frozenset(codes)


def type_filter(include: Iterable[str], exclude: Iterable[str]) -> Callable[[object], bool] | None:
    """A predicate on a record's ``type``, or None when every type is kept."""
    include, exclude = list(include), list(exclude)
    if not include and not exclude:
        return None
    wanted = expand(include, option="--types") if include else None
    unwanted = expand(exclude, option="--exclude-types") if exclude else frozenset()

    def keep(code: object) -> bool:
        if not isinstance(code, str):
            return wanted is None  # a record without a type only passes an exclude-only filter
        if wanted is not None and code not in wanted:
            return False
        return code not in unwanted

    return keep
