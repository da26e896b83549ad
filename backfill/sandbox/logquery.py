"""Search mode of `GET /api/v2/logs`: the Lucene subset (`q`) and the search over the tenant.

The query comes as `q` (Auth0's docs) or as `search` (the name in Auth0's OpenAPI, which its
generated SDKs send); both are read with the same syntax. The OpenAPI's description of `search`
tells of case-insensitive "starts with" matching of unquoted values and a field-less search of
`client_name`, `connection` and `user_name`; whether Auth0 still searches that way under either
name is not documented, and the sandbox does not: both take the subset below, values exact.

Supported queries: clauses joined by `AND` (or juxtaposed): `date:[A TO B]` with `[`/`]` inclusive,
`{`/`}` exclusive, `*` for an open end, A and B dates or date-times; `date:A` (that day);
`type:X`, `type:(a OR b)`; `field:"value"` or `field:value` for the plain string fields below.
A field Auth0 does not know gives `unknown field "X"`.

The search never scans the whole tenant when a date range bounds it: a record's `date` is within
5 s before its write time, so the write-time index narrows the candidates, and sorted results are
collected incrementally up to the 1,000 records a query may reach.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from backfill.sandbox.generator import MAX_LAG_US, MIN_LAG_US, Tenant
from backfill.sandbox.timelines import DAY_US
from backfill.sandbox.timeparse import parse_instant, to_us

_STRING_FIELDS = frozenset(
    {
        "user_id", "user_name", "client_id", "client_name", "connection", "connection_id",
        "ip", "hostname", "description", "strategy", "strategy_type", "audience", "log_id",
        "tenant_name",
    }
)  # fmt: skip
_CLAUSE = re.compile(
    r"""\s*(?P<field>[A-Za-z_$][\w.$]*)\s*:\s*
    (?P<value>[\[{][^\]}]*[\]}] | \([^)]*\) | "(?:[^"\\]|\\.)*" | [^\s()]+)\s*""",
    re.VERBOSE,
)
_RANGE = re.compile(r"^([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])$")
_AND = re.compile(r"\s*AND\s+")


class QueryError(ValueError):
    """The query cannot be run; the message is what Auth0 would say."""


@dataclass(frozen=True)
class LogQuery:
    date_low_us: int | None = None
    low_inclusive: bool = True
    date_high_us: int | None = None
    high_inclusive: bool = True
    types: frozenset[str] | None = None
    equals: dict[str, str] = field(default_factory=dict)

    def date_matches(self, date_us: int) -> bool:
        low, high = self.date_low_us, self.date_high_us
        if low is not None and (date_us < low or (date_us == low and not self.low_inclusive)):
            return False
        return high is None or date_us < high or (date_us == high and self.high_inclusive)


def parse_query(text: str | None) -> LogQuery:
    if text is None or not text.strip():
        return LogQuery()
    low: tuple[int | None, bool] = (None, True)
    high: tuple[int | None, bool] = (None, True)
    types: frozenset[str] | None = None
    equals: dict[str, str] = {}
    position = 0
    while position < len(text):
        clause = _CLAUSE.match(text, position)
        if clause is None:
            raise QueryError(f"cannot parse the query at {text[position:]!r}")
        name, value = clause.group("field"), clause.group("value")
        if name == "date":
            low, high = _date_bounds(value)
        elif name == "type":
            types = _type_values(value)
        elif name in _STRING_FIELDS:
            equals[name] = _unquote(value)
        else:
            raise QueryError(f'unknown field "{name}"')
        position = clause.end()
        connective = _AND.match(text, position)
        if connective:
            position = connective.end()
    return LogQuery(low[0], low[1], high[0], high[1], types, equals)


def _date_bounds(value: str) -> tuple[tuple[int | None, bool], tuple[int | None, bool]]:
    match = _RANGE.match(value)
    if match is None:
        day = _instant(_unquote(value))
        if day is None:
            raise QueryError(f"invalid date {value!r}")
        return (day, True), (day + DAY_US, False)
    opening, low_text, high_text, closing = match.groups()
    return (_instant(low_text), opening == "["), (_instant(high_text), closing == "]")


def _instant(text: str) -> int | None:
    cleaned = _unquote(text)
    if cleaned == "*":
        return None
    try:
        return to_us(parse_instant(cleaned))
    except ValueError:
        raise QueryError(f"invalid date {text!r}") from None


def _type_values(value: str) -> frozenset[str]:
    if value.startswith("("):
        inner = value[1:-1]
        parts = [part.strip() for part in re.split(r"\s+OR\s+", inner.strip())]
        if not all(parts):
            raise QueryError(f"invalid type list {value!r}")
        return frozenset(_unquote(part) for part in parts)
    return frozenset({_unquote(value)})


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


@dataclass(frozen=True)
class SearchResult:
    indices: list[int]
    total: int | None


def search(
    tenant: Tenant,
    visible: range,
    query: LogQuery,
    ascending: bool,
    offset: int,
    limit: int,
    count_total: bool,
) -> SearchResult:
    candidates = _candidates(tenant, visible, query)
    wanted = offset + limit
    if ascending:
        ordered = _smallest_dates(tenant, candidates, query, wanted)
    else:
        ordered = _largest_dates(tenant, candidates, query, wanted)
    total = _count(tenant, candidates, query) if count_total else None
    return SearchResult(ordered[offset:wanted], total)


def _candidates(tenant: Tenant, visible: range, query: LogQuery) -> range:
    """Indices whose write time allows a `date` inside the query's range."""
    low = -(2**62) if query.date_low_us is None else query.date_low_us + MIN_LAG_US
    high = 2**62 if query.date_high_us is None else query.date_high_us + MAX_LAG_US + 1
    return tenant.written_between(low, high, visible)


def _matches(tenant: Tenant, index: int, query: LogQuery) -> bool:
    if query.types is not None and tenant.event_kind(index).code not in query.types:
        return False
    if not query.date_matches(tenant.date_us(index)):
        return False
    if query.equals:
        record = tenant.record(index)
        return all(record.get(name) == value for name, value in query.equals.items())
    return True


def _smallest_dates(tenant: Tenant, candidates: range, query: LogQuery, wanted: int) -> list[int]:
    # Max-heap (negated) of the `wanted` earliest (date, index) pairs seen so far; stop once a
    # record's write time proves that it and all later ones are dated after the heap's worst.
    heap: list[tuple[int, int]] = []
    for index in candidates:
        if len(heap) >= wanted and tenant.write_us(index) - MAX_LAG_US > -heap[0][0]:
            break
        if not _matches(tenant, index, query):
            continue
        item = (-tenant.date_us(index), -index)
        if len(heap) < wanted:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return [-index for _, index in sorted(heap, reverse=True)]


def _largest_dates(tenant: Tenant, candidates: range, query: LogQuery, wanted: int) -> list[int]:
    heap: list[tuple[int, int]] = []
    for index in reversed(candidates):
        if len(heap) >= wanted and tenant.write_us(index) < heap[0][0]:
            break
        if not _matches(tenant, index, query):
            continue
        item = (tenant.date_us(index), index)
        if len(heap) < wanted:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return [index for _, index in sorted(heap, reverse=True)]


def _count(tenant: Tenant, candidates: range, query: LogQuery) -> int:
    if query.types is not None or query.equals:
        return sum(1 for index in candidates if _matches(tenant, index, query))
    # Only dates: records written well inside the range surely match; check the two edges.
    sure_low = -(2**62) if query.date_low_us is None else query.date_low_us + MAX_LAG_US
    sure_high = 2**62 if query.date_high_us is None else query.date_high_us + MIN_LAG_US
    sure = tenant.written_between(sure_low, sure_high, candidates)
    edges = _chain(range(candidates.start, sure.start), range(sure.stop, candidates.stop))
    return len(sure) + sum(1 for index in edges if query.date_matches(tenant.date_us(index)))


def _chain(*ranges: range) -> Iterator[int]:
    for part in ranges:
        yield from part
