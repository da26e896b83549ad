"""Event type codes and Log Streams filter categories, for ``--types`` / ``--exclude-types``.

Auth0's checkpoint paging ignores ``q``, so filtering happens on our side. A value is an event
type code (``fp``), a Log Streams filter category as the Management API names it
(``auth.login.fail``), or as the Dashboard shows it (``"Login - Failure"``). The table is
``event_types.tsv``, from Auth0's documentation.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

from backfill.errors import ConfigError, given, listed


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
            suggestions.append(given(value) + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ConfigError(
            f"{option}: unknown event type code or category: {listed(suggestions)}.",
            hint="Use codes such as s, fp, seacft or categories such as auth.login.fail "
            "(see Auth0's log event type codes).",
        )
    return frozenset(codes)


@dataclass(frozen=True)
class TypeFilter:
    """Which event types a run sends, and where that came from (the summary and ``status`` say).

    Called with a record's ``type``: True to send it.
    """

    wanted: frozenset[str] | None  # None: every code the exclusions leave
    unwanted: frozenset[str]
    source: str  # "--types/--exclude-types", or the Log Stream it mirrors
    given: tuple[str, ...] = ()  # as written: codes and categories

    def __call__(self, code: object) -> bool:
        if not isinstance(code, str):
            return self.wanted is None  # a record without a type only passes an exclude-only filter
        if self.wanted is not None and code not in self.wanted:
            return False
        return code not in self.unwanted

    def describe(self) -> str:
        return f"{', '.join(self.given) or 'every type'} (from {self.source})"


def type_filter(
    include: Iterable[str], exclude: Iterable[str], *, source: str = "--types/--exclude-types"
) -> TypeFilter | None:
    """The filter for these codes or categories, or None when every type is kept."""
    include, exclude = list(include), list(exclude)
    if not include and not exclude:
        return None
    return TypeFilter(
        wanted=expand(include, option="--types") if include else None,
        unwanted=expand(exclude, option="--exclude-types") if exclude else frozenset(),
        source=source,
        given=(*include, *(f"not {value}" for value in exclude)),
    )


def is_known(code: object) -> bool:
    """A code in the table (Auth0's published codes); what is not is counted when left out."""
    return isinstance(code, str) and code in catalog()
